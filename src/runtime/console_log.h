// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The box's console log with a size cap. A guest can write to its serial console without
// end, so QEMU does not write the log file itself: it writes into a pipe, and a small
// writer process copies the pipe into the file, keeping the first kConsoleHeadBytes (the
// early boot) and the latest output, never more than kConsoleMaxBytes in all. Where the
// middle was dropped the log says so.
//
// The writer is the small program boxlite-console (console_main.cc), started in a session
// of its own and forked twice, so nobody has to reap it and it outlives an owner that
// exits while a detached box runs. It holds only the pipe's read end (stdin) and its own
// description of the log file (stdout), and exits as soon as the last writer (QEMU)
// closes the pipe: it never outlives the VM. It holds an exclusive flock on its
// description while it runs, which WaitConsoleWriter uses to know the log is complete.
// Without the program (not installed), the forked child copies by itself; that works the
// same but keeps a copy-on-write image of its parent's memory.
//
// Thread-safety: StartConsoleWriter may be called from any thread; the child runs only
// async-signal-safe system calls until it execs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::runtime {

constexpr int64_t kConsoleMaxBytes = int64_t{1} << 20;
constexpr int64_t kConsoleHeadBytes = int64_t{64} << 10;
constexpr char kConsoleHelperName[] = "boxlite-console";
// Names the writer program explicitly (tests, unusual installs).
constexpr char kConsoleHelperEnv[] = "BOXLITE_CONSOLE_HELPER";

// The writer program: $BOXLITE_CONSOLE_HELPER, ../libexec/boxlite/ beside the running
// executable, the install location, this build tree. Empty when none is there.
std::string FindConsoleHelper();

// Starts the writer for the log file open as `log_fd` (new output goes after what the file
// holds). Returns the pipe's write end for QEMU's serial chardev: the caller passes it to
// QEMU and closes its own copy once QEMU runs.
Result<base::UniqueFd> StartConsoleWriter(int log_fd);

// Waits up to `timeout` until no writer holds `log_fd`'s file (its VM ended and the last
// bytes are in the file). False when one is still running.
bool WaitConsoleWriter(int log_fd, std::chrono::milliseconds timeout);

// The writer's loop on already opened descriptors: copies `in` into `log_fd` under the
// cap until `in` ends. Exposed for tests; returns 0, or an errno when a write failed.
int CopyConsole(int in, int log_fd);

}  // namespace boxlite::runtime

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
// The writer confines itself before it reads a byte of the guest's output (ConfineWriter):
// no_new_privs; started as root, it becomes the system user boxlite (src/sys/jail.h) with
// no supplementary group; no capability in any set (the bounding set too, where it may
// drop it); then a seccomp allowlist of what the copy needs: read, write, pread64,
// pwrite64, ftruncate, fstat (newfstatat on a descriptor only), lseek, close, brk, munmap,
// rt_sigreturn, restart_syscall, exit, exit_group. Anything else fails with EPERM (the
// copy then ends with an error: no kill needed to stop it, and an exit is cleaner). A step
// that fails ends the writer before it copies, after one line in the log saying why.
// The forked fallback confines itself the same way, with a program prepared before fork.
//
// Thread-safety: StartConsoleWriter may be called from any thread; the child runs only
// async-signal-safe system calls until it execs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::runtime {

constexpr int64_t kConsoleMaxBytes = int64_t{1} << 20;
constexpr int64_t kConsoleHeadBytes = int64_t{64} << 10;
constexpr char kConsoleHelperName[] = "boxlite-console";

// The writer program: `configured` (RuntimeOptions.console_helper, BOXLITE_CONSOLE_HELPER:
// tests, unusual installs), else ../libexec/boxlite/ beside the running executable, the
// install location, this build tree. Empty when none is there.
std::string FindConsoleHelper(const std::string& configured);

// How the writer confines itself, prepared where allocation is allowed.
struct WriterConfinement {
  bool switch_identity = false;  // Root: become uid/gid.
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<uint8_t> seccomp;  // The allowlist as raw BPF.
};
Result<WriterConfinement> PrepareWriterConfinement();

// Confines the calling process as `c` says, then copies `in` into `log_fd` (CopyConsole).
// When a step fails, writes one line saying so at the end of the log and copies nothing.
// Returns the process's exit code. Async-signal-safe.
int ConfineAndCopy(int in, int log_fd, const WriterConfinement& c);

// Appends "[boxlite: console output is not logged: <why> (errno N)]" to the log (no
// errno part when err is 0). Async-signal-safe.
void NoteConsoleNotLogged(int log_fd, const char* why, int err);

// Starts the writer for the log file open as `log_fd` (new output goes after what the file
// holds). Returns the pipe's write end for QEMU's serial chardev: the caller passes it to
// QEMU and closes its own copy once QEMU runs.
// `configured_helper` is RuntimeOptions.console_helper (FindConsoleHelper).
Result<base::UniqueFd> StartConsoleWriter(int log_fd, const std::string& configured_helper);

// Waits up to `timeout` until no writer holds `log_fd`'s file (its VM ended and the last
// bytes are in the file). False when one is still running.
bool WaitConsoleWriter(int log_fd, std::chrono::milliseconds timeout);

// The writer's loop on already opened descriptors: copies `in` into `log_fd` under the
// cap until `in` ends. Exposed for tests; returns 0, or an errno when a write failed.
int CopyConsole(int in, int log_fd);

}  // namespace boxlite::runtime

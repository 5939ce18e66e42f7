// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Attaches the caller's stdio to an exec in a box, the way `docker run/exec` do: output
// copied to our stdout/stderr, stdin forwarded when asked, SIGINT/SIGTERM/SIGHUP passed
// to the command, and with a terminal: raw mode (always restored, also on signals and
// errors) and window-size changes followed (SIGWINCH -> resize).
// Thread-safety: one attach at a time per process.
#pragma once

#include <memory>

#include "boxlite/boxlite.h"

namespace boxlite::cli {

// Blocks the forwarded signals in this thread so every thread created later inherits the
// mask. Call before opening the runtime. Until an exec is attached, such a signal ends
// the process with 128 + signo (the VM dies with us).
void InstallSignalForwarding();

// -t needs a terminal on stdin: BoxLite 0.9's "the input device is not a TTY." otherwise.
Status RequireTerminalStdin();

// The caller's terminal size, or 24x80 when stdin is not a terminal.
void TerminalSize(int* rows, int* cols);

// Runs the attached session until the command exits; returns its exit status.
Result<ExitStatus> AttachExec(const std::shared_ptr<Exec>& exec, bool forward_stdin, bool tty);

}  // namespace boxlite::cli

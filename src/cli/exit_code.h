// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The CLI's exit codes (BoxLite 0.9's): 0 ok, 1 the command failed, 2 the command line
// was wrong (unknown command or flag, a missing argument, a flag value outside its
// choices). `run` and `exec` exit with the command's own code, or 128+N when a signal N
// ended it. Thread-safety: pure functions.
#pragma once

#include "boxlite/boxlite.h"

namespace boxlite::cli {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// The exit code for a failed command: 0 for OK, else 1.
int ExitCodeFor(const Status& status);

// The exit code `run`/`exec` pass on for a finished command.
int ExitCodeOf(const ExitStatus& status);

}  // namespace boxlite::cli

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/exit_code.h"

namespace boxlite::cli {

int ExitCodeFor(const Status& status) { return status.ok() ? kExitOk : kExitError; }

int ExitCodeOf(const ExitStatus& status) {
  if (status.signal > 0) return 128 + status.signal;
  // A process's exit code is 8 bits; a value outside that (a guest that says so) is
  // still a failure, never success by truncation.
  if (status.exit_code < 0 || status.exit_code > 255) return kExitError;
  return status.exit_code;
}

}  // namespace boxlite::cli

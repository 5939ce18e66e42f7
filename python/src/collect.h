// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Collect runs an already started Exec to completion: it feeds stdin, gathers stdout and
// stderr concurrently (so flow control never stalls the process) and waits for the exit,
// killing the process when the timeout expires. It is what SimpleBox.exec() awaits.
// Unlike Box::Run it works on an Exec the caller holds, so another thread can Kill() it
// (that is how cancelling exec() from Python ends the guest process).
//
// Thread-safety: blocks the calling thread; uses two or three helper threads, all joined
// before it returns. Call it without the GIL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "boxlite/exec.h"
#include "boxlite/result.h"

namespace boxlite::python {

struct Collected {
  ExitStatus exit;
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;  // More than max_output_bytes came; the rest was dropped.
  bool stderr_truncated = false;
  double duration_seconds = 0;
};

// `exec` must have been started with open_stdin when `stdin_data` is given. With a
// timeout, the process is killed when it expires and exit.timed_out is set. Fails only
// when the box went away (the exit status is then unknown). Each stream keeps at most
// `max_output_bytes` (0: no limit); the rest is read and dropped so the process never
// stalls on flow control.
Result<Collected> Collect(Exec& exec, const std::optional<std::string>& stdin_data,
                          std::optional<double> timeout_seconds, int64_t max_output_bytes);

}  // namespace boxlite::python

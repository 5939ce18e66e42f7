// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Exec is one process running in a box: its stdin, stdout and stderr streams, signals,
// terminal size and exit status. Output is flow-controlled end to end: bytes not yet read
// here hold the guest process back instead of filling memory.
//
// Thread-safety: all methods may be called from any thread; reading stdout and stderr
// from two threads at once is fine. Each stream has one reader at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite {

class Exec {
 public:
  virtual ~Exec() = default;

  // The guest pid of the process.
  virtual int pid() const = 0;
  // The id a remote server gave the exec (Box::AttachExec takes it); empty for a local one.
  virtual std::string execution_id() const { return ""; }

  // Sends bytes to the process's stdin (requires ExecOptions::open_stdin or tty). Blocks
  // while the guest has not accepted earlier bytes.
  virtual Status WriteStdin(std::string_view bytes) = 0;
  virtual Status CloseStdin() = 0;

  // The next chunk of stdout (fd 1) or stderr (fd 2). An empty string means that stream
  // has ended. With a deadline, DeadlineExceeded when nothing arrived in time. With a
  // terminal, everything arrives on stdout.
  virtual Result<std::string> Read(int fd, std::optional<std::chrono::milliseconds> timeout =
                                               std::nullopt) = 0;

  virtual Status Signal(int signo) = 0;
  virtual Status Resize(int rows, int cols) = 0;

  // Waits for the exit. With a timeout that expires, the process (and its process group)
  // is killed and the status says timed_out. Unavailable when the box died.
  virtual Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds> timeout =
                                      std::nullopt) = 0;

  // Kills the process group now (SIGKILL); Wait() then returns promptly.
  virtual Status Kill() = 0;

  // Drops stdout (1) or stderr (2), queued and future, so a caller that only waits for
  // the exit never stalls a chatty process on flow control.
  virtual Status DiscardOutput(int fd) = 0;
};

// Appends `chunk` to `*out` without letting it grow past `max_bytes` (0: no limit).
// Returns true when bytes were dropped. Box::Run and the SDKs collect output with it
// (ExecOptions::max_output_bytes).
inline bool AppendOutput(std::string* out, std::string_view chunk, int64_t max_bytes) {
  if (max_bytes <= 0) {
    out->append(chunk);
    return false;
  }
  size_t cap = static_cast<size_t>(max_bytes);
  size_t room = out->size() < cap ? cap - out->size() : 0;
  out->append(chunk.substr(0, std::min(room, chunk.size())));
  return chunk.size() > room;
}

}  // namespace boxlite

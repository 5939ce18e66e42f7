// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "collect.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

namespace boxlite::python {
namespace {

// How often a reader with nothing to read checks whether it was told to give up.
constexpr std::chrono::milliseconds kReaderPoll(250);

// Appends what `fd` produces to `*out` (up to `max_bytes`, setting `*truncated` when more
// came) until the stream ends, fails, or `stop` is set while nothing arrives.
void Drain(Exec& exec, int fd, std::string* out, int64_t max_bytes, bool* truncated,
           const std::atomic<bool>& stop) {
  while (true) {
    auto chunk = exec.Read(fd, kReaderPoll);
    if (!chunk.ok()) {
      if (chunk.error().IsDeadlineExceeded() && !stop) continue;
      // Otherwise the box went away; Wait() reports that with its explanation.
      return;
    }
    if (chunk->empty()) return;
    if (AppendOutput(out, *chunk, max_bytes)) *truncated = true;
  }
}

}  // namespace

Result<Collected> Collect(Exec& exec, const std::optional<std::string>& stdin_data,
                          std::optional<double> timeout_seconds, int64_t max_output_bytes) {
  auto t0 = std::chrono::steady_clock::now();
  Collected out;
  std::atomic<bool> stop{false};
  std::thread err_reader(
      [&] { Drain(exec, 2, &out.stderr_data, max_output_bytes, &out.stderr_truncated, stop); });
  std::thread out_reader(
      [&] { Drain(exec, 1, &out.stdout_data, max_output_bytes, &out.stdout_truncated, stop); });
  std::thread writer;
  if (stdin_data) {
    writer = std::thread([&] {
      // A process that exits without reading its stdin is not an error.
      if (exec.WriteStdin(*stdin_data).ok()) (void)exec.CloseStdin();
    });
  }
  std::optional<std::chrono::milliseconds> timeout;
  if (timeout_seconds) {
    timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(*timeout_seconds * 1000)));
  }
  // Returns once the exit event arrived (all output frames precede it on the channel),
  // or the box died; either way both readers end too.
  Result<ExitStatus> status = exec.Wait(timeout);
  if (!status.ok()) {
    (void)exec.Kill();
    stop = true;
  }
  if (writer.joinable()) writer.join();
  out_reader.join();
  err_reader.join();
  if (!status.ok()) return status.error();
  out.exit = *status;
  out.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace boxlite::python

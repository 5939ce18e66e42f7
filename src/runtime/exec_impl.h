// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// ExecImpl implements boxlite::Exec on an AgentChannel stream. Output credit is returned
// to the guest as the caller consumes chunks, so unread output holds the guest process
// back. Thread-safety: as boxlite::Exec (the sink's mutex guards all stream state).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "boxlite/exec.h"
#include "src/runtime/channel.h"

namespace boxlite::runtime {

// Bytes a box's execs moved (BoxMetrics bytes_sent_total / bytes_received_total).
struct ExecByteCounters {
  std::atomic<uint64_t> sent{0};      // stdin bytes sent to the guest.
  std::atomic<uint64_t> received{0};  // stdout/stderr bytes read (or discarded) here.
};

class ExecImpl final : public Exec {
 public:
  // `channel` must outlive this object or be held alive by `keepalive`.
  // Turns a lost channel into the box's explanation (console tail, QEMU's exit).
  using Explainer = std::function<Status(const Status&)>;

  ExecImpl(std::shared_ptr<AgentChannel> channel, uint32_t stream,
           std::shared_ptr<StreamSink> sink, int pid, int64_t stdin_window, bool tty,
           Explainer explain);
  ~ExecImpl() override;

  int pid() const override { return pid_; }
  Status WriteStdin(std::string_view bytes) override;
  Status CloseStdin() override;
  Result<std::string> Read(int fd, std::optional<std::chrono::milliseconds> timeout) override;
  Status Signal(int signo) override;
  Status Resize(int rows, int cols) override;
  Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds> timeout) override;
  Status Kill() override;
  Status DiscardOutput(int fd) override;

  // Reads whichever of stdout/stderr has data first: sets *fd (1 or 2) and returns the
  // chunk; *fd = 0 when both streams ended.
  Result<std::string> ReadAny(int* fd, std::optional<Clock::time_point> deadline);

  // Why the stream is lost (the channel closed or broke), or OK; reads nothing.
  Status StreamFailure();

  // Counts this exec's bytes into `counters` too (set before the exec is shared).
  void set_counters(std::shared_ptr<ExecByteCounters> counters) { counters_ = std::move(counters); }

 private:
  void ReturnCredit(int fd, size_t consumed);
  Result<ExitStatus> ExitFromSink();  // Requires sink_->mu held.

  std::shared_ptr<AgentChannel> channel_;
  uint32_t stream_;
  std::shared_ptr<StreamSink> sink_;
  Explainer explain_;
  int pid_;
  bool tty_;
  std::mutex credit_mu_;
  size_t unacked_[3] = {0, 0, 0};  // Guarded by credit_mu_.
  std::mutex stdin_mu_;            // Serializes writers so stdin bytes stay in order.
  std::atomic<bool> stdin_closed_{false};
  std::atomic<bool> timed_out_{false};
  std::shared_ptr<ExecByteCounters> counters_;
};

// Sends `req` as an "exec" request on `channel` and returns the started exec on its
// stream. A refusal is the agent's error (subject kExec unless it names another); a lost
// channel goes through `explain`. A detached exec has already "exited" for the host.
Result<std::shared_ptr<ExecImpl>> StartExecOn(const std::shared_ptr<AgentChannel>& channel,
                                              const protocol::ExecRequest& req,
                                              ExecImpl::Explainer explain);

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/exec_impl.h"

#include <signal.h>

#include <algorithm>

#include "src/base/macros.h"
#include "src/base/strings.h"

namespace boxlite::runtime {
namespace {

// Credit goes back in batches: one frame per quarter window, or when a stream drains.
constexpr size_t kCreditBatch = protocol::kDefaultWindow / 4;

std::optional<Clock::time_point> DeadlineFrom(std::optional<std::chrono::milliseconds> t) {
  if (!t) return std::nullopt;
  return Clock::now() + *t;
}

}  // namespace

ExecImpl::ExecImpl(std::shared_ptr<AgentChannel> channel, uint32_t stream,
                   std::shared_ptr<StreamSink> sink, int pid, int64_t stdin_window, bool tty,
                   Explainer explain)
    : channel_(std::move(channel)),
      stream_(stream),
      sink_(std::move(sink)),
      explain_(std::move(explain)),
      pid_(pid),
      tty_(tty) {
  std::lock_guard<std::mutex> lock(sink_->mu);
  sink_->stdin_credit += stdin_window;
}

ExecImpl::~ExecImpl() {
  bool running;
  {
    std::lock_guard<std::mutex> lock(sink_->mu);
    running = !sink_->exit.has_value() && sink_->failure.ok();
  }
  // An exec nobody can observe any more must not keep running (or stall on credit).
  if (running) (void)Kill();
  channel_->Release(stream_);
}

Status ExecImpl::WriteStdin(std::string_view bytes) {
  std::lock_guard<std::mutex> writer(stdin_mu_);
  if (stdin_closed_) {
    return Status::FailedPrecondition("stdin was closed", "open a new exec to send more input")
        .WithSubject(StatusSubject::kExec);
  }
  while (!bytes.empty()) {
    size_t n;
    {
      std::unique_lock<std::mutex> lock(sink_->mu);
      sink_->cv.wait(lock, [&] {
        return sink_->stdin_credit > 0 || sink_->exit.has_value() || !sink_->failure.ok();
      });
      if (!sink_->failure.ok()) return sink_->failure;
      if (sink_->exit.has_value()) {
        return Status::FailedPrecondition("the process has exited").WithSubject(StatusSubject::kExec);
      }
      n = std::min({bytes.size(), static_cast<size_t>(sink_->stdin_credit),
                    protocol::kMaxDataChunk});
      sink_->stdin_credit -= static_cast<int64_t>(n);
    }
    std::string frame;
    protocol::AppendData(&frame, stream_, protocol::kFdStdin, bytes.substr(0, n));
    BOXLITE_RETURN_IF_ERROR(channel_->Send(frame));
    if (counters_) counters_->sent += n;
    bytes.remove_prefix(n);
  }
  return Status::OK();
}

Status ExecImpl::CloseStdin() {
  std::lock_guard<std::mutex> writer(stdin_mu_);
  if (stdin_closed_.exchange(true)) return Status::OK();
  std::string frame;
  protocol::AppendClose(&frame, stream_, protocol::kFdStdin);
  return channel_->Send(frame);
}

void ExecImpl::ReturnCredit(int fd, size_t consumed) {
  size_t grant = 0;
  if (counters_) counters_->received += consumed;
  {
    std::lock_guard<std::mutex> lock(credit_mu_);
    unacked_[fd] += consumed;
    if (unacked_[fd] >= kCreditBatch) grant = std::exchange(unacked_[fd], 0);
  }
  if (grant == 0) return;
  // A dead channel is reported by the next Read or Wait.
  (void)channel_->SendCredit(stream_, sink_.get(), static_cast<uint8_t>(fd),
                             static_cast<uint32_t>(grant));
}

Result<std::string> ExecImpl::Read(int fd, std::optional<std::chrono::milliseconds> timeout) {
  if (fd != 1 && fd != 2) {
    return Status::InvalidArgument("Read: fd must be 1 or 2").WithSubject(StatusSubject::kExec);
  }
  std::string chunk;
  {
    std::unique_lock<std::mutex> lock(sink_->mu);
    bool ready = WaitSink(sink_.get(), lock, DeadlineFrom(timeout), [&] {
      return !sink_->chunks[fd].empty() || sink_->eof[fd] || sink_->exit.has_value() ||
             !sink_->failure.ok();
    });
    if (!ready) return Status::DeadlineExceeded("no output within the timeout");
    if (sink_->chunks[fd].empty()) {
      if (sink_->eof[fd] || sink_->exit.has_value()) return std::string();
      return sink_->failure;
    }
    chunk = std::move(sink_->chunks[fd].front());
    sink_->chunks[fd].pop_front();
    auto it = std::find(sink_->order.begin(), sink_->order.end(), fd);
    if (it != sink_->order.end()) sink_->order.erase(it);
  }
  ReturnCredit(fd, chunk.size());
  return chunk;
}

Result<std::string> ExecImpl::ReadAny(int* fd, std::optional<Clock::time_point> deadline) {
  std::string chunk;
  {
    std::unique_lock<std::mutex> lock(sink_->mu);
    auto drained = [&] {
      return (sink_->eof[1] && sink_->eof[2]) ||
             (sink_->exit.has_value() && sink_->chunks[1].empty() && sink_->chunks[2].empty());
    };
    bool ready = WaitSink(sink_.get(), lock, deadline, [&] {
      return !sink_->chunks[1].empty() || !sink_->chunks[2].empty() || drained() ||
             !sink_->failure.ok();
    });
    if (!ready) return Status::DeadlineExceeded("no output within the timeout");
    int which = 0;
    if (!sink_->chunks[1].empty() || !sink_->chunks[2].empty()) {
      // Keep the order the chunks arrived in across the two streams.
      while (!sink_->order.empty()) {
        int f = sink_->order.front();
        sink_->order.pop_front();
        if (!sink_->chunks[f].empty()) {
          which = f;
          break;
        }
      }
      if (which == 0) which = sink_->chunks[1].empty() ? 2 : 1;
      chunk = std::move(sink_->chunks[which].front());
      sink_->chunks[which].pop_front();
    } else if (drained()) {
      *fd = 0;
      return std::string();
    } else {
      return sink_->failure;
    }
    *fd = which;
  }
  ReturnCredit(*fd, chunk.size());
  return chunk;
}

Status ExecImpl::Signal(int signo) {
  protocol::SignalRequest req{stream_, signo};
  auto r = channel_->Call("signal", protocol::ToJson(req), Clock::now() + std::chrono::seconds(10));
  if (!r.ok()) {
    // Racing with the exit is not an error for the caller.
    std::lock_guard<std::mutex> lock(sink_->mu);
    if (sink_->exit.has_value()) return Status::OK();
    return r.error().WithDefaultSubject(StatusSubject::kExec);
  }
  return Status::OK();
}

Status ExecImpl::Resize(int rows, int cols) {
  if (!tty_) {
    return Status::FailedPrecondition("resize: the exec has no terminal",
                                      "start it with a terminal (tty=True) to resize it")
        .WithSubject(StatusSubject::kExec);
  }
  protocol::ResizeRequest req{stream_, rows, cols};
  auto r = channel_->Call("resize", protocol::ToJson(req), Clock::now() + std::chrono::seconds(10));
  return r.ok() ? Status::OK() : r.error().WithDefaultSubject(StatusSubject::kExec);
}

Status ExecImpl::Kill() { return Signal(SIGKILL); }

Result<ExitStatus> ExecImpl::ExitFromSink() {
  if (sink_->exit) {
    ExitStatus st;
    st.exit_code = static_cast<int>(sink_->exit->exit_code);
    st.signal = static_cast<int>(sink_->exit->signal);
    st.error_message = sink_->exit->error;
    st.timed_out = timed_out_;
    return st;
  }
  Status failure = sink_->failure;
  if (explain_ && failure.IsUnavailable()) failure = explain_(failure);
  return failure.Wrap("the command did not finish");
}

Result<ExitStatus> ExecImpl::Wait(std::optional<std::chrono::milliseconds> timeout) {
  auto deadline = DeadlineFrom(timeout);
  std::unique_lock<std::mutex> lock(sink_->mu);
  auto done = [&] { return sink_->exit.has_value() || !sink_->failure.ok(); };
  // The exit event usually arrives while this thread waits: it reads the socket itself
  // (AgentChannel::WaitOn) and needs no wakeup from the channel's reader thread.
  if (channel_->WaitOn(sink_.get(), lock, deadline, done)) return ExitFromSink();
  lock.unlock();
  timed_out_ = true;
  BOXLITE_RETURN_IF_ERROR(Kill());
  lock.lock();
  WaitSink(sink_.get(), lock, Clock::now() + std::chrono::seconds(30), done);
  return ExitFromSink();
}

Status ExecImpl::StreamFailure() {
  std::lock_guard<std::mutex> lock(sink_->mu);
  return sink_->failure;
}

Status ExecImpl::DiscardOutput(int fd) {
  if (fd != 1 && fd != 2) {
    return Status::InvalidArgument("DiscardOutput: fd must be 1 or 2").WithSubject(StatusSubject::kExec);
  }
  size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(sink_->mu);
    sink_->discard[fd] = true;
    for (auto& c : sink_->chunks[fd]) dropped += c.size();
    sink_->chunks[fd].clear();
  }
  if (dropped) ReturnCredit(fd, dropped);
  return Status::OK();
}

Result<std::shared_ptr<ExecImpl>> StartExecOn(const std::shared_ptr<AgentChannel>& channel,
                                              const protocol::ExecRequest& req,
                                              ExecImpl::Explainer explain) {
  std::shared_ptr<StreamSink> sink;
  uint32_t stream = 0;
  auto reply = channel->Call("exec", protocol::ToJson(req),
                             Clock::now() + std::chrono::seconds(60), &sink, &stream);
  if (!reply.ok()) {
    if (reply.error().IsUnavailable()) return explain ? explain(reply.error()) : reply.error();
    // The agent refused to start this command (a channel failure says kBox already).
    return reply.error().Wrap("exec " + base::ShellQuote(req.argv[0]))
        .WithDefaultSubject(StatusSubject::kExec);
  }
  protocol::ExecResponse resp;
  Status parsed = protocol::FromJson(*reply, &resp);
  if (!parsed.ok()) {
    channel->Release(stream);
    return Status::ProtocolError(parsed.message());
  }
  if (req.detached) {
    // Nothing will arrive on this stream: the Exec reports the start and the pid only.
    std::lock_guard<std::mutex> sl(sink->mu);
    sink->exit = protocol::ExitEvent{};
    sink->eof[1] = sink->eof[2] = true;
  }
  return std::make_shared<ExecImpl>(channel, stream, sink, static_cast<int>(resp.pid),
                                    resp.stdin_window, req.tty, std::move(explain));
}

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/channel.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

// Credit sums saturate here: far beyond any window, far from overflowing.
constexpr int64_t kMaxCredit = int64_t{1} << 40;

}  // namespace

bool WaitSink(StreamSink* sink, std::unique_lock<std::mutex>& lock,
              std::optional<Clock::time_point> deadline, const std::function<bool()>& ready) {
  if (!deadline) {
    sink->cv.wait(lock, ready);
    return true;
  }
  return sink->cv.wait_until(lock, *deadline, ready);
}

AgentChannel::AgentChannel(base::UniqueFd socket, std::function<void(const Status&)> on_close)
    : socket_(std::move(socket)),
      on_close_(std::move(on_close)),
      // Without it callers only wait on their sinks (WaitOn falls back to WaitSink).
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  reader_ = std::thread([this] { ReaderLoop(); });
}

AgentChannel::~AgentChannel() {
  Close(Status::Cancelled("the box's channel was closed"));
  if (reader_.joinable()) reader_.join();
}

Status AgentChannel::health() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void AgentChannel::Close(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A closed channel is the box's condition (stopped, dead or misbehaving), whatever
    // the call that meets it.
    if (closed_.ok()) closed_ = why.WithDefaultSubject(StatusSubject::kBox);
  }
  // Wakes the reader; it then fails every sink.
  ::shutdown(socket_.get(), SHUT_RDWR);
}

Status AgentChannel::Send(const std::string& frames) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_.ok()) return closed_;
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  const char* p = frames.data();
  size_t left = frames.size();
  while (left > 0) {
    ssize_t n = ::send(socket_.get(), p, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = sys::ErrnoStatus(errno, "write to the box's agent");
      return Status::Unavailable(s.message()).WithSubject(StatusSubject::kBox);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status AgentChannel::SendCredit(uint32_t stream, StreamSink* sink, uint8_t fd, uint32_t bytes) {
  {
    // Counted before the frame leaves: the peer may answer it at once.
    std::lock_guard<std::mutex> lock(sink->mu);
    sink->out_credit[fd] = std::min(sink->out_credit[fd] + static_cast<int64_t>(bytes), kMaxCredit);
  }
  std::string frame;
  protocol::AppendCredit(&frame, stream, fd, bytes);
  return Send(frame);
}

Result<protocol::Json> AgentChannel::Call(std::string_view op, protocol::Json body,
                                          std::optional<Clock::time_point> deadline,
                                          std::shared_ptr<StreamSink>* keep,
                                          uint32_t* stream_out) {
  uint32_t stream = next_stream_.fetch_add(1);
  auto sink = std::make_shared<StreamSink>();
  // A request that streams output to the host (exec, get_file) grants its window up
  // front; the peer may send that much on each output fd before any credit frame.
  if (auto it = body.find("window"); it != body.end() && it->is_number_integer()) {
    int64_t window = std::clamp<int64_t>(it->get<int64_t>(), 0, kMaxCredit);
    sink->out_credit[protocol::kFdStdout] = window;
    sink->out_credit[protocol::kFdStderr] = window;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_.ok()) return closed_;
    sinks_[stream] = sink;
  }
  if (stream_out) *stream_out = stream;
  std::string frame;
  protocol::AppendFrame(&frame, protocol::FrameKind::kRequest, stream,
                        protocol::EncodeRequest(op, std::move(body)));
  Status sent = Send(frame);
  if (!sent.ok()) {
    Release(stream);
    return sent;
  }
  std::unique_lock<std::mutex> lock(sink->mu);
  bool done = WaitOn(sink.get(), lock, deadline,
                     [&] { return sink->response.has_value() || !sink->failure.ok(); });
  if (!done) {
    lock.unlock();
    Release(stream);
    return Status::DeadlineExceeded(std::string("the agent did not answer \"") +
                                    std::string(op) + "\" in time");
  }
  Result<protocol::Json> result = sink->response ? *sink->response : Result<protocol::Json>(sink->failure);
  lock.unlock();
  if (keep != nullptr && result.ok()) {
    *keep = sink;
  } else {
    Release(stream);
  }
  return result;
}

void AgentChannel::Release(uint32_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  sinks_.erase(stream);
}

bool AgentChannel::WaitOn(StreamSink* sink, std::unique_lock<std::mutex>& lock,
                          std::optional<Clock::time_point> deadline,
                          const std::function<bool()>& ready) {
  if (ready()) return true;
  bool borrowed = false;
  if (wake_) {
    std::lock_guard<std::mutex> role(role_mu_);
    if (borrowers_ == 0) borrowed = true, borrowers_ = 1;
  }
  // Another caller reads the socket: it routes this sink's frames here like the reader.
  if (!borrowed) return WaitSink(sink, lock, deadline, ready);
  lock.unlock();
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));  // The reader lets go...
  (void)ignored;
  bool give_back;
  {
    std::lock_guard<std::mutex> reading(read_mu_);  // ...here, once it left poll().
    uint64_t count;
    ignored = ::read(wake_.get(), &count, sizeof(count));  // Already answered.
    give_back = !ReadUntil(sink, deadline, ready);
  }
  {
    std::lock_guard<std::mutex> role(role_mu_);
    borrowers_ = 0;
  }
  role_cv_.notify_one();
  lock.lock();
  if (ready()) return true;
  // The socket went back to the reader thread, which reports the channel's end.
  if (give_back) return WaitSink(sink, lock, deadline, ready);
  return false;  // The deadline passed.
}

bool AgentChannel::ReadUntil(StreamSink* sink, std::optional<Clock::time_point> deadline,
                             const std::function<bool()>& ready) {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(sink->mu);
      if (ready()) return true;
    }
    int timeout = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return true;
      timeout = static_cast<int>(std::min<int64_t>(left.count() + 1, INT_MAX));
    }
    struct pollfd p = {socket_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, timeout);
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) continue;
    Status s = ReadAndDispatch();
    if (!s.ok()) {
      // Only the reader thread ends the channel (it runs on_close): it is told here, as
      // Close() would, since the frame or bytes that showed the end were read here.
      Close(s);
      return false;
    }
  }
}

Status AgentChannel::ReadAndDispatch() {
  char* buf = decoder_.Prepare(256 * 1024);
  ssize_t n = ::read(socket_.get(), buf, 256 * 1024);
  if (n < 0 && errno == EINTR) {
    decoder_.Commit(0);
    return Status::OK();
  }
  decoder_.Commit(n > 0 ? static_cast<size_t>(n) : 0);
  if (n <= 0) {
    return n == 0 ? Status::Unavailable("the box's VM closed the agent channel")
                  : Status::Unavailable(sys::ErrnoStatus(errno, "read from the agent").message());
  }
  while (true) {
    auto frame = decoder_.Next();
    if (!frame.ok()) return frame.error().Wrap("the agent sent a bad frame");
    if (!frame->has_value()) return Status::OK();
    Status dispatched = Dispatch(std::move(**frame));
    if (!dispatched.ok()) {
      BOXLITE_LOG(kDebug, "%s", dispatched.message().c_str());
      return dispatched;
    }
  }
}

void AgentChannel::ReaderLoop() {
  Status why;
  while (true) {
    {
      std::unique_lock<std::mutex> role(role_mu_);
      role_cv_.wait(role, [&] { return borrowers_ == 0; });
    }
    std::lock_guard<std::mutex> reading(read_mu_);
    if (wake_) {
      struct pollfd p[2] = {{socket_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      int r = ::poll(p, 2, -1);
      if (r < 0 && errno != EINTR) {
        why = Status::Unavailable(sys::ErrnoStatus(errno, "wait for the agent").message());
        break;
      }
      if (r <= 0) continue;
      if (p[1].revents & POLLIN) continue;  // A caller borrows the socket (WaitOn).
    }
    why = ReadAndDispatch();
    if (!why.ok()) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_.ok()) closed_ = why.WithDefaultSubject(StatusSubject::kBox);
    why = closed_;
  }
  FailAll(why);
  if (on_close_) on_close_(why);
}

void AgentChannel::FailAll(const Status& why) {
  std::map<uint32_t, std::shared_ptr<StreamSink>> sinks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sinks.swap(sinks_);
  }
  for (auto& [id, sink] : sinks) {
    std::lock_guard<std::mutex> lock(sink->mu);
    sink->failure = why;
    sink->cv.notify_all();
  }
}

Status AgentChannel::Dispatch(protocol::Frame frame) {
  std::shared_ptr<StreamSink> sink;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sinks_.find(frame.stream);
    if (it != sinks_.end()) sink = it->second;
  }
  // A stream nobody waits for any more (e.g. a timed-out call): dropped, nothing kept.
  if (!sink) return Status::OK();
  uint8_t discarded_fd = 0;
  size_t discarded = 0;
  {
    std::lock_guard<std::mutex> lock(sink->mu);
    switch (frame.kind) {
      case protocol::FrameKind::kResponse:
        sink->response = protocol::DecodeResponse(frame.payload);
        break;
      case protocol::FrameKind::kData: {
        auto data = protocol::ParseData(frame.payload);
        if (!data.ok() || (data->fd != protocol::kFdStdout && data->fd != protocol::kFdStderr)) break;
        int64_t size = static_cast<int64_t>(data->bytes.size());
        if (size > sink->out_credit[data->fd]) {
          return Status::ProtocolError(kCreditOverrunMessage, "remove the box");
        }
        sink->out_credit[data->fd] -= size;
        // Empty chunks would read as end of stream; bytes after the end are the peer's
        // mistake. Neither is queued, and their credit is not returned.
        if (size == 0 || sink->eof[data->fd]) break;
        if (sink->discard[data->fd]) {
          discarded_fd = data->fd;
          discarded = data->bytes.size();
          break;
        }
        sink->chunks[data->fd].emplace_back(data->bytes);
        sink->order.push_back(data->fd);
        break;
      }
      case protocol::FrameKind::kClose: {
        auto fd = protocol::ParseClose(frame.payload);
        if (fd.ok() && (*fd == protocol::kFdStdout || *fd == protocol::kFdStderr) &&
            !sink->eof[*fd]) {
          sink->eof[*fd] = true;
          sink->order.push_back(*fd);
        }
        break;
      }
      case protocol::FrameKind::kCredit: {
        auto credit = protocol::ParseCredit(frame.payload);
        if (credit.ok() && credit->fd == protocol::kFdStdin) {
          sink->stdin_credit = std::min(sink->stdin_credit + credit->bytes, kMaxCredit);
        }
        break;
      }
      case protocol::FrameKind::kEvent: {
        auto j = protocol::ParseObject(frame.payload);
        protocol::ExitEvent ev;
        std::string event;
        if (j.ok() && protocol::GetString(*j, "event", &event).ok() && event == "exit" &&
            protocol::FromJson(*j, &ev).ok()) {
          sink->exit = ev;
        }
        break;
      }
      case protocol::FrameKind::kRequest:
        break;  // The agent never initiates requests.
    }
    sink->cv.notify_all();
  }
  if (discarded > 0) {
    (void)SendCredit(frame.stream, sink.get(), discarded_fd, static_cast<uint32_t>(discarded));
  }
  return Status::OK();
}

}  // namespace boxlite::runtime

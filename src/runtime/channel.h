// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// AgentChannel is the host end of the framed protocol (docs/protocol.md) on one
// connected socket. A reader thread decodes frames and routes them by stream id to a
// StreamSink; callers block on their sink (a response, exec output, an exit event).
// Every request gets a fresh stream id; an exec keeps its request's stream for its data.
//
// When the connection ends (the VM exited, panicked or was killed) every sink fails
// with the same Unavailable status, so no caller waits forever.
//
// The peer is untrusted (guest root can take the agent's port): the channel enforces the
// output credit it grants (docs/protocol.md "Flow control"). A data frame beyond what was
// granted on its stream and fd closes the whole channel with kCreditOverrunMessage, so
// the bytes queued for a stream never exceed its window. Nothing else the reader keeps
// grows with the peer's traffic: one response and one exit per stream, one end-of-stream
// mark per fd, and streams exist only while the host waits on them.
//
// A caller waiting for its response or exit event (WaitOn) reads the socket itself when
// no other caller does: the reader thread hands it over (an eventfd wakes it) and takes
// it back afterwards, so the frame the caller waits for reaches it without a second
// thread's wakeup in between. It dispatches every frame it reads, as the reader would;
// when the connection ends or misbehaves it leaves the socket to the reader thread, which
// alone closes the channel and runs `on_close`.
//
// Thread-safety: all methods may be called from any thread. Lock order: read_mu_ before
// channel mu_ before a sink's mu; sinks never call back into the channel while holding
// their lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"
#include "src/protocol/frame.h"
#include "src/protocol/messages.h"

namespace boxlite::runtime {

using Clock = std::chrono::steady_clock;

// Frames received for one stream. Guarded by `mu`; `cv` is notified on every change.
struct StreamSink {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<protocol::Json>> response;
  std::deque<std::string> chunks[3];  // Indexed by fd: 1 stdout, 2 stderr.
  bool eof[3] = {false, false, false};
  bool discard[3] = {false, false, false};  // Drop data on arrival and return its credit.
  std::optional<protocol::ExitEvent> exit;
  int64_t stdin_credit = 0;
  // Output bytes the peer may still send on fd 1 and 2: the window of the request plus
  // the credit the host returned, minus what arrived.
  int64_t out_credit[3] = {0, 0, 0};
  Status failure;  // Set when the channel is gone.
  // Arrival order of (fd) for readers that want whichever stream comes first.
  std::deque<int> order;
};

// Why a channel was dropped when its peer sent output it had no credit for.
inline constexpr std::string_view kCreditOverrunMessage =
    "the box's agent sent more output than it was granted credit for; the box was disconnected";

class AgentChannel {
 public:
  // Starts the reader on a connected socket. `on_close` runs once, on the reader thread,
  // when the connection ends (with the reason).
  AgentChannel(base::UniqueFd socket, std::function<void(const Status&)> on_close);
  AgentChannel(const AgentChannel&) = delete;
  AgentChannel& operator=(const AgentChannel&) = delete;
  // Shuts the socket down and joins the reader.
  ~AgentChannel();

  // Sends a request on a new stream and waits for its response. The sink stays
  // registered when `keep` is given (an exec's stream), else it is dropped.
  Result<protocol::Json> Call(std::string_view op, protocol::Json body,
                              std::optional<Clock::time_point> deadline,
                              std::shared_ptr<StreamSink>* keep = nullptr,
                              uint32_t* stream_out = nullptr);

  // Writes already-encoded frames. Unavailable when the channel is closed.
  Status Send(const std::string& frames);
  // Grants the peer `bytes` more output on `fd` (1 or 2) of `stream`: counts them as
  // allowed in `sink`, then sends the credit frame.
  Status SendCredit(uint32_t stream, StreamSink* sink, uint8_t fd, uint32_t bytes);
  // Forgets a stream (after its exit was seen or its owner went away).
  void Release(uint32_t stream);
  // Waits like WaitSink (`lock` holds sink->mu), reading the socket on this thread while
  // no other thread has borrowed it (see above). Returns whether `ready` became true.
  bool WaitOn(StreamSink* sink, std::unique_lock<std::mutex>& lock,
              std::optional<Clock::time_point> deadline, const std::function<bool()>& ready);
  // Ends the connection; pending and later calls fail with `why`.
  void Close(const Status& why);
  // OK while connected.
  Status health();

 private:
  void ReaderLoop();
  // With read_mu_ held: dispatches the frames already decoded, then reads once (blocking)
  // and dispatches what that completed. A non-OK status ends the connection: a bad frame,
  // a read error or the peer's end.
  Status ReadAndDispatch();
  // Reads on the calling thread (read_mu_ held, this thread the only borrower) until
  // `ready` or the deadline; false when the socket must go back to the reader thread.
  bool ReadUntil(StreamSink* sink, std::optional<Clock::time_point> deadline,
                 const std::function<bool()>& ready);
  // A non-OK status (the peer broke the protocol) ends the connection.
  Status Dispatch(protocol::Frame frame);
  void FailAll(const Status& why);

  base::UniqueFd socket_;
  std::function<void(const Status&)> on_close_;
  std::mutex mu_;
  std::map<uint32_t, std::shared_ptr<StreamSink>> sinks_;
  Status closed_;  // Guarded by mu_.
  std::mutex write_mu_;
  std::atomic<uint32_t> next_stream_{1};
  // Held by whichever thread reads the socket and owns decoder_.
  std::mutex read_mu_;
  protocol::FrameDecoder decoder_;
  // Borrowing the socket: borrowers_ (guarded by role_mu_) is 1 while a caller reads it
  // (or is about to), and the reader thread waits on role_cv_ until it is 0 again.
  std::mutex role_mu_;
  std::condition_variable role_cv_;
  int borrowers_ = 0;
  base::UniqueFd wake_;  // eventfd: a borrower asks the reader thread to let go.
  std::thread reader_;
};

// Waits on `sink->cv` until `ready()` (called with sink->mu held) or the deadline.
// Returns false on timeout.
bool WaitSink(StreamSink* sink, std::unique_lock<std::mutex>& lock,
              std::optional<Clock::time_point> deadline, const std::function<bool()>& ready);

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// One libslirp instance for one guest: the user-mode TCP/IP stack that turns the guest's
// Ethernet frames into ordinary host sockets of this process and back. The guest network
// is 10.0.2.0/24 with the gateway at 10.0.2.2 and the name server at 10.0.2.3; IPv6,
// TFTP and libslirp's own DNS relay are off (DNS is DnsForwarder's, and what reaches
// libslirp at all is filtered by guest_policy.h first). `disable_host_loopback` is set
// unless the host's loopback is explicitly allowed.
//
// The owner drives it from one poll loop: PreparePoll/AfterPoll around poll(2), Input()
// for each guest frame, RunTimers() when NextTimerMs() is due. Frames for the guest come
// out through the `send` callback given to Create.
// Thread-safety: a SlirpStack is used by one thread.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "boxlite/result.h"

struct Slirp;

namespace boxlite::net {

class SlirpStack {
 public:
  using SendFn = std::function<void(std::span<const uint8_t> frame)>;

  struct Config {
    bool allow_host_loopback = false;
  };

  static Result<std::unique_ptr<SlirpStack>> Create(const Config& config, SendFn send);
  ~SlirpStack();
  SlirpStack(const SlirpStack&) = delete;
  SlirpStack& operator=(const SlirpStack&) = delete;

  // Listens on 127.0.0.1:`host_port` (0: any free port) and forwards each connection to
  // the guest's `guest_port`. Returns the port bound; fails with the bind error
  // ("127.0.0.1:8080 is in use" is kAlreadyExists).
  Result<uint16_t> AddTcpForward(const std::string& host_ip, uint16_t host_port, uint16_t guest_port);

  // The guest address and port of the guest's TCP connection to `guest_dst_port` on the
  // gateway whose host socket (libslirp's, in this process) has local port `local_port`:
  // how FlowInterceptor tells which guest connection reached its listener.
  struct GuestEnd {
    uint32_t addr = 0;
    uint16_t port = 0;
  };
  std::optional<GuestEnd> GuestEndOf(uint16_t local_port, uint16_t guest_dst_port) const;

  // Hands a guest frame to the stack.
  void Input(std::span<const uint8_t> frame);

  // Appends libslirp's descriptors to `fds` and lowers `*timeout_ms` (-1 = none yet) to
  // what libslirp and its timers need. AfterPoll must see the same `fds`; `poll_failed`
  // when poll(2) itself failed.
  void PreparePoll(std::vector<pollfd>* fds, int64_t* timeout_ms);
  void AfterPoll(const std::vector<pollfd>& fds, bool poll_failed);
  void RunTimers();

  // A monotonic clock in milliseconds (the one libslirp's timers use).
  static int64_t NowMs();

 private:
  struct Timer;
  explicit SlirpStack(SendFn send);

  // Callbacks from libslirp (`opaque` is the SlirpStack).
  static ssize_t SendPacket(const void* buf, size_t len, void* opaque);
  static void GuestError(const char* msg, void* opaque);
  static int64_t ClockGetNs(void* opaque);
  static void* TimerNew(void (*cb)(void*), void* cb_opaque, void* opaque);
  static void TimerFree(void* timer, void* opaque);
  static void TimerMod(void* timer, int64_t expire_ms, void* opaque);
  static void RegisterPollFd(int fd, void* opaque);
  static void UnregisterPollFd(int fd, void* opaque);
  static void Notify(void* opaque);
  static int AddPoll(int fd, int events, void* opaque);
  static int GetRevents(int idx, void* opaque);

  SendFn send_;
  Slirp* slirp_ = nullptr;
  std::vector<std::unique_ptr<Timer>> timers_;
  std::vector<pollfd>* poll_fds_ = nullptr;  // Valid during PreparePoll only.
  const std::vector<pollfd>* polled_ = nullptr;  // Valid during AfterPoll only.
  std::vector<int> forward_fds_;  // Listening sockets of AddTcpForward, to tell them apart.
};

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/slirp_stack.h"

#include <arpa/inet.h>
#include <libslirp.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/net/guest_policy.h"
#include "src/net/packet.h"
#include "src/sys/errno_status.h"

namespace boxlite::net {

struct SlirpStack::Timer {
  SlirpTimerCb cb = nullptr;
  void* cb_opaque = nullptr;
  int64_t expire_ms = -1;  // -1: not armed.
};

namespace {

in_addr InAddr(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  return a;
}

struct TableRow {
  std::string state;  // "HOST_FORWARD", "ESTABLISHED"...
  int fd = -1;
  std::string src;
  unsigned src_port = 0;
  std::string dst;
  unsigned dst_port = 0;
};

// libslirp's TCP connection table, whose lines read
// "  TCP[STATE]  FD SRC_ADDR SRC_PORT DST_ADDR DST_PORT RECVQ SENDQ".
Result<std::vector<TableRow>> ConnectionTable(Slirp* slirp) {
  char* info = slirp_connection_info(slirp);
  if (info == nullptr) return Status::Internal("libslirp gave no connection table");
  std::string table(info);
  // GLib (>= 2.46) allocates with the system malloc, so free() releases it.
  std::free(info);
  std::vector<TableRow> rows;
  for (const auto& line : base::Split(table, '\n')) {
    size_t at = line.find("TCP[");
    size_t close = at == std::string::npos ? at : line.find(']', at);
    if (close == std::string::npos) continue;
    TableRow row;
    row.state = line.substr(at + 4, close - at - 4);
    char src[64] = {};
    char dst[64] = {};
    if (std::sscanf(line.c_str() + close + 1, "%d %63s %u %63s %u", &row.fd, src, &row.src_port,
                    dst, &row.dst_port) != 5) {
      continue;
    }
    row.src = src;
    row.dst = dst;
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

SlirpStack::SlirpStack(SendFn send) : send_(std::move(send)) {}

int64_t SlirpStack::NowMs() { return ClockGetNs(nullptr) / 1000000; }

Result<std::unique_ptr<SlirpStack>> SlirpStack::Create(const Config& config, SendFn send) {
  std::unique_ptr<SlirpStack> stack(new SlirpStack(std::move(send)));
  static const SlirpCb kCallbacks = {
      .send_packet = &SlirpStack::SendPacket,
      .guest_error = &SlirpStack::GuestError,
      .clock_get_ns = &SlirpStack::ClockGetNs,
      .timer_new = &SlirpStack::TimerNew,
      .timer_free = &SlirpStack::TimerFree,
      .timer_mod = &SlirpStack::TimerMod,
      .register_poll_fd = &SlirpStack::RegisterPollFd,
      .unregister_poll_fd = &SlirpStack::UnregisterPollFd,
      .notify = &SlirpStack::Notify,
      .init_completed = nullptr,
      .timer_new_opaque = nullptr,
  };
  SlirpConfig cfg{};
  cfg.version = 4;
  cfg.restricted = 0;
  cfg.in_enabled = true;
  cfg.vnetwork = InAddr(kNetworkAddress);
  cfg.vnetmask = InAddr(kNetworkMask);
  cfg.vhost = InAddr(kGatewayAddress);
  cfg.in6_enabled = false;
  cfg.vdhcp_start = InAddr(kGuestAddress);
  cfg.vnameserver = InAddr(kDnsAddress);
  cfg.if_mtu = kMtu;
  cfg.if_mru = kMtu;
  cfg.disable_host_loopback = !config.allow_host_loopback;
  cfg.enable_emu = false;
  cfg.disable_dns = true;  // DnsForwarder answers 10.0.2.3.
  cfg.disable_dhcp = false;
  stack->slirp_ = slirp_new(&cfg, &kCallbacks, stack.get());
  if (stack->slirp_ == nullptr) return Status::Internal("libslirp refused its configuration");
  return stack;
}

SlirpStack::~SlirpStack() {
  if (slirp_ != nullptr) slirp_cleanup(slirp_);
}

Result<uint16_t> SlirpStack::AddTcpForward(const std::string& host_ip, uint16_t host_port,
                                           uint16_t guest_port) {
  if (guest_port == 0) return Status::InvalidArgument("guest port 0 cannot be published");
  std::string where = base::StrFormat("%s:%u", host_ip.c_str(), host_port);
  struct in_addr host_addr {};
  if (::inet_pton(AF_INET, host_ip.c_str(), &host_addr) != 1) {
    return Status::InvalidArgument("not an IPv4 address to publish on", host_ip);
  }
  if (slirp_add_hostfwd(slirp_, /*is_udp=*/0, host_addr, host_port,
                        InAddr(kGuestAddress), guest_port) != 0) {
    int err = errno;
    if (err == EADDRINUSE) {
      return Status(StatusCode::kAlreadyExists, where + " is in use", err);
    }
    if (err == EACCES) {
      return Status(StatusCode::kPermissionDenied,
                    where + ": binding ports below 1024 needs privileges "
                            "(see net.ipv4.ip_unprivileged_port_start)",
                    err);
    }
    return sys::ErrnoStatus(err, "listen on %s", where.c_str());
  }
  // libslirp does not return the socket it bound; its connection table does, with the
  // descriptor, so a second forward to the same guest port is told apart.
  BOXLITE_ASSIGN_OR_RETURN(auto table, ConnectionTable(slirp_));
  for (const auto& row : table) {
    if (row.state != "HOST_FORWARD") continue;
    int fd = row.fd;
    unsigned src_port = row.src_port;
    unsigned dst_port = row.dst_port;  // The guest port.
    if (dst_port != guest_port || src_port == 0 || src_port > 65535) continue;
    if (std::find(forward_fds_.begin(), forward_fds_.end(), fd) != forward_fds_.end()) continue;
    if (host_port != 0 && src_port != host_port) continue;
    forward_fds_.push_back(fd);
    return static_cast<uint16_t>(src_port);
  }
  return Status::Internal("cannot find the port libslirp bound for " + where);
}

std::optional<SlirpStack::GuestEnd> SlirpStack::GuestEndOf(uint16_t local_port,
                                                          uint16_t guest_dst_port) const {
  auto table = ConnectionTable(slirp_);
  if (!table.ok()) return std::nullopt;
  // For a connection the guest opened, SRC is the guest's end and DST what it connected to.
  for (const auto& row : *table) {
    if (row.fd < 0 || row.dst_port != guest_dst_port || row.src_port == 0 ||
        row.src_port > 65535) {
      continue;
    }
    auto guest = ParseIpv4(row.src.c_str());
    auto gateway = ParseIpv4(row.dst.c_str());
    if (!guest || !gateway || *gateway != kGatewayAddress) continue;
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    if (::getsockname(row.fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
        local.sin_family != AF_INET || ntohs(local.sin_port) != local_port) {
      continue;
    }
    return GuestEnd{*guest, static_cast<uint16_t>(row.src_port)};
  }
  return std::nullopt;
}

void SlirpStack::Input(std::span<const uint8_t> frame) {
  slirp_input(slirp_, frame.data(), static_cast<int>(frame.size()));
}

void SlirpStack::PreparePoll(std::vector<pollfd>* fds, int64_t* timeout_ms) {
  uint32_t slirp_timeout = std::numeric_limits<uint32_t>::max();
  poll_fds_ = fds;
  slirp_pollfds_fill(slirp_, &slirp_timeout, &SlirpStack::AddPoll, this);
  poll_fds_ = nullptr;
  auto lower = [timeout_ms](int64_t t) {
    if (t >= 0 && (*timeout_ms < 0 || t < *timeout_ms)) *timeout_ms = t;
  };
  if (slirp_timeout != std::numeric_limits<uint32_t>::max()) lower(slirp_timeout);
  int64_t now = NowMs();
  for (const auto& t : timers_) {
    if (t->expire_ms >= 0) lower(std::max<int64_t>(0, t->expire_ms - now));
  }
}

void SlirpStack::AfterPoll(const std::vector<pollfd>& fds, bool poll_failed) {
  polled_ = &fds;
  slirp_pollfds_poll(slirp_, poll_failed ? 1 : 0, &SlirpStack::GetRevents, this);
  polled_ = nullptr;
}

void SlirpStack::RunTimers() {
  int64_t now = NowMs();
  std::vector<Timer*> due;
  for (const auto& t : timers_) {
    if (t->expire_ms >= 0 && t->expire_ms <= now) due.push_back(t.get());
  }
  for (Timer* t : due) {
    // A callback may free or re-arm other timers: run only those still alive and due.
    auto alive = std::find_if(timers_.begin(), timers_.end(),
                              [t](const auto& p) { return p.get() == t; });
    if (alive == timers_.end() || t->expire_ms < 0 || t->expire_ms > now) continue;
    t->expire_ms = -1;
    t->cb(t->cb_opaque);
  }
}

ssize_t SlirpStack::SendPacket(const void* buf, size_t len, void* opaque) {
  auto* self = static_cast<SlirpStack*>(opaque);
  self->send_({static_cast<const uint8_t*>(buf), len});
  return static_cast<ssize_t>(len);
}

void SlirpStack::GuestError(const char* msg, void*) {
  BOXLITE_LOG(kDebug, "boxlite-net: guest error: %s", msg);
}

int64_t SlirpStack::ClockGetNs(void*) {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void* SlirpStack::TimerNew(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
  auto* self = static_cast<SlirpStack*>(opaque);
  auto timer = std::make_unique<Timer>();
  timer->cb = cb;
  timer->cb_opaque = cb_opaque;
  Timer* raw = timer.get();
  self->timers_.push_back(std::move(timer));
  return raw;
}

void SlirpStack::TimerFree(void* timer, void* opaque) {
  auto* self = static_cast<SlirpStack*>(opaque);
  std::erase_if(self->timers_, [timer](const auto& t) { return t.get() == timer; });
}

void SlirpStack::TimerMod(void* timer, int64_t expire_ms, void*) {
  static_cast<Timer*>(timer)->expire_ms = std::max<int64_t>(0, expire_ms);
}

void SlirpStack::RegisterPollFd(int, void*) {}
void SlirpStack::UnregisterPollFd(int, void*) {}
void SlirpStack::Notify(void*) {}

int SlirpStack::AddPoll(int fd, int events, void* opaque) {
  auto* self = static_cast<SlirpStack*>(opaque);
  short ev = 0;
  if (events & SLIRP_POLL_IN) ev |= POLLIN;
  if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
  if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
  int index = static_cast<int>(self->poll_fds_->size());
  self->poll_fds_->push_back({fd, ev, 0});
  return index;
}

int SlirpStack::GetRevents(int idx, void* opaque) {
  auto* self = static_cast<SlirpStack*>(opaque);
  if (idx < 0 || static_cast<size_t>(idx) >= self->polled_->size()) return 0;
  short rev = (*self->polled_)[static_cast<size_t>(idx)].revents;
  int out = 0;
  if (rev & POLLIN) out |= SLIRP_POLL_IN;
  if (rev & POLLOUT) out |= SLIRP_POLL_OUT;
  if (rev & POLLPRI) out |= SLIRP_POLL_PRI;
  if (rev & POLLERR) out |= SLIRP_POLL_ERR;
  if (rev & POLLHUP) out |= SLIRP_POLL_HUP;
  return out;
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/net_process.h"
#include "src/net/secret_config.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::net {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Reads per loop iteration, so a busy guest cannot starve the host side.
constexpr int kReadsPerWakeup = 16;
// Flush early once this much is queued, so one burst does not hit kMaxQueuedBytes.
constexpr size_t kFlushEarlyBytes = 256 * 1024;

Result<std::vector<sockaddr_storage>> Upstreams(const std::vector<std::string>& given) {
  std::vector<sockaddr_storage> out;
  if (!given.empty()) {
    for (const auto& server : given) {
      BOXLITE_ASSIGN_OR_RETURN(auto addr, DnsServerAddress(server));
      out.push_back(addr);
    }
    return out;
  }
  auto text = sys::ReadFile("/etc/resolv.conf");
  if (!text.ok()) {
    BOXLITE_LOG(kWarn, "boxlite-net: no DNS for the guest: %s", text.error().ToString().c_str());
    return out;
  }
  for (const auto& server : ParseResolvConf(*text)) {
    auto addr = DnsServerAddress(server);
    if (addr.ok()) {
      out.push_back(*addr);
    } else {
      BOXLITE_LOG(kDebug, "boxlite-net: skipping resolv.conf entry %s", server.c_str());
    }
  }
  if (out.empty()) BOXLITE_LOG(kWarn, "boxlite-net: /etc/resolv.conf names no nameserver");
  return out;
}

}  // namespace

Result<std::unique_ptr<NetProcess>> NetProcess::Create(const HelperOptions& options) {
  std::unique_ptr<NetProcess> p(new NetProcess());
  p->qemu_fd_.reset(options.qemu_fd);
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(options.qemu_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      type != SOCK_STREAM) {
    return Status::InvalidArgument(
        base::StrFormat("--fd %d is not a stream socket", options.qemu_fd));
  }
  int fl = ::fcntl(options.qemu_fd, F_GETFL);
  if (fl < 0 || ::fcntl(options.qemu_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    return sys::ErrnoStatus(errno, "set --fd %d non-blocking", options.qemu_fd);
  }
  ::fcntl(options.qemu_fd, F_SETFD, FD_CLOEXEC);
  // Bigger buffers let a burst from libslirp wait in the kernel instead of our queue;
  // the kernel caps them at its limits.
  int size = 1 << 20;
  ::setsockopt(options.qemu_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  ::setsockopt(options.qemu_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));

  if (options.owner_pid > 0) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, options.owner_pid, 0));
    if (fd < 0) {
      if (errno == ESRCH) {
        return Status::FailedPrecondition(
            base::StrFormat("owner process %d has already exited", options.owner_pid));
      }
      return sys::ErrnoStatus(errno, "pidfd_open %d", options.owner_pid);
    }
    p->owner_fd_.reset(fd);
  }

  if (options.stats_fd >= 0) {
    BOXLITE_ASSIGN_OR_RETURN(p->stats_, FlowStats::Map(options.stats_fd));
  }
  p->policy_.allow_host = options.allow_host_loopback;
  // The egress allow-list: its rules were validated by the runtime; parsed again here,
  // by the same parser (egress_rules.h), since the command line is an input.
  BOXLITE_ASSIGN_OR_RETURN(EgressRules rules, EgressRules::Parse(options.allow_net));
  p->egress_ = std::make_shared<EgressPolicy>(std::move(rules));
  p->policy_.egress = p->egress_.get();
  if (options.secrets_fd >= 0) {  // Secrets: read before the sandbox closes the door.
    base::UniqueFd fd(options.secrets_fd);
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof(buf))) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return sys::ErrnoStatus(errno, "read --secrets-fd");
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > (64u << 20)) return Status::InvalidArgument("--secrets-fd holds over 64 MiB");
    }
    BOXLITE_ASSIGN_OR_RETURN(SecretProxyConfig config, SecretProxyConfigFromJson(text));
    BOXLITE_ASSIGN_OR_RETURN(auto proxy, MakeSecretProxy(config));
    p->secret_proxy_ = std::move(proxy);
  }
  // The interception layer (flow_intercept.h): the allow-list's Host/SNI check needs it;
  // a FlowHandler (set in `intercept.handler`, with the ports it wants in
  // `intercept.handler_ports`) gets it without a list too.
  FlowInterceptor::Config intercept;
  intercept.policy = p->egress_;
  if (p->secret_proxy_) {
    // Secrets: TLS flows to 443 whose SNI names a secret's host end in the TLS handler
    // (secret_tls.h); every other flow is left to the layer.
    intercept.handler_ports = {443};
    intercept.handler = [proxy = p->secret_proxy_](InterceptedFlow& flow) {
      if (!flow.tls || flow.dst_port != 443 || flow.name.empty() ||
          proxy->ReplacementsFor(flow.name).empty()) {
        return false;
      }
      RunSecretFlow(proxy.get(), flow.guest.get(), flow.upstream.get(), flow.head,
                    DottedQuad(flow.dst_v4) + ":443");
      return true;
    };
  }
  if (p->egress_->enabled() || intercept.handler) {
    BOXLITE_ASSIGN_OR_RETURN(p->interceptor_, FlowInterceptor::Create(std::move(intercept)));
  }
  // Subscribe before reading, so no change between the two is missed.
  BOXLITE_ASSIGN_OR_RETURN(p->address_watcher_, AddressWatcher::Open());
  BOXLITE_RETURN_IF_ERROR(p->host_addresses_.Refresh());
  p->policy_.host_addresses = &p->host_addresses_;
  NetProcess* raw = p.get();
  auto send = [raw](std::span<const uint8_t> frame) { raw->SendToGuest(frame); };
  auto from_slirp = [raw](std::span<const uint8_t> frame) { raw->SendFromSlirp(frame); };
  // Intercepted connections reach the helper through libslirp's alias of the host's
  // loopback (flow_intercept.h); the guest policy still refuses the guest's own
  // connections to it unless allowed.
  bool host_loopback = options.allow_host_loopback || p->interceptor_ != nullptr;
  BOXLITE_ASSIGN_OR_RETURN(p->slirp_, SlirpStack::Create({host_loopback}, from_slirp));
  BOXLITE_ASSIGN_OR_RETURN(auto upstreams, Upstreams(options.dns_servers));
  p->dns_ = std::make_unique<DnsForwarder>(std::move(upstreams), send, p->egress_.get());
  for (const auto& publish : options.publish) {
    BOXLITE_ASSIGN_OR_RETURN(uint16_t bound,
                             p->slirp_->AddTcpForward(publish.host_ip, publish.host_port,
                                                      publish.guest_port));
    p->ports_.push_back({bound, publish.guest_port, publish.host_ip});
    p->published_guest_ports_.push_back(publish.guest_port);
  }
  p->policy_.published_guest_ports = p->published_guest_ports_;
  return p;
}

void NetProcess::HandleGuestFrame(std::span<const uint8_t> frame) {
  std::optional<Ipv4Packet> packet;
  policy_.now_ms = SlirpStack::NowMs();
  Verdict verdict = ClassifyGuestFrame(frame, policy_, &packet);
  if (verdict == Verdict::kTcpReset || verdict == Verdict::kPortUnreachable ||
      verdict == Verdict::kProhibited) {
    stats_.CountRefused();  // BoxMetrics::network_refused_flows (flow_stats.h).
  }
  if (interceptor_ && packet && (verdict == Verdict::kPass || verdict == Verdict::kIntercept)) {
    bool divert = verdict == Verdict::kIntercept ||
                  (packet->has_ports && interceptor_->wants_port(packet->dst_port) &&
                   (packet->dst & kNetworkMask) != kNetworkAddress);
    if (interceptor_->RewriteFromGuest(*packet, frame, divert, &rewritten_)) {
      slirp_->Input(rewritten_);
      return;
    }
  }
  switch (verdict) {
    case Verdict::kPass:
      slirp_->Input(frame);
      return;
    case Verdict::kIntercept:  // Without an interceptor (not reached): refuse.
      SendToGuest(BuildTcpReset(*packet, ip_id_++));
      return;
    case Verdict::kDrop:
      return;
    case Verdict::kDns:
      dns_->HandleQuery(*packet, SlirpStack::NowMs());
      return;
    case Verdict::kTcpReset:
      SendToGuest(BuildTcpReset(*packet, ip_id_++));
      return;
    case Verdict::kPortUnreachable:
      SendToGuest(BuildIcmpUnreachable(*packet, kIcmpPortUnreachable, ip_id_++));
      return;
    case Verdict::kProhibited:
      SendToGuest(BuildIcmpUnreachable(*packet, kIcmpAdminProhibited, ip_id_++));
      return;
  }
}

void NetProcess::SendFromSlirp(std::span<const uint8_t> frame) {
  if (interceptor_ && interceptor_->RewriteToGuest(frame, &rewritten_)) {
    SendToGuest(rewritten_);
    return;
  }
  SendToGuest(frame);
}

void NetProcess::SendToGuest(std::span<const uint8_t> frame) {
  if (frame.empty() || qemu_gone_) return;
  if (out_.size() - out_off_ + frame.size() + 4 > kMaxQueuedBytes) {
    if (dropped_to_guest_++ % 1024 == 0) {
      BOXLITE_LOG(kDebug, "boxlite-net: guest not reading, %llu frames dropped",
                  static_cast<unsigned long long>(dropped_to_guest_));
    }
    return;
  }
  AppendFramed(frame, &out_);
  if (out_.size() - out_off_ >= kFlushEarlyBytes) Flush();
}

bool NetProcess::Flush() {
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(qemu_fd_.get(), out_.data() + out_off_, out_.size() - out_off_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      qemu_gone_ = true;
      out_.clear();
      out_off_ = 0;
      return false;
    }
    out_off_ += static_cast<size_t>(n);
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > kMaxQueuedBytes / 2) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  return true;
}

Result<bool> NetProcess::ReadFromQemu() {
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    std::span<uint8_t> tail = reader_.WritableTail(kReadChunk);
    ssize_t n = ::read(qemu_fd_.get(), tail.data(), tail.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == ECONNRESET) return false;
      return sys::ErrnoStatus(errno, "read from QEMU");
    }
    if (n == 0) return false;
    reader_.Commit(static_cast<size_t>(n));
    while (true) {
      BOXLITE_ASSIGN_OR_RETURN(auto frame, reader_.Next());
      if (!frame) break;
      HandleGuestFrame(*frame);
    }
  }
  return true;
}

Status NetProcess::Run() {
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    short qemu_events = POLLIN;
    if (out_off_ < out_.size()) qemu_events |= POLLOUT;
    fds.push_back({qemu_fd_.get(), qemu_events, 0});
    if (owner_fd_) fds.push_back({owner_fd_.get(), POLLIN, 0});
    size_t watcher_index = fds.size();
    fds.push_back({address_watcher_.fd(), POLLIN, 0});
    int64_t timeout = -1;
    dns_->PreparePoll(&fds, SlirpStack::NowMs(), &timeout);
    slirp_->PreparePoll(&fds, &timeout);
    if (interceptor_) interceptor_->PreparePoll(&fds);
    int r = ::poll(fds.data(), fds.size(),
                   static_cast<int>(std::min<int64_t>(timeout, INT_MAX)));
    if (r < 0) {
      if (errno != EINTR) return sys::ErrnoStatus(errno, "poll");
      for (auto& f : fds) f.revents = 0;
    }
    if (fds[watcher_index].revents != 0 && address_watcher_.Drain()) {
      // Before any guest frame of this round is classified.
      // On failure (out of descriptors) the previous set stays in force.
      Status refreshed = host_addresses_.Refresh();
      if (!refreshed.ok()) {
        BOXLITE_LOG(kWarn, "boxlite-net: %s", refreshed.Wrap("re-read the host's addresses")
                                                   .ToString().c_str());
      }
    }
    slirp_->AfterPoll(fds, false);
    if (interceptor_) {
      uint16_t listen_port = interceptor_->listen_port();
      interceptor_->AfterPoll(fds, [this, listen_port](uint16_t peer_port)
                                       -> std::optional<FlowInterceptor::GuestEnd> {
        auto end = slirp_->GuestEndOf(peer_port, listen_port);
        if (!end) return std::nullopt;
        return FlowInterceptor::GuestEnd{end->addr, end->port};
      });
    }
    dns_->AfterPoll(fds, SlirpStack::NowMs());
    slirp_->RunTimers();
    if (owner_fd_ && fds[1].revents != 0) {
      BOXLITE_LOG(kInfo, "boxlite-net: owner exited");
      return Status::OK();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      BOXLITE_ASSIGN_OR_RETURN(bool still_open, ReadFromQemu());
      if (!still_open) {
        BOXLITE_LOG(kInfo, "boxlite-net: QEMU closed the network socket");
        return Status::OK();
      }
    }
    if (!Flush() || qemu_gone_) {
      BOXLITE_LOG(kInfo, "boxlite-net: QEMU's end of the socket is gone");
      return Status::OK();
    }
  }
}

}  // namespace boxlite::net

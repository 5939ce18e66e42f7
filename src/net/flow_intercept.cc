// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/flow_intercept.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "src/base/log.h"
#include "src/net/flow_sniff.h"
#include "src/net/http_gate.h"
#include "src/sys/errno_status.h"

namespace boxlite::net {
namespace {

constexpr size_t kSpliceBuffer = 64 * 1024;

int64_t NowMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// RFC 1624: the checksum `hc` after one 16-bit word changed from `old` to `now`.
uint16_t ChecksumUpdate(uint16_t hc, uint16_t old, uint16_t now) {
  uint32_t sum = (~hc & 0xffffu) + (~old & 0xffffu) + now;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Rewrites the source (`source`) or destination address and port of the TCP segment in
// `frame`, whose IP header is `ihl` bytes, fixing both checksums.
void RewriteEndpoint(Frame* frame, size_t ihl, bool source, uint32_t addr, uint16_t port) {
  uint8_t* ip = frame->data() + kEthernetHeaderLen;
  uint8_t* tcp = ip + ihl;
  uint8_t* a = ip + (source ? 12 : 16);
  uint8_t* pt = tcp + (source ? 0 : 2);
  uint16_t ip_sum = Get16(ip + 10);
  uint16_t tcp_sum = Get16(tcp + 16);
  const uint16_t words[2] = {static_cast<uint16_t>(addr >> 16), static_cast<uint16_t>(addr)};
  for (int i = 0; i < 2; ++i) {
    uint16_t old = Get16(a + 2 * i);
    ip_sum = ChecksumUpdate(ip_sum, old, words[i]);
    tcp_sum = ChecksumUpdate(tcp_sum, old, words[i]);
    Put16(a + 2 * i, words[i]);
  }
  tcp_sum = ChecksumUpdate(tcp_sum, Get16(pt), port);
  Put16(pt, port);
  Put16(ip + 10, ip_sum);
  Put16(tcp + 16, tcp_sum);
}

bool SetBlocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  return fl >= 0 && ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0;
}

// Connects to `dst`:`port` within `timeout_ms`; an invalid descriptor on failure.
base::UniqueFd ConnectUpstream(uint32_t dst, uint16_t port, int timeout_ms) {
  base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return {};
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(dst);
  sa.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno != EINPROGRESS) return {};
    pollfd p{fd.get(), POLLOUT, 0};
    int r;
    do {
      r = ::poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    int err = 0;
    socklen_t len = sizeof(err);
    if (r <= 0 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      return {};
    }
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!SetBlocking(fd.get())) return {};
  return fd;
}

}  // namespace

struct FlowInterceptor::Shared {
  std::shared_ptr<const EgressPolicy> policy;
  FlowHandler handler;
  size_t max_flows = 0;
  std::atomic<size_t> running{0};
};

void ResetAndClose(base::UniqueFd fd) {
  if (!fd) return;
  linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

SpliceCounts Splice(int a, int b, std::string_view a_to_b_first) {
  return Splice(a, b, a_to_b_first, nullptr, nullptr);
}

SpliceCounts Splice(int a, int b, std::string_view a_to_b_first, const StreamFilter& filter,
                    const StreamObserver& seen) {
  struct Dir {
    int from, to;
    std::string buf;
    size_t off = 0;
    bool eof = false;  // `from` ended and everything was written.
    uint64_t moved = 0;
  };
  Dir d[2] = {{a, b, {}}, {b, a, {}}};
  auto reset = [a, b]() {
    linger l{1, 0};
    ::setsockopt(a, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::setsockopt(b, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  };
  if (!filter) {
    d[0].buf.assign(a_to_b_first);
  } else if (!filter(a_to_b_first, &d[0].buf)) {
    reset();
    return {};
  }
  std::vector<char> chunk(kSpliceBuffer);
  while (!(d[0].eof && d[1].eof)) {
    if (filter && !d[0].eof && d[0].off == d[0].buf.size()) {
      d[0].buf.clear();
      d[0].off = 0;
      if (!filter({}, &d[0].buf)) {
        reset();
        break;
      }
    }
    pollfd fds[2];
    for (int i = 0; i < 2; ++i) {
      fds[i] = {-1, 0, 0};
      if (d[i].eof) continue;
      // Backpressure: read a side only once what it sent before was written.
      if (d[i].off < d[i].buf.size()) {
        fds[i] = {d[i].to, POLLOUT, 0};
      } else {
        fds[i] = {d[i].from, POLLIN, 0};
      }
    }
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    bool failed = false;
    for (int i = 0; i < 2 && !failed; ++i) {
      Dir& x = d[i];
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      if (x.off < x.buf.size()) {
        ssize_t n = ::send(x.to, x.buf.data() + x.off, x.buf.size() - x.off,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) failed = true;
        if (n > 0) {
          x.off += static_cast<size_t>(n);
          x.moved += static_cast<uint64_t>(n);
        }
        if (x.off == x.buf.size()) {
          x.buf.clear();
          x.off = 0;
        }
        continue;
      }
      ssize_t n = ::recv(x.from, chunk.data(), chunk.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) failed = true;
        continue;
      }
      if (n == 0) {
        x.eof = true;
        ::shutdown(x.to, SHUT_WR);
        continue;
      }
      x.off = 0;
      if (i == 0 && filter) {
        x.buf.clear();
        if (!filter(std::string_view(chunk.data(), static_cast<size_t>(n)), &x.buf)) {
          failed = true;
        }
      } else {
        x.buf.assign(chunk.data(), static_cast<size_t>(n));
        if (i == 1 && seen && !seen(x.buf)) failed = true;
      }
    }
    if (failed) {
      reset();
      break;
    }
  }
  return {d[0].moved, d[1].moved};
}

Result<std::unique_ptr<FlowInterceptor>> FlowInterceptor::Create(Config config) {
  std::unique_ptr<FlowInterceptor> f(new FlowInterceptor());
  f->listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!f->listener_) return sys::ErrnoStatus(errno, "create the interception socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (::bind(f->listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(f->listener_.get(), 128) != 0 ||
      ::getsockname(f->listener_.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return sys::ErrnoStatus(errno, "listen on 127.0.0.1 for intercepted flows");
  }
  f->listen_port_ = ntohs(sa.sin_port);
  f->shared_ = std::make_shared<Shared>();
  f->shared_->policy = std::move(config.policy);
  f->shared_->handler = std::move(config.handler);
  f->shared_->max_flows = config.max_flows;
  f->handler_ports_ = std::move(config.handler_ports);
  return f;
}

FlowInterceptor::~FlowInterceptor() = default;

bool FlowInterceptor::wants_port(uint16_t port) const {
  return shared_->handler &&
         std::find(handler_ports_.begin(), handler_ports_.end(), port) != handler_ports_.end();
}

bool FlowInterceptor::RewriteFromGuest(const Ipv4Packet& p, std::span<const uint8_t> frame,
                                       bool divert, Frame* out) {
  if (p.protocol != kIpProtoTcp || !p.has_ports || p.fragment) return false;
  uint64_t key = Key(p.src, p.src_port);
  bool syn = (p.tcp_flags & kTcpSyn) && !(p.tcp_flags & kTcpAck);
  auto it = nat_.find(key);
  if (syn) {
    if (!divert) {
      if (it != nat_.end()) nat_.erase(it);
      return false;
    }
    if (it == nat_.end()) {
      if (nat_.size() >= kMaxDiverted) {
        auto oldest = std::min_element(nat_.begin(), nat_.end(), [](const auto& x, const auto& y) {
          return x.second.used < y.second.used;
        });
        nat_.erase(oldest);
      }
      it = nat_.emplace(key, Nat{}).first;
    }
    it->second.dst = p.dst;
    it->second.dst_port = p.dst_port;
  } else if (it == nat_.end() || it->second.dst != p.dst || it->second.dst_port != p.dst_port) {
    return false;
  }
  it->second.used = ++clock_;
  out->assign(frame.begin(), frame.end());
  RewriteEndpoint(out, p.header.size(), /*source=*/false, kGatewayAddress, listen_port_);
  return true;
}

bool FlowInterceptor::RewriteToGuest(std::span<const uint8_t> frame, Frame* out) const {
  if (nat_.empty() || EtherType(frame) != kEtherTypeIpv4) return false;
  auto p = ParseIpv4Frame(frame);
  if (!p || p->protocol != kIpProtoTcp || !p->has_ports || p->fragment ||
      p->src != kGatewayAddress || p->src_port != listen_port_) {
    return false;
  }
  auto it = nat_.find(Key(p->dst, p->dst_port));
  if (it == nat_.end()) return false;
  out->assign(frame.begin(), frame.end());
  RewriteEndpoint(out, p->header.size(), /*source=*/true, it->second.dst, it->second.dst_port);
  return true;
}

void FlowInterceptor::PreparePoll(std::vector<pollfd>* fds) {
  poll_index_ = fds->size();
  fds->push_back({listener_.get(), POLLIN, 0});
}

namespace {

// The flow's thread: head, decision, upstream, then the handler or a splice.
void RunFlow(std::shared_ptr<const EgressPolicy> policy, FlowHandler handler,
             base::UniqueFd guest, uint32_t dst, uint16_t port) {
  if (!SetBlocking(guest.get())) return;
  int one = 1;
  ::setsockopt(guest.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  InterceptedFlow flow;
  flow.dst_v4 = dst;
  flow.dst_port = port;
  int64_t deadline = NowMs() + FlowInterceptor::kHeadTimeoutMs;
  Sniffed sniffed;
  std::vector<uint8_t> head;
  head.reserve(2048);
  while (true) {
    int64_t left = deadline - NowMs();
    pollfd p{guest.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    uint8_t buf[4096];
    size_t room = kMaxTlsHello - head.size();
    ssize_t n = ::recv(guest.get(), buf, std::min(sizeof(buf), room), 0);
    if (n <= 0) break;
    head.insert(head.end(), buf, buf + n);
    flow.tls = LooksLikeTls(head);
    sniffed = flow.tls ? SniffTlsServerName(head) : SniffHttpHost(head);
    if (sniffed.state != SniffState::kNeedMore || head.size() >= kMaxTlsHello) break;
  }
  if (sniffed.state != SniffState::kDone && policy->enabled()) {
    BOXLITE_LOG(kDebug, "boxlite-net: refused a flow to port %u: no readable %s head", port,
                flow.tls ? "TLS" : "HTTP");
    ResetAndClose(std::move(guest));
    return;
  }
  // Without an allow-list (a flow diverted for a handler only), an unreadable head is
  // passed on as it is.
  flow.name = sniffed.name;
  if (policy->enabled() && !policy->AllowsInspectedName(flow.name, port)) {
    BOXLITE_LOG(kDebug, "boxlite-net: refused a flow to port %u for a name not allowed", port);
    ResetAndClose(std::move(guest));
    return;
  }
  flow.upstream = ConnectUpstream(dst, port, FlowInterceptor::kConnectTimeoutMs);
  if (!flow.upstream) {
    ResetAndClose(std::move(guest));
    return;
  }
  flow.head.assign(head.begin(), head.end());
  flow.guest = std::move(guest);
  if (handler && handler(flow)) return;
  if (policy->enabled() && !flow.tls) {
    // Every later request of a kept-alive HTTP connection names its host too.
    HttpRequestGate gate([&policy, port](std::string_view name) {
      return policy->AllowsInspectedName(name, port);
    });
    Splice(
        flow.guest.get(), flow.upstream.get(), flow.head,
        [&gate, port](std::string_view in, std::string* out) {
          if (gate.Feed(in, out)) return true;
          BOXLITE_LOG(kDebug, "boxlite-net: reset an HTTP flow to port %u: a later "
                              "request's head was not allowed", port);
          return false;
        },
        [&gate](std::string_view in) { return gate.FromServer(in); });
    return;
  }
  Splice(flow.guest.get(), flow.upstream.get(), flow.head);
}

}  // namespace

void FlowInterceptor::AfterPoll(const std::vector<pollfd>& fds, const IdentifyFn& identify) {
  if (poll_index_ >= fds.size() || fds[poll_index_].fd != listener_.get() ||
      fds[poll_index_].revents == 0) {
    return;
  }
  for (int i = 0; i < 64; ++i) {
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    base::UniqueFd conn(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                                  SOCK_CLOEXEC));
    if (!conn) return;
    std::optional<GuestEnd> end;
    if (peer.sin_family == AF_INET && ntohl(peer.sin_addr.s_addr) == INADDR_LOOPBACK) {
      end = identify(ntohs(peer.sin_port));
    }
    auto it = end ? nat_.find(Key(end->addr, end->port)) : nat_.end();
    if (it == nat_.end()) {
      BOXLITE_LOG(kDebug, "boxlite-net: closed a connection to the interception port that "
                          "no guest flow made");
      ResetAndClose(std::move(conn));
      continue;
    }
    if (shared_->running.load() >= shared_->max_flows) {
      BOXLITE_LOG(kDebug, "boxlite-net: %zu intercepted flows open, resetting one",
                  shared_->max_flows);
      ResetAndClose(std::move(conn));
      continue;
    }
    std::shared_ptr<Shared> shared = shared_;
    shared->running++;
    uint32_t dst = it->second.dst;
    uint16_t port = it->second.dst_port;
    std::thread([shared, fd = conn.release(), dst, port]() mutable {
      RunFlow(shared->policy, shared->handler, base::UniqueFd(fd), dst, port);
      shared->running--;
    }).detach();
  }
}

}  // namespace boxlite::net

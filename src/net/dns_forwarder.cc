// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/dns_forwarder.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "src/base/log.h"
#include "src/base/strings.h"
#include "src/net/guest_policy.h"

namespace boxlite::net {
namespace {

constexpr size_t kDnsHeaderLen = 12;
constexpr uint8_t kRcodeServFail = 2;

socklen_t AddressLength(const sockaddr_storage& addr) {
  return addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// The length of the question section starting at `offset`, or 0 when it does not parse
// (queries carry no compression pointers).
size_t QuestionLength(std::span<const uint8_t> msg, size_t offset) {
  size_t i = offset;
  while (i < msg.size()) {
    uint8_t label = msg[i];
    if (label == 0) {
      i += 1 + 4;  // The root label, QTYPE and QCLASS.
      return i <= msg.size() ? i - offset : 0;
    }
    if (label > 63) return 0;
    i += 1 + size_t{label};
  }
  return 0;
}

}  // namespace

std::vector<std::string> ParseResolvConf(std::string_view text) {
  std::vector<std::string> servers;
  for (const auto& raw : base::Split(text, '\n')) {
    std::string_view line = base::Trim(raw);
    if (!line.starts_with("nameserver")) continue;
    line.remove_prefix(10);
    if (line.empty() || (line[0] != ' ' && line[0] != '\t')) continue;
    line = base::Trim(line);
    size_t end = line.find_first_of(" \t#;");
    std::string server(line.substr(0, end));
    if (!server.empty()) servers.push_back(server);
  }
  return servers;
}

Result<sockaddr_storage> DnsServerAddress(const std::string& server) {
  auto bad = [&server]() {
    return Status::InvalidArgument("DNS server must be an IP address (IP, IP:PORT or [IPv6]:PORT)",
                                   base::ShellQuote(server));
  };
  std::string host = server;
  uint16_t port = kDnsPort;
  size_t colon = server.rfind(':');
  bool bracketed = !server.empty() && server[0] == '[';
  if (bracketed || (colon != std::string::npos && server.find(':') == colon)) {
    // "[v6]:port" or "v4:port".
    size_t close = bracketed ? server.find(']') : colon;
    if (close == std::string::npos) return bad();
    std::string port_text;
    if (bracketed) {
      host = server.substr(1, close - 1);
      if (close + 1 < server.size()) {
        if (server[close + 1] != ':') return bad();
        port_text = server.substr(close + 2);
      }
    } else {
      host = server.substr(0, colon);
      port_text = server.substr(colon + 1);
    }
    if (!port_text.empty() || !bracketed) {
      auto p = base::ParseUint(port_text);
      if (!p || *p < 1 || *p > 65535) return bad();
      port = static_cast<uint16_t>(*p);
    }
  }
  sockaddr_storage addr{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return addr;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  size_t pct = host.find('%');
  if (pct != std::string::npos) {
    unsigned index = ::if_nametoindex(host.c_str() + pct + 1);
    if (index == 0) {
      return Status::InvalidArgument("DNS server names an unknown interface",
                                     base::ShellQuote(server));
    }
    v6->sin6_scope_id = index;
    host.resize(pct);
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return addr;
  }
  return bad();
}

std::optional<std::vector<uint8_t>> DnsErrorResponse(std::span<const uint8_t> query,
                                                     uint8_t rcode) {
  if (query.size() < kDnsHeaderLen) return std::nullopt;
  size_t qdcount = (size_t{query[4]} << 8) | query[5];
  size_t question = qdcount == 1 ? QuestionLength(query, kDnsHeaderLen) : 0;
  std::vector<uint8_t> out(query.begin(),
                           query.begin() + static_cast<ptrdiff_t>(kDnsHeaderLen + question));
  // QR=1, opcode and RD kept; RA=1; RCODE; counts: the question only.
  out[2] = static_cast<uint8_t>(0x80 | (query[2] & 0x79));
  out[3] = static_cast<uint8_t>(0x80 | (rcode & 0x0f));
  out[4] = 0;
  out[5] = question ? 1 : 0;
  std::memset(out.data() + 6, 0, 6);
  return out;
}

DnsForwarder::DnsForwarder(std::vector<sockaddr_storage> upstreams, SendFn send,
                           EgressPolicy* egress)
    : upstreams_(std::move(upstreams)), send_(std::move(send)), egress_(egress) {}

void DnsForwarder::HandleQuery(const Ipv4Packet& packet, int64_t now_ms) {
  auto payload = UdpPayload(packet);
  if (!payload || payload->size() < kDnsHeaderLen) return;
  Query q;
  q.reply.src_mac = packet.eth_dst;
  q.reply.dst_mac = packet.eth_src;
  q.reply.src_ip = packet.dst;
  q.reply.src_port = packet.dst_port;
  q.reply.dst_ip = packet.src;
  q.reply.dst_port = packet.src_port;
  q.message.assign(payload->begin(), payload->end());
  if (egress_ != nullptr && egress_->enabled()) {
    auto question = ParseDnsQuestion(q.message);
    if (!question) return;
    if (question->name == kHostAlias && egress_->rules().AllowsHostAlias(0)) {
      if (auto answer = DnsAddressResponse(q.message, question->qtype, kGatewayAddress)) {
        Reply(q, *answer);
      }
      return;
    }
    if (question->name.empty() || !egress_->AllowsQuery(question->name)) {
      if (auto refused = DnsErrorResponse(q.message, kRcodeNxDomain)) Reply(q, *refused);
      return;
    }
    q.name = std::move(question->name);
  }
  if (queries_.size() >= kMaxPending) {
    // The guest's resolver retries; dropping is what an overloaded server does.
    BOXLITE_LOG(kDebug, "boxlite-net: %zu DNS queries pending, dropping one", queries_.size());
    return;
  }
  if (!SendToNextUpstream(&q, now_ms)) {
    if (auto fail = DnsErrorResponse(q.message, kRcodeServFail)) Reply(q, *fail);
    return;
  }
  queries_.push_back(std::move(q));
}

bool DnsForwarder::SendToNextUpstream(Query* q, int64_t now_ms) {
  while (q->next_upstream < upstreams_.size()) {
    const sockaddr_storage& server = upstreams_[q->next_upstream++];
    base::UniqueFd fd(::socket(server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) continue;
    // Connected: the kernel then hands us datagrams from that server only.
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server), AddressLength(server)) !=
        0) {
      BOXLITE_LOG(kDebug, "boxlite-net: DNS upstream unusable: %s", std::strerror(errno));
      continue;
    }
    if (::send(fd.get(), q->message.data(), q->message.size(), MSG_NOSIGNAL) < 0) {
      BOXLITE_LOG(kDebug, "boxlite-net: DNS send failed: %s", std::strerror(errno));
      continue;
    }
    q->fd = std::move(fd);
    q->deadline_ms = now_ms + kAttemptTimeoutMs;
    return true;
  }
  return false;
}

void DnsForwarder::Reply(const Query& q, std::span<const uint8_t> message) {
  for (const auto& frame : BuildUdpFrames(q.reply, message, ip_id_++, kMtu)) send_(frame);
}

void DnsForwarder::PreparePoll(std::vector<pollfd>* fds, int64_t now_ms, int64_t* timeout_ms) {
  for (auto& q : queries_) {
    q.poll_index = fds->size();
    fds->push_back({q.fd.get(), POLLIN, 0});
    int64_t wait = std::max<int64_t>(0, q.deadline_ms - now_ms);
    if (*timeout_ms < 0 || wait < *timeout_ms) *timeout_ms = wait;
  }
}

void DnsForwarder::AfterPoll(const std::vector<pollfd>& fds, int64_t now_ms) {
  uint8_t buf[65536];
  for (auto it = queries_.begin(); it != queries_.end();) {
    Query& q = *it;
    bool done = false;
    if (q.poll_index < fds.size() && fds[q.poll_index].fd == q.fd.get() &&
        fds[q.poll_index].revents != 0) {
      while (true) {
        ssize_t n = ::recv(q.fd.get(), buf, sizeof(buf), 0);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          // ICMP errors (port unreachable...) surface here: try the next server.
          q.deadline_ms = now_ms;
          break;
        }
        // Untrusted: the answer must be a response to this query's ID.
        if (static_cast<size_t>(n) >= kDnsHeaderLen && buf[0] == q.message[0] &&
            buf[1] == q.message[1] && (buf[2] & 0x80) != 0) {
          std::span<const uint8_t> answer(buf, static_cast<size_t>(n));
          if (egress_ != nullptr && !q.name.empty()) {
            for (const auto& a : ParseDnsAnswers(answer)) egress_->Pin(a.v4, q.name, a.ttl, now_ms);
          }
          Reply(q, answer);
          done = true;
          break;
        }
      }
    }
    if (!done && now_ms >= q.deadline_ms && !SendToNextUpstream(&q, now_ms)) {
      if (auto fail = DnsErrorResponse(q.message, kRcodeServFail)) Reply(q, *fail);
      done = true;
    }
    q.poll_index = SIZE_MAX;
    it = done ? queries_.erase(it) : std::next(it);
  }
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The guest's resolver at 10.0.2.3: each DNS query the guest sends over UDP is relayed
// unchanged from a fresh host UDP socket (random source port) to the configured upstream
// servers in turn, and the first matching answer goes back to the guest as a UDP datagram
// from 10.0.2.3:53, IP-fragmented when it exceeds the MTU. The upstreams are the servers
// given on the command line, or the host's (/etc/resolv.conf); only DNS messages reach
// them, even when the host's resolver listens on a loopback address. With no upstream,
// queries are answered SERVFAIL at once so guest lookups fail fast.
// Thread-safety: a DnsForwarder is used by one thread (the helper's poll loop).
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"
#include "src/net/egress_policy.h"
#include "src/net/packet.h"

namespace boxlite::net {

// The nameserver addresses of a resolv.conf text, in order ("%iface" suffixes kept).
std::vector<std::string> ParseResolvConf(std::string_view text);

// "192.0.2.1", "2001:db8::1" or "fe80::1%eth0" as a socket address on port 53;
// "192.0.2.1:5353" and "[2001:db8::1]:5353" name another port.
Result<sockaddr_storage> DnsServerAddress(const std::string& server);

// A DNS response for `query` with RCODE `rcode`, echoing its ID, opcode, RD bit and
// question; nullopt when `query` is shorter than a DNS header.
std::optional<std::vector<uint8_t>> DnsErrorResponse(std::span<const uint8_t> query,
                                                     uint8_t rcode);

class DnsForwarder {
 public:
  using SendFn = std::function<void(std::span<const uint8_t> frame)>;

  // `send` delivers a frame to the guest; it is called from HandleQuery and AfterPoll.
  // `egress` (may be null; must outlive the forwarder): with a non-empty allow-list,
  // only allowed names are forwarded, others are answered NXDOMAIN, and the addresses
  // answered for allowed names are pinned (egress_policy.h).
  DnsForwarder(std::vector<sockaddr_storage> upstreams, SendFn send,
               EgressPolicy* egress = nullptr);
  DnsForwarder(const DnsForwarder&) = delete;
  DnsForwarder& operator=(const DnsForwarder&) = delete;

  // Takes a guest packet classified Verdict::kDns. Malformed queries are dropped.
  void HandleQuery(const Ipv4Packet& packet, int64_t now_ms);

  // Appends the descriptors of pending queries to `fds` and lowers `*timeout_ms` (-1 =
  // none yet) to the next retry deadline. AfterPoll must see the same `fds`.
  void PreparePoll(std::vector<pollfd>* fds, int64_t now_ms, int64_t* timeout_ms);
  void AfterPoll(const std::vector<pollfd>& fds, int64_t now_ms);

  size_t pending() const { return queries_.size(); }

  // How long one upstream gets to answer before the next is tried.
  static constexpr int64_t kAttemptTimeoutMs = 2000;
  static constexpr size_t kMaxPending = 256;

 private:
  struct Query {
    UdpEndpoints reply;  // From 10.0.2.3:53 to the guest.
    std::vector<uint8_t> message;
    std::string name;  // The allowed name asked for (egress), whose answers are pinned.
    size_t next_upstream = 0;
    base::UniqueFd fd;
    int64_t deadline_ms = 0;
    size_t poll_index = SIZE_MAX;
  };

  // Sends the query to the next upstream that accepts it; false when none is left.
  bool SendToNextUpstream(Query* q, int64_t now_ms);
  void Reply(const Query& q, std::span<const uint8_t> message);

  std::vector<sockaddr_storage> upstreams_;
  SendFn send_;
  EgressPolicy* egress_;
  std::list<Query> queries_;
  uint16_t ip_id_ = 1;
};

}  // namespace boxlite::net

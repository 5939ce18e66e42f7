// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-net's enforcement of the egress allow-list (egress_rules.h; the model is in
// docs/networking.md). With no rules it allows everything and the default policy of
// guest_policy.h (public addresses only) is all there is. With rules:
// - DNS: a query is forwarded only when its name matches a host or *.domain rule; any
//   other name is answered NXDOMAIN at once. host.boxlite.internal, when listed, is
//   answered with the gateway 10.0.2.2. The IPv4 addresses of the answers to allowed
//   names are pinned to the name: remembered until the answer's TTL (at least
//   kMinPinSeconds, at most kMaxPinSeconds) runs out, at most kMaxPins of them (the ones
//   closest to expiry go first).
// - A new flow (TCP SYN, each UDP datagram, ICMP) goes to an address or CIDR rule whose
//   port matches (this opens private ranges too: an explicit rule is the user's choice),
//   or to an address pinned for a name whose rule's port matches (public addresses only,
//   so a name that resolves to a private address does not open the LAN). TCP to such a
//   pinned address on port 80 or 443 is inspected (kInspect): the Host / TLS SNI it
//   carries must match an allowed name on that port (AllowsInspectedName). Anything else
//   is refused.
// Thread-safety: the pins are guarded by a mutex: DNS answers pin on the helper's loop
// while intercepted flows ask from their own threads.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/net/egress_rules.h"

namespace boxlite::net {

// DNS message helpers (bounded; untrusted input).
// The lower-case name of a query's single question, and its QTYPE.
struct DnsQuestion {
  std::string name;
  uint16_t qtype = 0;
};
std::optional<DnsQuestion> ParseDnsQuestion(std::span<const uint8_t> message);
// The IPv4 addresses (A records, any owner: the chain of a CNAME) in a response's answer
// section, with their TTLs; empty when it does not parse.
struct DnsAddress {
  uint32_t v4 = 0;
  uint32_t ttl = 0;
};
std::vector<DnsAddress> ParseDnsAnswers(std::span<const uint8_t> message);
// A response to `query` with one A record `v4` (qtype A) or none (any other qtype).
std::optional<std::vector<uint8_t>> DnsAddressResponse(std::span<const uint8_t> query,
                                                       uint16_t qtype, uint32_t v4);

constexpr uint16_t kDnsTypeA = 1;
constexpr uint8_t kRcodeNxDomain = 3;

class EgressPolicy {
 public:
  enum class Decision { kAllow, kInspect, kRefuse };

  explicit EgressPolicy(EgressRules rules) : rules_(std::move(rules)) {}
  EgressPolicy(const EgressPolicy&) = delete;
  EgressPolicy& operator=(const EgressPolicy&) = delete;

  bool enabled() const { return !rules_.empty(); }
  const EgressRules& rules() const { return rules_; }

  // DNS: whether a query for `name` (normalized) is forwarded.
  bool AllowsQuery(std::string_view name) const { return !enabled() || rules_.AllowsName(name); }
  void Pin(uint32_t v4, std::string_view name, uint32_t ttl_s, int64_t now_ms);

  // A new flow to `dst`:`port` (`tcp`: a TCP connection, else UDP or ICMP with port 0).
  // `is_public`: the default policy would allow the address (guest_policy.h).
  Decision DecideFlow(uint32_t dst, uint16_t port, bool tcp, bool is_public,
                      int64_t now_ms) const;
  // Whether packets of flows already open may go on to `dst` (an address rule covers it).
  bool ExplicitlyAllowed(uint32_t dst) const { return rules_.AllowsAddress(dst, 0); }
  // The Host/SNI check of an inspected flow: `name` (normalized, empty: none) matches a
  // host or *.domain rule for `port`.
  bool AllowsInspectedName(std::string_view name, uint16_t port) const;

  size_t pinned() const;

  static constexpr uint32_t kMinPinSeconds = 60;
  static constexpr uint32_t kMaxPinSeconds = 24 * 3600;
  static constexpr size_t kMaxPins = 4096;

 private:
  struct Pin_ {
    std::string name;
    int64_t expires_ms = 0;
  };
  void EvictLocked(int64_t now_ms);

  const EgressRules rules_;
  mutable std::mutex mu_;
  std::multimap<uint32_t, Pin_> pins_;  // Guarded by mu_.
};

}  // namespace boxlite::net

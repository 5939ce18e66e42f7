// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/guest_policy.h"

#include <algorithm>
#include <iterator>

namespace boxlite::net {
namespace {

constexpr uint16_t kDhcpServerPort = 67;

bool InNet(uint32_t addr, uint32_t net, uint32_t mask) { return (addr & mask) == net; }

bool IsDhcp(const Ipv4Packet& p) {
  return p.protocol == kIpProtoUdp && p.has_ports && p.dst_port == kDhcpServerPort;
}

// A TCP segment that opens a connection: the only kind that makes libslirp connect() a
// host socket. Other segments to a virtual address either belong to a connection a
// published port opened (the guest answering 10.0.2.2) or are answered with a reset by
// libslirp itself.
bool IsTcpConnect(const Ipv4Packet& p) {
  return p.protocol == kIpProtoTcp && (p.tcp_flags & kTcpSyn) && !(p.tcp_flags & kTcpAck);
}

// How a refused packet is answered: TCP gets a reset, UDP an ICMP error, and anything
// else (or any fragment but the first, which carries no ports) nothing.
Verdict Refuse(const Ipv4Packet& p, Verdict udp_verdict) {
  if (!p.first_fragment) return Verdict::kDrop;
  if (p.protocol == kIpProtoTcp) return p.has_ports ? Verdict::kTcpReset : Verdict::kDrop;
  if (p.protocol == kIpProtoUdp) return udp_verdict;
  return Verdict::kDrop;
}

// The guest answering a client of one of its published ports from outside the host's
// loopback: that client keeps its address (libslirp rewrites only loopback ones to
// 10.0.2.2), which may be private or the host's own.
bool AnswersPublishedPort(const Ipv4Packet& p, const GuestPolicy& policy) {
  return p.protocol == kIpProtoTcp && !p.fragment && p.has_ports && !IsTcpConnect(p) &&
         std::find(policy.published_guest_ports.begin(), policy.published_guest_ports.end(),
                   p.src_port) != policy.published_guest_ports.end();
}

struct Ipv4Net {
  uint32_t net;
  int prefix;
};

// Never reachable, not even with allow_host: loopback (the host's is 10.0.2.2), "this
// network", multicast, class E and broadcast.
constexpr Ipv4Net kNeverV4[] = {
    {Ipv4(127, 0, 0, 0), 8}, {Ipv4(0, 0, 0, 0), 8}, {Ipv4(224, 0, 0, 0), 4},
    {Ipv4(240, 0, 0, 0), 4},
};
// Not public (docs/design.md §8, egress): private, shared (carrier-grade NAT) and link-local space,
// where the host's LAN, its local services and cloud metadata (169.254.169.254) live.
constexpr Ipv4Net kNonPublicV4[] = {
    {Ipv4(10, 0, 0, 0), 8},    {Ipv4(172, 16, 0, 0), 12},  {Ipv4(192, 168, 0, 0), 16},
    {Ipv4(100, 64, 0, 0), 10}, {Ipv4(169, 254, 0, 0), 16},
};

bool InPrefix(uint32_t addr, const Ipv4Net& n) {
  uint32_t mask = n.prefix == 0 ? 0 : ~uint32_t{0} << (32 - n.prefix);
  return (addr & mask) == n.net;
}

uint32_t EmbeddedV4(const Ipv6Address& a, size_t at) {
  return (uint32_t{a[at]} << 24) | (uint32_t{a[at + 1]} << 16) | (uint32_t{a[at + 2]} << 8) |
         a[at + 3];
}

}  // namespace

bool EgressAllowed(uint32_t dst, const GuestPolicy& policy) {
  for (const auto& n : kNeverV4) {
    if (InPrefix(dst, n)) return false;
  }
  bool host = policy.host_addresses != nullptr && policy.host_addresses->Contains(dst);
  if (host) return policy.allow_host;
  for (const auto& n : kNonPublicV4) {
    if (InPrefix(dst, n)) return false;
  }
  return true;
}

bool EgressAllowed(const Ipv6Address& dst, const GuestPolicy& policy) {
  // ::, ::1 and multicast, whoever holds them.
  static constexpr Ipv6Address kUnspecified{};
  static constexpr Ipv6Address kLoopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (dst == kUnspecified || dst == kLoopback || dst[0] == 0xff) return false;
  if (policy.host_addresses != nullptr && policy.host_addresses->Contains(dst)) {
    return policy.allow_host;
  }
  // IPv4-mapped (::ffff:a.b.c.d) and 6to4 (2002:a.b.c.d::/16) carry an IPv4 address that
  // the IPv4 rule decides.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(std::begin(kMapped), std::end(kMapped), dst.begin())) {
    return EgressAllowed(EmbeddedV4(dst, 12), policy);
  }
  if (dst[0] == 0x20 && dst[1] == 0x02) return EgressAllowed(EmbeddedV4(dst, 2), policy);
  // Global unicast is 2000::/3; everything else (::1, ::, link-local fe80::/10, unique
  // local fc00::/7, site-local fec0::/10, multicast ff00::/8, NAT64 64:ff9b::/96...) is
  // not. Within it, documentation 2001:db8::/32 and 2001::/23 (IETF protocol
  // assignments: Teredo, ORCHID, benchmarking) are not global either.
  if ((dst[0] & 0xe0) != 0x20) return false;
  if (dst[0] == 0x20 && dst[1] == 0x01 && dst[2] == 0x0d && dst[3] == 0xb8) return false;
  if (dst[0] == 0x20 && dst[1] == 0x01 && (dst[2] & 0xfe) == 0x00) return false;
  return true;
}

Verdict ClassifyGuestFrame(std::span<const uint8_t> frame, const GuestPolicy& policy,
                           std::optional<Ipv4Packet>* packet) {
  packet->reset();
  uint16_t type = EtherType(frame);
  if (type == kEtherTypeArp) return Verdict::kPass;
  if (type != kEtherTypeIpv4) return Verdict::kDrop;
  *packet = ParseIpv4Frame(frame);
  if (!*packet) return Verdict::kDrop;
  const Ipv4Packet& p = **packet;
  uint32_t dst = p.dst;

  // The host's own loopback and "this host" addresses: never leave through libslirp.
  if (InNet(dst, Ipv4(127, 0, 0, 0), Ipv4(255, 0, 0, 0)) ||
      InNet(dst, Ipv4(0, 0, 0, 0), Ipv4(255, 0, 0, 0))) {
    return Verdict::kDrop;
  }
  bool broadcast = dst == Ipv4(255, 255, 255, 255) || dst == (kNetworkAddress | ~kNetworkMask);
  if (broadcast) return IsDhcp(p) ? Verdict::kPass : Verdict::kDrop;
  // Multicast and the reserved class E.
  if (InNet(dst, Ipv4(224, 0, 0, 0), Ipv4(240, 0, 0, 0)) ||
      InNet(dst, Ipv4(240, 0, 0, 0), Ipv4(240, 0, 0, 0))) {
    return Verdict::kDrop;
  }
  if (!InNet(dst, kNetworkAddress, kNetworkMask)) {
    if (AnswersPublishedPort(p, policy)) return Verdict::kPass;
    bool is_public = EgressAllowed(dst, policy);
    if (policy.egress == nullptr || !policy.egress->enabled()) {
      return is_public ? Verdict::kPass : Refuse(p, Verdict::kProhibited);
    }
    // The allow-list decides each new flow; segments of TCP connections already open
    // pass as long as the address stays reachable (a pin expiring does not cut them).
    if (p.protocol == kIpProtoTcp && !IsTcpConnect(p)) {
      return is_public || policy.egress->ExplicitlyAllowed(dst) ? Verdict::kPass
                                                                : Refuse(p, Verdict::kProhibited);
    }
    if (!p.first_fragment) return Verdict::kPass;  // Its first fragment was decided.
    uint16_t port = p.has_ports ? p.dst_port : 0;
    switch (policy.egress->DecideFlow(dst, port, p.protocol == kIpProtoTcp, is_public,
                                      policy.now_ms)) {
      case EgressPolicy::Decision::kAllow:
        return Verdict::kPass;
      case EgressPolicy::Decision::kInspect:
        return Verdict::kIntercept;
      case EgressPolicy::Decision::kRefuse:
        return Refuse(p, Verdict::kProhibited);
    }
  }

  if (dst == kDnsAddress) {
    if (p.protocol == kIpProtoIcmp && !p.fragment) return Verdict::kPass;  // Echo.
    if (p.fragment) return Verdict::kDrop;
    if (p.protocol == kIpProtoUdp && p.has_ports && p.dst_port == kDnsPort) return Verdict::kDns;
    return Refuse(p, Verdict::kPortUnreachable);
  }
  if (dst == kGatewayAddress) {
    if (p.protocol == kIpProtoIcmp && !p.fragment) return Verdict::kPass;  // Echo.
    if (IsDhcp(p)) return Verdict::kPass;
    if (policy.allow_host) return Verdict::kPass;
    // host.boxlite.internal in the allow-list opens the host's loopback on its ports.
    if (policy.egress != nullptr && !p.fragment && p.has_ports &&
        policy.egress->rules().AllowsHostAlias(p.dst_port)) {
      return Verdict::kPass;
    }
    // Published ports: host clients appear as 10.0.2.2 and the guest answers them.
    if (p.protocol == kIpProtoTcp && !p.fragment && p.payload.size() >= 14 && !IsTcpConnect(p)) {
      return Verdict::kPass;
    }
    return Refuse(p, Verdict::kProhibited);
  }
  // No other address in the guest network exists.
  return Verdict::kDrop;
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/guest_policy.h"

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

}  // namespace

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
  if (!InNet(dst, kNetworkAddress, kNetworkMask)) return Verdict::kPass;

  if (dst == kDnsAddress) {
    if (p.protocol == kIpProtoIcmp && !p.fragment) return Verdict::kPass;  // Echo.
    if (p.fragment) return Verdict::kDrop;
    if (p.protocol == kIpProtoUdp && p.has_ports && p.dst_port == kDnsPort) return Verdict::kDns;
    return Refuse(p, Verdict::kPortUnreachable);
  }
  if (dst == kGatewayAddress) {
    if (p.protocol == kIpProtoIcmp && !p.fragment) return Verdict::kPass;  // Echo.
    if (IsDhcp(p)) return Verdict::kPass;
    if (policy.allow_host_loopback) return Verdict::kPass;
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

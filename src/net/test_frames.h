// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Test-only builders of guest frames (Ethernet + IPv4 + TCP/UDP, checksums filled in)
// and checksum verifiers, for the src/net tests. Header-only; pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "src/net/packet.h"

namespace boxlite::net::testframes {

inline constexpr MacAddress kGuestMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
inline constexpr MacAddress kGatewayMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};

inline void Put16(std::vector<uint8_t>* v, size_t at, uint16_t x) {
  (*v)[at] = static_cast<uint8_t>(x >> 8);
  (*v)[at + 1] = static_cast<uint8_t>(x);
}

inline void Put32(std::vector<uint8_t>* v, size_t at, uint32_t x) {
  Put16(v, at, static_cast<uint16_t>(x >> 16));
  Put16(v, at + 2, static_cast<uint16_t>(x));
}

inline uint32_t PseudoSum(uint32_t src, uint32_t dst, uint8_t proto, size_t len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto +
         static_cast<uint32_t>(len);
}

// An Ethernet frame from the guest to the gateway MAC carrying `transport`.
inline Frame IpFrame(uint32_t src, uint32_t dst, uint8_t proto,
                     const std::vector<uint8_t>& transport) {
  Frame f(kEthernetHeaderLen + 20);
  std::copy(kGatewayMac.begin(), kGatewayMac.end(), f.begin());
  std::copy(kGuestMac.begin(), kGuestMac.end(), f.begin() + 6);
  Put16(&f, 12, kEtherTypeIpv4);
  size_t ip = kEthernetHeaderLen;
  f[ip] = 0x45;
  Put16(&f, ip + 2, static_cast<uint16_t>(20 + transport.size()));
  f[ip + 8] = 64;
  f[ip + 9] = proto;
  Put32(&f, ip + 12, src);
  Put32(&f, ip + 16, dst);
  Put16(&f, ip + 10, InternetChecksum({f.data() + ip, 20}));
  f.insert(f.end(), transport.begin(), transport.end());
  return f;
}

inline Frame UdpFrame(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                      const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> udp(8);
  Put16(&udp, 0, sport);
  Put16(&udp, 2, dport);
  Put16(&udp, 4, static_cast<uint16_t>(8 + payload.size()));
  udp.insert(udp.end(), payload.begin(), payload.end());
  Put16(&udp, 6, InternetChecksum(udp, PseudoSum(src, dst, kIpProtoUdp, udp.size())));
  return IpFrame(src, dst, kIpProtoUdp, udp);
}

inline Frame TcpFrame(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags,
                      uint32_t seq = 1, uint32_t ack = 0,
                      const std::vector<uint8_t>& payload = {}) {
  std::vector<uint8_t> tcp(20);
  Put16(&tcp, 0, sport);
  Put16(&tcp, 2, dport);
  Put32(&tcp, 4, seq);
  Put32(&tcp, 8, ack);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  Put16(&tcp, 14, 64240);
  tcp.insert(tcp.end(), payload.begin(), payload.end());
  Put16(&tcp, 16, InternetChecksum(tcp, PseudoSum(src, dst, kIpProtoTcp, tcp.size())));
  return IpFrame(src, dst, kIpProtoTcp, tcp);
}

inline uint32_t TcpSeq(const Ipv4Packet& p) {
  const uint8_t* t = p.payload.data();
  return (uint32_t{t[4]} << 24) | (uint32_t{t[5]} << 16) | (uint32_t{t[6]} << 8) | t[7];
}

inline Frame IcmpEchoFrame(uint32_t src, uint32_t dst) {
  std::vector<uint8_t> icmp = {8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'};
  Put16(&icmp, 2, InternetChecksum(icmp));
  return IpFrame(src, dst, kIpProtoIcmp, icmp);
}

inline bool UdpChecksumOk(const Ipv4Packet& p) {
  return InternetChecksum(p.payload, PseudoSum(p.src, p.dst, kIpProtoUdp, p.payload.size())) ==
         0;
}

inline bool TcpChecksumOk(const Ipv4Packet& p) {
  return InternetChecksum(p.payload, PseudoSum(p.src, p.dst, kIpProtoTcp, p.payload.size())) ==
         0;
}

}  // namespace boxlite::net::testframes

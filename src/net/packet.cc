// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/packet.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace boxlite::net {
namespace {

constexpr size_t kIpv4MinHeaderLen = 20;
constexpr size_t kUdpHeaderLen = 8;
constexpr size_t kTcpMinHeaderLen = 20;
constexpr uint8_t kTtl = 64;
constexpr uint8_t kTcpFin = 0x01;

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint32_t Load32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void Store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Appends an Ethernet header and a 20-byte IPv4 header (checksum filled in) to `out`;
// `payload_len` is what follows the IP header in this packet.
void AppendHeaders(Frame* out, const MacAddress& dst_mac, const MacAddress& src_mac,
                   uint32_t src_ip, uint32_t dst_ip, uint8_t protocol, size_t payload_len,
                   uint16_t ip_id, uint16_t frag_field) {
  size_t eth = out->size();
  out->resize(eth + kEthernetHeaderLen + kIpv4MinHeaderLen);
  uint8_t* p = out->data() + eth;
  std::memcpy(p, dst_mac.data(), 6);
  std::memcpy(p + 6, src_mac.data(), 6);
  Store16(p + 12, kEtherTypeIpv4);
  uint8_t* ip = p + kEthernetHeaderLen;
  ip[0] = 0x45;
  ip[1] = 0;
  Store16(ip + 2, static_cast<uint16_t>(kIpv4MinHeaderLen + payload_len));
  Store16(ip + 4, ip_id);
  Store16(ip + 6, frag_field);
  ip[8] = kTtl;
  ip[9] = protocol;
  Store16(ip + 10, 0);
  Store32(ip + 12, src_ip);
  Store32(ip + 16, dst_ip);
  Store16(ip + 10, InternetChecksum({ip, kIpv4MinHeaderLen}));
}

// The TCP/UDP pseudo-header sum (RFC 793 / RFC 768).
uint32_t PseudoHeaderSum(uint32_t src, uint32_t dst, uint8_t protocol, size_t length) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + protocol +
         static_cast<uint32_t>(length);
}

}  // namespace

std::optional<uint32_t> ParseIpv4(const char* text) {
  in_addr addr{};
  if (::inet_pton(AF_INET, text, &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

uint16_t EtherType(std::span<const uint8_t> frame) {
  if (frame.size() < kEthernetHeaderLen) return 0;
  return Load16(frame.data() + 12);
}

std::optional<Ipv4Packet> ParseIpv4Frame(std::span<const uint8_t> frame) {
  if (EtherType(frame) != kEtherTypeIpv4) return std::nullopt;
  // Untrusted: every offset below is checked against the frame and the IP lengths.
  std::span<const uint8_t> ip = frame.subspan(kEthernetHeaderLen);
  if (ip.size() < kIpv4MinHeaderLen || (ip[0] >> 4) != 4) return std::nullopt;
  size_t header_len = static_cast<size_t>(ip[0] & 0x0fu) * 4;
  size_t total_len = Load16(ip.data() + 2);
  if (header_len < kIpv4MinHeaderLen || total_len < header_len || total_len > ip.size()) {
    return std::nullopt;
  }
  Ipv4Packet p;
  std::copy_n(frame.begin(), 6, p.eth_dst.begin());
  std::copy_n(frame.begin() + 6, 6, p.eth_src.begin());
  uint16_t frag = Load16(ip.data() + 6);
  bool more_fragments = (frag & 0x2000) != 0;
  uint16_t offset = frag & 0x1fff;
  p.fragment = more_fragments || offset != 0;
  p.first_fragment = offset == 0;
  p.protocol = ip[9];
  p.src = Load32(ip.data() + 12);
  p.dst = Load32(ip.data() + 16);
  p.header = ip.subspan(0, header_len);
  p.payload = ip.subspan(header_len, total_len - header_len);
  if (p.first_fragment && (p.protocol == kIpProtoTcp || p.protocol == kIpProtoUdp) &&
      p.payload.size() >= 4) {
    p.has_ports = true;
    p.src_port = Load16(p.payload.data());
    p.dst_port = Load16(p.payload.data() + 2);
    if (p.protocol == kIpProtoTcp && p.payload.size() >= 14) p.tcp_flags = p.payload[13];
  }
  return p;
}

uint16_t InternetChecksum(std::span<const uint8_t> data, uint32_t sum) {
  uint64_t acc = sum;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) acc += Load16(data.data() + i);
  if (i < data.size()) acc += uint32_t{data[i]} << 8;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

std::optional<std::span<const uint8_t>> UdpPayload(const Ipv4Packet& packet) {
  if (packet.protocol != kIpProtoUdp || packet.fragment) return std::nullopt;
  if (packet.payload.size() < kUdpHeaderLen) return std::nullopt;
  size_t udp_len = Load16(packet.payload.data() + 4);
  if (udp_len < kUdpHeaderLen || udp_len > packet.payload.size()) return std::nullopt;
  return packet.payload.subspan(kUdpHeaderLen, udp_len - kUdpHeaderLen);
}

std::vector<Frame> BuildUdpFrames(const UdpEndpoints& ends, std::span<const uint8_t> payload,
                                  uint16_t ip_id, size_t mtu) {
  std::vector<Frame> frames;
  size_t udp_len = kUdpHeaderLen + payload.size();
  if (udp_len > 65535 - kIpv4MinHeaderLen || mtu < 68) return frames;
  std::vector<uint8_t> datagram(udp_len);
  Store16(datagram.data(), ends.src_port);
  Store16(datagram.data() + 2, ends.dst_port);
  Store16(datagram.data() + 4, static_cast<uint16_t>(udp_len));
  std::copy(payload.begin(), payload.end(), datagram.begin() + kUdpHeaderLen);
  uint16_t sum = InternetChecksum(
      datagram, PseudoHeaderSum(ends.src_ip, ends.dst_ip, kIpProtoUdp, udp_len));
  Store16(datagram.data() + 6, sum == 0 ? 0xffff : sum);

  // Fragment payloads are multiples of 8 bytes except the last (RFC 791).
  size_t chunk = ((mtu - kIpv4MinHeaderLen) / 8) * 8;
  constexpr uint16_t kDontFragment = 0x4000;
  if (udp_len <= mtu - kIpv4MinHeaderLen) chunk = udp_len;
  for (size_t off = 0; off < udp_len; off += chunk) {
    size_t len = std::min(chunk, udp_len - off);
    bool last = off + len == udp_len;
    uint16_t frag_field;
    if (off == 0 && last) {
      frag_field = kDontFragment;
    } else {
      frag_field = static_cast<uint16_t>((last ? 0 : 0x2000) | (off / 8));
    }
    Frame frame;
    frame.reserve(kEthernetHeaderLen + kIpv4MinHeaderLen + len);
    AppendHeaders(&frame, ends.dst_mac, ends.src_mac, ends.src_ip, ends.dst_ip, kIpProtoUdp,
                  len, ip_id, frag_field);
    frame.insert(frame.end(), datagram.begin() + static_cast<ptrdiff_t>(off),
                 datagram.begin() + static_cast<ptrdiff_t>(off + len));
    frames.push_back(std::move(frame));
  }
  return frames;
}

Frame BuildTcpReset(const Ipv4Packet& segment, uint16_t ip_id) {
  if (segment.protocol != kIpProtoTcp || !segment.has_ports ||
      segment.payload.size() < kTcpMinHeaderLen) {
    return {};
  }
  const uint8_t* in = segment.payload.data();
  uint8_t flags = in[13];
  if (flags & kTcpRst) return {};
  size_t data_offset = static_cast<size_t>(in[12] >> 4) * 4;
  if (data_offset < kTcpMinHeaderLen || data_offset > segment.payload.size()) return {};
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t out_flags = kTcpRst;
  if (flags & kTcpAck) {
    seq = Load32(in + 8);
  } else {
    size_t seg_len = segment.payload.size() - data_offset;
    if (flags & kTcpSyn) ++seg_len;
    if (flags & kTcpFin) ++seg_len;
    ack = Load32(in + 4) + static_cast<uint32_t>(seg_len);
    out_flags |= kTcpAck;
  }
  uint8_t tcp[kTcpMinHeaderLen] = {};
  Store16(tcp, segment.dst_port);
  Store16(tcp + 2, segment.src_port);
  Store32(tcp + 4, seq);
  Store32(tcp + 8, ack);
  tcp[12] = 5 << 4;
  tcp[13] = out_flags;
  Store16(tcp + 16, InternetChecksum(
                        tcp, PseudoHeaderSum(segment.dst, segment.src, kIpProtoTcp, sizeof(tcp))));
  Frame frame;
  AppendHeaders(&frame, segment.eth_src, segment.eth_dst, segment.dst, segment.src, kIpProtoTcp,
                sizeof(tcp), ip_id, 0x4000);
  frame.insert(frame.end(), tcp, tcp + sizeof(tcp));
  return frame;
}

Frame BuildIcmpUnreachable(const Ipv4Packet& packet, uint8_t code, uint16_t ip_id) {
  size_t quoted = packet.header.size() + std::min<size_t>(8, packet.payload.size());
  std::vector<uint8_t> icmp(8 + quoted);
  icmp[0] = 3;  // Destination unreachable.
  icmp[1] = code;
  std::copy(packet.header.begin(), packet.header.end(), icmp.begin() + 8);
  std::copy_n(packet.payload.begin(), quoted - packet.header.size(),
              icmp.begin() + 8 + static_cast<ptrdiff_t>(packet.header.size()));
  Store16(icmp.data() + 2, InternetChecksum(icmp));
  Frame frame;
  AppendHeaders(&frame, packet.eth_src, packet.eth_dst, packet.dst, packet.src, kIpProtoIcmp,
                icmp.size(), ip_id, 0);
  frame.insert(frame.end(), icmp.begin(), icmp.end());
  return frame;
}

}  // namespace boxlite::net

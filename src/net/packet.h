// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Ethernet/IPv4 parsing and the few frames the network helper builds itself: UDP replies
// (DNS answers, IPv4-fragmented when they exceed the MTU), TCP resets and ICMP
// destination-unreachable errors for traffic the policy refuses. Frames from the guest
// are untrusted: every length is checked before use and a malformed frame parses as
// nothing. Addresses and ports are in host byte order. Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "src/net/guest_network.h"

namespace boxlite::net {

using MacAddress = std::array<uint8_t, 6>;
using Frame = std::vector<uint8_t>;

constexpr size_t kEthernetHeaderLen = 14;
constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint8_t kIpProtoIcmp = 1;
constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;

// ICMP destination-unreachable codes we send.
constexpr uint8_t kIcmpPortUnreachable = 3;
constexpr uint8_t kIcmpAdminProhibited = 13;

// "10.0.2.15" -> 0x0a00020f; nullopt unless a dotted quad. (Ipv4(a, b, c, d) is in
// src/net/guest_network.h.)
std::optional<uint32_t> ParseIpv4(const char* text);

// An IPv4 packet inside an Ethernet frame. The spans point into the parsed frame and live
// as long as it.
struct Ipv4Packet {
  MacAddress eth_dst{};
  MacAddress eth_src{};
  uint32_t src = 0;
  uint32_t dst = 0;
  uint8_t protocol = 0;
  // True for any fragment (more-fragments set or a non-zero offset); ports are only
  // known in the first one.
  bool fragment = false;
  bool first_fragment = true;
  std::span<const uint8_t> header;   // The IP header, options included.
  std::span<const uint8_t> payload;  // Bounded by the IP total length.
  // TCP and UDP in a first fragment with a complete transport header.
  bool has_ports = false;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  // TCP flags (SYN = 0x02, RST = 0x04, ACK = 0x10) when the header holds them, else 0.
  uint8_t tcp_flags = 0;
};

constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;

// The EtherType of a frame, 0 when it is shorter than an Ethernet header.
uint16_t EtherType(std::span<const uint8_t> frame);

// Parses an IPv4 frame; nullopt when it is not IPv4 or malformed (bad version, header
// length or total length, truncated).
std::optional<Ipv4Packet> ParseIpv4Frame(std::span<const uint8_t> frame);

// The RFC 1071 checksum of `data` folded into `sum` (pass a partial sum to chain).
uint16_t InternetChecksum(std::span<const uint8_t> data, uint32_t sum = 0);

// The UDP payload of a parsed packet (bounded by the UDP length), or nullopt when the
// packet is not a complete unfragmented UDP datagram.
std::optional<std::span<const uint8_t>> UdpPayload(const Ipv4Packet& packet);

struct UdpEndpoints {
  MacAddress src_mac{};
  MacAddress dst_mac{};
  uint32_t src_ip = 0;
  uint16_t src_port = 0;
  uint32_t dst_ip = 0;
  uint16_t dst_port = 0;
};

// Ethernet frames carrying one UDP datagram, fragmented at the IP layer when it does not
// fit `mtu` (the IP packet size limit). Empty when the datagram exceeds 65507 bytes.
std::vector<Frame> BuildUdpFrames(const UdpEndpoints& ends, std::span<const uint8_t> payload,
                                  uint16_t ip_id, size_t mtu);

// The reset a TCP stack answers `segment` with (RFC 793, "reset generation"), sent from
// the segment's destination. Empty when `segment` is itself a reset or not TCP with
// ports.
Frame BuildTcpReset(const Ipv4Packet& segment, uint16_t ip_id);

// An ICMP destination-unreachable error about `packet`, sent from its destination: the
// original IP header and the first 8 payload bytes, as RFC 792 asks.
Frame BuildIcmpUnreachable(const Ipv4Packet& packet, uint8_t code, uint16_t ip_id);

}  // namespace boxlite::net

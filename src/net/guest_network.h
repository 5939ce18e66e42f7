// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The guest network plan every box with networking sees: 10.0.2.0/24, the guest at
// 10.0.2.15, the gateway (the host, through boxlite-net) at 10.0.2.2 and the DNS server
// (boxlite-net's forwarder) at 10.0.2.3. The one copy: boxlite-net configures libslirp and
// its policy from it (src/net/slirp_stack.cc, guest_policy.cc), and the host tells the
// guest agent the same addresses for eth0 (src/vmm/net_helper.h, GuestNetworkPlan).
// Header only, no dependencies beyond the standard library. Thread-safety: constants.
#pragma once

#include <cstdint>
#include <string>

namespace boxlite::net {

// An IPv4 address in host byte order: Ipv4(10, 0, 2, 15) == 0x0a00020f.
constexpr uint32_t Ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d;
}

constexpr int kNetworkPrefixLength = 24;
constexpr uint32_t kNetworkAddress = Ipv4(10, 0, 2, 0);
constexpr uint32_t kNetworkMask = ~uint32_t{0} << (32 - kNetworkPrefixLength);
constexpr uint32_t kGatewayAddress = Ipv4(10, 0, 2, 2);
constexpr uint32_t kDnsAddress = Ipv4(10, 0, 2, 3);
constexpr uint32_t kGuestAddress = Ipv4(10, 0, 2, 15);

// "10.0.2.15".
inline std::string DottedQuad(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
         std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

}  // namespace boxlite::net

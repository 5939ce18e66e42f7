// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What the network helper does with each frame the guest sends, decided before libslirp
// sees it, so the isolation does not depend on libslirp's translation rules:
// - the host's loopback is never reachable: destinations in 127.0.0.0/8 and 0.0.0.0/8
//   (which a guest can only produce with raw sockets) are dropped, and TCP connection
//   attempts and UDP to the gateway 10.0.2.2 (which libslirp maps to 127.0.0.1) are
//   refused unless `allow_host_loopback` (the guest's side of connections to published
//   ports, which come from 10.0.2.2, passes);
// - 10.0.2.3 answers DNS over UDP port 53 (our forwarder) and ping; everything else sent
//   to it is refused, because libslirp would forward it to the host's resolver address,
//   which may be a loopback one;
// - broadcast and multicast are dropped, except DHCP, which libslirp answers itself;
// - IPv6 and unknown EtherTypes are dropped (the guest network is IPv4 only);
// - everything else (the outside world: TCP, UDP, ICMP) passes to libslirp.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "src/net/packet.h"

namespace boxlite::net {

// The guest network every box sees; the guest agent configures the guest side
// (src/vmm/net_helper.h has the same addresses).
constexpr uint32_t kNetworkAddress = Ipv4(10, 0, 2, 0);
constexpr uint32_t kNetworkMask = Ipv4(255, 255, 255, 0);
constexpr uint32_t kGatewayAddress = Ipv4(10, 0, 2, 2);
constexpr uint32_t kDnsAddress = Ipv4(10, 0, 2, 3);
constexpr uint32_t kGuestAddress = Ipv4(10, 0, 2, 15);
constexpr uint16_t kDnsPort = 53;
constexpr size_t kMtu = 1500;

enum class Verdict {
  kPass,            // To libslirp.
  kDrop,            // Silently.
  kDns,             // A DNS query for our forwarder.
  kTcpReset,        // Refuse a TCP connection with a reset.
  kPortUnreachable,  // Refuse UDP with ICMP port unreachable.
  kProhibited,      // Refuse UDP with ICMP administratively prohibited.
};

struct GuestPolicy {
  bool allow_host_loopback = false;
};

// Classifies one frame from the guest. `packet` receives the parsed IPv4 packet when the
// frame is IPv4 (needed to answer kDns and the refusals).
Verdict ClassifyGuestFrame(std::span<const uint8_t> frame, const GuestPolicy& policy,
                           std::optional<Ipv4Packet>* packet);

}  // namespace boxlite::net

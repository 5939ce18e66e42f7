// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What the network helper does with each frame the guest sends, decided before libslirp
// sees it, so the isolation does not depend on libslirp's translation rules:
// - the host's loopback is never reachable: destinations in 127.0.0.0/8 and 0.0.0.0/8
//   (which a guest can only produce with raw sockets) are dropped, and TCP connection
//   attempts and UDP to the gateway 10.0.2.2 (which libslirp maps to 127.0.0.1) are
//   refused unless `allow_host` (the guest's side of connections to published ports,
//   which come from 10.0.2.2, passes);
// - egress (EgressAllowed): only public addresses. The host's own addresses, 10/8,
//   172.16/12, 192.168/16, 100.64/10 and 169.254/16 (cloud metadata) are refused, TCP with
//   a reset and UDP with ICMP "administratively prohibited", so a probe fails at once;
//   `allow_host` opens the host's own addresses (and its loopback at 10.0.2.2), never the
//   private ranges. The rule is applied to every packet, not only to a connection's
//   first, so an address the host gains later is closed for flows already open;
// - 10.0.2.3 answers DNS over UDP port 53 (our forwarder) and ping; everything else sent
//   to it is refused, because libslirp would forward it to the host's resolver address,
//   which may be a loopback one;
// - broadcast and multicast are dropped, except DHCP, which libslirp answers itself;
// - IPv6 and unknown EtherTypes are dropped (the guest network is IPv4 only; the IPv6
//   rule of EgressAllowed, global unicast only, is for the day it is not);
// - the guest's side of TCP connections to its published ports (segments from a published
//   port that do not open a connection) passes to any address: libslirp delivers such a
//   segment only to a connection it has (else it answers with a reset), so it opens nothing;
// - everything else (public addresses: TCP, UDP, ICMP) passes to libslirp.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "src/net/egress_policy.h"
#include "src/net/guest_network.h"
#include "src/net/host_addresses.h"
#include "src/net/packet.h"

namespace boxlite::net {

// The guest network every box sees (its addresses: src/net/guest_network.h).
constexpr uint16_t kDnsPort = 53;
constexpr size_t kMtu = 1500;

enum class Verdict {
  kPass,            // To libslirp.
  kDrop,            // Silently.
  kDns,             // A DNS query for our forwarder.
  kTcpReset,        // Refuse a TCP connection with a reset.
  kPortUnreachable,  // Refuse UDP with ICMP port unreachable.
  kProhibited,      // Refuse UDP with ICMP administratively prohibited.
  kIntercept,       // A TCP connection the egress allow-list inspects (flow_intercept.h).
};

struct GuestPolicy {
  // The explicit opt-in: the host's loopback (at 10.0.2.2) and its own addresses.
  bool allow_host = false;
  // The host's own addresses; nullptr: none known.
  const HostAddresses* host_addresses = nullptr;
  // The egress allow-list (egress_policy.h); nullptr or empty: none. With one, new flows
  // outside the guest network are decided by it (at `now_ms`, the pins' clock), and the
  // gateway is reached as host.boxlite.internal only on the ports it lists.
  const EgressPolicy* egress = nullptr;
  int64_t now_ms = 0;
  // The guest ports published (--publish). A client of one that is not on the host's
  // loopback keeps its own address in the guest (a Kubernetes node or pod: private space),
  // and the guest's side of that connection is let through to it whatever the egress rule.
  std::span<const uint16_t> published_guest_ports;
};

// Whether the guest may reach `dst` (outside its own 10.0.2.0/24) under `policy`.
bool EgressAllowed(uint32_t dst, const GuestPolicy& policy);
bool EgressAllowed(const Ipv6Address& dst, const GuestPolicy& policy);

// Classifies one frame from the guest. `packet` receives the parsed IPv4 packet when the
// frame is IPv4 (needed to answer kDns and the refusals).
Verdict ClassifyGuestFrame(std::span<const uint8_t> frame, const GuestPolicy& policy,
                           std::optional<Ipv4Packet>* packet);

}  // namespace boxlite::net

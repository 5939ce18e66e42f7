// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/guest_policy.h"

#include <gtest/gtest.h>

#include <random>

#include "src/net/test_frames.h"

namespace boxlite::net {
namespace {

using testframes::IcmpEchoFrame;
using testframes::TcpFrame;
using testframes::UdpFrame;

constexpr uint32_t kGuest = Ipv4(10, 0, 2, 15);
constexpr uint8_t kSyn = 0x02;

Verdict Classify(const Frame& f, bool allow_host_loopback = false) {
  std::optional<Ipv4Packet> packet;
  return ClassifyGuestFrame(f, GuestPolicy{allow_host_loopback}, &packet);
}

TEST(GuestPolicyTest, OutsideWorldPasses) {
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, Ipv4(192, 0, 2, 10), 80, kSyn)), Verdict::kPass);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(198, 18, 0, 2), 7, {1})), Verdict::kPass);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(8, 8, 8, 8), 53, {1})), Verdict::kPass);
  EXPECT_EQ(Classify(IcmpEchoFrame(kGuest, Ipv4(198, 18, 0, 2))), Verdict::kPass);
}

// Each range's first and last address and its neighbours just outside.
TEST(GuestPolicyTest, EgressRefusesPrivateSharedAndLinkLocalRanges) {
  struct Range {
    uint32_t first, last;
  };
  const Range kRefused[] = {
      {Ipv4(10, 0, 0, 0), Ipv4(10, 255, 255, 255)},
      {Ipv4(172, 16, 0, 0), Ipv4(172, 31, 255, 255)},
      {Ipv4(192, 168, 0, 0), Ipv4(192, 168, 255, 255)},
      {Ipv4(100, 64, 0, 0), Ipv4(100, 127, 255, 255)},
      {Ipv4(169, 254, 0, 0), Ipv4(169, 254, 255, 255)},
      {Ipv4(127, 0, 0, 0), Ipv4(127, 255, 255, 255)},
      {Ipv4(0, 0, 0, 0), Ipv4(0, 255, 255, 255)},
      {Ipv4(224, 0, 0, 0), Ipv4(239, 255, 255, 255)},
      {Ipv4(240, 0, 0, 0), Ipv4(255, 255, 255, 255)},
  };
  GuestPolicy policy;
  GuestPolicy host_allowed;
  host_allowed.allow_host = true;
  for (const auto& r : kRefused) {
    for (uint32_t a : {r.first, r.first + 1, (r.first >> 1) + (r.last >> 1), r.last}) {
      EXPECT_FALSE(EgressAllowed(a, policy)) << std::hex << a;
      // Opening the host opens its own addresses, never the ranges.
      EXPECT_FALSE(EgressAllowed(a, host_allowed)) << std::hex << a;
    }
  }
  for (uint32_t a : {Ipv4(9, 255, 255, 255), Ipv4(11, 0, 0, 0), Ipv4(172, 15, 255, 255),
                     Ipv4(172, 32, 0, 0), Ipv4(192, 167, 255, 255), Ipv4(192, 169, 0, 0),
                     Ipv4(100, 63, 255, 255), Ipv4(100, 128, 0, 0), Ipv4(169, 253, 255, 255),
                     Ipv4(169, 255, 0, 0), Ipv4(1, 0, 0, 0), Ipv4(126, 255, 255, 255),
                     Ipv4(128, 0, 0, 0), Ipv4(223, 255, 255, 255), Ipv4(192, 0, 2, 2),
                     Ipv4(203, 0, 113, 7), Ipv4(198, 51, 100, 1)}) {
    EXPECT_TRUE(EgressAllowed(a, policy)) << std::hex << a;
  }
}

TEST(GuestPolicyTest, MetadataAndPrivateAddressesAreRefusedFast) {
  // A reset for TCP and an ICMP error for UDP: the guest's probe fails at once.
  Frame metadata = TcpFrame(kGuest, 40000, Ipv4(169, 254, 169, 254), 80, kSyn);
  EXPECT_EQ(Classify(metadata), Verdict::kTcpReset);
  EXPECT_EQ(Classify(metadata, true), Verdict::kTcpReset);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(192, 168, 1, 1), 53, {1})),
            Verdict::kProhibited);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, Ipv4(10, 1, 2, 3), 22, kSyn)), Verdict::kTcpReset);
  // Mid-connection segments too: no flow to a refused address ever passes.
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, Ipv4(172, 16, 0, 1), 22, 0x10)),
            Verdict::kTcpReset);
  EXPECT_EQ(Classify(IcmpEchoFrame(kGuest, Ipv4(100, 64, 0, 1))), Verdict::kDrop);
}

TEST(GuestPolicyTest, HostsOwnAddressesNeedTheOptIn) {
  // Public and private addresses of the host's own interfaces alike.
  HostAddresses host({Ipv4(198, 51, 100, 1), Ipv4(192, 168, 7, 9)},
                     {Ipv6Address{0x20, 0x01, 0x04, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}});
  GuestPolicy policy;
  policy.host_addresses = &host;
  std::optional<Ipv4Packet> packet;
  Frame syn = TcpFrame(kGuest, 40000, Ipv4(198, 51, 100, 1), 8000, kSyn);
  EXPECT_EQ(ClassifyGuestFrame(syn, policy, &packet), Verdict::kTcpReset);
  EXPECT_EQ(ClassifyGuestFrame(UdpFrame(kGuest, 1, Ipv4(198, 51, 100, 1), 7, {1}), policy,
                               &packet),
            Verdict::kProhibited);
  EXPECT_FALSE(EgressAllowed(Ipv6Address{0x20, 0x01, 0x04, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 1},
                             policy));
  EXPECT_TRUE(EgressAllowed(Ipv4(198, 51, 100, 2), policy));
  policy.allow_host = true;
  EXPECT_EQ(ClassifyGuestFrame(syn, policy, &packet), Verdict::kPass);
  EXPECT_TRUE(EgressAllowed(Ipv4(192, 168, 7, 9), policy));
  EXPECT_FALSE(EgressAllowed(Ipv4(192, 168, 7, 10), policy));
  EXPECT_TRUE(EgressAllowed(Ipv6Address{0x20, 0x01, 0x04, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        0, 1},
                            policy));
  // Loopback stays closed even when the host's own set lists it (getifaddrs does): the
  // host's loopback is reached at 10.0.2.2 only.
  HostAddresses with_lo({Ipv4(127, 0, 0, 1)},
                        {Ipv6Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}});
  policy.host_addresses = &with_lo;
  EXPECT_FALSE(EgressAllowed(Ipv4(127, 0, 0, 1), policy));
  EXPECT_FALSE(EgressAllowed(Ipv6Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, policy));
}

Ipv6Address V6(std::initializer_list<uint16_t> groups) {
  Ipv6Address a{};
  size_t i = 0;
  for (uint16_t g : groups) {
    a[i++] = static_cast<uint8_t>(g >> 8);
    a[i++] = static_cast<uint8_t>(g);
  }
  return a;
}

TEST(GuestPolicyTest, EgressIpv6OnlyGlobalUnicast) {
  GuestPolicy policy;
  for (const auto& a : {
           V6({0, 0, 0, 0, 0, 0, 0, 0}),                  // ::
           V6({0, 0, 0, 0, 0, 0, 0, 1}),                  // ::1
           V6({0xfe80, 0, 0, 0, 0, 0, 0, 1}),             // link-local
           V6({0xfebf, 0xffff, 0, 0, 0, 0, 0, 1}),        // link-local, last /10
           V6({0xfec0, 0, 0, 0, 0, 0, 0, 1}),             // site-local
           V6({0xfc00, 0, 0, 0, 0, 0, 0, 1}),             // unique local
           V6({0xfdff, 0xffff, 0, 0, 0, 0, 0, 1}),        // unique local
           V6({0xff02, 0, 0, 0, 0, 0, 0, 1}),             // multicast
           V6({0x0064, 0xff9b, 0, 0, 0, 0, 0x0a00, 1}),   // NAT64 of 10.0.0.1
           V6({0x2001, 0x0db8, 0, 0, 0, 0, 0, 1}),        // documentation
           V6({0x2001, 0x0000, 0, 0, 0, 0, 0, 1}),        // Teredo
           V6({0x2001, 0x01ff, 0, 0, 0, 0, 0, 1}),        // IETF protocol assignments
           V6({0, 0, 0, 0, 0, 0xffff, 0xa9fe, 0xa9fe}),   // ::ffff:169.254.169.254
           V6({0, 0, 0, 0, 0, 0xffff, 0x7f00, 1}),        // ::ffff:127.0.0.1
           V6({0x2002, 0x0a00, 0x0001, 0, 0, 0, 0, 1}),   // 6to4 of 10.0.0.1
           V6({0x4000, 0, 0, 0, 0, 0, 0, 1}),             // outside 2000::/3
       }) {
    EXPECT_FALSE(EgressAllowed(a, policy));
  }
  for (const auto& a : {
           V6({0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888}),
           V6({0x2a00, 0x1450, 0, 0, 0, 0, 0, 1}),
           V6({0x3fff, 0xffff, 0, 0, 0, 0, 0, 1}),
           V6({0x2001, 0x0200, 0, 0, 0, 0, 0, 1}),
           V6({0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0202}),   // ::ffff:192.0.2.2
           V6({0x2002, 0xc000, 0x0202, 0, 0, 0, 0, 1}),   // 6to4 of 192.0.2.2
       }) {
    EXPECT_TRUE(EgressAllowed(a, policy));
  }
}

TEST(GuestPolicyTest, HostLoopbackAddressesAreDropped) {
  // Only raw sockets in the guest can produce these; libslirp would connect to them.
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, Ipv4(127, 0, 0, 1), 22, kSyn)), Verdict::kDrop);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, Ipv4(127, 1, 2, 3), 22, kSyn), true),
            Verdict::kDrop);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(127, 0, 0, 53), 53, {1})), Verdict::kDrop);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, Ipv4(0, 0, 0, 0), 22, kSyn)), Verdict::kDrop);
}

TEST(GuestPolicyTest, GatewayRefusedUnlessHostLoopbackAllowed) {
  Frame syn = TcpFrame(kGuest, 40000, kGatewayAddress, 8080, kSyn);
  Frame udp = UdpFrame(kGuest, 40000, kGatewayAddress, 9999, {1});
  EXPECT_EQ(Classify(syn), Verdict::kTcpReset);
  EXPECT_EQ(Classify(udp), Verdict::kProhibited);
  EXPECT_EQ(Classify(syn, true), Verdict::kPass);
  EXPECT_EQ(Classify(udp, true), Verdict::kPass);
  EXPECT_EQ(Classify(IcmpEchoFrame(kGuest, kGatewayAddress)), Verdict::kPass);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 68, kGatewayAddress, 67, {1})), Verdict::kPass);
}

TEST(GuestPolicyTest, GuestAnswersToPublishedPortClientsPass) {
  // Host clients of published ports appear as 10.0.2.2: the guest's SYN-ACK and the
  // rest of the connection go there; libslirp only connect()s for a bare SYN.
  EXPECT_EQ(Classify(TcpFrame(kGuest, 8080, kGatewayAddress, 40000, 0x12)), Verdict::kPass);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 8080, kGatewayAddress, 40000, 0x10)), Verdict::kPass);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 8080, kGatewayAddress, 40000, 0x11)), Verdict::kPass);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 8080, kGatewayAddress, 40000, 0x04)), Verdict::kPass);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 8080, kGatewayAddress, 40000, 0x03)), Verdict::kTcpReset);
  // Not to the name server: nothing there is published.
  EXPECT_EQ(Classify(TcpFrame(kGuest, 8080, kDnsAddress, 40000, 0x12)), Verdict::kTcpReset);
}

TEST(GuestPolicyTest, GuestAnswersToPublishedPortClientsOutsideTheHostPass) {
  // A client of published port 8080 from a private address (a Kubernetes node reaching a
  // pod's IP) keeps that address: the guest's side of the connection passes to it...
  const uint16_t published[] = {8080};
  GuestPolicy policy;
  policy.published_guest_ports = published;
  auto classify = [&](const Frame& f) {
    std::optional<Ipv4Packet> packet;
    return ClassifyGuestFrame(f, policy, &packet);
  };
  const uint32_t client = Ipv4(10, 89, 0, 1);
  EXPECT_EQ(classify(TcpFrame(kGuest, 8080, client, 40000, 0x12)), Verdict::kPass);
  EXPECT_EQ(classify(TcpFrame(kGuest, 8080, client, 40000, 0x10)), Verdict::kPass);
  EXPECT_EQ(classify(TcpFrame(kGuest, 8080, client, 40000, 0x11)), Verdict::kPass);
  // ...but a connection the guest opens there is refused, from the published port too,
  // and so is anything from a port that is not published.
  EXPECT_EQ(classify(TcpFrame(kGuest, 8080, client, 40000, kSyn)), Verdict::kTcpReset);
  EXPECT_EQ(classify(TcpFrame(kGuest, 8081, client, 40000, 0x12)), Verdict::kTcpReset);
  EXPECT_EQ(classify(UdpFrame(kGuest, 8080, client, 40000, {1})), Verdict::kProhibited);
  // Without published ports nothing changes.
  EXPECT_EQ(Classify(TcpFrame(kGuest, 8080, client, 40000, 0x12)), Verdict::kTcpReset);
}

TEST(GuestPolicyTest, NameServerAnswersOnlyDnsOverUdp) {
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, kDnsAddress, 53, {1})), Verdict::kDns);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, kDnsAddress, 5353, {1})), Verdict::kPortUnreachable);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, kDnsAddress, 53, kSyn)), Verdict::kTcpReset);
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, kDnsAddress, 22, kSyn), true), Verdict::kTcpReset);
  EXPECT_EQ(Classify(IcmpEchoFrame(kGuest, kDnsAddress)), Verdict::kPass);
}

TEST(GuestPolicyTest, FragmentsToVirtualHostsAreDropped) {
  Frame f = UdpFrame(kGuest, 40000, kDnsAddress, 53, {1, 2, 3});
  f[kEthernetHeaderLen + 6] = 0x20;  // More fragments.
  EXPECT_EQ(Classify(f), Verdict::kDrop);
  Frame g = UdpFrame(kGuest, 40000, kGatewayAddress, 9, {1, 2, 3});
  g[kEthernetHeaderLen + 7] = 0x08;  // A later fragment: no ports to judge.
  EXPECT_EQ(Classify(g), Verdict::kDrop);
}

TEST(GuestPolicyTest, OtherGuestNetworkAddressesBroadcastAndMulticastAreDropped) {
  EXPECT_EQ(Classify(TcpFrame(kGuest, 40000, Ipv4(10, 0, 2, 4), 80, kSyn)), Verdict::kDrop);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(10, 0, 2, 255), 137, {1})), Verdict::kDrop);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(255, 255, 255, 255), 9, {1})),
            Verdict::kDrop);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 5353, Ipv4(224, 0, 0, 251), 5353, {1})), Verdict::kDrop);
  // DHCP is answered inside libslirp.
  EXPECT_EQ(Classify(UdpFrame(0, 68, Ipv4(255, 255, 255, 255), 67, {1})), Verdict::kPass);
}

TEST(GuestPolicyTest, ArpPassesIpv6AndJunkAreDropped) {
  Frame arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(Classify(arp), Verdict::kPass);
  Frame v6(80, 0);
  v6[12] = 0x86;
  v6[13] = 0xdd;
  EXPECT_EQ(Classify(v6), Verdict::kDrop);
  EXPECT_EQ(Classify(Frame(5, 0)), Verdict::kDrop);
  Frame truncated = TcpFrame(kGuest, 40000, Ipv4(192, 0, 2, 1), 80, kSyn);
  truncated.resize(30);
  EXPECT_EQ(Classify(truncated), Verdict::kDrop);
}

TEST(GuestPolicyTest, SurvivesMutatedFrames) {
  // Untrusted input: flipped bytes and truncations of valid frames must classify (and be
  // answered) without reading out of bounds; ASan builds check the "without".
  std::vector<Frame> seeds = {
      TcpFrame(kGuest, 40000, kGatewayAddress, 22, kSyn),
      TcpFrame(kGuest, 40000, kDnsAddress, 53, kSyn),
      UdpFrame(kGuest, 40000, kDnsAddress, 53, {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}),
      UdpFrame(kGuest, 40000, kGatewayAddress, 9, {1, 2, 3}),
      IcmpEchoFrame(kGuest, Ipv4(192, 0, 2, 1)),
  };
  std::mt19937 rng(20260101);
  int answered = 0;
  for (int i = 0; i < 20000; ++i) {
    Frame f = seeds[rng() % seeds.size()];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) f[rng() % f.size()] = static_cast<uint8_t>(rng());
    if (rng() % 3 == 0) f.resize(rng() % (f.size() + 1));
    std::optional<Ipv4Packet> packet;
    Verdict v = ClassifyGuestFrame(f, GuestPolicy{}, &packet);
    switch (v) {
      case Verdict::kTcpReset:
      case Verdict::kIntercept:  // Not without an allow-list; answered like a reset.
        (void)BuildTcpReset(*packet, 1);
        ++answered;
        break;
      case Verdict::kPortUnreachable:
      case Verdict::kProhibited:
        (void)BuildIcmpUnreachable(*packet, kIcmpPortUnreachable, 1);
        ++answered;
        break;
      case Verdict::kDns:
        (void)UdpPayload(*packet);
        ++answered;
        break;
      case Verdict::kPass:
      case Verdict::kDrop:
        break;
    }
  }
  EXPECT_GT(answered, 0);
}

}  // namespace
}  // namespace boxlite::net

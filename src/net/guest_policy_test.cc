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
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(10, 213, 0, 2), 7, {1})), Verdict::kPass);
  EXPECT_EQ(Classify(UdpFrame(kGuest, 40000, Ipv4(8, 8, 8, 8), 53, {1})), Verdict::kPass);
  EXPECT_EQ(Classify(IcmpEchoFrame(kGuest, Ipv4(10, 213, 0, 2))), Verdict::kPass);
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

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/packet.h"

#include <gtest/gtest.h>

#include <numeric>

#include "src/net/test_frames.h"

namespace boxlite::net {
namespace {

using testframes::kGuestMac;
using testframes::kGatewayMac;

TEST(PacketTest, ParsesTcpFrame) {
  Frame f = testframes::TcpFrame(Ipv4(10, 0, 2, 15), 40000, Ipv4(192, 0, 2, 7), 443, 0x02);
  auto p = ParseIpv4Frame(f);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->src, Ipv4(10, 0, 2, 15));
  EXPECT_EQ(p->dst, Ipv4(192, 0, 2, 7));
  EXPECT_EQ(p->protocol, kIpProtoTcp);
  EXPECT_TRUE(p->has_ports);
  EXPECT_EQ(p->src_port, 40000);
  EXPECT_EQ(p->dst_port, 443);
  EXPECT_FALSE(p->fragment);
  EXPECT_EQ(p->eth_src, kGuestMac);
  EXPECT_EQ(p->eth_dst, kGatewayMac);
}

TEST(PacketTest, RejectsMalformedFrames) {
  Frame f = testframes::UdpFrame(Ipv4(10, 0, 2, 15), 1234, Ipv4(10, 0, 2, 3), 53, {1, 2, 3});
  EXPECT_TRUE(ParseIpv4Frame(f).has_value());
  for (size_t len = 0; len < kEthernetHeaderLen + 20; ++len) {
    EXPECT_FALSE(ParseIpv4Frame(std::span(f).first(len)).has_value()) << len;
  }
  Frame bad_version = f;
  bad_version[kEthernetHeaderLen] = 0x65;
  EXPECT_FALSE(ParseIpv4Frame(bad_version).has_value());
  Frame short_ihl = f;
  short_ihl[kEthernetHeaderLen] = 0x44;
  EXPECT_FALSE(ParseIpv4Frame(short_ihl).has_value());
  Frame long_total = f;
  long_total[kEthernetHeaderLen + 2] = 0x7f;  // Total length beyond the frame.
  EXPECT_FALSE(ParseIpv4Frame(long_total).has_value());
  Frame arp = f;
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_FALSE(ParseIpv4Frame(arp).has_value());
  EXPECT_EQ(EtherType(arp), kEtherTypeArp);
}

TEST(PacketTest, FragmentsHaveNoPortsAfterTheFirst) {
  Frame f = testframes::UdpFrame(Ipv4(10, 0, 2, 15), 1234, Ipv4(192, 0, 2, 1), 53, {1, 2, 3});
  f[kEthernetHeaderLen + 6] = 0x00;
  f[kEthernetHeaderLen + 7] = 0x10;  // Offset 128 bytes.
  auto p = ParseIpv4Frame(f);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->fragment);
  EXPECT_FALSE(p->first_fragment);
  EXPECT_FALSE(p->has_ports);
  EXPECT_FALSE(UdpPayload(*p).has_value());
}

TEST(PacketTest, ChecksumOfValidHeaderIsZero) {
  Frame f = testframes::UdpFrame(Ipv4(10, 0, 2, 15), 1234, Ipv4(10, 0, 2, 3), 53, {9, 9});
  auto p = ParseIpv4Frame(f);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(InternetChecksum(p->header), 0);
  // RFC 1071's example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
  const uint8_t rfc[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(InternetChecksum(rfc), 0x220d);
}

TEST(PacketTest, SmallUdpReplyIsOneFrameWithValidChecksums) {
  UdpEndpoints ends{kGatewayMac, kGuestMac, Ipv4(10, 0, 2, 3), 53, Ipv4(10, 0, 2, 15), 5353};
  std::vector<uint8_t> payload = {0xab, 0xcd, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  auto frames = BuildUdpFrames(ends, payload, 7, 1500);
  ASSERT_EQ(frames.size(), 1u);
  auto p = ParseIpv4Frame(frames[0]);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->src, Ipv4(10, 0, 2, 3));
  EXPECT_EQ(p->dst, Ipv4(10, 0, 2, 15));
  EXPECT_EQ(p->src_port, 53);
  EXPECT_EQ(p->dst_port, 5353);
  EXPECT_EQ(p->eth_dst, kGuestMac);
  EXPECT_EQ(InternetChecksum(p->header), 0);
  EXPECT_TRUE(testframes::UdpChecksumOk(*p));
  auto got = UdpPayload(*p);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::vector<uint8_t>(got->begin(), got->end()), payload);
}

TEST(PacketTest, LargeUdpReplyIsFragmentedAndReassembles) {
  UdpEndpoints ends{kGatewayMac, kGuestMac, Ipv4(10, 0, 2, 3), 53, Ipv4(10, 0, 2, 15), 5353};
  std::vector<uint8_t> payload(4000);
  std::iota(payload.begin(), payload.end(), 0);
  auto frames = BuildUdpFrames(ends, payload, 99, 1500);
  ASSERT_EQ(frames.size(), 3u);
  std::vector<uint8_t> datagram;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto p = ParseIpv4Frame(frames[i]);
    ASSERT_TRUE(p.has_value());
    EXPECT_LE(p->header.size() + p->payload.size(), 1500u);
    EXPECT_EQ(InternetChecksum(p->header), 0);
    EXPECT_TRUE(p->fragment);
    uint16_t frag = static_cast<uint16_t>((p->header[6] << 8) | p->header[7]);
    EXPECT_EQ(size_t{frag & 0x1fffu} * 8, datagram.size());
    EXPECT_EQ((frag & 0x2000) != 0, i + 1 < frames.size());
    EXPECT_EQ((p->header[4] << 8) | p->header[5], 99);
    datagram.insert(datagram.end(), p->payload.begin(), p->payload.end());
  }
  ASSERT_EQ(datagram.size(), payload.size() + 8);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), datagram.begin() + 8));
}

TEST(PacketTest, TcpResetAnswersSyn) {
  Frame syn = testframes::TcpFrame(Ipv4(10, 0, 2, 15), 40000, Ipv4(10, 0, 2, 2), 22, 0x02, 1000);
  auto p = ParseIpv4Frame(syn);
  ASSERT_TRUE(p.has_value());
  Frame rst = BuildTcpReset(*p, 5);
  auto r = ParseIpv4Frame(rst);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->src, Ipv4(10, 0, 2, 2));
  EXPECT_EQ(r->dst, Ipv4(10, 0, 2, 15));
  EXPECT_EQ(r->src_port, 22);
  EXPECT_EQ(r->dst_port, 40000);
  EXPECT_EQ(r->eth_dst, kGuestMac);
  EXPECT_EQ(r->eth_src, kGatewayMac);
  const uint8_t* tcp = r->payload.data();
  EXPECT_EQ(tcp[13], 0x14);  // RST|ACK.
  uint32_t ack = (uint32_t{tcp[8]} << 24) | (uint32_t{tcp[9]} << 16) | (tcp[10] << 8) | tcp[11];
  EXPECT_EQ(ack, 1001u);  // The SYN counts as one.
  EXPECT_TRUE(testframes::TcpChecksumOk(*r));
}

TEST(PacketTest, NoResetForReset) {
  Frame rst = testframes::TcpFrame(Ipv4(10, 0, 2, 15), 40000, Ipv4(10, 0, 2, 2), 22, 0x04);
  EXPECT_TRUE(BuildTcpReset(*ParseIpv4Frame(rst), 5).empty());
}

TEST(PacketTest, IcmpUnreachableQuotesTheOriginal) {
  Frame f = testframes::UdpFrame(Ipv4(10, 0, 2, 15), 1234, Ipv4(10, 0, 2, 2), 9999, {1, 2, 3, 4});
  auto p = ParseIpv4Frame(f);
  Frame icmp = BuildIcmpUnreachable(*p, kIcmpAdminProhibited, 3);
  auto r = ParseIpv4Frame(icmp);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->protocol, kIpProtoIcmp);
  EXPECT_EQ(r->src, Ipv4(10, 0, 2, 2));
  EXPECT_EQ(r->payload[0], 3);
  EXPECT_EQ(r->payload[1], kIcmpAdminProhibited);
  EXPECT_EQ(InternetChecksum(r->payload), 0);
  ASSERT_EQ(r->payload.size(), 8 + 20 + 8u);
  EXPECT_TRUE(std::equal(p->header.begin(), p->header.end(), r->payload.begin() + 8));
}

}  // namespace
}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/dns_forwarder.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

#include "src/net/guest_policy.h"
#include "src/net/test_frames.h"

namespace boxlite::net {
namespace {

constexpr uint32_t kGuest = Ipv4(10, 0, 2, 15);

// A query for "db.boxlite.test" A IN, with ID 0x1234.
std::vector<uint8_t> Query() {
  std::vector<uint8_t> q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  for (const char* label : {"db", "boxlite", "test"}) {
    q.push_back(static_cast<uint8_t>(std::strlen(label)));
    q.insert(q.end(), label, label + std::strlen(label));
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

// A UDP socket on 127.0.0.1 playing the upstream server.
struct FakeUpstream {
  base::UniqueFd fd;
  sockaddr_storage addr{};

  FakeUpstream() {
    fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    auto* sin = reinterpret_cast<sockaddr_in*>(&addr);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sockaddr_in);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  }
};

// Runs one poll round of the forwarder.
void Pump(DnsForwarder* fwd, int64_t now_ms, int wait_ms) {
  std::vector<pollfd> fds;
  int64_t timeout = -1;
  fwd->PreparePoll(&fds, now_ms, &timeout);
  ::poll(fds.data(), fds.size(), wait_ms);
  fwd->AfterPoll(fds, now_ms);
}

TEST(DnsForwarderTest, ParsesResolvConf) {
  auto servers = ParseResolvConf(
      "# comment\nnameserver 10.0.0.1\n  nameserver\t2001:db8::1 # x\nnameserverX 1.1.1.1\n"
      "search example.com\nnameserver fe80::1%eth0\nnameserver\n");
  EXPECT_EQ(servers, (std::vector<std::string>{"10.0.0.1", "2001:db8::1", "fe80::1%eth0"}));
}

TEST(DnsForwarderTest, ServerAddresses) {
  auto v4 = DnsServerAddress("10.213.0.2");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->ss_family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&*v4)->sin_port), 53);
  auto v6 = DnsServerAddress("2001:db8::1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->ss_family, AF_INET6);
  auto v4port = DnsServerAddress("127.0.0.1:5353");
  ASSERT_TRUE(v4port.ok());
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&*v4port)->sin_port), 5353);
  auto v6port = DnsServerAddress("[::1]:5353");
  ASSERT_TRUE(v6port.ok());
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in6*>(&*v6port)->sin6_port), 5353);
  EXPECT_TRUE(DnsServerAddress("[::1]").ok());
  for (const char* bad : {"dns.example", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:x", "[::1",
                          "[::1]x", "::1:53:zz", ""}) {
    EXPECT_TRUE(DnsServerAddress(bad).error().IsInvalidArgument()) << bad;
  }
}

TEST(DnsForwarderTest, ErrorResponseKeepsIdAndQuestion) {
  auto q = Query();
  q.insert(q.end(), {0, 0, 41, 2, 0});  // Trailing bytes (an OPT RR start) are cut.
  auto r = DnsErrorResponse(q, 2);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)[0], 0x12);
  EXPECT_EQ((*r)[1], 0x34);
  EXPECT_EQ((*r)[2], 0x81);  // QR and RD.
  EXPECT_EQ((*r)[3] & 0x0f, 2);
  EXPECT_EQ((*r)[5], 1);
  EXPECT_EQ(r->size(), Query().size());
  EXPECT_FALSE(DnsErrorResponse(std::vector<uint8_t>(5), 2).has_value());
}

TEST(DnsForwarderTest, RelaysQueryAndAnswer) {
  FakeUpstream upstream;
  std::vector<Frame> to_guest;
  DnsForwarder fwd({upstream.addr}, [&](std::span<const uint8_t> f) {
    to_guest.emplace_back(f.begin(), f.end());
  });
  Frame query = testframes::UdpFrame(kGuest, 41000, kDnsAddress, 53, Query());
  fwd.HandleQuery(*ParseIpv4Frame(query), 0);
  ASSERT_EQ(fwd.pending(), 1u);

  uint8_t buf[512];
  sockaddr_storage from{};
  socklen_t from_len = sizeof(from);
  ssize_t n = ::recvfrom(upstream.fd.get(), buf, sizeof(buf), 0,
                         reinterpret_cast<sockaddr*>(&from), &from_len);
  ASSERT_EQ(n, static_cast<ssize_t>(Query().size()));
  EXPECT_EQ(std::vector<uint8_t>(buf, buf + n), Query());
  // A stray datagram with another ID is ignored; then the answer.
  std::vector<uint8_t> stray = {0x99, 0x99, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0};
  ::sendto(upstream.fd.get(), stray.data(), stray.size(), 0, reinterpret_cast<sockaddr*>(&from),
           from_len);
  std::vector<uint8_t> answer = Query();
  answer[2] = 0x81;
  answer[3] = 0x80;
  answer[7] = 1;
  answer.insert(answer.end(), {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 213, 0, 2});
  ::sendto(upstream.fd.get(), answer.data(), answer.size(), 0,
           reinterpret_cast<sockaddr*>(&from), from_len);
  for (int i = 0; i < 50 && fwd.pending() > 0; ++i) Pump(&fwd, 1, 100);
  EXPECT_EQ(fwd.pending(), 0u);
  ASSERT_EQ(to_guest.size(), 1u);
  auto reply = ParseIpv4Frame(to_guest[0]);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->src, kDnsAddress);
  EXPECT_EQ(reply->src_port, 53);
  EXPECT_EQ(reply->dst, kGuest);
  EXPECT_EQ(reply->dst_port, 41000);
  EXPECT_EQ(reply->eth_dst, testframes::kGuestMac);
  EXPECT_TRUE(testframes::UdpChecksumOk(*reply));
  auto payload = UdpPayload(*reply);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(std::vector<uint8_t>(payload->begin(), payload->end()), answer);
}

TEST(DnsForwarderTest, TriesNextUpstreamAfterTimeoutThenFails) {
  FakeUpstream silent1;
  FakeUpstream silent2;
  std::vector<Frame> to_guest;
  DnsForwarder fwd({silent1.addr, silent2.addr}, [&](std::span<const uint8_t> f) {
    to_guest.emplace_back(f.begin(), f.end());
  });
  fwd.HandleQuery(*ParseIpv4Frame(testframes::UdpFrame(kGuest, 41000, kDnsAddress, 53, Query())),
                  0);
  uint8_t buf[512];
  EXPECT_GT(::recv(silent1.fd.get(), buf, sizeof(buf), 0), 0);
  // The clock is ours: past the first deadline the second server gets the query.
  Pump(&fwd, DnsForwarder::kAttemptTimeoutMs, 0);
  EXPECT_GT(::recv(silent2.fd.get(), buf, sizeof(buf), 0), 0);
  EXPECT_EQ(fwd.pending(), 1u);
  EXPECT_TRUE(to_guest.empty());
  Pump(&fwd, 2 * DnsForwarder::kAttemptTimeoutMs, 0);
  EXPECT_EQ(fwd.pending(), 0u);
  ASSERT_EQ(to_guest.size(), 1u);  // SERVFAIL.
  auto payload = UdpPayload(*ParseIpv4Frame(to_guest[0]));
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ((*payload)[3] & 0x0f, 2);
}

TEST(DnsForwarderTest, NoUpstreamAnswersServfailAtOnce) {
  std::vector<Frame> to_guest;
  DnsForwarder fwd({}, [&](std::span<const uint8_t> f) {
    to_guest.emplace_back(f.begin(), f.end());
  });
  fwd.HandleQuery(*ParseIpv4Frame(testframes::UdpFrame(kGuest, 41000, kDnsAddress, 53, Query())),
                  0);
  EXPECT_EQ(fwd.pending(), 0u);
  ASSERT_EQ(to_guest.size(), 1u);
  auto payload = UdpPayload(*ParseIpv4Frame(to_guest[0]));
  EXPECT_EQ((*payload)[0], 0x12);
  EXPECT_EQ((*payload)[3] & 0x0f, 2);
}

TEST(DnsForwarderTest, ShortQueriesAreDropped) {
  std::vector<Frame> to_guest;
  DnsForwarder fwd({}, [&](std::span<const uint8_t> f) {
    to_guest.emplace_back(f.begin(), f.end());
  });
  fwd.HandleQuery(
      *ParseIpv4Frame(testframes::UdpFrame(kGuest, 41000, kDnsAddress, 53, {1, 2})), 0);
  EXPECT_EQ(fwd.pending(), 0u);
  EXPECT_TRUE(to_guest.empty());
}

}  // namespace
}  // namespace boxlite::net

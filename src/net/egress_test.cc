// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
// The egress allow-list: patterns, DNS filtering and pinning, the Host/SNI parsers, the
// flow decision and the interception layer's rewriting.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "src/net/egress_policy.h"
#include "src/net/egress_rules.h"
#include "src/net/flow_sniff.h"
#include "src/net/guest_policy.h"
#include "src/net/test_frames.h"

namespace boxlite::net {
namespace {

EgressRules Rules(const std::vector<std::string>& p) {
  auto r = EgressRules::Parse(p);
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : EgressRules();
}

TEST(EgressRules, ParsesEveryForm) {
  auto host = ParseEgressRule("Example.COM.");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->kind, EgressRule::Kind::kHost);
  EXPECT_EQ(host->name, "example.com");
  EXPECT_EQ(host->port, 0);
  auto wild = ParseEgressRule("*.example.com:443");
  ASSERT_TRUE(wild.ok());
  EXPECT_EQ(wild->kind, EgressRule::Kind::kWildcard);
  EXPECT_EQ(wild->name, "example.com");
  EXPECT_EQ(wild->port, 443);
  auto v4 = ParseEgressRule("198.51.100.7:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->kind, EgressRule::Kind::kCidr4);
  EXPECT_EQ(v4->prefix, 32);
  EXPECT_EQ(v4->port, 8080);
  auto cidr = ParseEgressRule("10.1.2.3/8");
  ASSERT_TRUE(cidr.ok());
  EXPECT_EQ(cidr->v4, Ipv4(10, 0, 0, 0));
  EXPECT_EQ(cidr->prefix, 8);
  auto v6 = ParseEgressRule("[2001:db8::1]:443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->kind, EgressRule::Kind::kCidr6);
  EXPECT_EQ(v6->port, 443);
  auto v6cidr = ParseEgressRule("2001:db8::/32");
  ASSERT_TRUE(v6cidr.ok());
  EXPECT_EQ(v6cidr->prefix, 32);
  EXPECT_TRUE(ParseEgressRule("host.boxlite.internal:8000").ok());
}

TEST(EgressRules, RefusesBadPatternsWithOneLine) {
  for (const char* bad :
       {"", "*", "*.", "a*.com", "exa mple.com", "example.com:0", "example.com:65536",
        "example.com:http", "1.2.3.4/33", "1.2.3.4/", "2001:db8::1:443x", "[2001:db8::1",
        "[1.2.3.4]:80", "[2001:db8::1]x", "-bad.com", "bad-.com", "a..b", "2001:db8::1/129",
        "host/8"}) {
    auto r = ParseEgressRule(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << bad;
      EXPECT_EQ(r.error().ToString().find('\n'), std::string::npos);
    }
  }
  EXPECT_FALSE(ParseEgressRule(std::string(kMaxPatternLength + 1, 'a')).ok());
  EXPECT_FALSE(ParseEgressRule(std::string(64, 'a') + ".com").ok());
  std::vector<std::string> many(kMaxRules + 1, "example.com");
  EXPECT_FALSE(EgressRules::Parse(many).ok());
  EXPECT_TRUE(EgressRules::Parse(std::vector<std::string>(kMaxRules, "example.com")).ok());
}

TEST(EgressRules, MatchesNamesAddressesAndPorts) {
  EgressRules r = Rules({"api.example.com:443", "*.pkg.dev", "192.0.2.0/24", "[2001:db8::]:80",
                         "198.51.100.9"});
  EXPECT_TRUE(r.AllowsName("api.example.com"));
  EXPECT_TRUE(r.AllowsNameOnPort("api.example.com", 443));
  EXPECT_FALSE(r.AllowsNameOnPort("api.example.com", 80));
  EXPECT_FALSE(r.AllowsName("example.com"));
  EXPECT_FALSE(r.AllowsName("xapi.example.com"));
  EXPECT_TRUE(r.AllowsName("a.pkg.dev"));
  EXPECT_TRUE(r.AllowsName("a.b.pkg.dev"));
  EXPECT_FALSE(r.AllowsName("pkg.dev"));       // The apex is not under itself.
  EXPECT_FALSE(r.AllowsName("evilpkg.dev"));
  EXPECT_TRUE(r.AllowsAddress(Ipv4(192, 0, 2, 200), 22));
  EXPECT_FALSE(r.AllowsAddress(Ipv4(192, 0, 3, 1), 22));
  EXPECT_TRUE(r.AllowsAddress(Ipv4(198, 51, 100, 9), 1));
  std::array<uint8_t, 16> v6{0x20, 0x01, 0x0d, 0xb8};
  EXPECT_TRUE(r.AllowsAddress(v6, 80));
  EXPECT_FALSE(r.AllowsAddress(v6, 443));
  EXPECT_FALSE(r.AllowsHostAlias(0));
  EXPECT_TRUE(Rules({"host.boxlite.internal:8000"}).AllowsHostAlias(8000));
  EXPECT_FALSE(Rules({"host.boxlite.internal:8000"}).AllowsHostAlias(22));
}

// A DNS query for `name` (type A) with id 0x1234.
std::vector<uint8_t> Query(const std::string& name, uint16_t qtype = kDnsTypeA) {
  std::vector<uint8_t> m = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  std::string n = name + ".";
  for (size_t i = 0; i < n.size(); ++i) {
    if (n[i] == '.') {
      m.push_back(static_cast<uint8_t>(i - start));
      m.insert(m.end(), n.begin() + static_cast<ptrdiff_t>(start),
               n.begin() + static_cast<ptrdiff_t>(i));
      start = i + 1;
    }
  }
  m.push_back(0);
  m.push_back(static_cast<uint8_t>(qtype >> 8));
  m.push_back(static_cast<uint8_t>(qtype));
  m.push_back(0);
  m.push_back(1);
  return m;
}

TEST(EgressDns, ParsesQuestionsAndAnswers) {
  auto q = ParseDnsQuestion(Query("API.Example.com"));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->name, "api.example.com");
  EXPECT_EQ(q->qtype, kDnsTypeA);
  // Hostile: truncated, a label past the end, two questions.
  auto good = Query("a.example.com");
  EXPECT_FALSE(ParseDnsQuestion(std::span(good).first(good.size() - 3)));
  auto overrun = good;
  overrun[12] = 60;
  EXPECT_FALSE(ParseDnsQuestion(overrun));
  auto two = good;
  two[5] = 2;
  EXPECT_FALSE(ParseDnsQuestion(two));

  // A synthesized answer (the gateway for host.boxlite.internal) parses back.
  auto answer = DnsAddressResponse(Query("host.boxlite.internal"), kDnsTypeA, kGatewayAddress);
  ASSERT_TRUE(answer);
  auto addrs = ParseDnsAnswers(*answer);
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_EQ(addrs[0].v4, kGatewayAddress);
  EXPECT_EQ(addrs[0].ttl, 60u);
  // An AAAA question gets no record.
  auto none = DnsAddressResponse(Query("host.boxlite.internal", 28), 28, kGatewayAddress);
  ASSERT_TRUE(none);
  EXPECT_TRUE(ParseDnsAnswers(*none).empty());
  // A compression loop or a record past the end yields what parsed before it.
  auto cut = *answer;
  cut.resize(cut.size() - 2);
  EXPECT_TRUE(ParseDnsAnswers(cut).empty());
}

TEST(EgressPolicyTest, PinsExpireAndDecideFlows) {
  EgressPolicy policy(Rules({"api.example.com", "*.cdn.example:8443", "10.9.0.0/16:5432"}));
  const int64_t t0 = 1000000;
  uint32_t api = Ipv4(203, 0, 113, 10);
  EXPECT_EQ(policy.DecideFlow(api, 443, true, true, t0), EgressPolicy::Decision::kRefuse);
  policy.Pin(api, "api.example.com", 5, t0);  // Raised to kMinPinSeconds.
  EXPECT_EQ(policy.DecideFlow(api, 443, true, true, t0), EgressPolicy::Decision::kInspect);
  EXPECT_EQ(policy.DecideFlow(api, 80, true, true, t0), EgressPolicy::Decision::kInspect);
  EXPECT_EQ(policy.DecideFlow(api, 22, true, true, t0), EgressPolicy::Decision::kAllow);
  EXPECT_EQ(policy.DecideFlow(api, 53, false, true, t0), EgressPolicy::Decision::kAllow);
  // Private addresses are not opened by a pin (DNS rebinding), only by an explicit rule.
  EXPECT_EQ(policy.DecideFlow(api, 443, true, false, t0), EgressPolicy::Decision::kRefuse);
  EXPECT_EQ(policy.DecideFlow(Ipv4(10, 9, 1, 1), 5432, true, false, t0),
            EgressPolicy::Decision::kAllow);
  EXPECT_EQ(policy.DecideFlow(Ipv4(10, 9, 1, 1), 5433, true, false, t0),
            EgressPolicy::Decision::kRefuse);
  int64_t later = t0 + int64_t{EgressPolicy::kMinPinSeconds} * 1000;
  EXPECT_EQ(policy.DecideFlow(api, 443, true, true, later), EgressPolicy::Decision::kRefuse);
  // A port rule: the name's pin opens only its port.
  uint32_t cdn = Ipv4(203, 0, 113, 20);
  policy.Pin(cdn, "img.cdn.example", 300, t0);
  EXPECT_EQ(policy.DecideFlow(cdn, 8443, true, true, t0), EgressPolicy::Decision::kAllow);
  EXPECT_EQ(policy.DecideFlow(cdn, 443, true, true, t0), EgressPolicy::Decision::kRefuse);
  // Host/SNI: only names the rules allow on that port.
  EXPECT_TRUE(policy.AllowsInspectedName("api.example.com", 443));
  EXPECT_FALSE(policy.AllowsInspectedName("other.example.com", 443));
  EXPECT_FALSE(policy.AllowsInspectedName("", 443));
  EXPECT_FALSE(policy.AllowsInspectedName("img.cdn.example", 443));
}

TEST(EgressPolicyTest, PinTableIsBounded) {
  EgressPolicy policy(Rules({"*.example.com"}));
  for (uint32_t i = 0; i < EgressPolicy::kMaxPins + 100; ++i) {
    policy.Pin(Ipv4(203, 0, 0, 0) + i, "a.example.com", 60 + i, 0);
  }
  EXPECT_LE(policy.pinned(), EgressPolicy::kMaxPins);
  // The newest (longest-lived) survived, the soonest to expire went.
  EXPECT_EQ(policy.DecideFlow(Ipv4(203, 0, 0, 0) + EgressPolicy::kMaxPins + 99, 22, true, true, 1),
            EgressPolicy::Decision::kAllow);
  EXPECT_EQ(policy.DecideFlow(Ipv4(203, 0, 0, 0), 22, true, true, 1),
            EgressPolicy::Decision::kRefuse);
}

// A TLS ClientHello with `sni` (none when empty) and `extra` bytes of padding extension.
std::vector<uint8_t> ClientHello(const std::string& sni, size_t extra = 0, int sni_count = 1) {
  std::vector<uint8_t> ext;
  auto put16 = [](std::vector<uint8_t>* v, size_t x) {
    v->push_back(static_cast<uint8_t>(x >> 8));
    v->push_back(static_cast<uint8_t>(x));
  };
  for (int i = 0; i < sni_count && !sni.empty(); ++i) {
    put16(&ext, 0);
    put16(&ext, sni.size() + 5);
    put16(&ext, sni.size() + 3);
    ext.push_back(0);
    put16(&ext, sni.size());
    ext.insert(ext.end(), sni.begin(), sni.end());
  }
  if (extra > 0) {
    put16(&ext, 21);
    put16(&ext, extra);
    ext.insert(ext.end(), extra, 0);
  }
  std::vector<uint8_t> body = {3, 3};
  body.insert(body.end(), 32, 7);
  body.push_back(0);       // Session id.
  put16(&body, 2);
  body.push_back(0x13);
  body.push_back(0x01);
  body.push_back(1);
  body.push_back(0);       // Compression.
  put16(&body, ext.size());
  body.insert(body.end(), ext.begin(), ext.end());
  std::vector<uint8_t> hs = {1, 0, static_cast<uint8_t>(body.size() >> 8),
                             static_cast<uint8_t>(body.size())};
  hs.insert(hs.end(), body.begin(), body.end());
  // Records of at most 16384 bytes.
  std::vector<uint8_t> out;
  for (size_t at = 0; at < hs.size(); at += 16384) {
    size_t n = std::min<size_t>(16384, hs.size() - at);
    out.insert(out.end(), {22, 3, 1});
    put16(&out, n);
    out.insert(out.end(), hs.begin() + static_cast<ptrdiff_t>(at),
               hs.begin() + static_cast<ptrdiff_t>(at + n));
  }
  return out;
}

TEST(FlowSniff, ReadsTheServerNameOfAClientHello) {
  auto hello = ClientHello("API.Example.com");
  EXPECT_TRUE(LooksLikeTls(hello));
  auto s = SniffTlsServerName(hello);
  ASSERT_EQ(s.state, SniffState::kDone);
  EXPECT_EQ(s.name, "api.example.com");
  // Every truncation needs more, never a wrong answer.
  for (size_t n = 0; n < hello.size(); ++n) {
    EXPECT_EQ(SniffTlsServerName(std::span(hello).first(n)).state, SniffState::kNeedMore) << n;
  }
  // Many extensions, in two records.
  auto big = ClientHello("b.example.com", 12000);
  EXPECT_EQ(SniffTlsServerName(big).name, "b.example.com");
  auto none = SniffTlsServerName(ClientHello(""));
  EXPECT_EQ(none.state, SniffState::kDone);
  EXPECT_EQ(none.name, "");
}

TEST(FlowSniff, RefusesHostileClientHellos) {
  EXPECT_EQ(SniffTlsServerName(ClientHello("a.example.com", 0, 2)).state, SniffState::kInvalid);
  EXPECT_EQ(SniffTlsServerName(ClientHello("a.example.com", 17000)).state, SniffState::kInvalid);
  EXPECT_EQ(SniffTlsServerName(ClientHello("bad name")).state, SniffState::kInvalid);
  auto hello = ClientHello("a.example.com");
  auto lying = hello;
  lying[5 + 4 + 34] = 200;  // The session id's length runs past the message.
  EXPECT_EQ(SniffTlsServerName(lying).state, SniffState::kInvalid);
  auto not_hello = hello;
  not_hello[5] = 2;
  EXPECT_EQ(SniffTlsServerName(not_hello).state, SniffState::kInvalid);
  std::vector<uint8_t> http = {'G', 'E', 'T', ' '};
  EXPECT_EQ(SniffTlsServerName(http).state, SniffState::kInvalid);
}

Sniffed Http(const std::string& s) {
  return SniffHttpHost({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

TEST(FlowSniff, ReadsTheHostOfAnHttpRequest) {
  auto s = Http("GET / HTTP/1.1\r\nUser-Agent: x\r\nHOST: A.example.com:8080\r\n\r\nbody");
  ASSERT_EQ(s.state, SniffState::kDone);
  EXPECT_EQ(s.name, "a.example.com");
  EXPECT_EQ(Http("GET / HTTP/1.1\r\nHost: a.exa").state, SniffState::kNeedMore);
  EXPECT_EQ(Http("GET http://a.example.com/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n").name,
            "a.example.com");
  EXPECT_EQ(Http("GET / HTTP/1.0\r\n\r\n").name, "");
  for (const char* bad : {
           "GET / HTTP/1.1\r\nHost: a.example.com\r\nHost: b.example.com\r\n\r\n",
           "GET http://b.example.com/ HTTP/1.1\r\nHost: a.example.com\r\n\r\n",
           "GET / HTTP/1.1\nHost: a.example.com\n\n\r\n\r\n",
           "GET / HTTP/1.1\r\n Host: a.example.com\r\n\r\n",
           "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n",
       }) {
    EXPECT_EQ(Http(bad).state, SniffState::kInvalid) << bad;
  }
  EXPECT_EQ(Http(std::string(100, 'x')).state, SniffState::kInvalid);
  EXPECT_EQ(Http("GET / HTTP/1.1\r\nX: " + std::string(kMaxHttpHead, 'y')).state,
            SniffState::kInvalid);
}

// Hostile heads: random mutations and truncations of valid ones never crash, never read
// past the bound, and never yield a name that is not a normalized host name or literal.
TEST(FlowSniff, SurvivesMutatedHeads) {
  std::mt19937 rng(15);
  std::vector<std::vector<uint8_t>> seeds = {ClientHello("a.example.com"),
                                             ClientHello("b.example.com", 3000)};
  std::string http = "GET /x HTTP/1.1\r\nHost: a.example.com\r\nAccept: */*\r\n\r\n";
  seeds.emplace_back(http.begin(), http.end());
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> h = seeds[rng() % seeds.size()];
    int flips = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < flips; ++k) h[rng() % h.size()] = static_cast<uint8_t>(rng());
    if (rng() % 3 == 0) h.resize(rng() % (h.size() + 1));
    for (const Sniffed& s : {SniffTlsServerName(h), SniffHttpHost(h)}) {
      if (s.state != SniffState::kDone || s.name.empty()) continue;
      std::string normalized;
      bool ok = NormalizeHostName(s.name, &normalized) && normalized == s.name;
      bool literal = s.name.find_first_not_of("0123456789abcdef.:") == std::string::npos;
      EXPECT_TRUE(ok || literal) << s.name;
    }
    (void)ParseDnsQuestion(h);
    (void)ParseDnsAnswers(h);
  }
}

// The guest policy with an allow-list: what a SYN to each destination becomes.
TEST(EgressGuestPolicy, ClassifiesNewFlows) {
  EgressPolicy egress(
      Rules({"api.example.com", "10.200.0.0/24:8080", "host.boxlite.internal:9000"}));
  egress.Pin(Ipv4(203, 0, 113, 10), "api.example.com", 300, 0);
  GuestPolicy policy;
  policy.egress = &egress;
  policy.now_ms = 1;
  std::optional<Ipv4Packet> p;
  auto syn = [&](uint32_t dst, uint16_t port) {
    // A minimal Ethernet+IPv4+TCP SYN.
    std::vector<uint8_t> f(14 + 20 + 20, 0);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16] = 0;
    f[17] = 40;
    f[22] = 64;
    f[23] = kIpProtoTcp;
    uint32_t src = kGuestAddress;
    for (int i = 0; i < 4; ++i) {
      f[26 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
      f[30 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
    }
    f[34] = 0x9c;
    f[35] = 0x40;
    f[36] = static_cast<uint8_t>(port >> 8);
    f[37] = static_cast<uint8_t>(port);
    f[46] = 0x50;
    f[47] = kTcpSyn;
    return ClassifyGuestFrame(f, policy, &p);
  };
  EXPECT_EQ(syn(Ipv4(203, 0, 113, 10), 443), Verdict::kIntercept);
  EXPECT_EQ(syn(Ipv4(203, 0, 113, 10), 22), Verdict::kPass);
  EXPECT_EQ(syn(Ipv4(203, 0, 113, 11), 443), Verdict::kTcpReset);
  EXPECT_EQ(syn(Ipv4(10, 200, 0, 5), 8080), Verdict::kPass);
  EXPECT_EQ(syn(Ipv4(10, 200, 0, 5), 80), Verdict::kTcpReset);
  EXPECT_EQ(syn(kGatewayAddress, 9000), Verdict::kPass);
  EXPECT_EQ(syn(kGatewayAddress, 9001), Verdict::kTcpReset);
  EXPECT_EQ(syn(Ipv4(127, 0, 0, 1), 9000), Verdict::kDrop);
  // UDP: each datagram is decided (a name's pin on any port here; other addresses get
  // ICMP "administratively prohibited").
  Frame udp_ok = testframes::UdpFrame(kGuestAddress, 5000, Ipv4(203, 0, 113, 10), 4433, {1});
  EXPECT_EQ(ClassifyGuestFrame(udp_ok, policy, &p), Verdict::kPass);
  Frame udp_no = testframes::UdpFrame(kGuestAddress, 5000, Ipv4(203, 0, 113, 11), 4433, {1});
  EXPECT_EQ(ClassifyGuestFrame(udp_no, policy, &p), Verdict::kProhibited);
  // Segments of connections already open to a public address pass (a pin may expire).
  Frame ack = testframes::TcpFrame(kGuestAddress, 5000, Ipv4(203, 0, 113, 11), 443, kTcpAck);
  EXPECT_EQ(ClassifyGuestFrame(ack, policy, &p), Verdict::kPass);
}

}  // namespace
}  // namespace boxlite::net

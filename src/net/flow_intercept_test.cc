// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
// The interception layer in-process: the NAT rewriting of guest frames (checksums stay
// valid), and whole flows over 127.0.0.1 sockets: this test plays libslirp (it connects to
// the listener) and the upstream server.
#include "src/net/flow_intercept.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "src/net/test_frames.h"

namespace boxlite::net {
namespace {

using testframes::TcpChecksumOk;
using testframes::TcpFrame;

std::shared_ptr<EgressPolicy> Policy(const std::vector<std::string>& patterns) {
  auto rules = EgressRules::Parse(patterns);
  EXPECT_TRUE(rules.ok());
  return std::make_shared<EgressPolicy>(std::move(*rules));
}

TEST(FlowIntercept, RewritesBothWaysWithValidChecksums) {
  auto f = FlowInterceptor::Create({Policy({"a.test"}), nullptr, {}, 4});
  ASSERT_TRUE(f.ok());
  uint32_t dst = Ipv4(203, 0, 113, 10);
  Frame syn = TcpFrame(kGuestAddress, 40000, dst, 443, kTcpSyn);
  auto p = ParseIpv4Frame(syn);
  Frame out;
  // Not selected: untouched.
  ASSERT_FALSE((*f)->RewriteFromGuest(*p, syn, false, &out));
  ASSERT_TRUE((*f)->RewriteFromGuest(*p, syn, true, &out));
  auto q = ParseIpv4Frame(out);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->dst, kGatewayAddress);
  EXPECT_EQ(q->dst_port, (*f)->listen_port());
  EXPECT_EQ(InternetChecksum(q->header), 0);
  EXPECT_TRUE(TcpChecksumOk(*q));
  // Later segments of that connection follow; another connection does not.
  Frame data = TcpFrame(kGuestAddress, 40000, dst, 443, kTcpAck, 2, 5, {'h', 'i'});
  EXPECT_TRUE((*f)->RewriteFromGuest(*ParseIpv4Frame(data), data, false, &out));
  Frame other = TcpFrame(kGuestAddress, 40001, dst, 443, kTcpAck, 2, 5);
  EXPECT_FALSE((*f)->RewriteFromGuest(*ParseIpv4Frame(other), other, false, &out));
  // Replies from the listener look like they come from the original destination.
  Frame reply = TcpFrame(kGatewayAddress, (*f)->listen_port(), kGuestAddress, 40000,
                         kTcpSyn | kTcpAck, 9, 2);
  ASSERT_TRUE((*f)->RewriteToGuest(reply, &out));
  auto r = ParseIpv4Frame(out);
  EXPECT_EQ(r->src, dst);
  EXPECT_EQ(r->src_port, 443);
  EXPECT_EQ(InternetChecksum(r->header), 0);
  EXPECT_TRUE(TcpChecksumOk(*r));
  Frame unrelated = TcpFrame(kGatewayAddress, 22, kGuestAddress, 40000, kTcpAck, 9, 2);
  EXPECT_FALSE((*f)->RewriteToGuest(unrelated, &out));
  // A new connection from the same guest port that is not selected forgets the old one.
  EXPECT_FALSE((*f)->RewriteFromGuest(*p, syn, false, &out));
  EXPECT_FALSE((*f)->RewriteFromGuest(*ParseIpv4Frame(data), data, false, &out));
}

TEST(FlowIntercept, DivertedTableIsBounded) {
  auto f = FlowInterceptor::Create({Policy({"a.test"}), nullptr, {}, 4});
  ASSERT_TRUE(f.ok());
  Frame out;
  for (uint32_t i = 0; i < FlowInterceptor::kMaxDiverted + 10; ++i) {
    Frame syn = TcpFrame(kGuestAddress, static_cast<uint16_t>(1 + i % 60000),
                         Ipv4(203, 0, 113, 10) + i / 60000, 443, kTcpSyn);
    (*f)->RewriteFromGuest(*ParseIpv4Frame(syn), syn, true, &out);
  }
  EXPECT_LE((*f)->diverted(), FlowInterceptor::kMaxDiverted);
}

uint16_t LocalPort(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

base::UniqueFd Listen() {
  base::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  EXPECT_EQ(::listen(s.get(), 8), 0);
  return s;
}

base::UniqueFd Connect(uint16_t port) {
  base::UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  return c;
}

// Makes the guest's SYN from guest port `guest_port` to 127.0.0.1:`upstream_port` (selected)
// and connects to the listener as libslirp would: returns the guest's end.
base::UniqueFd DivertedGuest(FlowInterceptor& f, uint16_t guest_port, uint16_t upstream_port) {
  Frame syn = TcpFrame(kGuestAddress, guest_port, Ipv4(127, 0, 0, 1), upstream_port, kTcpSyn);
  Frame out;
  EXPECT_TRUE(f.RewriteFromGuest(*ParseIpv4Frame(syn), syn, true, &out));
  base::UniqueFd guest = Connect(f.listen_port());
  uint16_t slirp_port = LocalPort(guest.get());
  std::vector<pollfd> fds;
  f.PreparePoll(&fds);
  ::poll(fds.data(), fds.size(), 5000);
  f.AfterPoll(fds, [slirp_port, guest_port](uint16_t peer)
                       -> std::optional<FlowInterceptor::GuestEnd> {
    if (peer != slirp_port) return std::nullopt;
    return FlowInterceptor::GuestEnd{kGuestAddress, guest_port};
  });
  return guest;
}

// Plays one guest connection through the layer: `head` is what the guest sends first.
// Returns what the guest reads back until the end (or "RESET"), and what the upstream
// server received.
std::pair<std::string, std::string> Flow(const std::string& head, FlowHandler handler = nullptr) {
  base::UniqueFd upstream_listener = Listen();
  uint16_t upstream_port = LocalPort(upstream_listener.get());
  auto f = FlowInterceptor::Create({Policy({"a.test"}), handler, {}, 4});
  EXPECT_TRUE(f.ok());
  base::UniqueFd guest = DivertedGuest(**f, 41000, upstream_port);
  std::string got_upstream;
  int done[2];
  EXPECT_EQ(::pipe(done), 0);
  base::UniqueFd done_read(done[0]), done_write(done[1]);
  std::thread server([&]() {
    // A connection, or the end of the guest's side with none pending (a connection the
    // layer made is in the backlog before its connect() returned, so it is seen first).
    pollfd p[2] = {{upstream_listener.get(), POLLIN, 0}, {done_read.get(), POLLIN, 0}};
    ::poll(p, 2, -1);
    if (!(p[0].revents & POLLIN)) return;
    base::UniqueFd c(::accept(upstream_listener.get(), nullptr, nullptr));
    char buf[4096];
    ssize_t n = ::recv(c.get(), buf, sizeof(buf), 0);
    if (n > 0) got_upstream.assign(buf, static_cast<size_t>(n));
    ::send(c.get(), "pong", 4, MSG_NOSIGNAL);
  });
  ::send(guest.get(), head.data(), head.size(), MSG_NOSIGNAL);
  std::string back;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(guest.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      back = errno == ECONNRESET ? "RESET" : "ERROR";
      break;
    }
    if (n == 0) break;
    back.append(buf, static_cast<size_t>(n));
  }
  done_write.reset();
  server.join();
  return {back, got_upstream};
}

TEST(FlowIntercept, AnAllowedHostIsSplicedToTheOriginalDestination) {
  std::string req = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
  auto [back, upstream] = Flow(req);
  EXPECT_EQ(upstream, req);
  EXPECT_EQ(back, "pong");
}

TEST(FlowIntercept, AnotherHostIsResetAndNeverReachesTheServer) {
  auto [back, upstream] = Flow("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n");
  EXPECT_EQ(back, "RESET");
  EXPECT_EQ(upstream, "");
  // A TLS record that is not a ClientHello.
  auto [back2, upstream2] = Flow(std::string("\x16\x03\x01\x00\x05" "garbage", 12));
  EXPECT_EQ(back2, "RESET");
  EXPECT_EQ(upstream2, "");
}

// A kept-alive HTTP connection: the first request is allowed and answered; the second,
// on the same connection, names another host: the guest sees a reset and the server never
// receives any of it. The same when the first asked for an upgrade the server ignored.
class KeptAlive : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(FlowIntercept, KeptAlive,
                         ::testing::Values("GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n",
                                           "GET /1 HTTP/1.1\r\nHost: a.test\r\n"
                                           "Connection: Upgrade\r\nUpgrade: x\r\n\r\n"));

TEST_P(KeptAlive, ALaterRequestOnTheConnectionIsCheckedToo) {
  base::UniqueFd upstream_listener = Listen();
  uint16_t upstream_port = LocalPort(upstream_listener.get());
  auto f = FlowInterceptor::Create({Policy({"a.test"}), nullptr, {}, 4});
  ASSERT_TRUE(f.ok());
  base::UniqueFd guest = DivertedGuest(**f, 41001, upstream_port);
  const std::string first = GetParam();
  std::string got_upstream;
  std::thread server([&]() {
    base::UniqueFd c(::accept(upstream_listener.get(), nullptr, nullptr));
    char buf[4096];
    bool answered = false;
    while (true) {
      ssize_t n = ::recv(c.get(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      got_upstream.append(buf, static_cast<size_t>(n));
      if (!answered && got_upstream.size() >= first.size()) {
        answered = true;
        const char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        ::send(c.get(), kOk, sizeof(kOk) - 1, MSG_NOSIGNAL);
      }
    }
  });
  ASSERT_EQ(::send(guest.get(), first.data(), first.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(first.size()));
  std::string back;
  char buf[4096];
  while (back.find("\r\n\r\nok") == std::string::npos) {
    ssize_t n = ::recv(guest.get(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    back.append(buf, static_cast<size_t>(n));
  }
  const std::string second = "GET /2 HTTP/1.1\r\nHost: b.test\r\n\r\n";
  ::send(guest.get(), second.data(), second.size(), MSG_NOSIGNAL);
  std::string end;
  while (true) {
    ssize_t n = ::recv(guest.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      end = errno == ECONNRESET ? "RESET" : "ERROR";
      break;
    }
    if (n == 0) break;
  }
  server.join();
  EXPECT_EQ(end, "RESET");
  EXPECT_EQ(got_upstream, first);
}

TEST(FlowIntercept, AHandlerCanTakeTheFlowAfterTheHeadWasRead) {
  std::string seen;
  auto [back, upstream] = Flow("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n",
                               [&seen](InterceptedFlow& flow) {
                                 seen = flow.name + "|" + flow.head.substr(0, 6);
                                 ::send(flow.guest.get(), "mine", 4, MSG_NOSIGNAL);
                                 ::send(flow.upstream.get(), "H", 1, MSG_NOSIGNAL);
                                 return true;
                               });
  EXPECT_EQ(seen, "a.test|GET /x");
  EXPECT_EQ(back, "mine");
  EXPECT_EQ(upstream, "H");
}

TEST(FlowIntercept, SpliceMovesEverythingBothWaysAndPassesTheEnds) {
  int a[2], b[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
  base::UniqueFd guest_far(a[0]), guest(a[1]), upstream(b[0]), upstream_far(b[1]);
  const std::string big(4 << 20, 'x');  // Far more than the sockets buffer: backpressure.
  SpliceCounts counts;
  std::thread splice([&]() { counts = Splice(guest.get(), upstream.get(), "head:"); });
  std::thread writer([&]() {
    size_t off = 0;
    while (off < big.size()) {
      ssize_t n = ::send(guest_far.get(), big.data() + off, big.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::shutdown(guest_far.get(), SHUT_WR);
  });
  std::string got;
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(upstream_far.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  writer.join();
  EXPECT_EQ(got.size(), big.size() + 5);
  EXPECT_EQ(got.substr(0, 5), "head:");
  EXPECT_EQ(got.substr(5), big);
  // The other way, then its end: the splice is over.
  ASSERT_EQ(::send(upstream_far.get(), "reply", 5, MSG_NOSIGNAL), 5);
  ::shutdown(upstream_far.get(), SHUT_WR);
  std::string back;
  while (true) {
    ssize_t n = ::recv(guest_far.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    back.append(buf, static_cast<size_t>(n));
  }
  splice.join();
  EXPECT_EQ(back, "reply");
  EXPECT_EQ(counts.a_to_b, big.size() + 5);
  EXPECT_EQ(counts.b_to_a, 5u);
}

TEST(FlowIntercept, AConnectionNoGuestFlowMadeIsClosed) {
  auto f = FlowInterceptor::Create({Policy({"a.test"}), nullptr, {}, 4});
  ASSERT_TRUE(f.ok());
  base::UniqueFd stranger = Connect((*f)->listen_port());
  std::vector<pollfd> fds;
  (*f)->PreparePoll(&fds);
  ::poll(fds.data(), fds.size(), 5000);
  (*f)->AfterPoll(fds, [](uint16_t) { return std::nullopt; });
  char c;
  EXPECT_LE(::recv(stranger.get(), &c, 1, 0), 0);
}

}  // namespace
}  // namespace boxlite::net

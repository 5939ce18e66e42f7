// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The real boxlite-net, launched with vmm::LaunchNetHelper, with this test playing QEMU
// and the guest on the other end of the stream socket. Traffic stays on 127.0.0.1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "src/base/strings.h"
#include "src/net/guest_policy.h"
#include "src/net/packet.h"
#include "src/net/stream_framing.h"
#include "src/net/test_frames.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"
#include "src/vmm/net_helper.h"
#include "src/vmm/vm_jail.h"

namespace boxlite::net {
namespace {

using Clock = std::chrono::steady_clock;
using testframes::kGuestMac;

constexpr uint32_t kGuest = Ipv4(10, 0, 2, 15);
constexpr uint8_t kSyn = 0x02;

// Launched in the jail a box's helper gets (src/vmm/vm_jail.h), as the runtime does.
vmm::NetOptions Options() {
  vmm::NetOptions o;
  o.helper_binary = BOXLITE_NET_HELPER_FOR_TEST;
  o.dns_servers = {"127.0.0.1:9"};  // Never the host's resolvers from a test.
  vmm::VmJailInputs inputs;
  inputs.box_id = base::StrFormat("net-helper-test-%d", static_cast<int>(::getpid()));
  inputs.memory_mib = 128;
  auto plan = vmm::PlanVmJail(inputs);
  EXPECT_TRUE(plan.ok()) << plan.error().ToString();
  if (plan.ok()) o.jail = plan->net;
  return o;
}

// A TCP listener on 127.0.0.1 with an ephemeral port.
struct Listener {
  base::UniqueFd fd;
  uint16_t port = 0;
  Listener() {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(fd.get(), 8), 0);
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
  }
  // True when a connection arrives within `wait`.
  bool Accepts(std::chrono::milliseconds wait) {
    pollfd p = {fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return false;
    base::UniqueFd c(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    return static_cast<bool>(c);
  }
};

// The QEMU side of the helper's socket: frames in and out.
class FakeQemu {
 public:
  explicit FakeQemu(int fd) : fd_(fd) {}

  void Send(const Frame& frame) {
    std::string wire;
    AppendFramed(frame, &wire);
    ASSERT_TRUE(sys::WriteAll(fd_, wire).ok());
  }

  // The next frame the helper sends, answering its ARP requests for the guest on the way;
  // nullopt on timeout or end of stream.
  std::optional<Frame> Receive(std::chrono::milliseconds wait = std::chrono::seconds(10)) {
    auto deadline = Clock::now() + wait;
    while (true) {
      auto next = reader_.Next();
      if (!next.ok()) return std::nullopt;
      if (next->has_value()) {
        Frame f((*next)->begin(), (*next)->end());
        if (AnswerArp(f)) continue;
        return f;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p = {fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return std::nullopt;
      auto tail = reader_.WritableTail(65536);
      ssize_t n = ::read(fd_, tail.data(), tail.size());
      if (n <= 0) return std::nullopt;
      reader_.Commit(static_cast<size_t>(n));
    }
  }

  // The next IPv4 frame that `match` accepts, skipping others.
  template <typename Pred>
  std::optional<Frame> ReceiveIpv4(Pred match,
                                   std::chrono::milliseconds wait = std::chrono::seconds(10)) {
    auto deadline = Clock::now() + wait;
    while (Clock::now() < deadline) {
      auto f = Receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                             Clock::now()));
      if (!f) return std::nullopt;
      auto p = ParseIpv4Frame(*f);
      if (p && match(*p)) return f;
    }
    return std::nullopt;
  }

 private:
  // Replies to "who has 10.0.2.15" as the guest would.
  bool AnswerArp(const Frame& f) {
    if (EtherType(f) != kEtherTypeArp || f.size() < 42) return false;
    const uint8_t* arp = f.data() + kEthernetHeaderLen;
    uint32_t target = (uint32_t{arp[24]} << 24) | (uint32_t{arp[25]} << 16) |
                      (uint32_t{arp[26]} << 8) | arp[27];
    if (arp[7] != 1 || target != kGuest) return true;
    Frame reply(42);
    std::copy(f.begin() + 6, f.begin() + 12, reply.begin());  // To the asker.
    std::copy(kGuestMac.begin(), kGuestMac.end(), reply.begin() + 6);
    reply[12] = 0x08;
    reply[13] = 0x06;
    uint8_t* r = reply.data() + kEthernetHeaderLen;
    std::copy(arp, arp + 6, r);  // htype, ptype, hlen, plen.
    r[6] = 0;
    r[7] = 2;
    std::copy(kGuestMac.begin(), kGuestMac.end(), r + 8);
    std::copy(arp + 24, arp + 28, r + 14);  // Our IP.
    std::copy(arp + 8, arp + 18, r + 18);   // Their MAC and IP.
    Send(reply);
    return true;
  }

  int fd_;
  FrameReader reader_;
};

bool IsTcp(const Ipv4Packet& p, uint8_t flag) {
  return p.protocol == kIpProtoTcp && p.payload.size() >= 20 && (p.payload[13] & flag) != 0;
}

TEST(NetHelperTest, ReportsReadyAndExitsWhenQemuCloses) {
  auto net = vmm::LaunchNetHelper(Options());
  ASSERT_TRUE(net.ok()) << net.error().ToString();
  EXPECT_TRUE(net->ports.empty());
  EXPECT_TRUE(net->process.running());
  net->qemu_end.reset();
  auto status = net->process.WaitFor(std::chrono::seconds(30));
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(status->has_value()) << "boxlite-net outlived its QEMU socket";
  EXPECT_TRUE(WIFEXITED(**status) && WEXITSTATUS(**status) == 0)
      << sys::DescribeWaitStatus(**status);
}

TEST(NetHelperTest, ExitsWhenItsOwnerExits) {
  // The owner is a `sleep` we kill; the helper must notice through its pidfd.
  sys::SpawnOptions owner_spawn;
  owner_spawn.argv = {"sleep", "600"};
  auto owner = sys::Subprocess::Spawn(owner_spawn);
  ASSERT_TRUE(owner.ok());
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  base::UniqueFd ours(pair[0]);
  base::UniqueFd theirs(pair[1]);
  sys::SpawnOptions spawn;
  spawn.argv = {BOXLITE_NET_HELPER_FOR_TEST, "--fd", std::to_string(theirs.get()), "--dns",
                "127.0.0.1:9", "--owner-pid", std::to_string(owner->pid())};
  spawn.keep_fds = {theirs.get()};
  auto helper = sys::Subprocess::Spawn(spawn);
  ASSERT_TRUE(helper.ok());
  theirs.reset();
  auto still = helper->WaitFor(std::chrono::milliseconds(200));
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE(still->has_value()) << "exited while its owner lives";
  owner->Kill();
  auto status = helper->WaitFor(std::chrono::seconds(30));
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(status->has_value()) << "boxlite-net outlived its owner";
  EXPECT_TRUE(WIFEXITED(**status) && WEXITSTATUS(**status) == 0);
}

TEST(NetHelperTest, PublishedPortZeroIsReportedAndForwardsToTheGuest) {
  vmm::NetOptions o = Options();
  o.ports = {{0, 80}, {0, 8000}};
  auto net = vmm::LaunchNetHelper(o);
  ASSERT_TRUE(net.ok()) << net.error().ToString();
  ASSERT_EQ(net->ports.size(), 2u);
  EXPECT_NE(net->ports[0].host_port, 0);
  EXPECT_NE(net->ports[1].host_port, 0);
  EXPECT_NE(net->ports[0].host_port, net->ports[1].host_port);
  EXPECT_EQ(net->ports[1].guest_port, 8000);

  // A host client on 127.0.0.1:<bound> becomes a SYN to the guest's port 8000.
  base::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(net->ports[1].host_port);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  FakeQemu qemu(net->qemu_end.get());
  auto syn = qemu.ReceiveIpv4([](const Ipv4Packet& p) { return IsTcp(p, kSyn); });
  ASSERT_TRUE(syn.has_value()) << "no SYN reached the guest";
  auto p = ParseIpv4Frame(*syn);
  EXPECT_EQ(p->dst, kGuest);
  EXPECT_EQ(p->dst_port, 8000);
  EXPECT_EQ(p->src, kGatewayAddress);  // Host clients appear as the gateway.
  EXPECT_EQ(p->eth_dst, kGuestMac);

  // The guest accepts and sends a line; the host client reads it.
  uint32_t client_seq = testframes::TcpSeq(*p) + 1;
  uint16_t client_port = p->src_port;
  qemu.Send(testframes::TcpFrame(kGuest, 8000, kGatewayAddress, client_port, 0x12, 5000,
                                 client_seq));
  std::vector<uint8_t> line = {'h', 'i', '\n'};
  qemu.Send(testframes::TcpFrame(kGuest, 8000, kGatewayAddress, client_port, 0x18, 5001,
                                 client_seq, line));
  pollfd pfd = {client.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "the guest's data never reached the host client";
  char buf[16] = {};
  EXPECT_EQ(::recv(client.get(), buf, sizeof(buf), 0), 3);
  EXPECT_EQ(std::string(buf, 3), "hi\n");
}

TEST(NetHelperTest, PortInUseIsAClearErrorBeforeBoot) {
  Listener busy;
  vmm::NetOptions o = Options();
  o.ports = {{busy.port, 80}};
  auto net = vmm::LaunchNetHelper(o);
  ASSERT_FALSE(net.ok());
  EXPECT_TRUE(net.error().IsAlreadyExists()) << net.error().ToString();
  EXPECT_NE(net.error().message().find(base::StrFormat("127.0.0.1:%u is in use", busy.port)),
            std::string::npos)
      << net.error().ToString();
}

TEST(NetHelperTest, BadDnsServerIsInvalidArgument) {
  vmm::NetOptions o = Options();
  o.dns_servers = {"not-an-address"};
  auto net = vmm::LaunchNetHelper(o);
  ASSERT_FALSE(net.ok());
  EXPECT_TRUE(net.error().IsInvalidArgument()) << net.error().ToString();
  EXPECT_NE(net.error().message().find("not-an-address"), std::string::npos);
}

TEST(NetHelperTest, BadArgumentsExitWithUsageError) {
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  base::UniqueFd rd(pipefd[0]);
  base::UniqueFd wr(pipefd[1]);
  sys::SpawnOptions spawn;
  spawn.argv = {BOXLITE_NET_HELPER_FOR_TEST, "--fd", "3", "--publish", "80"};
  spawn.stderr_fd = wr.get();
  auto helper = sys::Subprocess::Spawn(spawn);
  ASSERT_TRUE(helper.ok());
  wr.reset();
  auto err = sys::ReadAll(rd.get(), 4096);
  auto status = helper->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2);
  ASSERT_TRUE(err.ok());
  EXPECT_NE(err->find("--publish needs [IP:]HOST:GUEST"), std::string::npos) << *err;
}

TEST(NetHelperTest, GuestDnsQueryIsRelayedToTheConfiguredServer) {
  base::UniqueFd server(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::bind(server.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::getsockname(server.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  vmm::NetOptions o = Options();
  o.dns_servers = {base::StrFormat("127.0.0.1:%u", ntohs(a.sin_port))};
  auto net = vmm::LaunchNetHelper(o);
  ASSERT_TRUE(net.ok()) << net.error().ToString();
  FakeQemu qemu(net->qemu_end.get());

  std::vector<uint8_t> query = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                1,    'x',  0,    0,    1, 0, 1};
  qemu.Send(testframes::UdpFrame(kGuest, 33333, kDnsAddress, 53, query));
  uint8_t buf[512];
  sockaddr_in from{};
  socklen_t from_len = sizeof(from);
  pollfd p = {server.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the query never reached the server";
  ssize_t n = ::recvfrom(server.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from),
                         &from_len);
  ASSERT_EQ(n, static_cast<ssize_t>(query.size()));
  std::vector<uint8_t> answer = query;
  answer[2] = 0x81;
  answer[3] = 0x80;
  ::sendto(server.get(), answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from),
           from_len);
  auto reply = qemu.ReceiveIpv4([](const Ipv4Packet& ip) {
    return ip.protocol == kIpProtoUdp && ip.src == kDnsAddress && ip.dst_port == 33333;
  });
  ASSERT_TRUE(reply.has_value()) << "no DNS answer reached the guest";
  auto payload = UdpPayload(*ParseIpv4Frame(*reply));
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(std::vector<uint8_t>(payload->begin(), payload->end()), answer);
}

TEST(NetHelperTest, HostLoopbackIsRefusedUnlessAllowed) {
  Listener service;  // A host service on 127.0.0.1 only.
  {
    auto net = vmm::LaunchNetHelper(Options());
    ASSERT_TRUE(net.ok()) << net.error().ToString();
    FakeQemu qemu(net->qemu_end.get());
    qemu.Send(testframes::TcpFrame(kGuest, 40001, kGatewayAddress, service.port, kSyn));
    auto rst = qemu.ReceiveIpv4([](const Ipv4Packet& p) { return IsTcp(p, 0x04); });
    ASSERT_TRUE(rst.has_value()) << "no reset for 10.0.2.2";
    EXPECT_EQ(ParseIpv4Frame(*rst)->src_port, service.port);
    // Raw-socket tricks: the loopback address itself, and the DNS address.
    qemu.Send(testframes::TcpFrame(kGuest, 40002, Ipv4(127, 0, 0, 1), service.port, kSyn));
    qemu.Send(testframes::TcpFrame(kGuest, 40003, kDnsAddress, service.port, kSyn));
    qemu.Send(testframes::TcpFrame(kGuest, 40004, Ipv4(0, 0, 0, 0), service.port, kSyn));
    auto rst2 = qemu.ReceiveIpv4([](const Ipv4Packet& p) { return IsTcp(p, 0x04); });
    ASSERT_TRUE(rst2.has_value()) << "no reset for 10.0.2.3";
    EXPECT_EQ(ParseIpv4Frame(*rst2)->src, kDnsAddress);
    EXPECT_FALSE(service.Accepts(std::chrono::seconds(2)))
        << "a guest frame reached the host's loopback";
  }
  vmm::NetOptions o = Options();
  o.allow_host_loopback = true;
  auto net = vmm::LaunchNetHelper(o);
  ASSERT_TRUE(net.ok()) << net.error().ToString();
  FakeQemu qemu(net->qemu_end.get());
  qemu.Send(testframes::TcpFrame(kGuest, 40005, kGatewayAddress, service.port, kSyn));
  EXPECT_TRUE(service.Accepts(std::chrono::seconds(10)))
      << "--allow-host-loopback did not reach 127.0.0.1 through 10.0.2.2";
}

// Every refusal is counted in the stats file the launcher hands over, where the host
// reads it (BoxMetrics::network_refused_flows); passed flows are not.
TEST(NetHelperTest, RefusedFlowsAreCountedForTheHost) {
  base::UniqueFd stats(::memfd_create("net-stats-test", MFD_CLOEXEC));
  ASSERT_TRUE(stats);
  vmm::NetOptions o = Options();
  o.stats_fd = stats.get();
  auto net = vmm::LaunchNetHelper(o);
  ASSERT_TRUE(net.ok()) << net.error().ToString();
  auto before = vmm::ReadNetStats(stats.get());
  ASSERT_TRUE(before.ok()) << before.error().ToString();
  EXPECT_EQ(before->refused_flows, 0u);
  FakeQemu qemu(net->qemu_end.get());
  // The host's loopback through the gateway, and a private network: both reset.
  qemu.Send(testframes::TcpFrame(kGuest, 40011, kGatewayAddress, 9, kSyn));
  ASSERT_TRUE(qemu.ReceiveIpv4([](const Ipv4Packet& p) { return IsTcp(p, 0x04); }).has_value());
  qemu.Send(testframes::TcpFrame(kGuest, 40012, Ipv4(10, 9, 8, 7), 80, kSyn));
  ASSERT_TRUE(qemu.ReceiveIpv4([](const Ipv4Packet& p) { return IsTcp(p, 0x04); }).has_value());
  auto after = vmm::ReadNetStats(stats.get());
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_EQ(after->refused_flows, 2u);
  base::UniqueFd empty(::memfd_create("net-stats-empty", MFD_CLOEXEC));
  EXPECT_TRUE(vmm::ReadNetStats(empty.get()).error().IsNotFound());
}

TEST(NetHelperTest, StartedAsRootItRunsAsTheJailUser) {
  auto net = vmm::LaunchNetHelper(Options());
  ASSERT_TRUE(net.ok()) << net.error().ToString();
  auto status = sys::ReadFile(base::StrFormat("/proc/%d/status", net->process.pid()));
  ASSERT_TRUE(status.ok());
  unsigned expected = ::geteuid();
  if (expected == 0) {
    auto jail_user = sys::JailUserIdentity();
    ASSERT_TRUE(jail_user.ok()) << jail_user.error().ToString();
    ASSERT_NE(jail_user->uid, 0u);
    expected = jail_user->uid;
  }
  std::string uid_line = base::StrFormat("\nUid:\t%u\t%u\t%u\t%u\n", expected, expected,
                                         expected, expected);
  EXPECT_NE(status->find(uid_line), std::string::npos) << *status;
}

// The filter itself is tested in helper_seccomp_test.cc; the tests above show the
// filtered helper still forwards ports, relays DNS and connects out.
TEST(NetHelperTest, RunsUnderItsSeccompFilter) {
  auto net = vmm::LaunchNetHelper(Options());
  ASSERT_TRUE(net.ok()) << net.error().ToString();
  auto status = sys::ReadFile(base::StrFormat("/proc/%d/status", net->process.pid()));
  ASSERT_TRUE(status.ok());
  EXPECT_NE(status->find("\nSeccomp:\t2\n"), std::string::npos) << *status;
  EXPECT_NE(status->find("\nNoNewPrivs:\t1\n"), std::string::npos) << *status;
}

TEST(NetHelperTest, FindsTheConfiguredHelper) {
  auto found = vmm::FindNetHelper(BOXLITE_NET_HELPER_FOR_TEST);
  auto missing = vmm::FindNetHelper("/nonexistent/boxlite-net");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, BOXLITE_NET_HELPER_FOR_TEST);
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_NE(missing.error().message().find("BOXLITE_NET_HELPER"), std::string::npos);
  // Without a setting, the build tree copy is found.
  auto fallback = vmm::FindNetHelper("");
  ASSERT_TRUE(fallback.ok()) << fallback.error().ToString();
}

}  // namespace
}  // namespace boxlite::net

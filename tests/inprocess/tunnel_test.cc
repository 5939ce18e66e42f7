// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Tunnels in-process, no VM: the guest agent's Server (machine off, connections allowed
// as with host processes) serves one port over a socketpair on a thread, the host's
// real AgentChannel and TunnelImpl (src/runtime/tunnel_impl.h) talk to it, and a TCP
// server on this host's loopback plays the program in the box. Checked: bytes both ways
// with a half close in the middle, a transfer far beyond both windows, the host holding
// back a guest sender it does not read (bounded buffering), the end of the guest's
// side, Close() reaching the guest, and a port with nothing listening.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "agent/server.h"
#include "src/base/unique_fd.h"
#include "src/protocol/messages.h"
#include "src/runtime/channel.h"
#include "src/runtime/tunnel_impl.h"

namespace boxlite {
namespace {

using runtime::AgentChannel;
using runtime::Clock;

constexpr auto kTimeout = std::chrono::milliseconds(20000);

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

// A one-connection TCP server on 127.0.0.1 that runs `serve` on the accepted socket.
class GuestServer {
 public:
  explicit GuestServer(std::function<void(int)> serve) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this, serve = std::move(serve)] {
      base::UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (c) serve(c.get());
    });
  }
  ~GuestServer() {
    ::shutdown(listener_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }

 private:
  base::UniqueFd listener_;
  int port_ = 0;
  std::thread thread_;
};

std::string RecvAll(int fd) {
  std::string got;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) got.append(buf, static_cast<size_t>(n));
  return got;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

class TunnelTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-tunnel-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    base::UniqueFd host(sv[0]);
    ::fcntl(sv[1], F_SETFL, ::fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    std::vector<base::UniqueFd> ports;
    ports.emplace_back(sv[1]);
    agent::ServerOptions options;
    options.machine = false;
    options.host_processes = true;
    server_ = std::make_unique<agent::Server>(std::move(ports), root_, options);
    ASSERT_TRUE(server_->Open().ok());
    loop_ = std::thread([this] {
      while (!stop_) (void)server_->Step(10);
    });
    channel_ = std::make_shared<AgentChannel>(std::move(host), nullptr);
    auto hello = channel_->Call("hello", protocol::ToJson(protocol::HelloRequest()), Clock::now() + kTimeout);
    ASSERT_TRUE(hello.ok()) << hello.error().ToString();
  }

  void TearDown() override {
    channel_.reset();
    stop_ = true;
    if (loop_.joinable()) loop_.join();
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  std::shared_ptr<runtime::TunnelImpl> Open(int port) {
    auto t = runtime::OpenTunnelOn(channel_, port, nullptr);
    EXPECT_TRUE(t.ok()) << t.error().ToString();
    return t.ok() ? *t : nullptr;
  }

  // Everything the guest sends until its end, read `max` bytes at a time.
  static std::string ReadToEnd(Connection* c, size_t max = 100000) {
    std::string got;
    while (true) {
      auto chunk = c->Read(max, kTimeout);
      if (!chunk.ok()) {
        ADD_FAILURE() << chunk.error().ToString();
        return got;
      }
      if (chunk->empty()) return got;
      EXPECT_LE(chunk->size(), max);
      got += *chunk;
    }
  }

  std::string root_;
  std::unique_ptr<agent::Server> server_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
  std::shared_ptr<AgentChannel> channel_;
};

// The guest reads to the host's half close, then answers: the bytes it got, reversed,
// and closes. 12 MiB each way is three times the output window and many stdin windows.
TEST_F(TunnelTest, BytesBothWaysAcrossAHalfClose) {
  const std::string sent = Random(12 << 20, 7);
  std::string guest_got;
  GuestServer guest([&](int fd) {
    guest_got = RecvAll(fd);  // Ends at the host's shutdown_write.
    std::string back(guest_got.rbegin(), guest_got.rend());
    EXPECT_TRUE(SendAll(fd, back));
  });
  auto t = Open(guest.port());
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Write(sent).ok());
  ASSERT_TRUE(t->ShutdownWrite().ok());
  EXPECT_TRUE(t->Write("more").IsFailedPrecondition());
  std::string back = ReadToEnd(t.get(), 70000);
  EXPECT_EQ(back.size(), sent.size());
  EXPECT_TRUE(back == std::string(sent.rbegin(), sent.rend()));
  EXPECT_TRUE(t->Close().ok());
  EXPECT_EQ(guest_got.size(), sent.size());
}

// A guest that sends and a host that does not read: the guest's sender stalls once the
// window and the socket buffers are full, instead of the host taking everything in.
TEST_F(TunnelTest, AnUnreadTunnelHoldsTheGuestSenderBack) {
  constexpr size_t kTotal = 64 << 20;
  std::atomic<size_t> written{0};
  std::atomic<bool> stalled{false};
  std::atomic<bool> resume{false};
  GuestServer guest([&](int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string block(1 << 16, 'x');
    while (written < kTotal) {
      ssize_t n = ::send(fd, block.data(), std::min(block.size(), kTotal - written), MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN) return;
      struct pollfd p = {fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) == 0 && !resume) {
        stalled = true;  // A second without room: the host holds it back.
        while (!resume) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  });
  auto t = Open(guest.port());
  ASSERT_NE(t, nullptr);
  auto until = Clock::now() + kTimeout;
  while (!stalled && written < kTotal && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(stalled);
  EXPECT_LT(written.load(), kTotal / 2);
  resume = true;
  std::string got = ReadToEnd(t.get(), 1 << 20);
  EXPECT_EQ(got.size(), kTotal);
}

// The guest closes its side: the host reads what it sent, then the end; Close() then
// ends the tunnel and reads fail clearly.
TEST_F(TunnelTest, TheGuestsEndIsReadAsEmptyAndCloseEndsTheTunnel) {
  std::atomic<bool> host_closed{false};
  auto guest = std::make_unique<GuestServer>([&](int fd) {
    EXPECT_TRUE(SendAll(fd, "hello from the box"));
    ::shutdown(fd, SHUT_WR);
    char c;
    host_closed = ::recv(fd, &c, 1, 0) <= 0;  // The host's Close() ends our read side.
  });
  auto t = Open(guest->port());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(ReadToEnd(t.get(), 5), "hello from the box");
  EXPECT_TRUE(t->Close().ok());
  EXPECT_TRUE(t->Close().ok());
  auto after = t->Read(10, kTimeout);
  ASSERT_FALSE(after.ok());
  EXPECT_TRUE(after.error().IsFailedPrecondition());
  EXPECT_TRUE(t->Write("x").IsFailedPrecondition());
  guest.reset();  // Joins the guest's thread.
  EXPECT_TRUE(host_closed);
}

// Nothing listens: NotFound naming the port; the channel serves on.
TEST_F(TunnelTest, APortWithNothingListeningIsNotFound) {
  int port;
  {
    GuestServer gone([](int) {});
    port = gone.port();
  }
  auto t = runtime::OpenTunnelOn(channel_, port, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(t.error().IsNotFound()) << t.error().ToString();
  EXPECT_NE(t.error().message().find("nothing listens on TCP port " + std::to_string(port)), std::string::npos)
      << t.error().message();
  EXPECT_TRUE(runtime::OpenTunnelOn(channel_, 0, nullptr).error().IsInvalidArgument());
  EXPECT_TRUE(runtime::OpenTunnelOn(channel_, 65536, nullptr).error().IsInvalidArgument());
  EXPECT_TRUE(channel_->Call("ping", protocol::Json::object(), Clock::now() + kTimeout).ok());
}

}  // namespace
}  // namespace boxlite

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The QMP client against a real QEMU with no guest (`-M none` starts in milliseconds), and
// against a hostile peer that sends what QEMU never would.
#include "src/vmm/qmp.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "src/base/strings.h"
#include "src/sys/subprocess.h"

namespace boxlite::vmm {
namespace {

using std::chrono::milliseconds;

struct Pair {
  base::UniqueFd ours, theirs;
};

Pair SocketPair() {
  int sp[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  return {base::UniqueFd(sp[0]), base::UniqueFd(sp[1])};
}

// A QEMU with no machine whose monitor is the other end of the returned socket.
struct BareQemu {
  sys::Subprocess process;
  base::UniqueFd monitor;
};

std::optional<BareQemu> StartBareQemu() {
  Pair pair = SocketPair();
  sys::SpawnOptions spawn;
  spawn.argv = {"qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
                "-chardev",
                base::StrFormat("socket,id=qmp,fd=%d,server=off", pair.theirs.get()),
                "-mon", "chardev=qmp,mode=control"};
  spawn.keep_fds = {pair.theirs.get()};
  auto child = sys::Subprocess::Spawn(spawn);
  if (!child.ok()) return std::nullopt;
  return BareQemu{std::move(*child), std::move(pair.ours)};
}

TEST(QmpTest, TalksToARealQemu) {
  auto qemu = StartBareQemu();
  if (!qemu) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto client = QmpClient::Open(std::move(qemu->monitor));
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  auto status = client->Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_TRUE((*status)["status"].is_string());

  // QEMU's error comes back with its class.
  auto unknown = client->Execute("no-such-command");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().ToString().find("CommandNotFound"), std::string::npos)
      << unknown.error().ToString();

  // Arguments reach QEMU (a bad one is refused by name).
  auto bad = client->Execute("migrate-set-parameters", {{"max-bandwidth", "fast"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().ToString().find("max-bandwidth"), std::string::npos)
      << bad.error().ToString();

  // A descriptor passed with getfd is known by its name: closefd finds it once.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  base::UniqueFd r(p[0]), w(p[1]);
  ASSERT_TRUE(client->SendFd("state", w.get()).ok());
  EXPECT_TRUE(client->Execute("closefd", {{"fdname", "state"}}).ok());
  EXPECT_FALSE(client->Execute("closefd", {{"fdname", "state"}}).ok());

  // Events are kept while commands run: `quit` announces SHUTDOWN.
  ASSERT_TRUE(client->Execute("quit").ok());
  auto shutdown = client->WaitEvent("SHUTDOWN", milliseconds(5000));
  ASSERT_TRUE(shutdown.ok()) << shutdown.error().ToString();
  EXPECT_EQ((*shutdown)["event"], "SHUTDOWN");
  // Then the monitor closes.
  auto gone = client->Execute("query-status", nullptr, milliseconds(5000));
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(gone.error().IsUnavailable()) << gone.error().ToString();
  (void)qemu->process.Wait();
}

// A peer that writes `text` after reading nothing: what a compromised QEMU could send.
Result<QmpClient> OpenAgainst(const std::string& text, milliseconds timeout,
                              Pair* keep = nullptr) {
  Pair pair = SocketPair();
  std::thread writer([fd = pair.theirs.get(), text] {
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  });
  auto client = QmpClient::Open(std::move(pair.ours), timeout);
  pair.theirs.reset();
  writer.join();
  if (keep) *keep = std::move(pair);
  return client;
}

TEST(QmpTest, RefusesAMessageOverTheBound) {
  // A "message" that never ends: refused at the bound, not buffered without limit.
  std::string huge = "{\"QMP\": \"" + std::string(QmpClient::kMaxMessageBytes + 10, 'a');
  auto client = OpenAgainst(huge, milliseconds(5000));
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(client.error().IsProtocolError()) << client.error().ToString();
}

TEST(QmpTest, RefusesWhatIsNotJson) {
  auto client = OpenAgainst("\xff\xfe not json\r\n", milliseconds(5000));
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(client.error().IsProtocolError()) << client.error().ToString();
  auto array = OpenAgainst("[1,2]\r\n", milliseconds(5000));
  ASSERT_FALSE(array.ok());
  EXPECT_TRUE(array.error().IsProtocolError());
}

TEST(QmpTest, RefusesAnAnswerToAnotherCommand) {
  // Greeting, then an answer whose id is not the one asked.
  auto client = OpenAgainst("{\"QMP\": {}}\r\n{\"return\": {}, \"id\": 77}\r\n", milliseconds(5000));
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(client.error().IsProtocolError()) << client.error().ToString();
}

TEST(QmpTest, TimesOutOnASilentPeer) {
  Pair pair = SocketPair();
  auto client = QmpClient::Open(std::move(pair.ours), milliseconds(100));
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(client.error().IsDeadlineExceeded()) << client.error().ToString();
}

}  // namespace
}  // namespace boxlite::vmm

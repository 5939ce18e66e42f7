// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The guest agent and the host channel in one process, no VM: the agent's Server
// (agent/server.h, machine off, processes started on the host beneath a temporary root)
// runs its loop on a thread and serves its ports over socketpairs; the host's real
// AgentChannel, ExecImpl and file transfer (src/runtime) talk to it. Every test runs with
// the agent's output read into frames and, again, spliced into the port (the zero-copy
// path a guest kernel with the fix in guest/kernel/patches takes).
//
// Regression cases for the agent's fixes (see `git log -- agent/`):
// - SpliceAccountingIsPerPort: a host hanging up reset every exec's splice accounting,
//   so another port's exec announced bytes twice and lost its connection (24aa350).
// - HangupFinishesTheExecsOfThatPortOnly: a hung-up host's exec that had no credit left
//   stayed, so a host connecting after it found its stream id "in use" (24aa350).
// - FramesOfOneRoundLeaveInOneWriteOfAtMost32KiB: batched flushing, one write per loop
//   round (439badf) of at most 32 KiB (547356e).
// - AFailedExecveReportsWhyAndItsCode: the child's report of a failed execve, read when
//   vfork returns (439badf), reaches the host as the exit's error and code.
// Processes run on the host (ServerOptions::host_processes), so the tests need /bin/sh,
// cat, head and sleep, and /proc/PID/wchan to see a writer blocked on its pipe.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "agent/server.h"
#include "src/base/unique_fd.h"
#include "src/protocol/frame.h"
#include "src/protocol/messages.h"
#include "src/runtime/channel.h"
#include "src/runtime/exec_impl.h"
#include "src/runtime/file_transfer.h"
#include "src/sys/fs.h"

namespace boxlite {
namespace {

using runtime::AgentChannel;
using runtime::Clock;
using runtime::ExecImpl;

constexpr auto kWait = std::chrono::seconds(20);

// SIGCHLD must reach the server's signalfd: blocked in every thread (those started later
// inherit the mask), as the agent has it blocked in its only thread.
void BlockSigchld() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &mask, nullptr), 0);
}

std::string ReadAll(const std::string& path) {
  auto text = sys::ReadFile(path);
  return text.ok() ? *text : std::string();
}

// Polls `done` every few milliseconds, up to kWait; false when it never held.
template <typename F>
bool Eventually(F done) {
  auto until = Clock::now() + kWait;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// Whether `pid` is gone (reaped by the server).
bool Reaped(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

struct Output {
  std::string out;
  std::string err;
  ExitStatus exit;
};

class AgentChannelTest : public testing::TestWithParam<bool> {
 protected:
  static constexpr int kPorts = 2;

  void SetUp() override {
    BlockSigchld();
    char tmpl[] = "/tmp/boxlite-inprocess-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::vector<base::UniqueFd> ports;
    for (int i = 0; i < kPorts; ++i) {
      base::UniqueFd server_end;
      ASSERT_TRUE(NewPair(SOCK_STREAM, &host_[i], &server_end));
      port_fd_[i] = server_end.get();
      ports.push_back(std::move(server_end));
    }
    StartServer(std::move(ports));
  }

  void TearDown() override {
    channels_.clear();  // Hosts hang up first; the server kills what they ran.
    stop_ = true;
    if (loop_.joinable()) loop_.join();
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  // A connected pair: the host's end blocking (the channel's reader blocks on it), the
  // agent's nonblocking (as the agent opens its ports).
  static bool NewPair(int type, base::UniqueFd* host, base::UniqueFd* agent) {
    int sv[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return false;
    host->reset(sv[0]);
    agent->reset(sv[1]);
    return ::fcntl(sv[1], F_SETFL, ::fcntl(sv[1], F_GETFL) | O_NONBLOCK) == 0;
  }

  void StartServer(std::vector<base::UniqueFd> ports) {
    agent::ServerOptions options;
    options.machine = false;
    options.host_processes = true;
    options.force_splice = GetParam();
    server_ = std::make_unique<agent::Server>(std::move(ports), root_, options);
    ASSERT_TRUE(server_->Open().ok());
    loop_ = std::thread([this] {
      while (!stop_ && !server_->shutting_down()) {
        Status s = server_->Step(10);
        if (!s.ok()) ADD_FAILURE() << s.ToString();
      }
    });
  }

  // The host's channel on port `i`, after a hello.
  std::shared_ptr<AgentChannel> Connect(int i) {
    auto channel = std::make_shared<AgentChannel>(std::move(host_[i]), nullptr);
    auto hello = channel->Call("hello", protocol::ToJson(protocol::HelloRequest()), Clock::now() + kWait);
    EXPECT_TRUE(hello.ok()) << hello.error().ToString();
    channels_.push_back(channel);
    return channel;
  }

  // A host connecting to port `i` after the last one hung up: the port's descriptor now
  // leads to a new connection, as a virtio-serial port does when the host reopens it.
  // Call only once the server has seen the hangup.
  std::shared_ptr<AgentChannel> Reconnect(int i) {
    base::UniqueFd agent_end;
    EXPECT_TRUE(NewPair(SOCK_STREAM, &host_[i], &agent_end));
    EXPECT_EQ(::dup3(agent_end.get(), port_fd_[i], O_CLOEXEC), port_fd_[i]);
    return Connect(i);
  }

  static Result<std::shared_ptr<ExecImpl>> Start(const std::shared_ptr<AgentChannel>& channel,
                                                 std::vector<std::string> argv,
                                                 bool stdin_open = false,
                                                 int64_t window = protocol::kDefaultWindow) {
    protocol::ExecRequest req;
    req.argv = std::move(argv);
    req.stdin_open = stdin_open;
    req.window = window;
    return runtime::StartExecOn(channel, req, nullptr);
  }

  // Reads both streams to their end, then the exit.
  static Output Collect(ExecImpl* exec) {
    Output o;
    while (true) {
      int fd = 0;
      auto chunk = exec->ReadAny(&fd, Clock::now() + kWait);
      if (!chunk.ok()) {
        ADD_FAILURE() << chunk.error().ToString();
        return o;
      }
      if (fd == 0) break;
      (fd == 1 ? o.out : o.err) += *chunk;
    }
    auto st = exec->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(kWait));
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    if (st.ok()) o.exit = *st;
    return o;
  }

  Output Run(const std::shared_ptr<AgentChannel>& channel, std::vector<std::string> argv) {
    auto exec = Start(channel, std::move(argv));
    EXPECT_TRUE(exec.ok()) << exec.error().ToString();
    if (!exec.ok()) return Output();
    return Collect(exec->get());
  }

  std::string Path(const std::string& rel) const { return root_ + "/" + rel; }

  std::string root_;
  base::UniqueFd host_[kPorts];
  int port_fd_[kPorts] = {-1, -1};
  std::unique_ptr<agent::Server> server_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
  std::vector<std::shared_ptr<AgentChannel>> channels_;
};

INSTANTIATE_TEST_SUITE_P(Output, AgentChannelTest, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& p) {
                           return p.param ? "Spliced" : "Read";
                         });

TEST_P(AgentChannelTest, ExecStreamsStdoutAndStderrApartAndReportsTheExitCode) {
  auto channel = Connect(0);
  Output o = Run(channel, {"/bin/sh", "-c", "printf out; printf 'err\\377' >&2; pwd; exit 3"});
  EXPECT_EQ(o.out, "out" + std::filesystem::canonical(root_).string() + "\n");
  EXPECT_EQ(o.err, "err\xff");
  EXPECT_EQ(o.exit.exit_code, 3);
  EXPECT_EQ(o.exit.signal, 0);
  EXPECT_TRUE(o.exit.error_message.empty()) << o.exit.error_message;

  // Killed by a signal: 128 + the signal, and the signal itself.
  o = Run(channel, {"/bin/sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(o.exit.signal, SIGTERM);
  EXPECT_EQ(o.exit.exit_code, 128 + SIGTERM);
}

// The agent holds a stream's close frame for the process's exit (to send both in one
// write), but only briefly: a process that closes its output and keeps running lets the
// host see the end of its streams while it runs. Here it runs until the host has.
TEST_P(AgentChannelTest, StreamsClosedByARunningProcessEndBeforeItExits) {
  auto channel = Connect(0);
  std::string go = Path("go");
  auto exec = Start(channel, {"/bin/sh", "-c",
                              "printf done; printf err >&2; exec >&- 2>&-; "
                              "while [ ! -e '" + go + "' ]; do sleep 0.05; done; exit 7"});
  ASSERT_TRUE(exec.ok()) << exec.error().ToString();
  std::string out;
  std::string err;
  while (true) {
    int fd = 0;
    auto chunk = (*exec)->ReadAny(&fd, Clock::now() + kWait);
    ASSERT_TRUE(chunk.ok()) << "the streams did not end while the process ran: "
                            << chunk.error().ToString();
    if (fd == 0) break;
    (fd == 1 ? out : err) += *chunk;
  }
  EXPECT_EQ(out, "done");
  EXPECT_EQ(err, "err");
  ASSERT_TRUE(sys::WriteFileAtomic(go, "").ok());
  auto st = (*exec)->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(kWait));
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(st->exit_code, 7);
}

// The agent starts an exec's process as SCHED_BATCH and looks once for its end before it
// answers (so a quick command's response, output and exit leave in one write): a process
// that runs on is still reported started while it runs, and the process itself runs as
// SCHED_OTHER at nice 0 whatever the agent's policy.
TEST_P(AgentChannelTest, AProcessThatRunsOnIsReportedStartedAndRunsAsAnyOther) {
  auto channel = Connect(0);
  // `cat` ends only once the host closes its stdin, which it can do only after the start
  // was reported: a hold that waited for the process's end would never return here.
  auto exec = Start(channel, {"/bin/sh", "-c", "cat; exec cat /proc/self/stat"}, true);
  ASSERT_TRUE(exec.ok()) << exec.error().ToString();
  ASSERT_TRUE((*exec)->CloseStdin().ok());
  Output o = Collect(exec->get());
  EXPECT_EQ(o.exit.exit_code, 0);
  // /proc/PID/stat: after the command's name in parentheses, fields 3 onwards; nice is
  // field 19, the scheduling policy field 41.
  std::vector<std::string> fields;
  std::string rest = o.out.substr(o.out.rfind(')') + 2);
  for (size_t at = 0; at < rest.size();) {
    size_t end = rest.find(' ', at);
    if (end == std::string::npos) end = rest.size();
    fields.push_back(rest.substr(at, end - at));
    at = end + 1;
  }
  ASSERT_GE(fields.size(), 39u) << o.out;
  EXPECT_EQ(fields[19 - 3], "0") << "nice";
  EXPECT_EQ(fields[41 - 3], "0") << "policy (SCHED_OTHER is 0, SCHED_BATCH 3)";
}

// An exec's pipes are watched only when its process still runs after it first ran
// (Server::TakeInStarted); a quick command's never are. A process that writes, then
// waits, then writes again streams everything, and while its pipes are empty the agent
// serves other execs, which end before it.
TEST_P(AgentChannelTest, AWaitingProcessStreamsItsOutputAndStallsNothing) {
  auto channel = Connect(0);
  auto slow = Start(channel, {"/bin/sh", "-c", "printf a; printf e >&2; cat; printf b"}, true);
  ASSERT_TRUE(slow.ok()) << slow.error().ToString();
  std::string out;
  std::string err;
  while (out != "a" || err != "e") {
    int fd = 0;
    auto chunk = (*slow)->ReadAny(&fd, Clock::now() + kWait);
    ASSERT_TRUE(chunk.ok()) << chunk.error().ToString();
    ASSERT_NE(fd, 0) << "the streams ended while the process waits";
    (fd == 1 ? out : err) += *chunk;
  }
  for (int i = 0; i < 3; ++i) {
    Output quick = Run(channel, {"/bin/sh", "-c", "printf quick; exit 4"});
    EXPECT_EQ(quick.out, "quick");
    EXPECT_EQ(quick.exit.exit_code, 4);
  }
  ASSERT_TRUE((*slow)->WriteStdin("c").ok());
  ASSERT_TRUE((*slow)->CloseStdin().ok());
  Output rest = Collect(slow->get());
  EXPECT_EQ(rest.out, "cb");
  EXPECT_EQ(rest.err, "");
  EXPECT_EQ(rest.exit.exit_code, 0);
}

TEST_P(AgentChannelTest, StdinTravelsExactlyUnderItsCredit) {
  auto channel = Connect(0);
  // Three times the agent's stdin window (1 MiB): only credit it returns lets it all in.
  std::string input = Pattern(3 << 20, 1);
  auto exec = Start(channel, {"/bin/cat"}, /*stdin_open=*/true);
  ASSERT_TRUE(exec.ok()) << exec.error().ToString();
  std::thread writer([&] {
    EXPECT_TRUE((*exec)->WriteStdin(input).ok());
    EXPECT_TRUE((*exec)->CloseStdin().ok());
  });
  Output o = Collect(exec->get());
  writer.join();
  EXPECT_EQ(o.out.size(), input.size());
  EXPECT_TRUE(o.out == input);
  EXPECT_EQ(o.exit.exit_code, 0);
}

TEST_P(AgentChannelTest, OutputBeyondTheWindowArrivesExactlyAsTheHostReturnsCredit) {
  auto channel = Connect(0);
  std::string content = Pattern(10 << 20, 2);  // 2.5 default windows.
  ASSERT_TRUE(sys::WriteFileAtomic(Path("big"), content).ok());
  Output o = Run(channel, {"/bin/cat", Path("big")});
  EXPECT_EQ(o.out.size(), content.size());
  EXPECT_TRUE(o.out == content);
  EXPECT_EQ(o.exit.exit_code, 0);
}

TEST_P(AgentChannelTest, ASlowReaderHoldsTheProcessBackInsteadOfFillingMemory) {
  auto channel = Connect(0);
  constexpr int64_t kWindow = protocol::kDefaultWindow;
  constexpr int64_t kTotal = 24 << 20;
  auto exec = Start(channel, {"/usr/bin/head", "-c", std::to_string(kTotal), "/dev/zero"});
  ASSERT_TRUE(exec.ok()) << exec.error().ToString();
  pid_t pid = (*exec)->pid();
  // Nobody reads: the writer must come to block on its pipe, having written no more than
  // the window, the pipe (1 MiB, set by the agent) and what one read takes.
  std::string wchan;
  ASSERT_TRUE(Eventually([&] {
    wchan = ReadAll("/proc/" + std::to_string(pid) + "/wchan");
    return wchan.find("pipe_write") != std::string::npos;
  })) << "the writer never blocked; it is in " << wchan;
  std::string io = ReadAll("/proc/" + std::to_string(pid) + "/io");
  auto at = io.find("wchar: ");
  ASSERT_NE(at, std::string::npos) << io;
  int64_t written = std::atoll(io.c_str() + at + 7);
  EXPECT_LE(written, kWindow + (1 << 20) + (256 << 10)) << "the agent read without credit";
  // Reading lets it finish, every byte accounted for.
  Output o = Collect(exec->get());
  EXPECT_EQ(static_cast<int64_t>(o.out.size()), kTotal);
  EXPECT_EQ(o.exit.exit_code, 0);
}

TEST_P(AgentChannelTest, AStdinThatIsNotReadHoldsTheHostBack) {
  auto channel = Connect(0);
  auto exec = Start(channel, {"/bin/sleep", "1000"}, /*stdin_open=*/true);
  ASSERT_TRUE(exec.ok()) << exec.error().ToString();
  auto counters = std::make_shared<runtime::ExecByteCounters>();
  (*exec)->set_counters(counters);
  std::string input(16 << 20, 'x');
  std::thread writer([&] { (void)(*exec)->WriteStdin(input); });
  // The pipe fills (nobody reads it), the agent holds at most its window (1 MiB) pending,
  // and the host sends nothing it has no credit for.
  std::string fd0 = "/proc/" + std::to_string((*exec)->pid()) + "/fd/0";
  int64_t pipe_size = 0;
  ASSERT_TRUE(Eventually([&] {
    base::UniqueFd pipe(::open(fd0.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    int avail = 0;
    pipe_size = pipe ? ::fcntl(pipe.get(), F_GETPIPE_SZ) : 0;
    return pipe && ::ioctl(pipe.get(), FIONREAD, &avail) == 0 && avail == pipe_size &&
           counters->sent >= static_cast<uint64_t>(pipe_size + (1 << 20) - (64 << 10));
  })) << "sent " << counters->sent;
  EXPECT_LE(counters->sent, static_cast<uint64_t>(pipe_size + (1 << 20)));
  ASSERT_TRUE((*exec)->Kill().ok());
  writer.join();
  EXPECT_LE(counters->sent, static_cast<uint64_t>(pipe_size + (1 << 20)));
  auto st = (*exec)->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(kWait));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->signal, SIGKILL);
}

TEST_P(AgentChannelTest, ConcurrentExecsOnTwoPortsKeepTheirStreamsApart) {
  std::shared_ptr<AgentChannel> channels[2] = {Connect(0), Connect(1)};
  constexpr int kExecs = 8;
  std::vector<std::thread> threads;
  std::vector<Output> outputs(kExecs);
  for (int i = 0; i < kExecs; ++i) {
    threads.emplace_back([&, i] {
      // Each prints its own number, 200 KiB of it, on both streams.
      std::string script = "i=0; while [ $i -lt 2000 ]; do echo " + std::string(100, 'a' + i) +
                           "; echo " + std::to_string(i) + " >&2; i=$((i+1)); done; exit " +
                           std::to_string(i);
      outputs[i] = Run(channels[i % 2], {"/bin/sh", "-c", script});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kExecs; ++i) {
    SCOPED_TRACE(i);
    std::string line = std::string(100, 'a' + i) + "\n";
    EXPECT_EQ(outputs[i].out.size(), 2000 * line.size());
    EXPECT_EQ(outputs[i].out.find_first_not_of(line), std::string::npos);
    std::string err_line = std::to_string(i) + "\n";
    EXPECT_EQ(outputs[i].err.size(), 2000 * err_line.size());
    EXPECT_EQ(outputs[i].exit.exit_code, i);
  }
}

TEST_P(AgentChannelTest, HangupFinishesTheExecsOfThatPortOnly) {
  auto first = Connect(0);
  auto other = Connect(1);
  auto survivor = Start(other, {"/bin/sh", "-c", "read line; echo got $line"}, true);
  ASSERT_TRUE(survivor.ok());
  // Mid-exec, with output waiting for credit that will never come (a window of 1 byte).
  auto orphan = Start(first, {"/bin/sh", "-c", "echo started; exec sleep 1000"}, false, 1);
  ASSERT_TRUE(orphan.ok()) << orphan.error().ToString();
  pid_t pid = (*orphan)->pid();
  auto head = (*orphan)->Read(1, kWait);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, "s");
  // The host is simply gone (its Exec is kept: letting it go would ask for a kill). Its
  // exec's end shows that the agent has seen the hangup: only then may the port's
  // descriptor lead to a new connection.
  first->Close(Status::Cancelled("the host went away"));
  ASSERT_TRUE(Eventually([&] { return Reaped(pid); })) << "the hung-up host's exec lives on";

  // A new host on the same port starts from stream 1 again: none of its ids is "in use".
  auto again = Reconnect(0);
  for (int i = 0; i < 4; ++i) {
    Output o = Run(again, {"/bin/echo", "again"});
    EXPECT_EQ(o.out, "again\n");
    EXPECT_EQ(o.exit.exit_code, 0);
  }
  // The other port's exec never noticed.
  ASSERT_TRUE((*survivor)->WriteStdin("fine\n").ok());
  Output o = Collect(survivor->get());
  EXPECT_EQ(o.out, "got fine\n");
}

TEST_P(AgentChannelTest, AFailedExecveReportsWhyAndItsCode) {
  auto channel = Connect(0);
  Output o = Run(channel, {"/nonexistent/program"});
  EXPECT_EQ(o.exit.exit_code, 127);
  EXPECT_EQ(o.exit.error_message, "executable file not found in $PATH");
  EXPECT_NE(o.err.find("boxlite: exec \"/nonexistent/program\""), std::string::npos) << o.err;

  o = Run(channel, {"no-such-program-in-path"});
  EXPECT_EQ(o.exit.exit_code, 127);
  EXPECT_EQ(o.exit.error_message, "executable file not found in $PATH");

  ASSERT_TRUE(sys::WriteFileAtomic(Path("not-executable"), "#!/bin/sh\n").ok());
  ASSERT_EQ(::chmod(Path("not-executable").c_str(), 0644), 0);
  o = Run(channel, {Path("not-executable")});
  EXPECT_EQ(o.exit.exit_code, 126);
  EXPECT_EQ(o.exit.error_message, ::strerror(EACCES));

  // Detached, the request itself fails, with the same reason.
  protocol::ExecRequest detached;
  detached.argv = {"/nonexistent/daemon"};
  detached.detached = true;
  auto refused = runtime::StartExecOn(channel, detached, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.error().IsNotFound()) << refused.error().ToString();
  EXPECT_NE(refused.error().message().find("executable file not found"), std::string::npos)
      << refused.error().ToString();

  // The agent goes on: the next exec starts.
  o = Run(channel, {"/bin/true"});
  EXPECT_EQ(o.exit.exit_code, 0);
  EXPECT_TRUE(o.exit.error_message.empty());
}

TEST_P(AgentChannelTest, FilesAndTreesCopyInAndOutExactly) {
  auto channel = Connect(0);
  std::string host = root_ + ".host";
  std::filesystem::create_directories(host + "/tree/sub/deeper");
  std::string big = Pattern(6 << 20, 3);  // Beyond one window of get_file.
  ASSERT_TRUE(sys::WriteFileAtomic(host + "/tree/big", big).ok());
  ASSERT_TRUE(sys::WriteFileAtomic(host + "/tree/sub/deeper/small", "small\xff").ok());
  ASSERT_EQ(::chmod((host + "/tree/sub/deeper/small").c_str(), 0751), 0);
  ASSERT_EQ(::symlink("../big", (host + "/tree/sub/link").c_str()), 0);

  CopyOptions options;
  ASSERT_TRUE(runtime::CopyToGuest(channel.get(), host + "/tree", "/in").ok());
  EXPECT_EQ(ReadAll(Path("in/big")), big);
  EXPECT_EQ(ReadAll(Path("in/sub/deeper/small")), "small\xff");
  struct stat st;
  ASSERT_EQ(::stat(Path("in/sub/deeper/small").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  char target[64] = {};
  ASSERT_GT(::readlink(Path("in/sub/link").c_str(), target, sizeof(target)), 0);
  EXPECT_STREQ(target, "../big");

  // And back out: a tree, and one file into an existing directory.
  std::filesystem::create_directories(host + "/out");
  ASSERT_TRUE(runtime::CopyFromGuest(channel.get(), "/in", host + "/out/tree").ok());
  EXPECT_EQ(ReadAll(host + "/out/tree/big"), big);
  EXPECT_EQ(ReadAll(host + "/out/tree/sub/deeper/small"), "small\xff");
  ASSERT_GT(::readlink((host + "/out/tree/sub/link").c_str(), target, sizeof(target)), 0);
  EXPECT_STREQ(target, "../big");
  ASSERT_TRUE(runtime::CopyFromGuest(channel.get(), "/in/sub/deeper/small", host + "/out").ok());
  EXPECT_EQ(ReadAll(host + "/out/small"), "small\xff");

  // Overwrite off: the agent refuses to replace, and nothing changes.
  options.overwrite = false;
  ASSERT_TRUE(sys::WriteFileAtomic(host + "/other", "other").ok());
  Status refused = runtime::CopyToGuest(channel.get(), host + "/other", "/in/big", options);
  EXPECT_TRUE(refused.IsAlreadyExists()) << refused.ToString();
  EXPECT_EQ(ReadAll(Path("in/big")), big);

  // Errors name what failed; the channel goes on.
  Status missing = runtime::CopyFromGuest(channel.get(), "/nowhere", host + "/out");
  EXPECT_TRUE(missing.IsNotFound()) << missing.ToString();
  EXPECT_TRUE(channel->health().ok());
  std::filesystem::remove_all(host);
}

TEST_P(AgentChannelTest, MetricsCountTheRunningExecs) {
  auto channel = Connect(0);
  auto sleeper = Start(channel, {"/bin/sleep", "1000"});
  ASSERT_TRUE(sleeper.ok());
  auto reply = channel->Call("metrics", protocol::Json::object(), Clock::now() + kWait);
  ASSERT_TRUE(reply.ok()) << reply.error().ToString();
  protocol::GuestMetrics m;
  ASSERT_TRUE(protocol::FromJson(*reply, &m).ok());
  EXPECT_EQ(m.execs_running, 1);
  EXPECT_GT(m.mem_total, 0);
  EXPECT_LE(m.mem_available, m.mem_total);
  EXPECT_GT(m.processes, 0);
  EXPECT_GT(m.uptime_ms, 0);
  ASSERT_TRUE((*sleeper)->Kill().ok());
  ASSERT_TRUE((*sleeper)->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(kWait)).ok());
  reply = channel->Call("metrics", protocol::Json::object(), Clock::now() + kWait);
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(protocol::FromJson(*reply, &m).ok());
  EXPECT_EQ(m.execs_running, 0);
}

// A host that reads its port only when told to, frame by frame.
class RawHost {
 public:
  explicit RawHost(base::UniqueFd fd) : fd_(std::move(fd)) {}

  bool Send(const std::string& bytes) { return sys::WriteAll(fd_.get(), bytes).ok(); }

  bool Request(uint32_t stream, std::string_view op, protocol::Json body) {
    std::string frame;
    protocol::AppendFrame(&frame, protocol::FrameKind::kRequest, stream,
                          protocol::EncodeRequest(op, std::move(body)));
    return Send(frame);
  }

  // Reads frames until `want` returns true for one; false on EOF, a bad frame, or nothing
  // for kWait (an agent that dropped the connection keeps the port open).
  template <typename F>
  bool ReadUntil(F want) {
    while (true) {
      struct pollfd p = {fd_.get(), POLLIN, 0};
      while (true) {
        auto frame = decoder_.Next();
        if (!frame.ok()) return false;
        if (!frame->has_value()) break;
        if (want(**frame)) return true;
      }
      if (::poll(&p, 1, static_cast<int>(kWait / std::chrono::milliseconds(1))) != 1) return false;
      char buf[65536];
      ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  // The response on `stream`, decoded.
  Result<protocol::Json> Response(uint32_t stream) {
    std::optional<Result<protocol::Json>> got;
    bool found = ReadUntil([&](const protocol::Frame& f) {
      if (f.kind != protocol::FrameKind::kResponse || f.stream != stream) return false;
      got = protocol::DecodeResponse(f.payload);
      return true;
    });
    if (!found) return Status::Unavailable("the agent closed the port");
    return *got;
  }

 private:
  base::UniqueFd fd_;
  protocol::FrameDecoder decoder_;
};

// Regression (24aa350): a host hanging up on one port reset the splice accounting of every
// exec, so an exec of another port whose output was queued for a splice claimed the same
// bytes again when it ended, and its port was dropped when the pipe ran dry.
TEST_P(AgentChannelTest, SpliceAccountingIsPerPort) {
  // Less than one splice (256 KiB) of output, and a port that holds only a few KiB of it.
  std::string content = Pattern(200 << 10, 4);
  ASSERT_TRUE(sys::WriteFileAtomic(Path("content"), content).ok());
  int small = 4096;
  ASSERT_EQ(::setsockopt(port_fd_[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  RawHost host(std::move(host_[0]));
  ASSERT_TRUE(host.Request(1, "hello", protocol::ToJson(protocol::HelloRequest())));
  ASSERT_TRUE(host.Response(1).ok());
  protocol::ExecRequest req;
  req.argv = {"/bin/sh", "-c", "cat \"$0\"; read line; exit 0", Path("content")};
  req.stdin_open = true;
  ASSERT_TRUE(host.Request(3, "exec", protocol::ToJson(req)));
  auto started = host.Response(3);
  ASSERT_TRUE(started.ok()) << started.error().ToString();
  protocol::ExecResponse resp;
  ASSERT_TRUE(protocol::FromJson(*started, &resp).ok());
  // The host reads no more: more output than the port holds waits in the agent, a splice
  // of it queued, and the shell waits for its input once cat has written everything.
  std::string wchan = "/proc/" + std::to_string(resp.pid) + "/wchan";
  ASSERT_TRUE(Eventually([&] { return ReadAll(wchan).find("pipe_read") != std::string::npos; }))
      << ReadAll(wchan);

  // Another host hangs up mid-exec on the other port.
  auto other = Connect(1);
  auto sleeper = Start(other, {"/bin/sleep", "1000"});
  ASSERT_TRUE(sleeper.ok());
  pid_t sleeper_pid = (*sleeper)->pid();
  other->Close(Status::Cancelled("the other host went away"));
  ASSERT_TRUE(Eventually([&] { return Reaped(sleeper_pid); }));

  // The first exec ends (its stdin closes) with its output still queued.
  std::string close;
  protocol::AppendClose(&close, 3, protocol::kFdStdin);
  ASSERT_TRUE(host.Send(close));
  ASSERT_TRUE(Eventually([&] { return Reaped(static_cast<pid_t>(resp.pid)); }));

  // The first host's output arrives whole, then its exit.
  std::string out;
  std::optional<protocol::ExitEvent> exit;
  bool ended = host.ReadUntil([&](const protocol::Frame& f) {
    if (f.stream != 3) return false;
    if (f.kind == protocol::FrameKind::kData) {
      auto data = protocol::ParseData(f.payload);
      if (data.ok() && data->fd == protocol::kFdStdout) out += data->bytes;
    } else if (f.kind == protocol::FrameKind::kEvent) {
      auto j = protocol::ParseObject(f.payload);
      exit.emplace();
      return j.ok() && protocol::FromJson(*j, &*exit).ok();
    }
    return false;
  });
  EXPECT_TRUE(ended) << "the agent dropped the port after " << out.size() << " bytes";
  EXPECT_EQ(out.size(), content.size());
  EXPECT_TRUE(out == content);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
}

// Regression (439badf, 547356e): frames queued in one round of the loop leave in one port
// write, and merging stops at what one virtio-serial write takes (32 KiB). The port is a
// SOCK_SEQPACKET socket here, so each of the agent's writes arrives as one message.
TEST(AgentBatchingTest, FramesOfOneRoundLeaveInOneWriteOfAtMost32KiB) {
  char tmpl[] = "/tmp/boxlite-inprocess-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  base::UniqueFd host(sv[0]);
  ASSERT_EQ(::fcntl(sv[1], F_SETFL, O_NONBLOCK | O_RDWR), 0);
  std::vector<base::UniqueFd> ports;
  ports.emplace_back(sv[1]);
  agent::ServerOptions options;
  options.machine = false;
  auto server = std::make_unique<agent::Server>(std::move(ports), tmpl, options);
  ASSERT_TRUE(server->Open().ok());

  // 4000 pings in one message: the agent reads them in one round and answers each.
  constexpr int kPings = 4000;
  std::string requests;
  for (int i = 0; i < kPings; ++i) {
    protocol::AppendFrame(&requests, protocol::FrameKind::kRequest, 2 * i + 1,
                          protocol::EncodeRequest("ping", protocol::Json::object()));
  }
  ASSERT_EQ(::send(host.get(), requests.data(), requests.size(), 0),
            static_cast<ssize_t>(requests.size()));
  ASSERT_TRUE(server->Step(10000).ok());

  std::vector<size_t> writes;
  protocol::FrameDecoder decoder;
  int answered = 0;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = ::recv(host.get(), buf.data(), buf.size(), MSG_DONTWAIT)) > 0) {
    writes.push_back(static_cast<size_t>(n));
    decoder.Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
    while (true) {
      auto frame = decoder.Next();
      ASSERT_TRUE(frame.ok());
      if (!frame->has_value()) break;
      EXPECT_EQ((*frame)->stream, static_cast<uint32_t>(2 * answered + 1));
      EXPECT_TRUE(protocol::DecodeResponse((*frame)->payload).ok());
      ++answered;
    }
  }
  EXPECT_EQ(answered, kPings);
  size_t total = 0;
  for (size_t w : writes) {
    EXPECT_LE(w, 32u << 10) << "a write larger than the port takes";
    total += w;
  }
  // As few writes as 32 KiB each allows (the last one partly filled).
  EXPECT_EQ(writes.size(), (total + (32u << 10) - 1) / (32u << 10))
      << "responses of one round left in " << writes.size() << " writes";
  server.reset();
  std::filesystem::remove_all(tmpl);
}

// A peer on the agent's side of a socketpair that answers each request with the payload
// `answer` makes of it: replies no real agent sends.
class ScriptedAgent {
 public:
  using Answer = std::function<std::string(const std::string& op, const protocol::Json& req)>;

  ScriptedAgent(base::UniqueFd fd, Answer answer) : fd_(std::move(fd)), answer_(std::move(answer)) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedAgent() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }

 private:
  void Serve() {
    protocol::FrameDecoder decoder;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd_.get(), buf, sizeof(buf))) > 0) {
      decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
      while (true) {
        auto frame = decoder.Next();
        if (!frame.ok() || !frame->has_value()) break;
        if ((*frame)->kind != protocol::FrameKind::kRequest) continue;
        auto req = protocol::ParseObject((*frame)->payload);
        std::string op;
        if (!req.ok() || !protocol::GetString(*req, "op", &op).ok()) continue;
        std::string out;
        protocol::AppendFrame(&out, protocol::FrameKind::kResponse, (*frame)->stream,
                              answer_(op, *req));
        if (!sys::WriteAll(fd_.get(), out).ok()) return;
      }
    }
  }

  base::UniqueFd fd_;
  Answer answer_;
  std::thread thread_;
};

TEST(HostileRepliesTest, MalformedAndOversizedFileRepliesFailTheirCallNotTheChannel) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto channel = std::make_shared<AgentChannel>(base::UniqueFd(sv[0]), nullptr);
  auto ok = [](protocol::Json body) { return protocol::EncodeOkResponse(std::move(body)); };
  ScriptedAgent agent(base::UniqueFd(sv[1]), [&](const std::string& op, const protocol::Json& req) {
    std::string path;
    (void)protocol::GetString(req, "path", &path);
    if (op == "stat") {
      if (path == "/garbage") return std::string("not json at all");
      if (path == "/mode") return ok({{"path", path}, {"kind", "file"}, {"mode", 1 << 20}});
      if (path == "/negative") return ok({{"path", path}, {"kind", "file"}, {"size", -1}});
      if (path == "/nul") return ok({{"path", std::string("/a\0b", 4)}, {"kind", "file"}});
      return ok({{"path", path}, {"kind", "dir"}, {"mode", 0755}});
    }
    if (op == "list_dir") {
      protocol::Json entries = protocol::Json::array();
      int64_t next = -1;
      if (path == "/huge") {
        for (size_t i = 0; i <= protocol::kListDirMaxEntries; ++i) {
          entries.push_back({{"path", "f" + std::to_string(i)}, {"kind", "file"}});
        }
      } else if (path == "/backwards") {
        next = 0;
      } else if (path == "/no-entries") {
        return ok({{"next_offset", -1}});
      } else {
        entries.push_back({{"path", "x"}, {"kind", "file"}, {"mode", -7}});
      }
      return ok({{"entries", entries}, {"next_offset", next}});
    }
    return protocol::EncodeErrorResponse(Status::NotSupported("not scripted", op));
  });

  char tmpl[] = "/tmp/boxlite-inprocess-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dest = tmpl;
  for (const char* path : {"/garbage", "/mode", "/negative", "/nul"}) {
    SCOPED_TRACE(path);
    Status s = runtime::CopyFromGuest(channel.get(), path, dest + "/out");
    EXPECT_TRUE(s.IsProtocolError()) << s.ToString();
  }
  CopyOptions recursive;
  recursive.recursive = true;
  ASSERT_EQ(::mkdir((dest + "/out").c_str(), 0755), 0);
  for (const char* path : {"/huge", "/backwards", "/no-entries", "/bad-entry"}) {
    SCOPED_TRACE(path);
    Status s = runtime::CopyFromGuest(channel.get(), path, dest + "/out" + path, recursive);
    EXPECT_TRUE(s.IsProtocolError()) << s.ToString();
    // Nothing of the page was written.
    auto left = sys::ListDir(dest + "/out" + path);
    EXPECT_TRUE(!left.ok() || left->empty());
  }
  EXPECT_TRUE(channel->health().ok()) << channel->health().ToString();
  std::filesystem::remove_all(dest);
}

}  // namespace
}  // namespace boxlite

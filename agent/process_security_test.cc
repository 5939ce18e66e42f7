// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// ApplyProcessSecurity in a forked child of the test (which runs as root, like the
// agent): what a box's process ends up with after execve, read from /proc/self/status
// and /proc/self/limits of a program it runs.
#include "agent/process_security.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "src/protocol/capabilities.h"

namespace boxlite::agent {
namespace {

// Runs `sh -c script` as `uid` after ApplyProcessSecurity(s); returns its stdout.
std::string RunWith(const ProcessSecurity& s, const char* script, uid_t uid = 0) {
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    const char* what = nullptr;
    if (int err = ApplyProcessSecurity(s, &what); err != 0) {
      ::dprintf(1, "failed: %s: %d\n", what, err);
      _exit(1);
    }
    if (uid != 0 && (::setgid(uid) != 0 || ::setuid(uid) != 0)) _exit(2);
    ::execl("/bin/sh", "sh", "-c", script, static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return text;
}

uint64_t Field(const std::string& status, const std::string& name) {
  size_t at = status.find(name + ":\t");
  if (at == std::string::npos) return ~uint64_t{0};
  return std::stoull(status.substr(at + name.size() + 2, 16), nullptr, 16);
}

// What a set can hold here: the kernel's capabilities within this test's own bounding
// set (a container running the tests may lack some).
uint64_t KernelCaps() {
  std::string last = RunWith({}, "cat /proc/sys/kernel/cap_last_cap");
  std::string own = RunWith({}, "cat /proc/$PPID/status");
  return ((uint64_t{1} << (std::stoi(last) + 1)) - 1) & Field(own, "CapBnd");
}

class ProcessSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, as the agent has";
  }
};

TEST_F(ProcessSecurityTest, RootGetsTheSetAsBoundingAndEffective) {
  ProcessSecurity s;
  s.capabilities = static_cast<int64_t>(protocol::DefaultCapabilities());
  std::string st = RunWith(s, "cat /proc/self/status");
  uint64_t want = protocol::DefaultCapabilities() & KernelCaps();
  EXPECT_EQ(Field(st, "CapBnd"), want) << st;
  EXPECT_EQ(Field(st, "CapEff"), want) << st;
  EXPECT_EQ(Field(st, "CapPrm"), want) << st;
  EXPECT_EQ(Field(st, "CapInh"), 0u) << st;
  EXPECT_EQ(Field(st, "CapAmb"), 0u) << st;
}

TEST_F(ProcessSecurityTest, OtherUsersHoldNone) {
  ProcessSecurity s;
  s.capabilities = static_cast<int64_t>(protocol::DefaultCapabilities() | (uint64_t{1} << 21));
  std::string st = RunWith(s, "cat /proc/self/status", 65534);
  EXPECT_EQ(Field(st, "CapBnd"), static_cast<uint64_t>(s.capabilities) & KernelCaps()) << st;
  EXPECT_EQ(Field(st, "CapEff"), 0u) << st;
  EXPECT_EQ(Field(st, "CapPrm"), 0u) << st;
}

TEST_F(ProcessSecurityTest, EmptyAndFullSets) {
  ProcessSecurity none;
  none.capabilities = 0;
  std::string st = RunWith(none, "cat /proc/self/status");
  EXPECT_EQ(Field(st, "CapBnd"), 0u) << st;
  EXPECT_EQ(Field(st, "CapEff"), 0u) << st;
  ProcessSecurity all;
  all.capabilities = static_cast<int64_t>(protocol::AllCapabilities());
  st = RunWith(all, "cat /proc/self/status");
  EXPECT_EQ(Field(st, "CapBnd"), protocol::AllCapabilities() & KernelCaps()) << st;
}

TEST_F(ProcessSecurityTest, LimitsAndDescriptors) {
  ProcessSecurity s;
  s.limits.nofile = 77;
  s.limits.fsize = 4096;
  s.limits.nproc = 99;
  s.limits.as = int64_t{1} << 32;
  s.limits.cpu = 5;
  int leak = ::open("/dev/null", O_RDONLY);  // Not close-on-exec: close_fds must close it.
  ASSERT_GE(leak, 3);
  std::string out = RunWith(s, "cat /proc/self/limits; ls /proc/self/fd");
  EXPECT_NE(out.find("Max open files            77                   77"), std::string::npos) << out;
  EXPECT_NE(out.find("Max file size             4096                 4096"), std::string::npos) << out;
  EXPECT_NE(out.find("Max processes             99                   99"), std::string::npos) << out;
  EXPECT_NE(out.find("Max address space         4294967296           4294967296"), std::string::npos) << out;
  EXPECT_NE(out.find("Max cpu time              5                    5"), std::string::npos) << out;
  std::string leaked = "\n" + std::to_string(leak) + "\n";
  // ls lists 0 1 2 and its own directory handle (which may take the freed number).
  std::string fds = out.substr(out.rfind("Max realtime timeout"));
  size_t count = 0;
  for (char c : fds) count += c == '\n';
  EXPECT_EQ(count, 5u) << fds;
  ProcessSecurity keep;
  keep.close_fds = false;
  out = RunWith(keep, "ls /proc/self/fd");
  EXPECT_NE(("\n" + out).find(leaked), std::string::npos) << out;
  ::close(leak);
}

}  // namespace
}  // namespace boxlite::agent

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The jail carried out for real: a jailed shell reports what it got from /proc.
#include "src/sys/jail.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/base/strings.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"

namespace boxlite::sys {
namespace {

constexpr uid_t kNobody = 65534;

bool Root() { return ::geteuid() == 0; }

std::string ReadLink(const std::string& path) {
  char buf[256];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, n) : "";
}

Jail TestJail() {
  Jail jail;
  if (Root()) jail.identity = Identity{kNobody, kNobody, {}, "nobody"};
  jail.seccomp_filter = SetidDenyFilter().value();
  return jail;
}

// Runs `script` under sh in `jail`; returns its exit status and output.
std::pair<int, std::string> RunJailed(const Jail& jail, const std::string& script,
                                      std::vector<int> keep = {}) {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.env = std::vector<std::string>{"PATH=/usr/bin:/bin", "JAIL_TEST=1"};
  options.stdout_fd = p[1];
  options.stderr_fd = p[1];
  options.keep_fds = keep;
  options.jail = jail;
  auto child = Subprocess::Spawn(options);
  ::close(p[1]);
  EXPECT_TRUE(child.ok()) << child.error().ToString();
  std::string out = ReadAll(p[0], 1 << 20).value_or("");
  ::close(p[0]);
  int status = child.ok() ? child->Wait().value_or(-1) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Field(const std::string& status, const std::string& name) {
  size_t at = status.find("\n" + name + ":");
  if (at == std::string::npos) return "";
  size_t start = status.find_first_not_of(" \t", at + name.size() + 2);
  return status.substr(start, status.find('\n', start) - start);
}

TEST(JailTest, SetidDenyFilterIsAProgram) {
  auto program = SetidDenyFilter();
  ASSERT_TRUE(program.ok()) << program.error().ToString();
  EXPECT_GT(program->size(), 8u);
  EXPECT_EQ(program->size() % 8, 0u);
}

TEST(JailTest, NoCapabilitiesNoNewPrivsSeccompAndNoUid0) {
  auto [code, out] = RunJailed(TestJail(), "cat /proc/self/status");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(Field(out, "CapEff"), "0000000000000000");
  EXPECT_EQ(Field(out, "CapPrm"), "0000000000000000");
  EXPECT_EQ(Field(out, "CapInh"), "0000000000000000");
  EXPECT_EQ(Field(out, "CapAmb"), "0000000000000000");
  EXPECT_EQ(Field(out, "NoNewPrivs"), "1");
  EXPECT_EQ(Field(out, "Seccomp"), "2");
  if (Root()) {
    EXPECT_EQ(Field(out, "CapBnd"), "0000000000000000");
    EXPECT_EQ(Field(out, "Uid"), "65534\t65534\t65534\t65534");
    EXPECT_EQ(Field(out, "Gid"), "65534\t65534\t65534\t65534");
    EXPECT_EQ(Field(out, "Groups"), "");
  }
}

TEST(JailTest, OnlyTheExplicitEnvironmentAndThePassedDescriptors) {
  ::setenv("BOXLITE_JAIL_TEST_CANARY", "secret", 1);
  // High numbers, apart from what the shell and ls open themselves.
  int opened = ::open("/dev/null", O_RDONLY);
  int canary = ::fcntl(opened, F_DUPFD, 100);  // Not close-on-exec: leaks without the jail.
  ::close(opened);
  opened = ::open("/dev/zero", O_RDONLY);
  int passed = ::fcntl(opened, F_DUPFD_CLOEXEC, 120);
  ::close(opened);
  ASSERT_GE(canary, 100);
  ASSERT_GE(passed, 120);
  auto [code, out] = RunJailed(TestJail(),
                               "tr '\\0' '\\n' < /proc/self/environ; ls /proc/self/fd",
                               {passed});
  ::unsetenv("BOXLITE_JAIL_TEST_CANARY");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("CANARY"), std::string::npos) << out;
  EXPECT_NE(out.find("JAIL_TEST=1\n"), std::string::npos) << out;
  // 0, 1, 2, the passed one, and what ls opens to list them.
  EXPECT_NE(out.find("\n" + std::to_string(passed) + "\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("\n" + std::to_string(canary) + "\n"), std::string::npos) << out;
  ::close(canary);
  ::close(passed);
}

TEST(JailTest, NoSetuidOrSetgidFileCanBeMade) {
  char tmpl[] = "/tmp/boxlite-jail-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  auto [code, out] = RunJailed(
      TestJail(),
      "cd " + dir +
          " && touch f && chmod 0755 f && echo plain=$?; chmod 4755 f; echo suid=$?;"
          " chmod 2755 f; echo sgid=$?; chmod u+s f; echo us=$?;"
          " mkdir -m 2755 d; echo mkdir=$?; mkdir -m 0755 e; echo mkdir_plain=$?;"
          " (umask 0; : > g; chmod 6777 g); echo both=$?");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("plain=0"), std::string::npos) << out;
  EXPECT_NE(out.find("suid=1"), std::string::npos) << out;
  EXPECT_NE(out.find("sgid=1"), std::string::npos) << out;
  EXPECT_NE(out.find("us=1"), std::string::npos) << out;
  EXPECT_NE(out.find("mkdir=1"), std::string::npos) << out;
  EXPECT_NE(out.find("mkdir_plain=0"), std::string::npos) << out;
  for (const char* name : {"f", "g", "e"}) {
    struct stat st;
    std::string path = dir + "/" + name;
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << path;
  }
  EXPECT_FALSE(Exists(dir + "/d"));
  (void)RemoveTree(dir);
}

TEST(JailTest, APidNamespaceWithItsOwnProc) {
  if (!Root()) GTEST_SKIP() << "needs root";
  Jail jail = TestJail();
  jail.new_pid_namespace = true;
  // The shell is pid 1 and, listed with a builtin, the only process in its /proc.
  auto [code, out] = RunJailed(jail, "echo pid=$$; set -- /proc/[0-9]*; echo $# $1");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "pid=1\n1 /proc/1\n");
  // Our own /proc is untouched: the mount stayed in the child's namespace.
  EXPECT_TRUE(Exists(base::StrFormat("/proc/%d", ::getpid())));
}

TEST(JailTest, AMinimalRootShowsOnlyWhatTheProgramNeeds) {
  if (!Root()) GTEST_SKIP() << "needs root";
  Jail jail = TestJail();
  jail.new_pid_namespace = true;
  jail.minimal_root = true;
  char tmpl[] = "/tmp/boxlite-jail-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  auto [code, out] = RunJailed(
      jail, "ls -a /; ls /etc; ls /dev; test -e " + dir + " || echo no-host-tmp; "
            "test -e /home || echo no-home; touch /x 2>/dev/null || echo read-only; "
            "echo hi > /dev/null && echo devnull; set -- /proc/[0-9]*; echo procs=$#");
  EXPECT_EQ(code, 0) << out;
  for (const char* want : {"usr\n", "proc\n", "ld.so.cache\n", "null\n", "urandom\n",
                           "no-host-tmp\n", "no-home\n", "read-only\n", "devnull\n",
                           "procs=1\n"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << " in\n" << out;
  }
  EXPECT_EQ(out.find("shadow"), std::string::npos) << out;
  EXPECT_EQ(out.find("root\n"), std::string::npos) << out;
  ::rmdir(dir.c_str());
}

// A directory passed as a descriptor (as a box's 9p shares reach QEMU): a host mount made
// beneath it after the jailed child started is seen through the descriptor, because
// lookups from it go through the host's mount table (a pod's volumes rely on this,
// docs/kubernetes.md); the jail's own mount namespace stays private.
TEST(JailTest, AHostMountBeneathAPassedDirectoryReachesTheJailLive) {
  if (!Root()) GTEST_SKIP() << "needs root";
  Jail jail = TestJail();
  jail.new_pid_namespace = true;
  jail.minimal_root = true;
  char share_tmpl[] = "/tmp/boxlite-jail-share-XXXXXX";
  char source_tmpl[] = "/tmp/boxlite-jail-source-XXXXXX";
  ASSERT_NE(::mkdtemp(share_tmpl), nullptr);
  ASSERT_NE(::mkdtemp(source_tmpl), nullptr);
  std::string share = share_tmpl, source = source_tmpl;
  ASSERT_EQ(::chmod(share.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(source.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((share + "/sub").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomic(source + "/marker", "live\n").ok());
  int opened = ::open(share.c_str(), O_PATH | O_DIRECTORY);
  int fd = ::fcntl(opened, F_DUPFD_CLOEXEC, 110);
  ::close(opened);
  ASSERT_GE(fd, 110);
  std::string marker = "/proc/self/fd/" + std::to_string(fd) + "/sub/marker";
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c",
                  "echo ready; i=0; while [ $i -lt 300 ]; do if [ -e " + marker + " ]; then "
                  "cat " + marker + "; exit 0; fi; sleep 0.1; i=$((i+1)); done; exit 1"};
  options.env = std::vector<std::string>{"PATH=/usr/bin:/bin"};
  options.stdout_fd = p[1];
  options.stderr_fd = p[1];
  options.keep_fds = {fd};
  options.jail = jail;
  auto child = Subprocess::Spawn(options);
  ::close(p[1]);
  ASSERT_TRUE(child.ok()) << child.error().ToString();
  char ready[6] = {};
  ASSERT_EQ(::read(p[0], ready, sizeof(ready)), 6);  // "ready\n": the jail is built.
  ASSERT_EQ(::mount(source.c_str(), (share + "/sub").c_str(), nullptr, MS_BIND, nullptr), 0);
  std::string out = ReadAll(p[0], 1 << 20).value_or("");
  ::close(p[0]);
  int status = child->Wait().value_or(-1);
  ::umount2((share + "/sub").c_str(), MNT_DETACH);
  ::close(fd);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_EQ(out, "live\n");
  ::unlink((source + "/marker").c_str());
  ::rmdir(source.c_str());
  ::rmdir((share + "/sub").c_str());
  ::rmdir(share.c_str());
}

TEST(JailTest, AnEmptyNetworkNamespaceAndNoIoUring) {
  Jail jail = TestJail();
  jail.new_network_namespace = true;
  std::string own = ReadLink("/proc/self/ns/net");
  auto [code, out] = RunJailed(jail, "readlink /proc/self/ns/net");
  ASSERT_EQ(code, 0) << out;
  if (!Root() && out.rfind(own, 0) == 0) GTEST_SKIP() << "no user namespaces here";
  EXPECT_EQ(out.find(own), std::string::npos) << out;
  if (!Exists("/usr/bin/python3")) return;
  // io_uring_setup(1, params) (425): refused, so io_uring's openat cannot pass a mode by.
  auto [code2, out2] = RunJailed(
      jail, "/usr/bin/python3 -c 'import ctypes; c = ctypes.CDLL(None, use_errno=True); "
            "r = c.syscall(425, 1, ctypes.create_string_buffer(120)); print(r, ctypes.get_errno())'");
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_EQ(out2, "-1 38\n");
}

TEST(JailTest, AFailedStepIsNamed) {
  if (!Root()) GTEST_SKIP() << "needs root";
  Jail jail = TestJail();
  jail.identity->groups = {static_cast<gid_t>(-1)};  // setgroups refuses it.
  SpawnOptions options;
  options.argv = {"/bin/true"};
  options.env = std::vector<std::string>();
  options.jail = jail;
  auto child = Subprocess::Spawn(options);
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.error().message().find("the jail could not switch user"), std::string::npos)
      << child.error().ToString();
}

TEST(JailTest, ACgroupLeafHasTheLimitsOrAReason) {
  std::string why;
  CgroupLimits limits{512ull << 20, 64};
  auto leaf = CreateCgroupLeaf(base::StrFormat("jail-test-%d", ::getpid()), limits, &why);
  if (!leaf) {
    // A cgroup v1 host or no delegation: skipped, with a reason for the debug log.
    EXPECT_FALSE(why.empty());
    GTEST_SKIP() << "no cgroup v2 leaf here: " << why;
  }
  EXPECT_EQ(base::Trim(ReadFile(*leaf + "/memory.max").value()), "536870912");
  EXPECT_EQ(base::Trim(ReadFile(*leaf + "/pids.max").value()), "64");
  Jail jail = TestJail();
  jail.cgroup_dir = *leaf;
  auto [code, out] = RunJailed(jail, "cat /proc/self/cgroup");
  EXPECT_EQ(code, 0) << out;
  std::string relative = leaf->substr(std::string("/sys/fs/cgroup").size());
  EXPECT_NE(out.find("0::" + relative + "\n"), std::string::npos) << out;
  RemoveCgroupLeaf(*leaf);
  EXPECT_FALSE(Exists(*leaf));
}

TEST(JailTest, RootMustNameAnUnprivilegedIdentity) {
  if (!Root()) GTEST_SKIP() << "needs root";
  SpawnOptions options;
  options.argv = {"/bin/true"};
  options.env = std::vector<std::string>();
  options.jail = Jail();
  EXPECT_TRUE(Subprocess::Spawn(options).error().IsInvalidArgument());
  options.jail->identity = Identity{0, 0, {}, "root"};
  EXPECT_TRUE(Subprocess::Spawn(options).error().IsInvalidArgument());
}

TEST(JailTest, AJailedChildNeedsAnExplicitEnvironment) {
  SpawnOptions options;
  options.argv = {"/bin/true"};
  options.jail = TestJail();
  EXPECT_TRUE(Subprocess::Spawn(options).error().IsInvalidArgument());
}

TEST(JailTest, CheckAccessAsSeesWhatTheUserSees) {
  if (!Root()) GTEST_SKIP() << "needs root";
  char tmpl[] = "/tmp/boxlite-jail-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  Identity nobody{kNobody, kNobody, {}, "nobody"};
  EXPECT_TRUE(CheckAccessAs(nobody, dir, R_OK | X_OK).ok());
  Status w = CheckAccessAs(nobody, dir, W_OK);
  EXPECT_TRUE(w.IsPermissionDenied()) << w.ToString();
  ASSERT_EQ(::chown(dir.c_str(), kNobody, kNobody), 0);
  EXPECT_TRUE(CheckAccessAs(nobody, dir, R_OK | W_OK | X_OK).ok());
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 0, 0), 0);
  EXPECT_FALSE(CheckAccessAs(nobody, dir + "/x", R_OK).ok());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace boxlite::sys

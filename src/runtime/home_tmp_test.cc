// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Tests of the home's tmp/ sweep (home_tmp.h): leftovers of killed processes go, files of
// a process inside its window stay.
#include "src/runtime/home_tmp.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

class HomeTmpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/home_tmp_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    tmp_ = sys::JoinPath(root_, "tmp");
    ASSERT_TRUE(sys::MakeDirs(tmp_, 0700).ok());
  }
  void TearDown() override { (void)sys::RemoveTree(root_); }

  void Touch(const std::string& name) {
    ASSERT_TRUE(sys::WriteFileAtomic(sys::JoinPath(tmp_, name), "x").ok());
  }
  size_t Entries() { return sys::ListDir(tmp_)->size(); }

  std::string root_;
  std::string tmp_;
};

TEST_F(HomeTmpTest, SweepRemovesWhatNoLiveProcessOwns) {
  Touch("abc.qcow2");
  Touch("abc.console");
  ASSERT_TRUE(sys::MakeDirs(sys::JoinPath(tmp_, "partial"), 0700).ok());
  EXPECT_EQ(SweepStaleTmp(tmp_), 3u);
  EXPECT_EQ(Entries(), 0u);
  EXPECT_EQ(SweepStaleTmp(tmp_), 0u);  // Nothing left, nothing to do.
  EXPECT_TRUE(sys::Exists(TmpLockPath(tmp_)));  // Beside tmp/, never in it.
}

TEST_F(HomeTmpTest, SweepSparesFilesOfAProcessInsideItsWindow) {
  // Another process enters its window and creates a file, then waits for a byte.
  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto window = EnterTmpWindow(tmp_);
    if (!window.ok() || !sys::WriteFileAtomic(sys::JoinPath(tmp_, "live.qcow2"), "x").ok()) _exit(1);
    char c = 1;
    if (::write(ready[1], &c, 1) != 1 || ::read(go[0], &c, 1) != 1) _exit(1);
    ::unlink(sys::JoinPath(tmp_, "live.qcow2").c_str());
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_EQ(SweepStaleTmp(tmp_), 0u);
  EXPECT_TRUE(sys::Exists(sys::JoinPath(tmp_, "live.qcow2")));
  ASSERT_EQ(::write(go[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
}

TEST_F(HomeTmpTest, FilesOfAProcessKilledInsideItsWindowAreSwept) {
  // The process dies holding its window (SIGKILL runs no cleanup): its lock goes with it.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto window = EnterTmpWindow(tmp_);
    if (!window.ok() || !sys::WriteFileAtomic(sys::JoinPath(tmp_, "dead.qcow2"), "x").ok()) _exit(1);
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) _exit(1);
    ::pause();
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_EQ(SweepStaleTmp(tmp_), 0u);  // Still alive: spared.
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(SweepStaleTmp(tmp_), 1u);
  EXPECT_EQ(Entries(), 0u);
  ::close(ready[0]);
  ::close(ready[1]);
}

}  // namespace
}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Tests of the home's tmp/ sweep (home_tmp.h): leftovers of killed processes go, files of
// a process inside its window stay.
#include "src/runtime/home_tmp.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

// Another process that enters its window, creates tmp/<name> and then waits until it is
// killed or told to go on (a byte on its pipe), when it unlinks the file and exits 0 (2
// when the file was gone).
class Holder {
 public:
  Holder(const std::string& tmp, const std::string& name) {
    int ready[2];
    if (::pipe(ready) != 0 || ::pipe(go_) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string path = sys::JoinPath(tmp, name);
      auto window = EnterTmpWindow(tmp);
      if (!window.ok() || !sys::WriteFileAtomic(path, "x").ok()) _exit(1);
      char c = 1;
      if (::write(ready[1], &c, 1) != 1 || ::read(go_[0], &c, 1) != 1) _exit(1);
      _exit(::unlink(path.c_str()) == 0 ? 0 : 2);
    }
    char c = 0;
    started_ = pid_ > 0 && ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    ::close(ready[1]);
  }
  ~Holder() {
    ::close(go_[0]);
    ::close(go_[1]);
  }
  bool started() const { return started_; }
  // Lets it unlink its file and exit; returns its wait status.
  int Finish() { return Signal(0); }
  // SIGKILL: no cleanup runs; returns its wait status.
  int Kill() { return Signal(SIGKILL); }

 private:
  int Signal(int sig) {
    char c = 1;
    if (sig == 0 ? ::write(go_[1], &c, 1) != 1 : ::kill(pid_, sig) != 0) return -1;
    int status = -1;
    ::waitpid(pid_, &status, 0);
    return status;
  }
  pid_t pid_ = -1;
  int go_[2] = {-1, -1};
  bool started_ = false;
};

class HomeTmpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = sys::TempDir::Create("/tmp", "home_tmp_test.");
    ASSERT_TRUE(dir.ok()) << dir.error().ToString();
    root_.emplace(std::move(dir).value());
    tmp_ = sys::JoinPath(root_->path(), "tmp");
    ASSERT_TRUE(sys::MakeDirs(tmp_, 0700).ok());
  }
  size_t Entries() { return sys::ListDir(tmp_)->size(); }

  std::optional<sys::TempDir> root_;
  std::string tmp_;
};

TEST_F(HomeTmpTest, SweepRemovesWhatNoLiveProcessOwns) {
  for (const char* name : {"abc.qcow2", "abc.console"}) {
    ASSERT_TRUE(sys::WriteFileAtomic(sys::JoinPath(tmp_, name), "x").ok());
  }
  ASSERT_TRUE(sys::MakeDirs(sys::JoinPath(tmp_, "partial"), 0700).ok());
  EXPECT_EQ(SweepStaleTmp(tmp_), 3u);
  EXPECT_EQ(Entries(), 0u);
  EXPECT_EQ(SweepStaleTmp(tmp_), 0u);           // Nothing left, nothing to do.
  EXPECT_TRUE(sys::Exists(TmpLockPath(tmp_)));  // Beside tmp/, never in it.
}

TEST_F(HomeTmpTest, SweepSparesFilesOfAProcessInsideItsWindow) {
  Holder holder(tmp_, "live.qcow2");
  ASSERT_TRUE(holder.started());
  EXPECT_EQ(SweepStaleTmp(tmp_), 0u);
  EXPECT_TRUE(sys::Exists(sys::JoinPath(tmp_, "live.qcow2")));
  int status = holder.Finish();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);  // Its file was still there.
  EXPECT_EQ(Entries(), 0u);
}

TEST_F(HomeTmpTest, FilesOfAProcessKilledInsideItsWindowAreSwept) {
  // The process dies holding its window (SIGKILL runs no cleanup); its lock goes with it.
  Holder holder(tmp_, "dead.qcow2");
  ASSERT_TRUE(holder.started());
  EXPECT_EQ(SweepStaleTmp(tmp_), 0u);  // Still alive: spared.
  int status = holder.Kill();
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(SweepStaleTmp(tmp_), 1u);
  EXPECT_EQ(Entries(), 0u);
}

}  // namespace
}  // namespace boxlite::runtime

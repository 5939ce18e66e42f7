// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/limits.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>

#include "src/sys/errno_status.h"

namespace boxlite::sys {
namespace {

// Limits are the whole process's: each case changes them in a child of its own and
// reports through its exit code (0 = as expected, else the number of the failed check).
int InChild(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool SetNofile(rlim_t soft, rlim_t hard) {
  struct rlimit lim = {soft, hard};
  return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// Opens `n` more descriptors (duplicates of stdin); true when every one opened.
bool CanOpen(int n) {
  for (int i = 0; i < n; ++i) {
    if (::fcntl(0, F_DUPFD_CLOEXEC, 3) < 0) return false;
  }
  return true;
}

TEST(OpenFileLimitTest, RaisesTheSoftLimitToTheHardOne) {
  EXPECT_EQ(InChild([] {
              // A hard limit this process may set: at most the one it has.
              struct rlimit lim;
              if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1;
              rlim_t hard = lim.rlim_max < 4096 ? lim.rlim_max : 4096;
              if (hard < 128 || !SetNofile(16, hard)) return 2;
              if (CanOpen(64)) return 3;  // The low soft limit is what stops it.
              if (RaiseOpenFileLimit() != hard) return 4;
              if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 5;
              if (lim.rlim_cur != hard || lim.rlim_max != hard) return 6;  // Hard unchanged.
              if (!CanOpen(64)) return 7;
              if (RaiseOpenFileLimit() != hard) return 8;  // Again: nothing changes.
              return 0;
            }),
            0);
}

TEST(OpenFileLimitTest, NeverRaisesTheHardLimit) {
  EXPECT_EQ(InChild([] {
              if (!SetNofile(100, 100)) return 1;
              if (RaiseOpenFileLimit() != 100) return 2;
              struct rlimit lim;
              if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 3;
              return lim.rlim_max == 100 ? 0 : 4;
            }),
            0);
}

TEST(OpenFileLimitTest, RunningOutSaysWhichLimitAndWhatToDo) {
  EXPECT_EQ(InChild([] {
              if (!SetNofile(32, 32)) return 1;
              int err = 0;
              for (int i = 0; i < 64 && err == 0; ++i) {
                if (::fcntl(0, F_DUPFD_CLOEXEC, 3) < 0) err = errno;
              }
              if (err != EMFILE) return 2;
              Status s = ErrnoStatus(err, "open %s", "/x");
              if (s.code() != StatusCode::kResourceExhausted) return 3;
              std::string m = s.message();
              if (m.find("open /x: ") != 0) return 4;
              if (m.find("limit of 32 open files") == std::string::npos) return 5;
              if (m.find("RLIMIT_NOFILE") == std::string::npos) return 6;
              return m.find("ulimit -n") != std::string::npos ? 0 : 7;
            }),
            0);
}

}  // namespace
}  // namespace boxlite::sys

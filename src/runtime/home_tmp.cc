// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/home_tmp.h"

#include <stdlib.h>

#include <cerrno>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {

std::string TmpLockPath(const std::string& tmp_dir) { return tmp_dir + ".lock"; }

Result<sys::FileLock> EnterTmpWindow(const std::string& tmp_dir) {
  return sys::FileLock::Acquire(TmpLockPath(tmp_dir), sys::FileLock::Mode::kShared);
}

size_t SweepStaleTmp(const std::string& tmp_dir) {
  auto lock = sys::FileLock::TryAcquire(TmpLockPath(tmp_dir), sys::FileLock::Mode::kExclusive);
  if (!lock.ok()) return 0;  // A live process is inside its window; the next open sweeps.
  auto names = sys::ListDir(tmp_dir);
  if (!names.ok()) return 0;
  size_t removed = 0;
  for (const auto& name : *names) {
    Status s = sys::RemoveTree(sys::JoinPath(tmp_dir, name));
    if (s.ok()) {
      ++removed;
    } else {
      BOXLITE_LOG(kWarn, "could not remove the stale temporary file %s: %s", name.c_str(),
                  s.ToString().c_str());
    }
  }
  if (removed > 0) {
    BOXLITE_LOG(kInfo, "removed %zu stale temporary files of killed processes from %s", removed,
                tmp_dir.c_str());
  }
  return removed;
}

Result<TmpWorkDir> TmpWorkDir::Make(const std::string& tmp_dir, const std::string& prefix) {
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(tmp_dir, 0700));
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock window, EnterTmpWindow(tmp_dir));
  std::string path = sys::JoinPath(tmp_dir, prefix + "-XXXXXX");
  if (::mkdtemp(path.data()) == nullptr) {
    return sys::ErrnoStatus(errno, "create a directory under %s", tmp_dir.c_str());
  }
  return TmpWorkDir(std::move(window), std::move(path));
}

TmpWorkDir::TmpWorkDir(TmpWorkDir&& other) noexcept
    : window_(std::move(other.window_)), path_(std::exchange(other.path_, "")) {}

TmpWorkDir::~TmpWorkDir() {
  if (!path_.empty()) (void)sys::RemoveTree(path_);
}

}  // namespace boxlite::runtime

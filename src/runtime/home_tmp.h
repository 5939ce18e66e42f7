// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The home's tmp/ directory. An ephemeral box's files (its disk overlay, console log and
// QEMU log) exist there by name only from their creation to their unlink; after that they
// live on as open descriptors (docs/design.md, "Ephemeral and persistent boxes"). A process
// killed inside that moment (say between `qemu-img create` and the unlink) leaves its files
// behind, so every runtime that opens the home sweeps what no live process owns.
//
// Locking: a process holds `<home>/tmp.lock` shared (EnterTmpWindow) for as long as any of
// its files exists in tmp/ by name. The sweep takes that lock exclusively without waiting:
// it never removes a file of a live process, and while any process is inside its window it
// removes nothing (the next open does). The lock file lives beside tmp/, never in it, and
// is never deleted (src/sys/file_lock.h). Thread-safe: the only shared state is the lock.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "boxlite/result.h"
#include "src/sys/file_lock.h"

namespace boxlite::runtime {

// The lock that guards `tmp_dir` (the directory's path plus ".lock").
std::string TmpLockPath(const std::string& tmp_dir);

// Enters the window in which this process may have files under `tmp_dir` by name. Blocks
// while a sweep runs (briefly). Hold the lock until every such file is unlinked.
Result<sys::FileLock> EnterTmpWindow(const std::string& tmp_dir);

// Removes every entry of `tmp_dir` when no process is inside its window, and returns how
// many entries went (0 when a window is open or nothing was there). Failures are logged,
// never fatal: a home with leftovers still works.
size_t SweepStaleTmp(const std::string& tmp_dir);

// A private directory (0700) of this process under `tmp_dir`, named <prefix>-XXXXXX, inside
// the tmp window (EnterTmpWindow) for its whole life, and removed with what it holds when
// the object goes: export and import stage their files in one.
class TmpWorkDir {
 public:
  static Result<TmpWorkDir> Make(const std::string& tmp_dir, const std::string& prefix);
  TmpWorkDir(TmpWorkDir&& other) noexcept;
  TmpWorkDir& operator=(TmpWorkDir&&) = delete;
  ~TmpWorkDir();
  const std::string& path() const { return path_; }

 private:
  TmpWorkDir(sys::FileLock window, std::string path)
      : window_(std::move(window)), path_(std::move(path)) {}
  sys::FileLock window_;
  std::string path_;  // Empty once moved from.
};

}  // namespace boxlite::runtime

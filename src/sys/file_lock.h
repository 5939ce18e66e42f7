// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// FileLock is an flock(2) on a lock file, held until destruction. Locks are per open file
// description, so two FileLocks in one process exclude each other like two processes
// do. The lock file is created if missing and never deleted (deleting a lock file while
// another process waits on it would split the lock). Move-only; not thread-safe.
#pragma once

#include <string>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::sys {

class FileLock {
 public:
  enum class Mode { kShared, kExclusive };

  // Blocks until the lock is held.
  static Result<FileLock> Acquire(const std::string& path, Mode mode = Mode::kExclusive);
  // Returns FailedPrecondition when someone else holds a conflicting lock.
  static Result<FileLock> TryAcquire(const std::string& path, Mode mode = Mode::kExclusive);

  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&&) noexcept = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  int fd() const { return fd_.get(); }
  // Releases the lock early.
  void Unlock() { fd_.reset(); }

 private:
  explicit FileLock(base::UniqueFd fd) : fd_(std::move(fd)) {}
  base::UniqueFd fd_;
};

}  // namespace boxlite::sys

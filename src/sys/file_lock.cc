// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "src/base/macros.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::sys {
namespace {

Result<base::UniqueFd> Lock(const std::string& path, FileLock::Mode mode, bool block) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, Open(path, O_RDWR | O_CREAT, 0644));
  int op = (mode == FileLock::Mode::kShared ? LOCK_SH : LOCK_EX) | (block ? 0 : LOCK_NB);
  while (::flock(fd.get(), op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Status::FailedPrecondition("locked by another process", path);
    return ErrnoStatus(errno, "flock %s", path.c_str());
  }
  return fd;
}

}  // namespace

Result<FileLock> FileLock::Acquire(const std::string& path, Mode mode) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, Lock(path, mode, true));
  return FileLock(std::move(fd));
}

Result<FileLock> FileLock::TryAcquire(const std::string& path, Mode mode) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, Lock(path, mode, false));
  return FileLock(std::move(fd));
}

}  // namespace boxlite::sys

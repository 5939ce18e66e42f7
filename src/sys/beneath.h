// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Writes entries whose names come from someone untrusted (a box's guest) beneath a
// directory the caller opened. Every operation takes the parent directory's fd and one
// name, never a path string, so a name can neither climb out ("..", "/"), nor reach
// through a symlink, whatever the tree looked like before or changes into meanwhile:
//   - names are single components (IsSafeName);
//   - directories are opened with RESOLVE_NO_SYMLINKS / O_NOFOLLOW and never descended
//     through a symlink; a symlink where a directory is wanted is replaced, not followed;
//   - files are written to a fresh random name (O_CREAT|O_EXCL|O_NOFOLLOW) and renamed over
//     the name, so an existing file or symlink is replaced atomically and a symlink's
//     target is never written; a directory is never replaced by a file or a symlink;
//   - modes are applied with fchmod and masked to 0777: no setuid, setgid or sticky bit;
//   - a directory made here is 0700 while it is filled; FinishDir applies its mode.
// Used by copy-out (src/runtime/tree_copy.h). Thread-safe: no shared state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/base/unique_fd.h"

namespace boxlite::sys {

// True when `name` is one path component: not empty, not "." or "..", no '/' or NUL, at
// most NAME_MAX bytes. Any other byte is allowed (names are bytes, not text).
bool IsSafeName(std::string_view name);

// `name` made printable for an error message: bytes outside printable ASCII, quotes and
// backslashes become \xNN; long names are cut.
std::string PrintableName(std::string_view name);

// Opens the relative `path` beneath `dirfd` (O_CLOEXEC added) with no symlink followed,
// magic links refused and no way out of `dirfd` ("..", absolute paths fail):
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), or, where the
// kernel lacks openat2, OpenBeneathByWalk.
Result<base::UniqueFd> OpenBeneath(int dirfd, std::string_view path, int flags, mode_t mode = 0);
// The same by a walk: every component but the last opened O_PATH|O_DIRECTORY|O_NOFOLLOW,
// the last with O_NOFOLLOW. ".." components are refused.
Result<base::UniqueFd> OpenBeneathByWalk(int dirfd, std::string_view path, int flags,
                                         mode_t mode = 0);

// A directory opened or made beneath a parent.
struct BeneathDir {
  base::UniqueFd fd;
  bool created = false;  // Made by MakeDirBeneath: FinishDir gives it its mode.
};

// Opens the directory `name` in `parent`, making it (0700) when missing. A symlink at
// `name` is removed and a directory made in its place (the link's target is untouched),
// unless `replace` is false (then it is an AlreadyExists error); any other kind of entry
// is an error.
Result<BeneathDir> MakeDirBeneath(int parent, std::string_view name, bool replace = true);
// Applies `mode & 0777` to a directory MakeDirBeneath created; a directory that was
// already there keeps its mode.
Status FinishDir(const BeneathDir& dir, uint32_t mode);

// Makes `name` in `parent` a symlink to `target` (created, never followed): an existing
// file or symlink is replaced atomically (with `replace` false: AlreadyExists, untouched),
// a directory is an error.
Status SymlinkBeneath(int parent, std::string_view name, std::string_view target,
                      bool replace = true);

// A regular file written to a random hidden name in `parent` and renamed over `name` by
// Commit. Destroyed without Commit, it removes its temporary file.
class BeneathFile {
 public:
  // Fails when `name` is a directory in `parent`.
  static Result<BeneathFile> Create(int parent, std::string_view name);
  BeneathFile(BeneathFile&& other) noexcept;
  BeneathFile& operator=(BeneathFile&&) = delete;
  BeneathFile(const BeneathFile&) = delete;
  BeneathFile& operator=(const BeneathFile&) = delete;
  ~BeneathFile();

  Status Write(std::string_view data);
  // Sets `mode & 0777` and the modification time, then renames the file over `name`;
  // with `replace` false an existing `name` is kept and the result is AlreadyExists
  // (renameat2 RENAME_NOREPLACE: no window where a new entry could be lost).
  Status Commit(uint32_t mode, int64_t mtime, bool replace = true);

 private:
  BeneathFile(base::UniqueFd parent, std::string name, std::string tmp, base::UniqueFd fd)
      : parent_(std::move(parent)), name_(std::move(name)), tmp_(std::move(tmp)),
        fd_(std::move(fd)) {}
  void Discard();

  base::UniqueFd parent_;  // A duplicate: the file may outlive the caller's fd.
  std::string name_;
  std::string tmp_;  // Empty once renamed or removed.
  base::UniqueFd fd_;
};

}  // namespace boxlite::sys

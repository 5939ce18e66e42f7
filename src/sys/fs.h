// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// File system helpers used by the host side and the agent. All functions are
// thread-safe (they share no state) and report failures as Status with the path.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/base/unique_fd.h"

namespace boxlite::sys {

Result<base::UniqueFd> Open(const std::string& path, int flags, mode_t mode = 0);
Result<std::string> ReadFile(const std::string& path);
// Writes `data` to a temporary sibling, fsyncs it when `durable`, then renames it over
// `path`: readers see the old or the new content, never a torn file.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644,
                       bool durable = true);
Status WriteAll(int fd, const void* data, size_t len);
Status WriteAll(int fd, std::string_view data);
// Reads until EOF or `max` bytes.
Result<std::string> ReadAll(int fd, size_t max = static_cast<size_t>(-1));

bool Exists(const std::string& path);
bool IsDirectory(const std::string& path);
// mkdir -p; existing directories are fine.
Status MakeDirs(const std::string& path, mode_t mode = 0755);
// rm -rf that never follows symlinks and stays on one file system. Missing is OK.
Status RemoveTree(const std::string& path);
// Total bytes allocated on disk under `path` (du -s in bytes); symlinks not followed.
uint64_t DiskUsage(const std::string& path);
// Sorted names in a directory, without "." and "..".
Result<std::vector<std::string>> ListDir(const std::string& path);
// The same for an open directory (the descriptor stays open); `what` names it in errors.
Result<std::vector<std::string>> ListDirFd(int dirfd, const std::string& what);

std::string JoinPath(std::string_view a, std::string_view b);
std::string Dirname(std::string_view path);
std::string Basename(std::string_view path);

// The directory of the running executable (from /proc/self/exe).
std::string SelfExeDir();

// Finds a helper program of BoxLite's (boxlite-net, boxlite-console): `configured` when
// it is not empty (NotFound naming `setting` unless it is an executable file); else the
// first executable file among <SelfExeDir>/../libexec/boxlite/<name> and `fallbacks`
// (the install location, then the build tree's). NotFound names every place that was
// looked at ("looked in A, B, C").
Result<std::string> FindHelperProgram(const std::string& configured, std::string_view setting,
                                      const std::string& name,
                                      const std::vector<std::string>& fallbacks);

// A directory made with mkdtemp and removed with everything in it on destruction.
class TempDir {
 public:
  static Result<TempDir> Create(const std::string& parent, std::string_view prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // Keeps the directory; returns its path.
  std::string Release() { return std::exchange(path_, std::string()); }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace boxlite::sys

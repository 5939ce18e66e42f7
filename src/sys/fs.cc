// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"

namespace boxlite::sys {

Result<base::UniqueFd> Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, "open %s", path.c_str());
  return base::UniqueFd(fd);
}

Status WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write");
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status WriteAll(int fd, std::string_view data) { return WriteAll(fd, data.data(), data.size()); }

Result<std::string> ReadAll(int fd, size_t max) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    ssize_t n = ::read(fd, buf, std::min(sizeof(buf), max - out.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, Open(path, O_RDONLY));
  auto data = ReadAll(fd.get());
  if (!data) return data.error().Wrap(path);
  return data;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                       bool durable) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, "create %s", tmp.c_str());
  base::UniqueFd guard(fd);
  Status s = WriteAll(fd, data);
  if (s.ok() && durable && ::fsync(fd) != 0) s = ErrnoStatus(errno, "fsync %s", tmp.c_str());
  guard.reset();
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = ErrnoStatus(errno, "rename %s", path.c_str());
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.Wrap("write " + path);
  }
  return Status::OK();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty() || IsDirectory(path)) return Status::OK();
  std::string cur;
  for (const auto& part : base::Split(path, '/')) {
    cur += part;
    if (!cur.empty() && ::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir %s", cur.c_str());
    }
    cur += '/';
  }
  if (!IsDirectory(path)) return Status::InvalidArgument("not a directory", path);
  return Status::OK();
}

namespace {

Status RemoveAt(int dirfd, const char* name, dev_t dev) {
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::OK();
    return ErrnoStatus(errno, "stat %s", name);
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev) return Status::FailedPrecondition("refusing to cross a mount", name);
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open %s", name);
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
      return ErrnoStatus(errno, "opendir %s", name);
    }
    std::vector<std::string> names;
    while (struct dirent* ent = ::readdir(dir)) {
      if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
      names.emplace_back(ent->d_name);
    }
    Status s;
    for (const auto& child : names) {
      s = RemoveAt(::dirfd(dir), child.c_str(), dev);
      if (!s.ok()) break;
    }
    ::closedir(dir);
    if (!s.ok()) return s;
    if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "rmdir %s", name);
    }
    return Status::OK();
  }
  if (::unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "unlink %s", name);
  }
  return Status::OK();
}

}  // namespace

Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::OK();
    return ErrnoStatus(errno, "stat %s", path.c_str());
  }
  return RemoveAt(AT_FDCWD, path.c_str(), st.st_dev).Wrap("remove " + path);
}

uint64_t DiskUsage(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 0;
  uint64_t total = static_cast<uint64_t>(st.st_blocks) * 512;
  if (S_ISDIR(st.st_mode)) {
    auto names = ListDir(path);
    if (names) {
      for (const auto& name : *names) total += DiskUsage(JoinPath(path, name));
    }
  }
  return total;
}

Result<std::vector<std::string>> ListDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "opendir %s", path.c_str());
  base::UniqueFd dir(fd);
  return ListDirFd(dir.get(), path);
}

Result<std::vector<std::string>> ListDirFd(int dirfd, const std::string& what) {
  // fdopendir takes the descriptor it is given: it reads a duplicate.
  int dup_fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  DIR* dir = dup_fd < 0 ? nullptr : ::fdopendir(dup_fd);
  if (dir == nullptr) {
    int saved = errno;
    if (dup_fd >= 0) ::close(dup_fd);
    return ErrnoStatus(saved, "opendir %s", what.c_str());
  }
  std::vector<std::string> names;
  while (struct dirent* ent = ::readdir(dir)) {
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    names.emplace_back(ent->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (out.back() != '/') out += '/';
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out += b;
  return out;
}

std::string Dirname(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t pos = path.rfind('/');
  if (pos == std::string_view::npos) return ".";
  if (pos == 0) return "/";
  return std::string(path.substr(0, pos));
}

std::string Basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t pos = path.rfind('/');
  return std::string(pos == std::string_view::npos ? path : path.substr(pos + 1));
}

std::string SelfExeDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  return Dirname(std::string_view(buf, static_cast<size_t>(n)));
}

namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

Result<std::string> FindHelperProgram(const std::string& configured, std::string_view setting,
                                      const std::string& name,
                                      const std::vector<std::string>& fallbacks) {
  if (!configured.empty()) {
    if (IsExecutableFile(configured)) return configured;
    return Status::NotFound(std::string(setting) + " is not an executable file", configured);
  }
  std::vector<std::string> tried = {JoinPath(SelfExeDir(), "../libexec/boxlite/" + name)};
  tried.insert(tried.end(), fallbacks.begin(), fallbacks.end());
  for (const auto& path : tried) {
    if (IsExecutableFile(path)) return path;
  }
  return Status::NotFound("looked in " + base::Join(tried, ", "));
}

Result<TempDir> TempDir::Create(const std::string& parent, std::string_view prefix) {
  std::string tmpl = JoinPath(parent, std::string(prefix) + "XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus(errno, "mkdtemp %s", tmpl.c_str());
  return TempDir(std::move(tmpl));
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) (void)RemoveTree(path_);
    path_ = std::exchange(other.path_, std::string());
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) (void)RemoveTree(path_);
}

}  // namespace boxlite::sys

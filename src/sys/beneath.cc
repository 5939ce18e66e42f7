// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/beneath.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::sys {
namespace {

constexpr mode_t kModeMask = 0777;  // No setuid, setgid or sticky bit from the guest.
constexpr size_t kMaxSymlinkTarget = PATH_MAX - 1;

// ".boxlite-" and 16 random hex digits: not guessable, so nobody can plant a link there.
Result<std::string> RandomTempName() {
  unsigned char bytes[8];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  std::string name = ".boxlite-";
  for (unsigned char b : bytes) name += base::StrFormat("%02x", b);
  return name;
}

Status CheckName(std::string_view name) {
  if (!IsSafeName(name)) {
    return Status::InvalidArgument("not a single file name", PrintableName(name));
  }
  return Status::OK();
}

// The kind of entry at `name` in `parent` (lstat); 0 when missing.
Result<mode_t> KindAt(int parent, const std::string& name) {
  struct stat st;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return mode_t{0};
    return ErrnoStatus(errno, "stat %s", PrintableName(name).c_str());
  }
  return st.st_mode & S_IFMT;
}

Status IsADirectory(const std::string& name) {
  return Status::FailedPrecondition(
      base::StrFormat("%s is a directory on the host and is not replaced by a file",
                      PrintableName(name).c_str()));
}

Status AlreadyThere(const std::string& name) {
  return Status::AlreadyExists(base::StrFormat(
      "%s already exists on the host and overwrite is off; it was left as it was",
      PrintableName(name).c_str()));
}

// renameat, or renameat2(RENAME_NOREPLACE) when an existing `to` must stay. Sets errno.
int Rename(int dirfd, const std::string& from, const std::string& to, bool replace) {
  if (replace) return ::renameat(dirfd, from.c_str(), dirfd, to.c_str());
  return ::renameat2(dirfd, from.c_str(), dirfd, to.c_str(), RENAME_NOREPLACE);
}

}  // namespace

bool IsSafeName(std::string_view name) {
  if (name.empty() || name.size() > NAME_MAX || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

std::string PrintableName(std::string_view name) {
  constexpr size_t kMaxShown = 200;
  std::string out;
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') {
      out += base::StrFormat("\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMaxShown) out += "...";
  return "\"" + out + "\"";
}

Result<base::UniqueFd> OpenBeneathByWalk(int dirfd, std::string_view path, int flags, mode_t mode) {
  if (path.empty() || path.front() == '/') {
    return Status::InvalidArgument("not a relative path", PrintableName(path));
  }
  auto parts = base::Split(path, '/', true);
  base::UniqueFd cur;
  int at = dirfd;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part == "..") {
      return Status::InvalidArgument("path leaves its directory", PrintableName(path));
    }
    bool last = i + 1 == parts.size();
    int f = last ? flags | O_NOFOLLOW | O_CLOEXEC : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(at, part.c_str(), f, mode);
    if (fd < 0) return ErrnoStatus(errno, "open %s", PrintableName(path).c_str());
    cur.reset(fd);
    at = fd;
  }
  return cur;
}

Result<base::UniqueFd> OpenBeneath(int dirfd, std::string_view path, int flags, mode_t mode) {
  if (path.empty() || path.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("not a relative path", PrintableName(path));
  }
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  std::string p(path);
  int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, p.c_str(), &how, sizeof(how)));
  if (fd >= 0) return base::UniqueFd(fd);
  if (errno == ENOSYS) return OpenBeneathByWalk(dirfd, path, flags, mode);
  if (errno == EXDEV) {
    return Status::InvalidArgument("path leaves its directory", PrintableName(path));
  }
  return ErrnoStatus(errno, "open %s", PrintableName(path).c_str());
}

Result<BeneathDir> MakeDirBeneath(int parent, std::string_view name_view, bool replace) {
  BOXLITE_RETURN_IF_ERROR(CheckName(name_view));
  std::string name(name_view);
  BeneathDir dir;
  BOXLITE_ASSIGN_OR_RETURN(mode_t kind, KindAt(parent, name));
  if (kind == S_IFLNK && !replace) return AlreadyThere(name);
  if (kind == S_IFLNK) {
    // The link is the guest's (or stale): it goes, its target is never touched.
    if (::unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "remove the symlink %s", PrintableName(name).c_str());
    }
    kind = 0;
  }
  if (kind != 0 && kind != S_IFDIR) {
    return Status::FailedPrecondition(base::StrFormat(
        "%s exists on the host and is not a directory", PrintableName(name).c_str()));
  }
  if (kind == 0) {
    if (::mkdirat(parent, name.c_str(), 0700) != 0) {
      return ErrnoStatus(errno, "mkdir %s", PrintableName(name).c_str());
    }
    dir.created = true;
  }
  BOXLITE_ASSIGN_OR_RETURN(dir.fd, OpenBeneath(parent, name, O_RDONLY | O_DIRECTORY));
  return dir;
}

Status FinishDir(const BeneathDir& dir, uint32_t mode) {
  if (!dir.created) return Status::OK();
  if (::fchmod(dir.fd.get(), static_cast<mode_t>(mode) & kModeMask) != 0) {
    return ErrnoStatus(errno, "chmod a directory");
  }
  return Status::OK();
}

Status SymlinkBeneath(int parent, std::string_view name_view, std::string_view target,
                      bool replace) {
  BOXLITE_RETURN_IF_ERROR(CheckName(name_view));
  if (target.empty() || target.size() > kMaxSymlinkTarget ||
      target.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("bad symlink target for", PrintableName(name_view));
  }
  std::string name(name_view);
  BOXLITE_ASSIGN_OR_RETURN(mode_t kind, KindAt(parent, name));
  if (kind == S_IFDIR) return IsADirectory(name);
  std::string t(target);
  for (int attempt = 0;; ++attempt) {
    BOXLITE_ASSIGN_OR_RETURN(std::string tmp, RandomTempName());
    if (::symlinkat(t.c_str(), parent, tmp.c_str()) != 0) {
      if (errno == EEXIST && attempt < 8) continue;
      return ErrnoStatus(errno, "symlink %s", PrintableName(name).c_str());
    }
    if (Rename(parent, tmp, name, replace) != 0) {
      int err = errno;
      ::unlinkat(parent, tmp.c_str(), 0);
      if (err == EISDIR) return IsADirectory(name);
      if (err == EEXIST && !replace) return AlreadyThere(name);
      return ErrnoStatus(err, "rename into %s", PrintableName(name).c_str());
    }
    return Status::OK();
  }
}

Result<BeneathFile> BeneathFile::Create(int parent, std::string_view name_view) {
  BOXLITE_RETURN_IF_ERROR(CheckName(name_view));
  std::string name(name_view);
  BOXLITE_ASSIGN_OR_RETURN(mode_t kind, KindAt(parent, name));
  if (kind == S_IFDIR) return IsADirectory(name);
  int dup = ::fcntl(parent, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return ErrnoStatus(errno, "dup");
  base::UniqueFd parent_dup(dup);
  for (int attempt = 0;; ++attempt) {
    BOXLITE_ASSIGN_OR_RETURN(std::string tmp, RandomTempName());
    auto fd = OpenBeneath(parent, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (!fd.ok()) {
      if (fd.error().IsAlreadyExists() && attempt < 8) continue;
      return fd.error().Wrap("create a file for " + PrintableName(name));
    }
    return BeneathFile(std::move(parent_dup), std::move(name), std::move(tmp),
                       std::move(fd).value());
  }
}

BeneathFile::BeneathFile(BeneathFile&& other) noexcept
    : parent_(std::move(other.parent_)), name_(std::move(other.name_)),
      tmp_(std::exchange(other.tmp_, std::string())), fd_(std::move(other.fd_)) {}

BeneathFile::~BeneathFile() { Discard(); }

void BeneathFile::Discard() {
  fd_.reset();
  if (!tmp_.empty() && parent_) ::unlinkat(parent_.get(), tmp_.c_str(), 0);
  tmp_.clear();
}

Status BeneathFile::Write(std::string_view data) {
  if (!fd_) return Status::FailedPrecondition("the file is already finished");
  Status s = WriteAll(fd_.get(), data.data(), data.size());
  if (!s.ok()) return s.Wrap("write " + PrintableName(name_));
  return Status::OK();
}

Status BeneathFile::Commit(uint32_t mode, int64_t mtime, bool replace) {
  if (!fd_) return Status::FailedPrecondition("the file is already finished");
  Status s;
  if (::fchmod(fd_.get(), static_cast<mode_t>(mode) & kModeMask) != 0) {
    s = ErrnoStatus(errno, "chmod %s", PrintableName(name_).c_str());
  }
  struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  if (s.ok()) (void)::futimens(fd_.get(), times);  // Cosmetic: on failure the write time stays.
  if (s.ok() && Rename(parent_.get(), tmp_, name_, replace) != 0) {
    s = errno == EISDIR                ? IsADirectory(name_)
        : (errno == EEXIST && !replace) ? AlreadyThere(name_)
                                        : ErrnoStatus(errno, "rename into %s", PrintableName(name_).c_str());
  }
  if (!s.ok()) {
    Discard();
    return s;
  }
  tmp_.clear();
  fd_.reset();
  return Status::OK();
}

}  // namespace boxlite::sys

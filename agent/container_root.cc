// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/container_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "src/base/macros.h"
#include "src/sys/errno_status.h"

namespace boxlite::agent {

Result<ContainerRoot> OpenContainerRoot(int box_root_fd, const std::string& box_root,
                                        const std::string& dir) {
  if (dir.empty() || dir[0] != '/') {
    return Status::InvalidArgument("a container root must be an absolute path in the box", dir);
  }
  if (dir.find('\0') != std::string::npos) {
    return Status::InvalidArgument("a container root path contains a NUL byte");
  }
  struct open_how how = {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, box_root_fd, dir.c_str(), &how, sizeof(how)));
  if (fd < 0) return sys::ErrnoStatus(errno, "open the container root %s", dir.c_str());
  ContainerRoot root;
  root.dir.reset(fd);
  // The agent's name of it: what the kernel resolved (beneath the box root by
  // construction; checked anyway, a root outside would be a kernel or caller bug).
  char buf[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return sys::ErrnoStatus(errno, "resolve the container root %s", dir.c_str());
  root.path.assign(buf, static_cast<size_t>(n));
  std::string prefix = box_root == "/" ? "/" : box_root + "/";
  if (root.path != box_root && root.path.compare(0, prefix.size(), prefix) != 0) {
    return Status::InvalidArgument("the container root resolves outside the box", dir);
  }
  if (root.path == box_root || root.path == "/") {
    return Status::InvalidArgument("a container root cannot be the box's root", dir);
  }
  // The mount points EnterContainerRoot uses, made here (the child makes no files).
  for (const char* name : {"proc", "sys", "dev"}) {
    if (::mkdirat(fd, name, 0755) != 0 && errno != EEXIST) {
      return sys::ErrnoStatus(errno, "make %s/%s", dir.c_str(), name);
    }
    struct stat st;
    if (::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return sys::ErrnoStatus(errno, "stat %s/%s", dir.c_str(), name);
    }
    if (!S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument("the container root's " + std::string(name) +
                                         " is not a directory: remove it from the image",
                                     dir);
    }
  }
  return root;
}

namespace {

int OpenIn(int root_fd, const std::string& path, uint64_t flags) {
  struct open_how how = {};
  how.flags = flags | O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how)));
}

std::string FdPath(int fd) {
  char buf[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Makes `dest` (beneath the root `root_fd`) when missing: its parents as directories, the
// last component a directory or an empty file. Every component is resolved inside the
// root, so a symlink on the way names a path of the container's root.
Status MakeDestination(int root_fd, const std::string& dest, bool dir) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < dest.size()) {
    size_t j = dest.find('/', i);
    if (j == std::string::npos) j = dest.size();
    if (j > i) parts.push_back(dest.substr(i, j - i));
    i = j + 1;
  }
  if (parts.empty()) return Status::InvalidArgument("a container mount cannot cover the container's root");
  std::string prefix;
  base::UniqueFd parent(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!parent) return sys::ErrnoStatus(errno, "dup the container root");
  for (size_t k = 0; k < parts.size(); ++k) {
    const std::string& name = parts[k];
    if (name == "." || name == "..") {
      return Status::InvalidArgument("a container mount's destination has . or .. in it", dest);
    }
    prefix += "/" + name;
    bool last = k + 1 == parts.size();
    int fd = OpenIn(root_fd, prefix, 0);
    if (fd < 0 && errno == ENOENT) {
      int made = last && !dir ? ::openat(parent.get(), name.c_str(),
                                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)
                              : ::mkdirat(parent.get(), name.c_str(), 0755);
      if (made < 0 && errno == EEXIST) {
        return Status::InvalidArgument(
            "a container mount's destination is a symbolic link to a missing path of the "
            "container's root", prefix);
      }
      if (made < 0) return sys::ErrnoStatus(errno, "make %s in the container's root", prefix.c_str());
      if (last && !dir) ::close(made);
      fd = OpenIn(root_fd, prefix, 0);
    }
    if (fd < 0) return sys::ErrnoStatus(errno, "open %s in the container's root", prefix.c_str());
    parent.reset(fd);
  }
  return Status::OK();
}

}  // namespace

Status PrepareContainerMounts(int box_root_fd, std::vector<protocol::ExecRequest::Mount> mounts,
                              ContainerRoot* root) {
  for (const auto& m : mounts) {
    if (m.source.empty() || m.source[0] != '/' || m.destination.empty() ||
        m.destination[0] != '/') {
      return Status::InvalidArgument("a container mount needs absolute paths",
                                     m.source + ":" + m.destination);
    }
    base::UniqueFd src(OpenIn(box_root_fd, m.source, 0));
    if (!src) return sys::ErrnoStatus(errno, "open the container mount's source %s", m.source.c_str());
    struct stat sst;
    if (::fstat(src.get(), &sst) != 0) return sys::ErrnoStatus(errno, "stat %s", m.source.c_str());
    if (!S_ISDIR(sst.st_mode) && !S_ISREG(sst.st_mode)) {
      return Status::InvalidArgument("a container mount's source is not a directory or a file",
                                     m.source);
    }
    BOXLITE_RETURN_IF_ERROR(MakeDestination(root->dir.get(), m.destination, S_ISDIR(sst.st_mode)));
    base::UniqueFd dst(OpenIn(root->dir.get(), m.destination, 0));
    if (!dst) return sys::ErrnoStatus(errno, "open %s in the container's root", m.destination.c_str());
    std::string at = FdPath(dst.get());
    if (at.compare(0, root->path.size() + 1, root->path + "/") != 0) {
      return Status::InvalidArgument(
          "a container mount's destination does not resolve beneath the container's root",
          m.destination);
    }
    struct stat dst_st;
    if (::fstat(dst.get(), &dst_st) != 0) return sys::ErrnoStatus(errno, "stat %s", at.c_str());
    if (S_ISDIR(dst_st.st_mode) != S_ISDIR(sst.st_mode)) {
      return Status::InvalidArgument(
          std::string("a container mount's source is a ") +
              (S_ISDIR(sst.st_mode) ? "directory" : "file") + " and its destination is not",
          m.destination);
    }
  }
  root->mounts = std::move(mounts);
  return Status::OK();
}

Result<ContainerRoot> ContainerRootOf(const protocol::ExecRequest& r, bool machine,
                                      int box_root_fd, const std::string& box_root) {
  if (r.root_dir.empty()) {
    if (!r.container_mounts.empty()) {
      return Status::InvalidArgument("exec: container mounts need a container root");
    }
    return ContainerRoot();
  }
  if (!machine) return Status::NotSupported("exec: container roots need the box's agent");
  BOXLITE_ASSIGN_OR_RETURN(ContainerRoot root, OpenContainerRoot(box_root_fd, box_root, r.root_dir));
  root.box_root = box_root;
  BOXLITE_RETURN_IF_ERROR(PrepareContainerMounts(box_root_fd, r.container_mounts, &root));
  return root;
}

namespace {

// "/proc/self/fd/N" into `buf` (after fork: no allocation).
const char* FdLink(int fd, char (&buf)[32]) {
  static const char kPrefix[] = "/proc/self/fd/";
  char digits[12];
  int n = 0;
  unsigned v = static_cast<unsigned>(fd);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 11);
  size_t at = 0;
  for (; kPrefix[at] != '\0'; ++at) buf[at] = kPrefix[at];
  while (n > 0) buf[at++] = digits[--n];
  buf[at] = '\0';
  return buf;
}

int OpenInRaw(int root_fd, const char* path) {
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root_fd, path, &how, sizeof(how)));
}

// The root's mounts, in the process's own namespace; the working directory is the
// container's root (system calls only).
int BindContainerMounts(const ContainerRoot& root, const char** step) {
  if (root.mounts.empty()) return 0;
  *step = "open the box's root for the mounts of";
  // Opened after unshare: descriptors from before name the agent's namespace, where
  // mount refuses to bind.
  int box = ::open(root.box_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (box < 0) return errno;
  int self = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (self < 0) return errno;
  for (const auto& m : root.mounts) {
    char src_link[32];
    char dst_link[32];
    *step = "open a container mount's source for";
    int src = OpenInRaw(box, m.source.c_str());
    if (src < 0) return errno;
    *step = "open a container mount's destination for";
    int dst = OpenInRaw(self, m.destination.c_str());
    if (dst < 0) return errno;
    *step = "bind a container mount for";
    if (::mount(FdLink(src, src_link), FdLink(dst, dst_link), nullptr, MS_BIND | MS_REC,
                nullptr) != 0) {
      return errno;
    }
    ::close(src);
    ::close(dst);
    if (m.read_only) {
      *step = "make a container mount read-only for";
      dst = OpenInRaw(self, m.destination.c_str());  // Now the bind's root.
      if (dst < 0) return errno;
      if (::mount(nullptr, FdLink(dst, dst_link), nullptr,
                  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
        return errno;
      }
      ::close(dst);
    }
  }
  ::close(self);
  ::close(box);
  return 0;
}

}  // namespace

int EnterContainerRoot(const ContainerRoot& root, const char** step) {
  // After fork: system calls only.
  // Into the root first: unshare moves the working directory into the new namespace's
  // copy of its mount (a descriptor opened before keeps naming the old one).
  *step = "enter the container root of";
  if (::fchdir(root.dir.get()) != 0) return errno;
  *step = "make a mount namespace for";
  if (::unshare(CLONE_NEWNS) != 0) return errno;
  *step = "make the mounts private for";
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  // The box's /dev (devtmpfs, with /dev/pts and /dev/shm): one for the whole pod.
  *step = "mount /dev for";
  if (::mount("/dev", "dev", nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
  if (int err = BindContainerMounts(root, step)) return err;
  *step = "chroot for";
  if (::chroot(".") != 0) return errno;
  *step = "mount /proc for";
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return errno;
  }
  *step = "mount /sys for";
  if (::mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
              nullptr) != 0) {
    return errno;
  }
  return 0;
}

}  // namespace boxlite::agent

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

Result<ContainerRoot> ContainerRootOf(const std::string& dir, bool machine, int box_root_fd,
                                      const std::string& box_root) {
  if (dir.empty()) return ContainerRoot();
  if (!machine) return Status::NotSupported("exec: container roots need the box's agent");
  return OpenContainerRoot(box_root_fd, box_root, dir);
}

int EnterContainerRoot(int root_fd, const char** step) {
  // After fork: system calls only.
  // Into the root first: unshare moves the working directory into the new namespace's
  // copy of its mount (a descriptor opened before keeps naming the old one).
  *step = "enter the container root of";
  if (::fchdir(root_fd) != 0) return errno;
  *step = "make a mount namespace for";
  if (::unshare(CLONE_NEWNS) != 0) return errno;
  *step = "make the mounts private for";
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  // The box's /dev (devtmpfs, with /dev/pts and /dev/shm): one for the whole pod.
  *step = "mount /dev for";
  if (::mount("/dev", "dev", nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
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

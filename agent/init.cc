// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/init.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::agent {
namespace {

// From fs/ext4/ext4.h; not exported in the uapi headers of 6.1.
constexpr unsigned long kExt4IocResizeFs = _IOW('f', 16, uint64_t);

Status Mount(const char* source, const char* target, const char* type, unsigned long flags,
             const char* data = nullptr) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, flags, data) != 0) {
    return sys::ErrnoStatus(errno, "mount %s on %s", type ? type : source, target);
  }
  return Status::OK();
}

Status GrowRootfs() {
  base::UniqueFd dev(::open("/dev/vda", O_RDONLY | O_CLOEXEC));
  if (!dev) return sys::ErrnoStatus(errno, "open /dev/vda");
  uint64_t dev_bytes = 0;
  if (::ioctl(dev.get(), BLKGETSIZE64, &dev_bytes) != 0) {
    return sys::ErrnoStatus(errno, "BLKGETSIZE64 /dev/vda");
  }
  base::UniqueFd root(::open(kRootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys::ErrnoStatus(errno, "open %s", kRootfs);
  // statvfs reports the size in f_frsize units, minus the metadata overhead; the
  // kernel returns at once when the file system already spans the device.
  struct statvfs vfs;
  if (::fstatvfs(root.get(), &vfs) != 0) return sys::ErrnoStatus(errno, "statvfs /");
  uint64_t block = vfs.f_frsize;
  uint64_t want = dev_bytes / block;
  if (want <= vfs.f_blocks) return Status::OK();
  if (::ioctl(root.get(), kExt4IocResizeFs, &want) != 0) {
    if (errno == EINVAL || errno == ENOTTY || errno == EOPNOTSUPP) return Status::OK();
    return sys::ErrnoStatus(errno, "grow / to %llu blocks", static_cast<unsigned long long>(want));
  }
  return Status::OK();
}

}  // namespace

void ConsoleLog(const char* fmt, ...) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof(buf), "boxlite-agent: ");
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof(buf) - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = std::min(sizeof(buf) - 2, static_cast<size_t>(n + (m > 0 ? m : 0)));
  buf[len++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, buf, len);
  (void)ignored;
}

Status MountEarly() {
  BOXLITE_RETURN_IF_ERROR(Mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"));
  int console = ::open("/dev/console", O_RDWR | O_CLOEXEC);
  if (console >= 0) {
    ::dup2(console, STDOUT_FILENO);
    ::dup2(console, STDERR_FILENO);
    ::close(console);
  }
  BOXLITE_RETURN_IF_ERROR(Mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                                "gid=5,mode=620,ptmxmode=666"));
  BOXLITE_RETURN_IF_ERROR(Mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  BOXLITE_RETURN_IF_ERROR(Mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  BOXLITE_RETURN_IF_ERROR(Mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  ::symlink("/proc/self/fd", "/dev/fd");
  return Status::OK();
}

Status FindAgentPort(std::string* path) {
  // Built-in virtio drivers probe before init runs; retry briefly in case the port's
  // name arrives a moment later (it is sent by the device after the port is added).
  for (int attempt = 0; attempt < 500; ++attempt) {
    auto ports = sys::ListDir("/sys/class/virtio-ports");
    if (ports.ok()) {
      for (const auto& port : *ports) {
        auto name = sys::ReadFile("/sys/class/virtio-ports/" + port + "/name");
        if (name.ok() && base::Trim(*name) == protocol::kAgentPortName) {
          *path = "/dev/" + port;
          return Status::OK();
        }
      }
    }
    ::usleep(2000);
  }
  return Status::NotFound("virtio-serial port", std::string(protocol::kAgentPortName));
}

Status MountRootfs() {
  // noinit_itable: the inode tables of groups added by growing sit on fresh overlay
  // blocks that already read as zero, so the lazy zeroing thread would only burn CPU.
  BOXLITE_RETURN_IF_ERROR(Mount("/dev/vda", kRootfs, "ext4", 0, "noinit_itable"));
  Status grown = GrowRootfs();
  if (!grown.ok()) ConsoleLog("%s", grown.ToString().c_str());
  return Status::OK();
}

Status PrepareRootfs() {
  std::string root = kRootfs;
  BOXLITE_RETURN_IF_ERROR(Mount("proc", (root + "/proc").c_str(), "proc",
                                MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("sysfs", (root + "/sys").c_str(), "sysfs",
                                MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("/dev", (root + "/dev").c_str(), nullptr, MS_BIND | MS_REC));
  // /tmp stays on the box disk, as in a container; make sure it is world-writable.
  std::string tmp = root + "/tmp";
  struct stat st;
  if (::stat(tmp.c_str(), &st) != 0) ::mkdir(tmp.c_str(), 01777);
  return Status::OK();
}

Status ApplyBoxConfig(const protocol::BoxConfig& config) {
  if (!config.hostname.empty() &&
      ::sethostname(config.hostname.data(), config.hostname.size()) != 0) {
    return sys::ErrnoStatus(errno, "sethostname %s", config.hostname.c_str());
  }
  if (config.clock_unix_ns > 0) {
    struct timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    int64_t guest_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
    if (std::llabs(guest_ns - config.clock_unix_ns) > 1000000000) {
      struct timespec ts = {static_cast<time_t>(config.clock_unix_ns / 1000000000),
                            static_cast<long>(config.clock_unix_ns % 1000000000)};
      ::clock_settime(CLOCK_REALTIME, &ts);
    }
  }
  return Status::OK();
}

void PowerOff() {
  // Stop every process so the box disk can be unmounted cleanly: a persistent box's next
  // boot then needs no journal recovery.
  ::kill(-1, SIGKILL);
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  ::sync();
  for (const char* sub : {"/dev/pts", "/dev/shm", "/dev", "/sys", "/proc"}) {
    ::umount2((std::string(kRootfs) + sub).c_str(), MNT_DETACH);
  }
  if (::umount(kRootfs) != 0) ::mount(nullptr, kRootfs, nullptr, MS_REMOUNT | MS_RDONLY, nullptr);
  ::sync();
  // The guest kernel runs without ACPI: a triple-fault reboot (reboot=t) with QEMU's
  // -no-reboot is what ends the VM.
  ::reboot(RB_AUTOBOOT);
  while (true) ::pause();
}

void Fatal(const Status& status) {
  ConsoleLog("fatal: %s", status.ToString().c_str());
  PowerOff();
}

}  // namespace boxlite::agent

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/process_security.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace boxlite::agent {
namespace {

int SetLimit(int resource, int64_t value) {
  if (value <= 0) return 0;
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(value);
  return ::setrlimit(resource, &rl) == 0 ? 0 : errno;
}

}  // namespace

int DropBoundingSet(uint64_t keep, int last_cap) {
  for (int cap = 0; cap <= last_cap && cap < 64; ++cap) {
    if (keep & (uint64_t{1} << cap)) continue;
    // EINVAL: a capability this kernel does not have.
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  }
  return 0;
}

int ApplyProcessSecurity(const ProcessSecurity& s, const char** what) {
  const struct {
    int resource;
    int64_t value;
    const char* name;
  } limits[] = {{RLIMIT_NOFILE, s.limits.nofile, "set max_open_files"},
                {RLIMIT_FSIZE, s.limits.fsize, "set max_file_size"},
                {RLIMIT_NPROC, s.limits.nproc, "set max_processes"},
                {RLIMIT_AS, s.limits.as, "set max_memory"},
                {RLIMIT_CPU, s.limits.cpu, "set max_cpu_time"}};
  for (const auto& l : limits) {
    if (int err = SetLimit(l.resource, l.value); err != 0) {
      *what = l.name;
      return err;
    }
  }
  if (s.capabilities >= 0) {
    uint64_t keep = static_cast<uint64_t>(s.capabilities);
    if (!s.bounding_set_dropped) {
      if (int err = DropBoundingSet(keep, s.last_cap); err != 0) {
        *what = "drop capabilities";
        return err;
      }
    }
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
      *what = "clear ambient capabilities";
      return errno;
    }
    // Inheritable empty, permitted and effective limited to the set: what root keeps
    // until execve, which then grants root exactly the bounding set.
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &header, data) != 0) {
      *what = "read capabilities";
      return errno;
    }
    for (int i = 0; i < 2; ++i) {
      // setgroups/setgid/setuid still need CAP_SETGID and CAP_SETUID after this: keep
      // them until then (setuid to another user clears them anyway).
      uint32_t need = i == 0 ? (1u << CAP_SETGID) | (1u << CAP_SETUID) : 0;
      uint32_t part = static_cast<uint32_t>(keep >> (32 * i));
      data[i].inheritable = 0;
      data[i].permitted &= part | need;
      data[i].effective &= part | need;
    }
    if (::syscall(SYS_capset, &header, data) != 0) {
      *what = "set capabilities";
      return errno;
    }
  }
  if (s.close_fds) {
    if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
      // Kernels before 5.11: one descriptor at a time, up to the limit.
      struct rlimit rl;
      int top = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536
                    ? static_cast<int>(rl.rlim_cur)
                    : 65536;
      for (int fd = 3; fd < top; ++fd) {
        int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
      }
    }
  }
  return 0;
}

}  // namespace boxlite::agent

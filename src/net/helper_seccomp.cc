// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/helper_seccomp.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "src/base/strings.h"

namespace boxlite::net {
namespace {

constexpr const char* kPlainSyscalls[] = {
    // I/O on descriptors the helper already holds, and sockets' own calls.
    "read", "readv", "write", "writev", "close", "shutdown", "fcntl", "lseek", "fstat",
    "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "connect", "accept",
    "accept4", "bind", "getsockname", "getpeername", "getsockopt", "setsockopt",
    // The event loop and the clock.
    "poll", "ppoll", "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep",
    "clock_nanosleep",
    // Memory.
    "brk", "munmap", "mremap", "madvise",
    // Threads' and signals' plumbing, identity, randomness, exit.
    "futex", "getrandom", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "restart_syscall",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "sched_yield",
    "exit", "exit_group",
    // Threads of intercepted flows (flow_intercept.h): glibc's pthread_create.
    "set_robust_list", "rseq",
};

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

Status Failed(int rc, const char* what) {
  return Status::Internal(base::StrFormat("seccomp: %s: %s", what, std::strerror(-rc)));
}

}  // namespace

Status InstallHelperSeccomp() {
  std::unique_ptr<void, FilterDeleter> ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) return Status::Internal("seccomp: cannot create a filter");
  void* c = ctx.get();
  for (const char* name : kPlainSyscalls) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // Not a syscall on this architecture.
    int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 0);
    if (rc != 0) return Failed(rc, name);
  }
  // glibc's fstat is newfstatat(fd, "", buf, AT_EMPTY_PATH): only that form, no paths.
  int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                            SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
  if (rc != 0) return Failed(rc, "newfstatat");
  for (int family : {AF_INET, AF_INET6}) {
    rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                          SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
    if (rc != 0) return Failed(rc, "socket");
  }
  rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                        SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE));
  if (rc != 0) return Failed(rc, "socket(AF_NETLINK)");
  for (int nr : {SCMP_SYS(mmap), SCMP_SYS(mprotect)}) {
    rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (rc != 0) return Failed(rc, "mmap/mprotect");
  }
  for (unsigned long request : {FIONREAD, FIONBIO}) {
    rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                          SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(request)));
    if (rc != 0) return Failed(rc, "ioctl");
  }
  rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                        SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid())));
  if (rc != 0) return Failed(rc, "tgkill");
  // New threads only (CLONE_THREAD): fork and vfork stay refused. clone3 passes its
  // flags in memory, which a filter cannot read: ENOSYS makes glibc fall back to clone.
  rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                        SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (rc != 0) return Failed(rc, "clone");
  rc = seccomp_rule_add(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc != 0) return Failed(rc, "clone3");
  rc = seccomp_load(c);
  if (rc != 0) return Failed(rc, "load the filter");
  return Status::OK();
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-net's own seccomp filter (libseccomp), installed once its setup is done (ports
// bound, resolv.conf read, netlink watcher open, privileges dropped): what is left is
// the event loop of NetProcess, which needs sockets to the outside world, reading and
// writing descriptors it already has, memory and the clock. Everything else fails with
// EPERM: no file is opened, no process started, no AF_UNIX or AF_PACKET socket, no
// executable memory, no ptrace, no namespaces. EPERM rather than a kill, so a path that
// was missed fails one operation rather than the box's network.
//
// Allowed, with their arguments checked where it matters:
//   socket            AF_INET and AF_INET6 (libslirp's and the DNS forwarder's flows),
//                     AF_NETLINK with NETLINK_ROUTE only (getifaddrs, address changes)
//   mmap, mprotect    without PROT_EXEC
//   ioctl             FIONREAD and FIONBIO only
//   tgkill            this process only (abort)
//   the rest          no arguments worth checking: I/O on existing descriptors (read,
//                     write, send*, recv*, connect, accept*, bind, shutdown, close,
//                     get/setsockopt, getsockname/getpeername, fcntl, fstat), poll,
//                     the clock, memory (brk, munmap, mremap, madvise), futex, getrandom,
//                     signals' return and masks, exit.
// Thread-safety: call once, from the only thread.
#pragma once

#include "boxlite/status.h"

namespace boxlite::net {

Status InstallHelperSeccomp();

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's freeze and thaw requests (agent/server.h; docs/protocol.md): the box disk's
// file system flushed and frozen with FIFREEZE so the host can copy a consistent disk
// (a snapshot, a clone), then thawed. A frozen file system blocks every writer, and this
// loop writes to it too (put_file): so the deadline is kept by a guard process of its
// own, which sleeps and thaws whatever happens to the loop or to the host.
#include "agent/server.h"
#include "agent/server_internal.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/init.h"
#include "src/base/macros.h"
#include "src/sys/errno_status.h"

namespace boxlite::agent {
namespace {

Result<base::UniqueFd> OpenRoot(const std::string& rootfs) {
  base::UniqueFd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys::ErrnoStatus(errno, "open %s", rootfs.c_str());
  return root;
}

// In the guard process: sleeps `ms`, thaws, exits. Only async-signal-safe calls.
[[noreturn]] void GuardAndThaw(int root_fd, int64_t ms) {
  struct timespec left = {static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
  while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
  (void)::ioctl(root_fd, FITHAW, 0);
  ::_exit(0);
}

}  // namespace

Status Server::DoFreeze(Conn* conn, const protocol::Json& req, protocol::Json* reply) {
  protocol::FreezeRequest request;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &request));
  if (!options_.machine) {
    return Status::NotSupported("freeze needs the box's own disk (the agent as PID 1 of a box)");
  }
  WaitForRootfs();  // A growing file system finishes first.
  BOXLITE_ASSIGN_OR_RETURN(base::UniqueFd root, OpenRoot(rootfs_));
  // A freeze that is still on (its host is back, or a second snapshot): a fresh deadline.
  if (thaw_guard_ > 0) {
    ::kill(thaw_guard_, SIGKILL);
    thaw_guard_ = -1;
  }
  protocol::FreezeResponse response;
  if (::ioctl(root.get(), FIFREEZE, 0) != 0 && errno != EBUSY) {
    // EBUSY: frozen already. Anything else (a file system without freeze support): the
    // host's copy is crash-consistent only, which the response says.
    ConsoleLog("boxlite-agent: cannot freeze the box disk: %s", std::strerror(errno));
    *reply = protocol::ToJson(response);
    return Status::OK();
  }
  pid_t guard = ::fork();
  if (guard == 0) GuardAndThaw(root.get(), request.thaw_after_ms);
  if (guard < 0) {
    int err = errno;
    (void)::ioctl(root.get(), FITHAW, 0);
    return sys::ErrnoStatus(err, "start the thaw guard");
  }
  thaw_guard_ = guard;
  frozen_by_ = conn;
  response.frozen = true;
  *reply = protocol::ToJson(response);
  return Status::OK();
}

Status Server::DoThaw() {
  if (!options_.machine) {
    return Status::NotSupported("thaw needs the box's own disk (the agent as PID 1 of a box)");
  }
  return ThawNow();
}

Status Server::ThawNow() {
  if (!options_.machine) return Status::OK();
  if (thaw_guard_ > 0) ::kill(thaw_guard_, SIGKILL);  // Reaped with the other children.
  thaw_guard_ = -1;
  frozen_by_ = nullptr;
  BOXLITE_ASSIGN_OR_RETURN(base::UniqueFd root, OpenRoot(rootfs_));
  // EINVAL: not frozen (the guard thawed it already, or it never froze).
  if (::ioctl(root.get(), FITHAW, 0) != 0 && errno != EINVAL) {
    return sys::ErrnoStatus(errno, "thaw the box disk");
  }
  return Status::OK();
}

}  // namespace boxlite::agent

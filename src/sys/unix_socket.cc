// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::sys {
namespace {

// Fills `addr` for `path`, opening its directory into `dirfd` when the path is too long.
Status MakeAddr(const std::string& path, base::UniqueFd* dirfd, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::string name = path;
  if (path.size() >= sizeof(addr->sun_path)) {
    std::string dir = Dirname(path);
    int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open %s", dir.c_str());
    dirfd->reset(fd);
    name = base::StrFormat("/proc/self/fd/%d/%s", fd, Basename(path).c_str());
    if (name.size() >= sizeof(addr->sun_path)) {
      return Status::InvalidArgument("socket name too long", path);
    }
  }
  std::memcpy(addr->sun_path, name.c_str(), name.size() + 1);
  return Status::OK();
}

}  // namespace

Result<base::UniqueFd> ListenUnix(const std::string& path, int backlog) {
  sockaddr_un addr;
  base::UniqueFd dirfd;
  BOXLITE_RETURN_IF_ERROR(MakeAddr(path, &dirfd, &addr));
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind %s", path.c_str());
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoStatus(errno, "listen %s", path.c_str());
  return fd;
}

Result<base::UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un addr;
  base::UniqueFd dirfd;
  BOXLITE_RETURN_IF_ERROR(MakeAddr(path, &dirfd, &addr));
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EINTR) continue;
    if (errno == ECONNREFUSED) {
      return Status::Unavailable("nothing listens on " + path);
    }
    return ErrnoStatus(errno, "connect %s", path.c_str());
  }
  return fd;
}

}  // namespace boxlite::sys

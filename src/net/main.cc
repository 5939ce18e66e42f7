// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-net: the per-box network process (see net_process.h and helper_options.h).
// Started as root, it gives up root (to nobody, 65534:65534) once its ports are bound:
// it parses frames from an untrusted guest and needs no privilege for that. Then it
// installs its seccomp filter (helper_seccomp.h) and only then reports ready.
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "src/net/helper_options.h"
#include "src/net/helper_seccomp.h"
#include "src/net/net_process.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::net {
namespace {

constexpr uid_t kNobody = 65534;

Status DropPrivileges() {
  if (::geteuid() != 0) return Status::OK();
  if (::setgroups(0, nullptr) != 0) return sys::ErrnoStatus(errno, "setgroups");
  if (::setresgid(kNobody, kNobody, kNobody) != 0) return sys::ErrnoStatus(errno, "setresgid");
  if (::setresuid(kNobody, kNobody, kNobody) != 0) return sys::ErrnoStatus(errno, "setresuid");
  return Status::OK();
}

void Report(int fd, const std::string& line) {
  if (fd >= 0) (void)sys::WriteAll(fd, line);
}

// Every guest connection is a host socket of ours: allow as many as the hard limit does.
void RaiseFdLimit() {
  struct rlimit lim;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

int Main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  RaiseFdLimit();
  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = ParseHelperArgs(args);
  if (!options.ok()) {
    if (options.error().IsCancelled()) {
      std::fputs(options.error().message().c_str(), stdout);
      return 0;
    }
    std::fprintf(stderr, "boxlite-net: %s\n", options.error().ToString().c_str());
    return 2;
  }
  int ready_fd = options->ready_fd;
  auto fail = [ready_fd](const Status& s) {
    std::fprintf(stderr, "boxlite-net: %s\n", s.ToString().c_str());
    Report(ready_fd, FormatError(s));
    return 1;
  };
  if (options->owner_pid > 0 && ::getppid() == options->owner_pid) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  }
  auto process = NetProcess::Create(*options);
  if (!process.ok()) return fail(process.error());
  Status dropped = DropPrivileges();
  if (!dropped.ok()) return fail(dropped.Wrap("drop root"));
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (options->owner_pid > 0 && ::getppid() == options->owner_pid) {
    // Changing credentials cleared the parent-death signal; the pidfd covers the rest.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  }
  Status filtered = InstallHelperSeccomp();
  if (!filtered.ok()) return fail(filtered);
  Report(ready_fd, FormatReady((*process)->ports()));
  if (ready_fd > 2) ::close(ready_fd);
  Status run = (*process)->Run();
  if (!run.ok()) {
    std::fprintf(stderr, "boxlite-net: %s\n", run.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace boxlite::net

int main(int argc, char** argv) { return boxlite::net::Main(argc, argv); }

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/container_cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"

namespace boxlite::agent {
namespace {

constexpr char kPrefix[] = "c-";

Status WriteAt(int dir_fd, const char* file, const std::string& value) {
  base::UniqueFd fd(::openat(dir_fd, file, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return sys::ErrnoStatus(errno, "open %s", file);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return sys::ErrnoStatus(errno, "write %s to %s", value.c_str(), file);
  }
  return Status::OK();
}

// The names of the container cgroups beneath `parent_fd`.
Result<std::vector<std::string>> ListContainerCgroups(int parent_fd) {
  int fd = ::openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys::ErrnoStatus(errno, "open the box's cgroup");
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return sys::ErrnoStatus(errno, "read the box's cgroup");
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string_view name(e->d_name);
    if (e->d_type == DT_DIR && name.starts_with(kPrefix)) names.emplace_back(name);
  }
  ::closedir(dir);
  return names;
}

std::string Limit(int64_t v) { return v == 0 ? "max" : std::to_string(v); }

}  // namespace

Result<base::UniqueFd> OpenContainerCgroup(int parent_fd, const protocol::ExecCgroup& c,
                                           size_t max_cgroups) {
  BOXLITE_RETURN_IF_ERROR(protocol::ValidateExecCgroup(c));
  if (c.name.empty()) return Status::InvalidArgument("a container cgroup needs a name");
  const std::string dir = kPrefix + c.name;
  // A cgroup with processes cannot enable controllers for its children: the box's user
  // cgroup holds none (each exec has a child cgroup of its own, agent/init.h).
  Status on = WriteAt(parent_fd, "cgroup.subtree_control", "+memory +pids +cpu");
  if (!on.ok()) on = WriteAt(parent_fd, "cgroup.subtree_control", "+memory +pids");
  if (!on.ok()) return on.Wrap("enable the memory and pids controllers for container cgroups");
  if (::mkdirat(parent_fd, dir.c_str(), 0755) != 0) {
    if (errno != EEXIST) return sys::ErrnoStatus(errno, "make cgroup %s", dir.c_str());
  } else {
    // Made: the bound counts it; empty cgroups of ended containers make room.
    BOXLITE_ASSIGN_OR_RETURN(auto names, ListContainerCgroups(parent_fd));
    size_t count = names.size();
    for (const auto& other : names) {
      if (count <= max_cgroups) break;
      if (other != dir && ::unlinkat(parent_fd, other.c_str(), AT_REMOVEDIR) == 0) --count;
    }
    if (count > max_cgroups) {
      ::unlinkat(parent_fd, dir.c_str(), AT_REMOVEDIR);
      return Status::ResourceExhausted(
          base::StrFormat("the box has %zu container cgroups with processes, the most it keeps",
                          max_cgroups),
          "end the processes of containers that are no longer needed");
    }
  }
  base::UniqueFd fd(
      ::openat(parent_fd, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return sys::ErrnoStatus(errno, "open cgroup %s", dir.c_str());
  BOXLITE_RETURN_IF_ERROR(WriteAt(fd.get(), "memory.max", Limit(c.memory_max)));
  BOXLITE_RETURN_IF_ERROR(WriteAt(fd.get(), "pids.max", Limit(c.pids_max)));
  const int64_t period = c.cpu_period != 0 ? c.cpu_period : 100000;
  if (::faccessat(fd.get(), "cpu.max", F_OK, 0) == 0) {
    BOXLITE_RETURN_IF_ERROR(
        WriteAt(fd.get(), "cpu.max", Limit(c.cpu_quota) + " " + std::to_string(period)));
  } else if (::faccessat(fd.get(), "cpu.weight", F_OK, 0) == 0) {
    // A kernel without CFS bandwidth control has no cpu.max (BoxLite's guest kernel has
    // it): the quota becomes a share under contention, one CPU's worth weighing 100.
    int64_t weight = 100;
    if (c.cpu_quota != 0) weight = std::clamp<int64_t>(c.cpu_quota * 100 / period, 1, 10000);
    BOXLITE_RETURN_IF_ERROR(WriteAt(fd.get(), "cpu.weight", std::to_string(weight)));
  }
  return fd;
}

}  // namespace boxlite::agent

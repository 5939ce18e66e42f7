// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/jail.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <pwd.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"

namespace boxlite::sys {
namespace {

// fchmodat2 (Linux 6.6) is newer than some libseccomp releases know by name.
constexpr int kFchmodat2 = 452;

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

}  // namespace

Result<std::vector<uint8_t>> SetidDenyFilter() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return Status::Internal("seccomp_init failed");
  struct Rule {
    int nr;
    unsigned mode_arg;
  };
  const Rule rules[] = {
      {SCMP_SYS(chmod), 1},   {SCMP_SYS(fchmod), 1},   {SCMP_SYS(fchmodat), 2},
      {SCMP_SYS(open), 2},    {SCMP_SYS(openat), 3},   {SCMP_SYS(creat), 1},
      {SCMP_SYS(mkdir), 1},   {SCMP_SYS(mkdirat), 2},  {SCMP_SYS(mknod), 1},
      {SCMP_SYS(mknodat), 2}, {kFchmodat2, 2},
  };
  int rc = 0;
  for (const Rule& r : rules) {
    for (scmp_datum_t bit : {scmp_datum_t{S_ISUID}, scmp_datum_t{S_ISGID}}) {
      struct scmp_arg_cmp cmp = {r.mode_arg, SCMP_CMP_MASKED_EQ, bit, bit};
      rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), r.nr, 1, &cmp);
      // A syscall this libseccomp cannot name for the architecture (fchmodat2 on an old
      // release) is skipped; every other failure is an error.
      if (rc != 0 && !(r.nr == kFchmodat2 && rc == -EDOM)) break;
      rc = 0;
    }
    if (rc != 0) break;
  }
  // openat2 carries its mode in a struct the filter cannot read: callers fall back to openat.
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0);
  // io_uring's own openat would carry a mode past this filter.
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0);
  if (rc != 0) {
    seccomp_release(ctx);
    return ErrnoStatus(-rc, "build the seccomp filter");
  }
  auto program = ExportSeccompProgram(ctx);
  seccomp_release(ctx);
  return program;
}

Result<std::vector<uint8_t>> ExportSeccompProgram(void* ctx) {
  std::vector<uint8_t> program;
  int rc = 0;
  int fd = ::memfd_create("boxlite-seccomp", MFD_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
  } else {
    rc = seccomp_export_bpf(ctx, fd);
    if (rc == 0) {
      auto bytes = ReadFile(base::StrFormat("/proc/self/fd/%d", fd));
      if (bytes.ok()) {
        program.assign(bytes->begin(), bytes->end());
      } else {
        rc = -EIO;
      }
    }
    ::close(fd);
  }
  if (rc != 0) return ErrnoStatus(-rc, "build the seccomp filter");
  if (program.empty() || program.size() % 8 != 0) {
    return Status::Internal("libseccomp exported an empty or malformed filter");
  }
  return program;
}

Result<Identity> LookupIdentity(const std::string& user) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  int rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0) return ErrnoStatus(rc, "look up user %s", user.c_str());
  if (found == nullptr) return Status::NotFound("no user named " + user);
  return Identity{pw.pw_uid, pw.pw_gid, {}, user};
}

Identity IdentityForUid(uid_t uid, gid_t fallback_gid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return Identity{uid, pw.pw_gid, {}, pw.pw_name};
  }
  return Identity{uid, fallback_gid, {}, base::StrFormat("uid %u", uid)};
}

Result<Identity> JailUserIdentity() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto found = LookupIdentity(kJailUser);
  if (found.ok() || !found.error().IsNotFound()) return found;
  auto made = RunCommand({"useradd", "--system", "--user-group", "--no-create-home",
                          "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                          kJailUser});
  found = LookupIdentity(kJailUser);  // Another process may have made it meanwhile.
  if (found.ok()) return found;
  std::string why = made.ok() ? found.error().message() : made.error().message();
  return Status::FailedPrecondition(
      std::string("the system user \"") + kJailUser + "\" that runs VMs started by root is " +
          "missing and could not be created (" + why + ")",
      std::string("run scripts/setup.sh, or: useradd --system --user-group --no-create-home ") +
          "--shell /usr/sbin/nologin " + kJailUser);
}

Status CheckAccessAs(const Identity& identity, const std::string& path, int mode) {
  std::vector<gid_t> groups = identity.groups;
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // System calls only: the parent may have other threads.
    if (::setgroups(groups.size(), groups.data()) != 0 ||
        ::setresgid(identity.gid, identity.gid, identity.gid) != 0 ||
        ::setresuid(identity.uid, identity.uid, identity.uid) != 0) {
      _exit(255);
    }
    _exit(::access(path.c_str(), mode) == 0 ? 0 : errno);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid");
  }
  if (!WIFEXITED(status)) return Status::Internal("access check " + DescribeWaitStatus(status));
  int code = WEXITSTATUS(status);
  if (code == 0) return Status::OK();
  if (code == 255) return Status::PermissionDenied("cannot switch to " + identity.name);
  return ErrnoStatus(code, "%s as %s", path.c_str(), identity.name.c_str());
}

namespace {

bool HasControllers(const std::string& file, bool* missing_file = nullptr) {
  auto text = ReadFile(file);
  if (!text.ok()) {
    if (missing_file) *missing_file = true;
    return false;
  }
  auto words = base::Split(base::Trim(*text), ' ', true);
  bool memory = false;
  bool pids = false;
  for (const auto& w : words) {
    memory = memory || w == "memory";
    pids = pids || w == "pids";
  }
  return memory && pids;
}

Status WriteSmall(const std::string& path, const std::string& value) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, Open(path, O_WRONLY | O_CLOEXEC));
  return WriteAll(fd.get(), value);
}

}  // namespace

std::optional<std::string> CreateCgroupLeaf(const std::string& name, const CgroupLimits& limits,
                                            std::string* why) {
  struct statfs fs;
  if (::statfs(kCgroupRoot, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
    *why = "no cgroup v2 hierarchy at /sys/fs/cgroup";
    return std::nullopt;
  }
  std::string parent;
  if (::geteuid() == 0) {
    parent = JoinPath(kCgroupRoot, "boxlite");
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      *why = "cannot create " + parent + ": " + std::strerror(errno);
      return std::nullopt;
    }
    // Both levels hand memory and pids down (idempotent; fails when the root cgroup
    // does not have them).
    if (!WriteSmall(JoinPath(kCgroupRoot, "cgroup.subtree_control"), "+memory +pids").ok() ||
        !WriteSmall(JoinPath(parent, "cgroup.subtree_control"), "+memory +pids").ok()) {
      *why = "the memory and pids controllers cannot be enabled under " + parent;
      return std::nullopt;
    }
  } else {
    // A user gets a leaf only beside its own cgroup, when that level is delegated to it
    // with the controllers already handed down.
    auto self = ReadFile("/proc/self/cgroup");
    std::string rel;
    if (self.ok()) {
      for (const auto& line : base::Split(*self, '\n', true)) {
        if (line.starts_with("0::")) rel = line.substr(3);
      }
    }
    if (rel.empty() || rel == "/") {
      *why = "the caller's cgroup is not delegated";
      return std::nullopt;
    }
    parent = Dirname(JoinPath(kCgroupRoot, rel.substr(1)));
    if (::access(parent.c_str(), W_OK) != 0 ||
        !HasControllers(JoinPath(parent, "cgroup.subtree_control"))) {
      *why = parent + " is not delegated to this user with memory and pids";
      return std::nullopt;
    }
  }
  std::string leaf = ::geteuid() == 0 ? RootCgroupLeaf(name) : JoinPath(parent, name);
  if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
    *why = "cannot create " + leaf + ": " + std::strerror(errno);
    return std::nullopt;
  }
  Status s = WriteSmall(JoinPath(leaf, "memory.max"), std::to_string(limits.memory_max_bytes));
  if (s.ok()) s = WriteSmall(JoinPath(leaf, "pids.max"), std::to_string(limits.pids_max));
  if (!s.ok()) {
    ::rmdir(leaf.c_str());
    *why = "cannot set the limits of " + leaf + ": " + s.message();
    return std::nullopt;
  }
  return leaf;
}

std::string RootCgroupLeaf(const std::string& name) {
  return JoinPath(JoinPath(kCgroupRoot, "boxlite"), name);
}

void RemoveCgroupLeaf(const std::string& dir) {
  if (!dir.empty()) ::rmdir(dir.c_str());
}

}  // namespace boxlite::sys

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Size: one file on purpose. Spawn, the jail steps and the minimal root run in the child
// between clone and execve, where only async-signal-safe calls are allowed; keeping the
// plan (prepared in the parent), its execution (in the child) and the reaping together
// keeps that rule checkable in one read.

#include "src/sys/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <algorithm>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::sys {
namespace {

int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// Runs closures on one thread that lives as long as the process (see the header: the
// parent-death signal follows the forking thread).
class ForkThread {
 public:
  static ForkThread& Get() {
    static ForkThread* instance = new ForkThread();
    return *instance;
  }

  void Run(std::function<void()> fn) {
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back([&] {
        fn();
        std::lock_guard<std::mutex> l(done_mu);
        done = true;
        done_cv.notify_one();
      });
    }
    cv_.notify_one();
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done; });
  }

 private:
  ForkThread() {
    std::thread([this] { Loop(); }).detach();
  }

  void Loop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
};

// Everything the child needs, prepared before fork so the child only makes syscalls.
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  bool use_env = false;
  int fds[3] = {-1, -1, -1};
  std::vector<int> keep_fds;
  bool die_with_parent = true;
  bool new_session = false;
  bool new_process_group = false;
  const char* cwd = nullptr;
  pid_t parent_seen = 0;  // Our pid as the child sees it (0 from a new pid namespace).
  int parent_pidfd = -1;  // In a new pid namespace: readable once we have exited.
  int err_pipe = -1;
  std::vector<std::string> path_candidates;  // argv[0] resolved against PATH.

  // The jail (src/sys/jail.h), prepared so the child only makes system calls.
  bool jailed = false;
  int cgroup_procs_fd = -1;          // The leaf's cgroup.procs, open for writing.
  bool user_namespace = false;       // An unprivileged caller's own user namespace...
  std::string uid_map, gid_map;      // ...mapping only its ids.
  int namespace_flags = 0;           // CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS (| NEWNET) or 0.
  bool pid_namespace = false;        // Cloned into a new pid namespace: mount its /proc.
  // The minimal root (Jail::minimal_root), built at root_base then pivoted into.
  struct RootEntry {
    enum Kind { kDir, kFile, kDevice, kSymlink } kind;
    std::string source;  // For kSymlink: the link's text.
    std::string target;
  };
  bool minimal_root = false;
  std::string root_base;
  std::vector<std::string> root_dirs;
  std::vector<RootEntry> root_entries;
  std::string root_proc, root_old;
  int exec_fd = -1;                  // The program (O_PATH), for execveat after pivot_root.
  bool must_drop_bounding = false;   // Root (or the user namespace) can, so it must.
  int cap_last = 63;
  bool switch_identity = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::vector<sock_filter> seccomp;  // Empty: no filter of ours.
  std::vector<int> fds_to_keep;      // Sorted, >= 3: keep_fds and err_pipe.
};

// What a jailed child was doing when it failed (EnterJail's *step; 0: anything else).
constexpr const char* kJailSteps[] = {
    "",           "join the cgroup",   "enter new namespaces", "build its root and /proc",
    "drop capabilities", "switch user", "set no_new_privs",     "install the seccomp filter",
    "watch its parent",  "close inherited descriptors"};

// Whether the parent exited before the parent-death signal was armed (system calls only).
bool ParentGone(const ChildPlan& plan) {
  if (plan.parent_pidfd >= 0) {
    struct pollfd p = {plan.parent_pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }
  return ::getppid() != plan.parent_seen;
}

// Writes a short string to a /proc file; false on failure (system calls only).
bool WriteProcFile(const char* path, const std::string& value) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
}

// Closes every descriptor >= 3 not in `keep` (sorted).
int CloseAllBut(const std::vector<int>& keep) {
  unsigned lo = 3;
  auto close_range = [](unsigned first, unsigned last) -> int {
    if (::syscall(SYS_close_range, first, last, 0) == 0) return 0;
    if (errno != ENOSYS) return errno;
    struct rlimit lim;
    unsigned top = ::getrlimit(RLIMIT_NOFILE, &lim) == 0 ? static_cast<unsigned>(lim.rlim_cur)
                                                        : 65536;
    for (unsigned fd = first; fd <= last && fd < top; ++fd) ::close(static_cast<int>(fd));
    return 0;
  };
  for (int fd : keep) {
    unsigned k = static_cast<unsigned>(fd);
    if (k > lo) {
      if (int err = close_range(lo, k - 1); err != 0) return err;
    }
    lo = k + 1;
  }
  return close_range(lo, ~0U);
}

// Builds the minimal root at plan.root_base and pivots into it (system calls only).
int BuildMinimalRoot(const ChildPlan& plan) {
  using Entry = ChildPlan::RootEntry;
  const char* base = plan.root_base.c_str();
  // Nothing of this propagates back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  if (::mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) {
    return errno;
  }
  for (const auto& dir : plan.root_dirs) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno;
  }
  for (const Entry& e : plan.root_entries) {
    const char* target = e.target.c_str();
    if (e.kind == Entry::kSymlink) {
      if (::symlink(e.source.c_str(), target) != 0) return errno;
      continue;
    }
    if (e.kind == Entry::kDir) {
      if (::mkdir(target, 0755) != 0 && errno != EEXIST) return errno;
    } else {
      int fd = ::open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return errno;
      ::close(fd);
    }
    if (::mount(e.source.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID;
    if (e.kind != Entry::kDevice) flags |= MS_RDONLY | MS_NODEV;
    if (::mount(nullptr, target, nullptr, flags, nullptr) != 0) return errno;
  }
  if (::mount("proc", plan.root_proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0) {
    return errno;
  }
  if (::syscall(SYS_pivot_root, base, plan.root_old.c_str()) != 0) return errno;
  if (::chdir("/") != 0) return errno;
  if (::umount2("/.old", MNT_DETACH) != 0) return errno;
  if (::rmdir("/.old") != 0) return errno;
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    return errno;
  }
  return 0;
}

// The jail's steps after the descriptors are in place (src/sys/jail.h has the order).
// Returns 0 or the errno of the step that failed, named in *step (an index in kJailSteps).
int EnterJail(const ChildPlan& plan, int* step) {
  *step = 1;
  if (plan.cgroup_procs_fd >= 0 && ::write(plan.cgroup_procs_fd, "0", 1) != 1) return errno;
  *step = 2;
  bool in_user_namespace = false;
  if (plan.user_namespace) {
    if (::unshare(CLONE_NEWUSER | plan.namespace_flags) == 0) {
      if (!WriteProcFile("/proc/self/setgroups", "deny") ||
          !WriteProcFile("/proc/self/uid_map", plan.uid_map) ||
          !WriteProcFile("/proc/self/gid_map", plan.gid_map)) {
        return errno != 0 ? errno : EPERM;
      }
      in_user_namespace = true;
    }
    // Refused (no unprivileged user namespaces here): the child runs without them.
  } else if (plan.namespace_flags != 0 && ::unshare(plan.namespace_flags) != 0) {
    return errno;
  }
  *step = 3;
  if (plan.minimal_root) {
    if (int err = BuildMinimalRoot(plan); err != 0) return err;
  } else if (plan.pid_namespace) {
    // A /proc of the new pid namespace: the child sees no other process of the host (nor
    // another box's, even under the same uid). Nothing propagates back to the host.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      return errno;
    }
  }
  // Root, or anyone in a user namespace of its own, can empty the bounding set and must;
  // an unprivileged process outside one cannot, and has no capability for it to bound.
  *step = 4;
  bool must_drop = plan.must_drop_bounding || in_user_namespace;
  for (int cap = 0; cap <= plan.cap_last; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL && must_drop) {
      return errno;
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return errno;
  }
  *step = 5;
  if (plan.switch_identity) {
    // Raw system calls: glibc's wrappers would try to change every thread of what it
    // believes is still the multi-threaded parent (a raw clone runs no fork handlers).
    if (::syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) != 0) return errno;
    if (::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) return errno;
    if (::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) return errno;
  }
  *step = 4;
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0) return errno;
  *step = 6;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  *step = 7;
  if (!plan.seccomp.empty()) {
    struct sock_fprog prog = {static_cast<unsigned short>(plan.seccomp.size()),
                              const_cast<sock_filter*>(plan.seccomp.data())};
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return errno;
  }
  *step = 8;
  if (plan.die_with_parent) {
    // Changing credentials (or the user namespace) cleared the parent-death signal.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return errno;
    if (ParentGone(plan)) return ESRCH;
  }
  *step = 9;
  return CloseAllBut(plan.fds_to_keep);
}

[[noreturn]] void ChildMain(const ChildPlan& plan) {
  // After fork: async-signal-safe calls only.
  int err = 0;
  int step = 0;
  if (plan.die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ParentGone(plan)) _exit(127);
  }
  if (plan.new_session) {
    ::setsid();
  } else if (plan.new_process_group) {
    ::setpgid(0, 0);
  }
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int i = 0; i < 3; ++i) {
    int src = plan.fds[i] >= 0 ? plan.fds[i] : devnull;
    if (src == i) {
      ::fcntl(i, F_SETFD, 0);
    } else if (::dup2(src, i) < 0) {
      err = errno;
      goto fail;
    }
  }
  for (int fd : plan.keep_fds) ::fcntl(fd, F_SETFD, 0);
  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) {
    err = errno;
    goto fail;
  }
  if (plan.jailed) {
    err = EnterJail(plan, &step);
    if (err != 0) goto fail;
    step = 0;
  }
  if (plan.exec_fd >= 0) {
    ::syscall(SYS_execveat, plan.exec_fd, "", plan.argv.data(), plan.envp.data(), AT_EMPTY_PATH);
    err = errno;
  } else if (plan.path_candidates.empty()) {
    if (plan.use_env) {
      ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
    } else {
      ::execv(plan.argv[0], plan.argv.data());
    }
    err = errno;
  } else {
    err = ENOENT;
    for (const auto& candidate : plan.path_candidates) {
      if (plan.use_env) {
        ::execve(candidate.c_str(), plan.argv.data(), plan.envp.data());
      } else {
        ::execv(candidate.c_str(), plan.argv.data());
      }
      if (errno != ENOENT) err = errno;
    }
  }
fail:
  int report[2] = {err, step};
  ssize_t ignored = ::write(plan.err_pipe, report, sizeof(report));
  (void)ignored;
  _exit(127);
}

// The entries of the minimal root (Jail::minimal_root) and the program's descriptor.
Status PrepareMinimalRoot(ChildPlan* plan, base::UniqueFd* exec_fd) {
  using Entry = ChildPlan::RootEntry;
  std::string program;
  if (plan->path_candidates.empty()) {
    program = plan->argv[0];
  } else {
    for (const auto& candidate : plan->path_candidates) {
      if (::access(candidate.c_str(), X_OK) == 0) {
        program = candidate;
        break;
      }
    }
    if (program.empty()) return Status::NotFound(std::string(plan->argv[0]) + " not found");
  }
  BOXLITE_ASSIGN_OR_RETURN(*exec_fd, Open(program, O_PATH | O_CLOEXEC));
  plan->exec_fd = exec_fd->get();
  plan->minimal_root = true;
  plan->root_base = "/tmp";
  auto at = [&](const std::string& path) { return plan->root_base + path; };
  plan->root_dirs = {at("/etc"), at("/dev"), at("/proc"), at("/.old")};
  plan->root_proc = at("/proc");
  plan->root_old = at("/.old");
  plan->root_entries.push_back({Entry::kDir, "/usr", at("/usr")});
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st;
    if (::lstat(top, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char text[PATH_MAX];
      ssize_t n = ::readlink(top, text, sizeof(text) - 1);
      if (n <= 0) continue;
      plan->root_entries.push_back({Entry::kSymlink, std::string(text, n), at(top)});
    } else if (S_ISDIR(st.st_mode)) {
      plan->root_entries.push_back({Entry::kDir, top, at(top)});
    }
  }
  for (const char* file : {"/etc/ld.so.cache", "/etc/resolv.conf", "/etc/hosts",
                           "/etc/nsswitch.conf", "/etc/localtime"}) {
    char real[PATH_MAX];
    struct stat st;
    if (::realpath(file, real) == nullptr || ::stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    plan->root_entries.push_back({Entry::kFile, real, at(file)});
  }
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                          "/dev/kvm"}) {
    struct stat st;
    if (::stat(dev, &st) == 0 && S_ISCHR(st.st_mode)) {
      plan->root_entries.push_back({Entry::kDevice, dev, at(dev)});
    }
  }
  return Status::OK();
}

Status PrepareJail(const Jail& jail, const SpawnOptions& options, ChildPlan* plan,
                   base::UniqueFd* cgroup_procs, base::UniqueFd* exec_fd) {
  plan->jailed = true;
  if (plan->cwd == nullptr) plan->cwd = "/";
  bool root = ::geteuid() == 0;
  if (!jail.cgroup_dir.empty()) {
    BOXLITE_ASSIGN_OR_RETURN(*cgroup_procs, Open(JoinPath(jail.cgroup_dir, "cgroup.procs"),
                                                 O_WRONLY | O_CLOEXEC));
    plan->cgroup_procs_fd = cgroup_procs->get();
  }
  if (jail.new_namespaces) {
    plan->namespace_flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    if (jail.new_network_namespace) plan->namespace_flags |= CLONE_NEWNET;
    if (root && jail.new_pid_namespace) {
      plan->pid_namespace = true;
      plan->parent_seen = 0;
    }
    if (!root) {
      plan->user_namespace = true;
      plan->uid_map = base::StrFormat("%u %u 1\n", ::geteuid(), ::geteuid());
      plan->gid_map = base::StrFormat("%u %u 1\n", ::getegid(), ::getegid());
    }
  }
  plan->must_drop_bounding = root;
  if (auto last = ReadFile("/proc/sys/kernel/cap_last_cap"); last.ok()) {
    if (auto n = base::ParseUint(base::Trim(*last)); n && *n < 64) {
      plan->cap_last = static_cast<int>(*n);
    }
  }
  if (jail.identity) {
    if (!root) return Status::PermissionDenied("only root can start a child as another user");
    if (jail.identity->uid == 0) {
      return Status::InvalidArgument("a jailed child must not run as root");
    }
    plan->switch_identity = true;
    plan->uid = jail.identity->uid;
    plan->gid = jail.identity->gid;
    plan->groups = jail.identity->groups;
  } else if (root) {
    return Status::InvalidArgument("a child jailed by root needs an unprivileged identity");
  }
  if (!jail.seccomp_filter.empty()) {
    const auto& program = jail.seccomp_filter;
    if (program.size() % sizeof(sock_filter) != 0 || program.size() / sizeof(sock_filter) > 4096) {
      return Status::InvalidArgument("malformed seccomp filter");
    }
    plan->seccomp.resize(program.size() / sizeof(sock_filter));
    std::memcpy(plan->seccomp.data(), program.data(), program.size());
  }
  if (root && jail.new_namespaces && jail.new_pid_namespace && jail.minimal_root) {
    BOXLITE_RETURN_IF_ERROR(PrepareMinimalRoot(plan, exec_fd));
    plan->fds_to_keep.push_back(plan->exec_fd);  // Close-on-exec: gone once it ran.
  }
  for (int fd : options.keep_fds) {
    if (fd >= 3) plan->fds_to_keep.push_back(fd);
  }
  plan->fds_to_keep.push_back(plan->err_pipe);
  std::sort(plan->fds_to_keep.begin(), plan->fds_to_keep.end());
  plan->fds_to_keep.erase(std::unique(plan->fds_to_keep.begin(), plan->fds_to_keep.end()),
                          plan->fds_to_keep.end());
  return Status::OK();
}

}  // namespace

Result<Subprocess> Subprocess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Status::InvalidArgument("spawn: empty argv");
  ChildPlan plan;
  std::vector<std::string> argv_store = options.argv;
  for (auto& a : argv_store) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  std::vector<std::string> env_store;
  if (options.env) {
    plan.use_env = true;
    env_store = *options.env;
    for (auto& e : env_store) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);
  }
  if (options.argv[0].find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    for (const auto& dir : base::Split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':', true)) {
      plan.path_candidates.push_back(JoinPath(dir, options.argv[0]));
    }
  }
  plan.fds[0] = options.stdin_fd;
  plan.fds[1] = options.stdout_fd;
  plan.fds[2] = options.stderr_fd;
  plan.keep_fds = options.keep_fds;
  plan.die_with_parent = options.die_with_parent;
  plan.new_session = options.new_session;
  plan.new_process_group = options.new_process_group;
  if (!options.cwd.empty()) plan.cwd = options.cwd.c_str();
  plan.parent_seen = ::getpid();

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  base::UniqueFd err_read(pipefd[0]);
  base::UniqueFd err_write(pipefd[1]);
  plan.err_pipe = err_write.get();
  base::UniqueFd cgroup_procs;
  base::UniqueFd parent_pidfd;
  base::UniqueFd exec_fd;
  if (options.jail) {
    if (!options.env) return Status::InvalidArgument("a jailed child needs an explicit environment");
    BOXLITE_RETURN_IF_ERROR(PrepareJail(*options.jail, options, &plan, &cgroup_procs, &exec_fd));
    if (plan.pid_namespace) {
      // From a new pid namespace getppid() is 0: the child watches a pidfd of ours instead.
      parent_pidfd.reset(PidfdOpen(::getpid()));
      if (!parent_pidfd) return ErrnoStatus(errno, "pidfd_open of ourselves");
      ::fcntl(parent_pidfd.get(), F_SETFD, FD_CLOEXEC);
      plan.parent_pidfd = parent_pidfd.get();
    }
  }

  pid_t pid = -1;
  int fork_errno = 0;
  auto do_fork = [&] {
    if (plan.pid_namespace) {
      // fork() into a new pid namespace: the child is its first process, we see its pid.
      pid = static_cast<pid_t>(
          ::syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
    } else {
      pid = ::fork();
    }
    if (pid == 0) ChildMain(plan);
    if (pid < 0) fork_errno = errno;
  };
  if (options.die_with_parent) {
    ForkThread::Get().Run(do_fork);
  } else {
    do_fork();
  }
  if (pid < 0) return ErrnoStatus(fork_errno, "fork for %s", options.argv[0].c_str());
  err_write.reset();
  int report[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(err_read.get(), report, sizeof(report));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(report)) {
    int status;
    ::waitpid(pid, &status, 0);
    int step = report[1] > 0 && report[1] < static_cast<int>(std::size(kJailSteps)) ? report[1] : 0;
    if (step != 0) {
      return ErrnoStatus(report[0], "start %s: the jail could not %s", options.argv[0].c_str(),
                         kJailSteps[step]);
    }
    return ErrnoStatus(report[0], "start %s", options.argv[0].c_str());
  }
  base::UniqueFd pidfd(PidfdOpen(pid));
  return Subprocess(pid, std::move(pidfd), /*owned=*/true);
}

Result<Subprocess> Subprocess::Adopt(pid_t pid) {
  int fd = PidfdOpen(pid);
  if (fd < 0) return ErrnoStatus(errno, "pidfd_open %d", pid);
  return Subprocess(pid, base::UniqueFd(fd), /*owned=*/false);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      owned_(other.owned_),
      exit_status_(other.exit_status_) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    owned_ = other.owned_;
    exit_status_ = other.exit_status_;
  }
  return *this;
}

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::running() const {
  if (pid_ < 0) return false;
  if (pidfd_) {
    struct pollfd p = {pidfd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  return ::kill(pid_, 0) == 0;
}

Result<int> Subprocess::Wait() {
  if (pid_ < 0) {
    if (exit_status_) return *exit_status_;
    return Status::FailedPrecondition("wait: no child");
  }
  if (!owned_) {
    struct pollfd p = {pidfd_.get(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    exit_status_ = 0;
    return 0;
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid %d", pid_);
  }
  pid_ = -1;
  pidfd_.reset();
  exit_status_ = status;
  return status;
}

Result<std::optional<int>> Subprocess::WaitFor(std::chrono::milliseconds timeout) {
  if (pid_ < 0) return std::optional<int>(exit_status_);
  if (pidfd_) {
    struct pollfd p = {pidfd_.get(), POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    if (r == 0) return std::optional<int>();
  }
  BOXLITE_ASSIGN_OR_RETURN(int status, Wait());
  return std::optional<int>(status);
}

Status Subprocess::Signal(int signo) const {
  if (pid_ < 0) return Status::FailedPrecondition("signal: the process has exited");
  if (pidfd_) {
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signo, nullptr, 0) == 0) {
      return Status::OK();
    }
    if (errno == ESRCH) return Status::OK();
    if (errno != ENOSYS) return ErrnoStatus(errno, "signal %d", pid_);
  }
  if (::kill(pid_, signo) != 0 && errno != ESRCH) return ErrnoStatus(errno, "kill %d", pid_);
  return Status::OK();
}

void Subprocess::Kill() {
  if (pid_ < 0) return;
  if (owned_) {
    (void)Signal(SIGKILL);
    (void)Wait();
  }
  pid_ = -1;
  pidfd_.reset();
}

void Subprocess::Detach() {
  pid_ = -1;
  pidfd_.reset();
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return base::StrFormat("exited with status %d", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return base::StrFormat("killed by signal %d (%s)", WTERMSIG(status),
                           ::strsignal(WTERMSIG(status)));
  }
  return base::StrFormat("wait status %d", status);
}

Result<std::string> RunCommand(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  base::UniqueFd rd(pipefd[0]);
  base::UniqueFd wr(pipefd[1]);
  SpawnOptions options;
  options.argv = argv;
  options.stdout_fd = wr.get();
  options.stderr_fd = wr.get();
  options.die_with_parent = false;
  BOXLITE_ASSIGN_OR_RETURN(auto child, Subprocess::Spawn(options));
  wr.reset();
  auto output = ReadAll(rd.get(), 1 << 20);
  BOXLITE_ASSIGN_OR_RETURN(int status, child.Wait());
  std::string out = output.value_or(std::string());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::IoError(base::StrFormat("%s %s", argv[0].c_str(),
                                           DescribeWaitStatus(status).c_str()),
                           base::Trim(out));
  }
  return out;
}

}  // namespace boxlite::sys

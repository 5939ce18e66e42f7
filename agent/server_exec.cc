// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's processes: exec and attach requests, the child plan and its start, stdio
// pumping, reaping and exit events, and the box's main command with its orphaned backlog
// (agent/server.h; the design is in agent/server.cc). A little over 700 lines: a process
// from its request to its exit event is one path, kept in one file.
#include "agent/server.h"
#include "agent/server_internal.h"
#include "agent/container_cgroup.h"
#include "agent/container_root.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>

#include "agent/init.h"
#include "agent/process_security.h"
#include "agent/users.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::agent {

namespace {

// The loop's read buffer (the loop is single-threaded).
char* LoopReadBuffer() {
  static char buf[kReadChunk];
  return buf;
}

bool HasEnv(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return true;
    }
  }
  return false;
}

std::string EnvValue(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return e.substr(key.size() + 1);
    }
  }
  return std::string();
}

// /proc/sys/kernel/cap_last_cap, once (63, every bit, when it cannot be read).
int LastCapability() {
  static const int last = [] {
    auto text = sys::ReadFile("/proc/sys/kernel/cap_last_cap");
    int v = text.ok() ? std::atoi(text->c_str()) : 0;
    return v > 0 && v < 64 ? v : 63;
  }();
  return last;
}

// The image's /etc/passwd and /etc/group, read again only when one of them changed
// (another inode, size or change time): an exec then resolves its user without reading
// and parsing both files each time.
class UserFiles {
 public:
  Result<Identity> Resolve(const std::string& rootfs, const std::string& spec) {
    // Stamped before the reads: a change during them is seen next time.
    std::pair<Stamp, Stamp> stamps{StampOf(rootfs + "/etc/passwd"), StampOf(rootfs + "/etc/group")};
    if (stamps != stamps_ || rootfs != rootfs_) {
      passwd_ = sys::ReadFile(rootfs + "/etc/passwd").value_or(std::string());
      group_ = sys::ReadFile(rootfs + "/etc/group").value_or(std::string());
      stamps_ = stamps;
      rootfs_ = rootfs;
      resolved_.clear();
    }
    if (auto it = resolved_.find(spec); it != resolved_.end()) return it->second;
    BOXLITE_ASSIGN_OR_RETURN(Identity id, ResolveUser(spec, passwd_, group_));
    if (resolved_.size() < 64) resolved_[spec] = id;
    return id;
  }

 private:
  // (device, inode, size, mtime, ctime) of a file; all zero when it is missing.
  using Stamp = std::tuple<dev_t, ino_t, off_t, time_t, long, time_t, long>;
  static Stamp StampOf(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Stamp();
    return Stamp(st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                 st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  }

  std::string rootfs_;  // Empty until the first read: the stamps below mean nothing then.
  std::pair<Stamp, Stamp> stamps_;
  std::string passwd_;
  std::string group_;
  std::map<std::string, Identity> resolved_;
};

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A pipe end just made has no status flags yet: one call sets O_NONBLOCK.
void SetNewPipeNonBlocking(int fd) { ::fcntl(fd, F_SETFL, O_NONBLOCK); }

// sched_setattr(2)'s argument (linux/sched/types.h; glibc has no wrapper before 2.41).
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

// SCHED_OTHER at `nice`, in one system call.
int SetNormalScheduling(int nice) {
  SchedAttr attr = {};
  attr.size = sizeof(attr);
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = nice;
  return static_cast<int>(::syscall(SYS_sched_setattr, 0, &attr, 0));
}

// Everything the child needs after fork, prepared before it.
struct ChildPlan {
  std::vector<std::string> argv_store;
  std::vector<std::string> env_store;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<std::string> candidates;  // Paths to try, inside the chroot.
  std::string rootfs;  // Empty: no chroot (ServerOptions::host_processes).
  const ContainerRoot* container = nullptr;  // Set: chroot there instead (agent/container_root.h).
  std::string cwd;
  bool switch_user = true;
  std::string pty_slave;  // Non-empty: open this as the controlling terminal.
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  int fds[3] = {-1, -1, -1};
  // What a child that could not start reports (ChildFail): it shares the agent's memory
  // until execve (SpawnChild), so it writes here, and the agent reads it once it resumes.
  int* report = nullptr;  // {errno, exit code}; {0, 0} while nothing failed.
  int cgroup_dir_fd = -1;  // When set: the cgroup the child starts in (pids limit).
  bool join_cgroup = false;  // Not born in it (see SpawnChild): the child joins it first.
  ProcessSecurity security;  // Limits, capabilities, descriptors (process_security.h).
};

void WriteStr(int fd, const char* s) {
  ssize_t ignored = ::write(fd, s, std::strlen(s));
  (void)ignored;
}

// What a child that could not start reports (ChildFail): the errno, and 127 for a
// program not found or 126 for anything else.
bool IsNotFound(int err, int code) { return err == ENOENT && code == 127; }
constexpr char kNotFound[] = "executable file not found in $PATH";

[[noreturn]] void ChildFail(const ChildPlan& plan, int err, const char* what, const char* arg,
                            int code) {
  // After fork: async-signal-safe calls only.
  WriteStr(2, "boxlite: ");
  WriteStr(2, what);
  WriteStr(2, " \"");
  WriteStr(2, arg);
  WriteStr(2, "\": ");
  WriteStr(2, IsNotFound(err, code) ? kNotFound : ::strerror(err));
  WriteStr(2, "\n");
  plan.report[0] = err;
  plan.report[1] = code;
  _exit(code);
}

[[noreturn]] void ChildMain(const ChildPlan& plan) {
  // After fork: async-signal-safe calls only (the agent is single-threaded, but keep the
  // child minimal anyway).
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  // The agent's own priority and policy are not the user's (it runs as SCHED_BATCH
  // while it starts an exec: Server::SetBatch).
  if (SetNormalScheduling(0) != 0) {
    ::setpriority(PRIO_PROCESS, 0, 0);
    struct sched_param param = {};
    ::sched_setscheduler(0, SCHED_OTHER, &param);
  }
  if (plan.join_cgroup) {
    int procs = ::openat(plan.cgroup_dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    ssize_t ignored = ::write(procs, "0", 1);
    (void)ignored;
    ::close(procs);
  }
  ::setsid();
  if (!plan.pty_slave.empty()) {
    int slave = ::open(plan.pty_slave.c_str(), O_RDWR);
    if (slave < 0) ChildFail(plan, errno, "open terminal", plan.pty_slave.c_str(), 126);
    ::ioctl(slave, TIOCSCTTY, 0);
    for (int i = 0; i < 3; ++i) ::dup2(slave, i);
    if (slave > 2) ::close(slave);
  } else {
    for (int i = 0; i < 3; ++i) ::dup2(plan.fds[i], i);
  }
  if (plan.container != nullptr) {
    const char* what = "";
    if (int err = EnterContainerRoot(*plan.container, &what)) {
      ChildFail(plan, err, what, plan.argv[0], 126);
    }
  } else if (!plan.rootfs.empty() && ::chroot(plan.rootfs.c_str()) != 0) {
    ChildFail(plan, errno, "chroot", "/", 126);
  }
  if (::chdir(plan.cwd.c_str()) != 0) ChildFail(plan, errno, "chdir to", plan.cwd.c_str(), 126);
  const char* step = nullptr;
  if (int err = ApplyProcessSecurity(plan.security, &step); err != 0) {
    ChildFail(plan, err, step, plan.argv[0], 126);
  }
  if (plan.switch_user &&
      (::setgroups(plan.groups.size(), plan.groups.data()) != 0 || ::setgid(plan.gid) != 0 ||
       ::setuid(plan.uid) != 0)) {
    ChildFail(plan, errno, "switch to user of", plan.argv[0], 126);
  }
  int err = ENOENT;
  for (const auto& candidate : plan.candidates) {
    ::execve(candidate.c_str(), plan.argv.data(), plan.envp.data());
    // Like execvp: remember EACCES but keep looking; anything else but ENOENT/ENOTDIR
    // means the file exists and could not run.
    if (errno == EACCES) {
      err = EACCES;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      err = errno;
      break;
    }
  }
  ChildFail(plan, err, "exec", plan.argv[0], err == ENOENT ? 127 : 126);
}

[[noreturn]] void ChildEntry(void* plan) { ChildMain(*static_cast<const ChildPlan*>(plan)); }

#if defined(__x86_64__)
// clone3's argument (linux/sched.h, declared here: that header's CLONE_* macros clash
// with <sched.h>'s). The layout is the kernel's ABI and only grows at its end.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
constexpr uint64_t kCloneVm = 0x100, kCloneVfork = 0x4000, kCloneIntoCgroup = 0x200000000ULL;

// clone3 with CLONE_VM | CLONE_VFORK: the child runs fn(arg) on `stack` (it must never
// return; ChildEntry ends in execve or _exit) while the parent waits, as posix_spawn
// does. Written in assembly because the child must not touch the parent's stack frame:
// it leaves the system call on its own stack and calls fn at once. Returns the child's
// pid, or -errno.
long Clone3Run(CloneArgs* args, void (*fn)(void*), void* arg) {
  long ret = SYS_clone3;
  register void (*fn_reg)(void*) asm("r12") = fn;
  register void* arg_reg asm("r13") = arg;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "mov %%r13, %%rdi\n\t"
      "call *%%r12\n\t"
      "mov $127, %%edi\n\t"  // Should fn ever return: exit(127).
      "mov %[exit_nr], %%eax\n\t"
      "syscall\n\t"
      "hlt\n"
      "1:\n\t"
      : "+a"(ret)
      : "D"(args), "S"(sizeof(CloneArgs)), "r"(fn_reg), "r"(arg_reg), [exit_nr] "i"(SYS_exit)
      : "rcx", "r11", "memory");
  return ret;
}

// The child's stack, with a guard page below: one per thread (the agent has one; tests
// run servers on several), as its children start one at a time and the parent waits
// while each uses it.
class ChildStack {
 public:
  static constexpr size_t kGuard = 4096, kSize = 256 * 1024;
  ChildStack() {
    base_ = ::mmap(nullptr, kGuard + kSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base_ != MAP_FAILED) ::mprotect(base_, kGuard, PROT_NONE);
  }
  ~ChildStack() {
    if (base_ != MAP_FAILED) ::munmap(base_, kGuard + kSize);
  }
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;
  // The lowest usable byte, or 0 when the mapping failed.
  uint64_t Bottom() const {
    return base_ == MAP_FAILED ? 0 : reinterpret_cast<uintptr_t>(base_) + kGuard;
  }

 private:
  void* base_;
};
#endif

// Starts the child of `plan`; returns its pid, or -1 with errno. With a cgroup, the child
// is born in it (clone3 with CLONE_INTO_CGROUP): no migration after the fork (the child's
// open and write of cgroup.procs, ~0.4 ms under TCG). A kernel or a sandbox without clone3, and a
// cgroup that cannot take one more process (its pids limit: a migration is not refused),
// start it as before: vfork, and the child joins the cgroup. The parent resumes once the
// child has called execve or exited, either way.
pid_t SpawnChild(ChildPlan* plan) {
#if defined(__x86_64__)
  thread_local ChildStack stack;
  if (stack.Bottom() != 0) {
    CloneArgs args = {};
    args.flags = kCloneVm | kCloneVfork;
    args.exit_signal = SIGCHLD;
    args.stack = stack.Bottom();
    args.stack_size = ChildStack::kSize;
    if (plan->cgroup_dir_fd >= 0) {
      args.flags |= kCloneIntoCgroup;
      args.cgroup = static_cast<uint64_t>(plan->cgroup_dir_fd);
    }
    plan->join_cgroup = false;
    long pid = Clone3Run(&args, ChildEntry, plan);
    if (pid > 0) return static_cast<pid_t>(pid);
    static bool told = false;
    if (pid != -EAGAIN && !told) {
      told = true;
      ConsoleLog("clone3 failed (%s); execs start with vfork", ::strerror(static_cast<int>(-pid)));
    }
  }
#endif
  plan->join_cgroup = plan->cgroup_dir_fd >= 0;
  pid_t pid = ::vfork();
  if (pid == 0) ChildMain(*plan);
  return pid;
}

}  // namespace

void Server::KillExecsOf(Conn* conn, bool spare_main) {
  for (auto& [key, exec] : execs_) {
    if (exec->conn != conn || (spare_main && exec->main)) continue;
    if (!exec->is_file && !exec->exited && exec->pid > 0) ::kill(-exec->pid, SIGKILL);
  }
}

void Server::OrphanMain(Exec* exec) {
  ExecKey old_key = Key(exec->conn, exec->stream);
  auto node = execs_.extract(old_key);
  if (node.empty()) return;
  exec->orphaned = true;
  exec->stream = kOrphanStream;
  for (auto& out : exec->out) out.close_held = false;  // Nobody to tell.
  for (auto& b : exec->backlog) b.clear();
  exec->stdin_pending.clear();
  if (exec->stdin_watching) Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
  node.key() = Key(exec->conn, kOrphanStream);
  ExecKey new_key = node.key();
  execs_.insert(std::move(node));
  if (exec->pid > 0 && !exec->exited) pid_to_exec_[exec->pid] = new_key;
  for (int which = 1; which <= 2; ++which) {
    exec->out[which].credit = INT64_MAX / 2;
    exec->out[which].paused = false;  // paused_ knows it by its old key.
    UpdateWatch(exec, which);  // Re-tagged with the new stream id.
  }
  if (exec->exited) MaybeFinish(exec);
}

void Server::OnMainExit(const Exec& exec, int64_t exit_code) {
  main_running_ = false;
  if (exec.main_optional && !exec.start_error.empty()) {
    ConsoleLog("the image's command could not start (%s); the box runs without a main command",
               exec.start_error.c_str());
    return;
  }
  // The host reads this line back from the console log when no host saw the exit event
  // (docs/protocol.md, "Connections").
  ConsoleLog("main command exited with code %lld", static_cast<long long>(exit_code));
  for (auto& c : conns_) KillExecsOf(c.get());
  if (options_.machine) ::sync();
  shutdown_ = true;
}

void Server::LimitBoundingSet() {
  if (config_.capabilities < 0) return;  // Every capability: nothing to drop.
  int err = DropBoundingSet(static_cast<uint64_t>(config_.capabilities), LastCapability());
  if (err != 0) {
    // Each child then drops the set itself, as it did before.
    ConsoleLog("could not drop the agent's bounding set (%s); each exec drops it", ::strerror(err));
    return;
  }
  bounding_set_dropped_ = true;
}

Server::Exec* Server::FindExec(Conn* conn, uint32_t stream) {
  auto it = execs_.find(Key(conn, stream));
  return it == execs_.end() ? nullptr : it->second.get();
}

Status Server::DoExec(Conn* conn, uint32_t stream, const protocol::Json& req,
                      protocol::Json* reply) {
  WaitForRootfs();
  if (!configured_) return Status::FailedPrecondition("exec before hello");
  if (FindExec(conn, stream) != nullptr) {
    return Status::AlreadyExists("stream in use", std::to_string(stream));
  }
  protocol::ExecRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));

  static UserFiles users;  // The loop is single-threaded.
  BOXLITE_ASSIGN_OR_RETURN(ContainerRoot container,  // A pod container's, when named.
                           ContainerRootOf(r, options_.machine, root_dir_.get(), rootfs_));
  BOXLITE_ASSIGN_OR_RETURN(Identity id,
                           users.Resolve(container.dir ? container.path : rootfs_, r.user));
  ChildPlan plan;
  plan.argv_store = r.argv;
  plan.env_store = r.env;
  if (!HasEnv(plan.env_store, "PATH")) plan.env_store.push_back(std::string("PATH=") + kDefaultPath);
  if (!HasEnv(plan.env_store, "HOME")) plan.env_store.push_back("HOME=" + id.home);
  if (!HasEnv(plan.env_store, "HOSTNAME")) plan.env_store.push_back("HOSTNAME=" + config_.hostname);
  if (r.tty && !HasEnv(plan.env_store, "TERM")) plan.env_store.push_back("TERM=xterm");
  for (auto& a : plan.argv_store) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  for (auto& e : plan.env_store) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);
  const std::string& prog = plan.argv_store[0];
  if (prog.find('/') != std::string::npos) {
    plan.candidates.push_back(prog);
  } else {
    for (const auto& dir : base::Split(EnvValue(plan.env_store, "PATH"), ':', true)) {
      plan.candidates.push_back(sys::JoinPath(dir, prog));
    }
  }
  plan.rootfs = rootfs_;
  plan.container = container.dir ? &container : nullptr;
  plan.cwd = r.cwd.empty() ? "/" : r.cwd;
  plan.uid = id.uid;
  plan.gid = id.gid;
  plan.groups = id.groups;
  plan.security.capabilities = config_.capabilities;
  plan.security.last_cap = LastCapability();
  plan.security.bounding_set_dropped = bounding_set_dropped_;
  plan.security.limits = config_.limits;
  // The process's own limits (a pod container's rlimits) replace the box's.
  for (auto [own, field] : {std::pair{r.limits.nofile, &plan.security.limits.nofile},
                            {r.limits.fsize, &plan.security.limits.fsize},
                            {r.limits.nproc, &plan.security.limits.nproc},
                            {r.limits.as, &plan.security.limits.as},
                            {r.limits.cpu, &plan.security.limits.cpu}}) {
    if (own != 0) *field = own;
  }
  plan.security.close_fds = config_.close_fds;
  if (!options_.machine) {
    if (!options_.host_processes) return Status::NotSupported("exec: this server starts no processes");
    plan.rootfs.clear();  // On the host's file system, beneath the served directory.
    plan.cwd = sys::JoinPath(rootfs_, plan.cwd);
    plan.switch_user = false;
  }
  base::UniqueFd cgroup_owned;
  int exec_cgroup = -1;
  if (!r.cgroup.name.empty()) {
    // A pod container's cgroup, shared by its processes, with its limits.
    if (!options_.machine) return Status::NotSupported("exec: cgroups need the box's agent");
    base::UniqueFd user(::open(kUserCgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!user) return sys::ErrnoStatus(errno, "open %s", kUserCgroup);
    BOXLITE_ASSIGN_OR_RETURN(cgroup_owned, OpenContainerCgroup(user.get(), r.cgroup));
    plan.cgroup_dir_fd = cgroup_owned.get();
  } else if (options_.machine) {
    plan.cgroup_dir_fd = ExecCgroupDir(&cgroup_owned, &exec_cgroup);
  }

  if (r.main && (r.detached || main_running_)) {
    return Status::FailedPrecondition(r.detached ? "a main command cannot be detached"
                                                 : "the box runs a main command already");
  }
  if (r.detached) {
    // Background process: stdio on the console, nothing to stream, reaped as an orphan.
    // Off the machine, the host's console is not the box's: output goes nowhere.
    base::UniqueFd console(options_.machine ? ::open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC)
                                            : -1);
    if (!dev_null_) dev_null_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    plan.fds[0] = dev_null_.get();
    plan.fds[1] = plan.fds[2] = console ? console.get() : dev_null_.get();
    int report[2] = {0, 0};
    plan.report = report;
    pid_t pid = SpawnChild(&plan);
    if (pid < 0) return sys::ErrnoStatus(errno, "fork");
    if (report[1] != 0) {
      return IsNotFound(report[0], report[1])
                 ? Status::NotFound(kNotFound, r.argv[0])
                 : sys::ErrnoStatus(report[0], "exec %s", r.argv[0].c_str());
    }
    protocol::ExecResponse resp;
    resp.pid = pid;
    *reply = protocol::ToJson(resp);
    return Status::OK();
  }
  auto exec = std::make_unique<Exec>();
  exec->conn = conn;
  exec->stream = stream;
  exec->tty = r.tty;
  exec->main = r.main;
  exec->main_optional = r.main_optional;
  base::UniqueFd child_ends[3];
  if (r.tty) {
    base::UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) {
      return sys::ErrnoStatus(errno, "open a pseudo-terminal");
    }
    char name[128];
    if (::ptsname_r(master.get(), name, sizeof(name)) != 0) {
      return sys::ErrnoStatus(errno, "ptsname");
    }
    plan.pty_slave = name;
    struct winsize ws = {};
    ws.ws_row = static_cast<unsigned short>(r.rows > 0 ? r.rows : 24);
    ws.ws_col = static_cast<unsigned short>(r.cols > 0 ? r.cols : 80);
    ::ioctl(master.get(), TIOCSWINSZ, &ws);
    SetNonBlocking(master.get());
    int dup_fd = ::fcntl(master.get(), F_DUPFD_CLOEXEC, 3);
    if (dup_fd < 0) return sys::ErrnoStatus(errno, "dup pty");
    exec->stdin_fd.reset(dup_fd);
    exec->out[1].fd = std::move(master);
    exec->out[2].eof = true;
  } else {
    int p[2];
    if (r.stdin_open) {
      if (::pipe2(p, O_CLOEXEC) != 0) return sys::ErrnoStatus(errno, "pipe");
      child_ends[0].reset(p[0]);
      exec->stdin_fd.reset(p[1]);
      SetNewPipeNonBlocking(p[1]);
    } else if (!dev_null_) {
      dev_null_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    for (int which = 1; which <= 2; ++which) {
      // The kernel's default size until the writer proves bulk (PumpOutput grows it).
      if (::pipe2(p, O_CLOEXEC) != 0) return sys::ErrnoStatus(errno, "pipe");
      exec->out[which].fd.reset(p[0]);
      child_ends[which].reset(p[1]);
      SetNewPipeNonBlocking(p[0]);
    }
    for (int i = 0; i < 3; ++i) plan.fds[i] = child_ends[i].get();
    if (!r.stdin_open) plan.fds[0] = dev_null_.get();
  }
  int report[2] = {0, 0};
  plan.report = report;

  // A vfork-like start (SpawnChild): the child only makes system calls before execve
  // (see ChildMain), and not copying the agent's page tables saves part of an exec's cost
  // under TCG. The agent runs as SCHED_BATCH meanwhile: woken when the child has called
  // execve, it does not preempt it, so the process runs until it ends, blocks or is
  // preempted at a tick (10 ms at the guest's HZ=100) before the agent goes on; a quick
  // command has then ended, and Step() sends its response, output and exit event in one
  // port write. The agent is back to SCHED_OTHER once that write is done (Step()): it
  // does not sleep before, so its policy matters only from its next wait on.
  SetBatch(true);
  pid_t pid = SpawnChild(&plan);
  if (pid < 0) return sys::ErrnoStatus(errno, "fork");
  exec->pid = pid;
  exec->exec_cgroup = exec_cgroup;
  // The parent of a vfork resumes once the child has called execve or exited, and a
  // child that fails writes its report before exiting: what is in it now is all there
  // will be.
  if (report[1] != 0) {
    exec->start_error = IsNotFound(report[0], report[1]) ? kNotFound : ::strerror(report[0]);
  }
  // The child's ends are closed once this round's port write is done (RetireFinished):
  // nothing reads the pipes to their end before the next round (MaybeFinish reads what
  // FIONREAD counts, and watched pipes report their end at the next epoll_wait).
  for (auto& end : child_ends) {
    if (end) close_after_write_.push_back(std::move(end));
  }
  for (int which = 1; which <= 2; ++which) exec->out[which].credit = r.window;
  ExecKey key = Key(conn, stream);
  pid_to_exec_[pid] = key;
  if (exec->main) main_running_ = true;
  Exec* raw = exec.get();
  execs_[key] = std::move(exec);
  started_.push_back(key);  // Its pipes are watched once Step() has looked for its end.
  protocol::ExecResponse resp;
  resp.pid = pid;
  resp.stdin_window = raw->stdin_fd ? kStdinWindow : 0;
  *reply = protocol::ToJson(resp);
  return Status::OK();
}

Status Server::DoSignal(Conn* conn, const protocol::Json& req) {
  protocol::SignalRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  Exec* exec = FindExec(conn, static_cast<uint32_t>(r.target));
  if (exec != nullptr && exec->tunnel && !exec->finished) {
    MaybeEndTunnel(exec, /*abort=*/true);  // Any signal closes a tunnel (docs/protocol.md).
    MaybeFinish(exec);
    return Status::OK();
  }
  if (exec == nullptr || exec->exited || exec->is_file) {
    return Status::NotFound("no running exec on stream", std::to_string(r.target));
  }
  // The exec leads its own process group: signal the whole group, as a terminal would.
  if (::kill(-exec->pid, static_cast<int>(r.signal)) != 0 &&
      ::kill(exec->pid, static_cast<int>(r.signal)) != 0) {
    return sys::ErrnoStatus(errno, "signal %lld", static_cast<long long>(r.signal));
  }
  return Status::OK();
}

Status Server::DoResize(Conn* conn, const protocol::Json& req) {
  protocol::ResizeRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  Exec* exec = FindExec(conn, static_cast<uint32_t>(r.target));
  if (exec == nullptr) return Status::NotFound("no exec on stream", std::to_string(r.target));
  if (!exec->tty) return Status::FailedPrecondition("resize: the exec has no terminal");
  struct winsize ws = {};
  ws.ws_row = static_cast<unsigned short>(r.rows);
  ws.ws_col = static_cast<unsigned short>(r.cols);
  if (::ioctl(exec->out[1].fd.get(), TIOCSWINSZ, &ws) != 0) {
    return sys::ErrnoStatus(errno, "resize terminal");
  }
  return Status::OK();
}

Status Server::DoAttach(Conn* conn, uint32_t stream, const protocol::Json& req,
                        protocol::Json* reply) {
  if (!configured_) return Status::FailedPrecondition("attach before hello");
  std::string target;
  int64_t window = protocol::kDefaultWindow;
  BOXLITE_RETURN_IF_ERROR(protocol::GetString(req, "target", &target, true));
  BOXLITE_RETURN_IF_ERROR(protocol::GetInt(req, "window", &window));
  if (target != "main") return Status::InvalidArgument("attach: unknown target", target);
  if (window < 0 || window > INT32_MAX) return Status::InvalidArgument("attach: window out of range");
  if (FindExec(conn, stream) != nullptr) {
    return Status::AlreadyExists("stream in use", std::to_string(stream));
  }
  auto found = execs_.end();
  for (auto it = execs_.begin(); it != execs_.end(); ++it) {
    if (it->second->main && !it->second->finished) found = it;
  }
  if (found == execs_.end()) return Status::NotFound("no main command is running in the box");
  Exec* exec = found->second.get();
  if (!exec->orphaned) {
    return Status::AlreadyExists("the box's main command is attached to another host connection",
                                 "detach it there first");
  }
  // The connection takes the command over, under the stream id of this request.
  auto node = execs_.extract(found);
  exec->conn = conn;
  exec->stream = stream;
  exec->orphaned = false;
  node.key() = Key(conn, stream);
  ExecKey key = node.key();
  execs_.insert(std::move(node));
  if (exec->pid > 0 && !exec->exited) pid_to_exec_[exec->pid] = key;
  exec->stdin_unacked = 0;
  exec->stdin_pending.clear();
  exec->stdin_close_requested = false;
  for (int which = 1; which <= 2; ++which) {
    exec->out[which].credit = window;
    exec->out[which].paused = false;  // paused_ knows it by its old key.
    UpdateWatch(exec, which);  // Re-tagged; reads resume once the backlog has gone out.
  }
  UpdateStdinWatch(exec);
  replay_after_response_ = key;
  protocol::ExecResponse resp;
  resp.pid = exec->pid;
  resp.stdin_window = exec->stdin_fd ? kStdinWindow : 0;
  *reply = protocol::ToJson(resp);
  (*reply)["tty"] = exec->tty;
  return Status::OK();
}

void Server::ReplayBacklog(Exec* exec) {
  for (int which = 1; which <= 2; ++which) {
    Output& out = exec->out[which];
    std::string& backlog = exec->backlog[which];
    // No more than the host granted: the oldest bytes go first.
    size_t n = std::min(backlog.size(), static_cast<size_t>(std::max<int64_t>(out.credit, 0)));
    size_t at = backlog.size() - n;
    while (at < backlog.size()) {
      size_t len = std::min(kReadChunk, backlog.size() - at);
      std::string frame;
      protocol::AppendDataHeader(&frame, exec->stream, static_cast<uint8_t>(which), len);
      frame.append(backlog, at, len);
      Send(exec->conn, std::move(frame));
      out.credit -= static_cast<int64_t>(len);
      at += len;
    }
    backlog.clear();
    backlog.shrink_to_fit();
    if (out.eof && out.fd) {
      // The command closed this stream while nobody was attached.
      std::string close;
      protocol::AppendClose(&close, exec->stream, static_cast<uint8_t>(which));
      Send(exec->conn, std::move(close));
    }
    UpdateWatch(exec, which);
  }
  if (exec->exited) MaybeFinish(exec);
}

void Server::OnStdinData(Conn* conn, uint32_t stream, std::string_view bytes) {
  Exec* exec = FindExec(conn, stream);
  if (exec == nullptr || exec->stdin_close_requested) return;
  if (exec->is_file) {
    // put_file content: written straight to the temporary file.
    exec->put.received += bytes.size();
    if (exec->put.error.ok() && exec->stdin_fd) {
      Status w = sys::WriteAll(exec->stdin_fd.get(), bytes);
      if (!w.ok()) exec->put.error = w.Wrap(exec->put.path);
    }
    exec->stdin_unacked += static_cast<int64_t>(bytes.size());
    if (exec->stdin_unacked >= 256 * 1024) {
      std::string frame;
      protocol::AppendCredit(&frame, stream, protocol::kFdStdin,
                             static_cast<uint32_t>(exec->stdin_unacked));
      exec->stdin_unacked = 0;
      Send(conn, std::move(frame));
    }
    return;
  }
  if (!exec->stdin_fd) {
    if (exec->tunnel) {
      // The peer in the box is gone: the bytes are dropped, their credit returned so the
      // host's writer does not stall before the tunnel's end reaches it.
      std::string frame;
      protocol::AppendCredit(&frame, stream, protocol::kFdStdin, static_cast<uint32_t>(bytes.size()));
      Send(conn, std::move(frame));
    }
    return;
  }
  exec->stdin_pending.append(bytes);
  FlushStdin(exec);
  if (exec->tunnel && exec->exited) MaybeFinish(exec);
}

void Server::OnStdinClose(Conn* conn, uint32_t stream) {
  Exec* exec = FindExec(conn, stream);
  if (exec == nullptr) return;
  exec->stdin_close_requested = true;
  if (exec->is_file) {
    FinishPut(exec);
    return;
  }
  FlushStdin(exec);
  if (exec->tunnel && exec->exited) MaybeFinish(exec);
}

void Server::FlushStdin(Exec* exec) {
  while (exec->stdin_fd && !exec->stdin_pending.empty()) {
    ssize_t n = ::write(exec->stdin_fd.get(), exec->stdin_pending.data(),
                        exec->stdin_pending.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      // The reader is gone (EPIPE): drop what is left, as a pipe would.
      exec->stdin_pending.clear();
      if (exec->stdin_watching) {
        Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
      }
      exec->stdin_fd.reset();
      break;
    }
    exec->stdin_pending.erase(0, static_cast<size_t>(n));
    exec->stdin_unacked += n;
  }
  // Return credit in batches so a byte-at-a-time terminal does not double the frames.
  if (exec->stdin_unacked >= 64 * 1024 ||
      (exec->stdin_unacked > 0 && exec->stdin_pending.empty())) {
    std::string frame;
    protocol::AppendCredit(&frame, exec->stream, protocol::kFdStdin,
                           static_cast<uint32_t>(exec->stdin_unacked));
    exec->stdin_unacked = 0;
    Send(exec->conn, std::move(frame));
  }
  if (exec->stdin_pending.empty() && exec->stdin_close_requested && exec->stdin_fd) {
    if (exec->tty) {
      // A terminal has no half-close: send EOF (^D) the way a user would.
      ssize_t ignored = ::write(exec->stdin_fd.get(), "\x04", 1);
      (void)ignored;
    }
    // A tunnel's half close: the peer in the box reads EOF and may still answer.
    if (exec->tunnel) ::shutdown(exec->stdin_fd.get(), SHUT_WR);
    if (exec->stdin_watching) {
      Watch(exec->stdin_fd.get(), 0, Tag(kTagStdin, exec->conn->index, exec->stream),
            &exec->stdin_watching);
    }
    exec->stdin_fd.reset();
  }
  if (exec->tunnel) MaybeEndTunnel(exec);
  UpdateStdinWatch(exec);
}

void Server::UpdateStdinWatch(Exec* exec) {
  if (!exec->stdin_fd) {
    exec->stdin_watching = false;
    return;
  }
  uint32_t want = exec->stdin_pending.empty() ? 0u : uint32_t{EPOLLOUT};
  Watch(exec->stdin_fd.get(), want, Tag(kTagStdin, exec->conn->index, exec->stream),
        &exec->stdin_watching);
}

void Server::OnCredit(Conn* conn, uint32_t stream, uint8_t fd, uint32_t bytes) {
  Exec* exec = FindExec(conn, stream);
  if (exec == nullptr || (fd != 1 && fd != 2)) return;
  exec->out[fd].credit += bytes;
  UpdateWatch(exec, fd);
  if (exec->exited) MaybeFinish(exec);
}

void Server::UpdateWatch(Exec* exec, int which) {
  Output& out = exec->out[which];
  if (!out.fd || !out.pollable) return;
  uint32_t want = (!out.eof && out.credit > 0 && out.splicing == 0 && !out.paused)
                      ? uint32_t{EPOLLIN}
                      : 0u;
  uint64_t tag = Tag(kTagOutput, exec->conn->index, exec->stream, which);
  // Watched as wanted already: no epoll_ctl (this runs for every frame and credit).
  if (want != 0 && out.watching && out.watched_tag == tag) return;
  Watch(out.fd.get(), want, tag, &out.watching);
  out.watched_tag = tag;
}

void Server::PumpOutput(Exec* exec, int which) {
  Output& out = exec->out[which];
  if (!out.fd || out.eof || out.credit <= 0 || out.splicing > 0) return;
  Conn* conn = exec->conn;
  if (exec->orphaned) {
    // Nobody reads the main command's output now: drain it so it never blocks, keeping
    // the newest kMainBacklog bytes for the next host that attaches.
    char* sink = LoopReadBuffer();
    ssize_t n = ::read(out.fd.get(), sink, kReadChunk);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      out.eof = true;
      UpdateWatch(exec, which);
      return;
    }
    std::string& backlog = exec->backlog[which];
    size_t len = static_cast<size_t>(n);
    if (len >= kMainBacklog) {
      backlog.assign(sink + len - kMainBacklog, kMainBacklog);
    } else {
      if (backlog.size() + len > kMainBacklog) backlog.erase(0, backlog.size() + len - kMainBacklog);
      backlog.append(sink, len);
    }
    return;
  }
  int avail = 0;
  if (splice_ok_ && out.pollable && !exec->tty && !exec->tunnel &&
      ::ioctl(out.fd.get(), FIONREAD, &avail) == 0 && avail > 0) {
    size_t n =
        std::min({static_cast<size_t>(avail), static_cast<size_t>(out.credit), kBulkFrameMax});
    if (SendStaged(conn, exec->stream, which, out.fd.get(), n)) {
      // Header and pages in the staging pipe, sent with the port's next write.
      out.credit -= static_cast<int64_t>(n);
      // A bulk writer: its pipe is read again at the next loop round without a watch
      // (ResumePaused). If the writer kept up with the agent (less than a whole frame is
      // left), that round waits kBulkPauseMs for it to get ahead.
      if (n >= kBulkChunk && !exec->exited && !out.paused && out.credit > 0) {
        out.paused = true;
        paused_.emplace_back(Key(conn, exec->stream), which);
        paused_now_ = paused_now_ || static_cast<size_t>(avail) - n >= kBulkFrameMax;
      }
      // A bulk writer: room for what it writes while the pipe rests (kExecPipeSize).
      if (n >= kBulkChunk && !out.grown) {
        out.grown = true;
        // Past /proc/sys/fs/pipe-max-size (1 MiB by default) it takes CAP_SYS_RESOURCE,
        // which the agent has as the box's PID 1 but not always where it runs in tests.
        if (::fcntl(out.fd.get(), F_SETPIPE_SZ, kExecPipeSize) < 0) {
          ::fcntl(out.fd.get(), F_SETPIPE_SZ, kExecPipeSizeUnprivileged);  // No matter if refused.
        }
      }
      UpdateWatch(exec, which);
      return;
    }
    // Zero copy: a header now, then the pipe's pages spliced into the port.
    std::string header;
    protocol::AppendDataHeader(&header, exec->stream, static_cast<uint8_t>(which), n);
    out.credit -= static_cast<int64_t>(n);
    out.splicing += n;
    Send(conn, std::move(header));
    SendSplice(conn, exec->stream, which, out.fd.get(), n);
    UpdateWatch(exec, which);
    return;
  }
  // A pty, a file, or a pipe that reads as empty: read to learn about data or EOF. Into
  // the loop's buffer: every exec's pipes end this way, and a frame of `cap` bytes built
  // first would be allocated and zeroed (256 KiB) only to learn of the end.
  size_t cap = std::min<size_t>(static_cast<size_t>(out.credit), kReadChunk);
  char* buf = LoopReadBuffer();
  ssize_t n = ::read(out.fd.get(), buf, cap);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    // EOF, or EIO from a pty whose last slave closed.
    out.eof = true;
    UpdateWatch(exec, which);
    if (!exec->is_file && !exec->tunnel && !exec->exited && exec->pid > 0) {
      HoldClose(exec, which);
      return;
    }
    std::string close;
    protocol::AppendClose(&close, exec->stream, static_cast<uint8_t>(which));
    Send(conn, std::move(close));
    if (exec->is_file) {
      exec->exited = true;
      MaybeFinish(exec);  // May free `exec`; a file transfer is never a tunnel.
      return;
    }
    if (exec->tunnel) MaybeEndTunnel(exec);
    return;
  }
  std::string frame;
  protocol::AppendDataHeader(&frame, exec->stream, static_cast<uint8_t>(which),
                             static_cast<size_t>(n));
  frame.append(buf, static_cast<size_t>(n));
  out.credit -= n;
  Send(conn, std::move(frame));
  UpdateWatch(exec, which);
}

// A paused pipe is read as soon as its pause ends, not watched again first: a writer that
// kept up filled it meanwhile, so its next chunk leaves (and the pipe rests again) without
// the epoll_ctl pair of a watch and a second epoll_wait to learn what FIONREAD tells. A
// pipe the pause left empty is watched again.
void Server::ResumePaused() {
  if (paused_.empty()) return;
  std::vector<std::pair<ExecKey, int>> paused;
  paused.swap(paused_);
  paused_now_ = false;
  for (auto [key, which] : paused) {
    auto it = execs_.find(key);
    if (it == execs_.end()) continue;
    Exec* exec = it->second.get();
    exec->out[which].paused = false;
    PumpOutput(exec, which);  // Never frees a paused exec: a pipe, not a file.
    UpdateWatch(exec, which);
    if (exec->exited) MaybeFinish(exec);
  }
  OnSplicesDone();
}

void Server::HoldClose(Exec* exec, int which) {
  exec->out[which].close_held = true;
  if (close_timer_armed_) return;
  if (!close_timer_fd_) {
    SendHeldCloses(exec);
    return;
  }
  struct itimerspec spec = {};
  spec.it_value.tv_nsec = kCloseHoldNs;
  ::timerfd_settime(close_timer_fd_.get(), 0, &spec, nullptr);
  close_timer_armed_ = true;
}

void Server::SendHeldCloses(Exec* exec) {
  for (int which = 1; which <= 2; ++which) {
    if (!exec->out[which].close_held) continue;
    exec->out[which].close_held = false;
    if (exec->orphaned) continue;
    std::string close;
    protocol::AppendClose(&close, exec->stream, static_cast<uint8_t>(which));
    Send(exec->conn, std::move(close));
  }
}

// The closes a short command held went out with its exit event: a timer left armed would
// only wake the agent for nothing, likely in the middle of the next exec.
void Server::DisarmCloseTimerIfIdle() {
  if (!close_timer_armed_) return;
  for (const auto& [key, other] : execs_) {
    if (other->out[1].close_held || other->out[2].close_held) return;
  }
  struct itimerspec off = {};
  ::timerfd_settime(close_timer_fd_.get(), 0, &off, nullptr);
  close_timer_armed_ = false;
}

void Server::OnCloseTimer() {
  uint64_t ticks;
  while (::read(close_timer_fd_.get(), &ticks, sizeof(ticks)) > 0) {
  }
  close_timer_armed_ = false;
  // Processes that closed their output and still run: their hosts learn of it now.
  for (auto& [key, exec] : execs_) SendHeldCloses(exec.get());
}

void Server::ReapChildren() {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    OnReaped(pid, status);
  }
}

void Server::OnReaped(pid_t pid, int status) {
  auto it = pid_to_exec_.find(pid);
  if (it == pid_to_exec_.end()) {
    NoteChildReaped(pid);  // A boot helper (init.h), or an orphan PID 1 adopted.
    return;
  }
  ExecKey key = it->second;
  pid_to_exec_.erase(it);
  auto e = execs_.find(key);
  if (e == execs_.end()) return;
  e->second->exited = true;
  e->second->wait_status = status;
  MaybeFinish(e->second.get());
}

// A quick command has ended by now: its response, output, closes and exit event leave in
// one port write instead of two (under emulation each is a trap into QEMU and a wakeup of
// the host). Its status is read with one waitid that leaves the process a zombie
// (WNOWAIT), instead of through the SIGCHLD it left (an epoll_wait, the signalfd's read
// and waitpid); reaping it (the kernel's release of the task, a third of the step under
// emulation) waits until the port write is done (RetireFinished), and its SIGCHLD wakes
// the loop after that with nothing left to reap. Until it is reaped its pid cannot be
// reused. A process that runs on is reported started at once, and only its pipes are
// watched; a quick command's never are.
void Server::TakeInStarted() {
  std::vector<ExecKey> started;
  started.swap(started_);
  for (ExecKey key : started) {
    auto it = execs_.find(key);
    if (it == execs_.end() || shutdown_) continue;
    Exec* exec = it->second.get();
    if (exec->exited || exec->pid <= 0) continue;
    siginfo_t info = {};
    if (::waitid(P_PID, static_cast<id_t>(exec->pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        info.si_pid != exec->pid) {
      continue;  // Still running.
    }
    // The status waitpid would return: an exit code, or the signal (and core dump bit).
    int status = info.si_code == CLD_EXITED
                     ? (info.si_status & 0xff) << 8
                     : (info.si_status & 0x7f) | (info.si_code == CLD_DUMPED ? 0x80 : 0);
    reap_after_write_.push_back(exec->pid);
    OnReaped(exec->pid, status);  // May finish the exec: looked up again below.
  }
  for (ExecKey key : started) {
    auto it = execs_.find(key);
    if (it == execs_.end()) continue;
    UpdateWatch(it->second.get(), 1);
    UpdateWatch(it->second.get(), 2);
  }
}

void Server::MaybeFinish(Exec* exec) {
  if (!exec->exited || exec->finished) return;
  Conn* conn = exec->conn;
  SendHeldCloses(exec);  // Ahead of the exit event, in the same port write.
  for (int which = 1; which <= 2; ++which) {
    Output& out = exec->out[which];
    while (out.fd && !out.eof) {
      if (out.splicing > 0) return;  // OnSplicesDone() comes back here.
      int avail = 0;
      if (::ioctl(out.fd.get(), FIONREAD, &avail) != 0 || avail <= 0) {
        // Whatever the process wrote has been read; descendants that still hold the
        // pipe open do not keep the exec alive.
        out.eof = true;
        UpdateWatch(exec, which);
        if (!exec->orphaned) {
          std::string close;
          protocol::AppendClose(&close, exec->stream, static_cast<uint8_t>(which));
          Send(conn, std::move(close));
        }
        break;
      }
      if (out.credit <= 0) return;  // Wait for the host to take more.
      PumpOutput(exec, which);
    }
  }
  exec->finished = true;
  protocol::ExitEvent ev;
  int st = exec->wait_status;
  if (WIFEXITED(st)) {
    ev.exit_code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    ev.signal = WTERMSIG(st);
    ev.exit_code = 128 + ev.signal;
  }
  ev.error = exec->start_error;
  int64_t exit_code = ev.exit_code;
  if (!exec->orphaned) SendExitEvent(conn, exec->stream, std::move(ev));
  for (int which = 1; which <= 2; ++which) {
    Output& out = exec->out[which];
    out.eof = true;
    if (out.watching && out.splicing == 0 && !exec->tty && !exec->tunnel) {
      // Closed with the exec (RetireFinished) instead of unwatched first: epoll forgets a
      // pipe once its last descriptor is closed, and with no splice queued the agent
      // holds no other (the children's copies closed at their execve). One system call
      // less per stream. Until then no event of it finds the exec, which is no longer
      // among execs_.
      out.watching = false;
    } else {
      UpdateWatch(exec, which);
    }
  }
  DisarmCloseTimerIfIdle();
  if (exec->stdin_watching) Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
  auto node = execs_.extract(Key(conn, exec->stream));
  if (node.empty()) return;
  if (node.mapped()->main) OnMainExit(*node.mapped(), exit_code);
  // Its descriptors' closes and its cgroup's check wait until the exit event has left.
  retired_.push_back(std::move(node.mapped()));
}

void Server::RetireFinished() {
  for (pid_t pid : reap_after_write_) {
    int status;
    ::waitpid(pid, &status, WNOHANG);  // A zombie: returns at once.
  }
  reap_after_write_.clear();
  for (const auto& exec : retired_) ReleaseExecCgroup(exec->exec_cgroup);
  retired_.clear();
  close_after_write_.clear();
}

}  // namespace boxlite::agent

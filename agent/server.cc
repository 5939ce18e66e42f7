// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Design: one thread, one level-triggered epoll set. Sources are tagged in the epoll data
// word (type | connection | stream | fd): each agent port, a signalfd for SIGCHLD, a
// timerfd that runs only while some port has no host connected, and per exec its
// stdout/stderr (or pty) read ends and its stdin write end. A failed execve is known as
// soon as vfork returns (see DoExec). Output is read only while the host has granted
// credit for it, so a process printing gigabytes stalls on its own pipe instead of
// filling guest memory; pipe contents go to the port with splice(2) when the kernel
// allows it. Small frames queued during one loop round leave in one port write. An exec
// finishes when its process has exited and the output it left in the pipes was sent;
// descendants that keep the pipes open do not hold it up. Files (get_file/put_file)
// are streams too, pumped from the loop because epoll cannot watch regular files.
// When a host disconnects, its execs are killed and its queued output dropped; the port
// is polled until a host connects again. A hangup the port reports counts only if it
// still holds at the next poll, and a hello starts a new session (OnPortHangup, DoHello):
// the guest learns of connections after it has taken in their data. The box's main
// command outlives its host: its newest output is kept until a host attaches to it.
#include "agent/server.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent/guard.h"
#include "agent/init.h"
#include "agent/process_security.h"
#include "agent/users.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::agent {
namespace {

constexpr uint64_t kTagPort = 1;
constexpr uint64_t kTagSignal = 2;
constexpr uint64_t kTagTimer = 3;
constexpr uint64_t kTagOutput = 4;
constexpr uint64_t kTagStdin = 5;

constexpr int64_t kStdinWindow = 1 << 20;
constexpr size_t kReadChunk = 256 * 1024;
// Files are pumped only while less than this is queued for their port.
constexpr size_t kFileQueueLimit = 1 << 20;
// The most one write(2) to a virtio-serial port takes (drivers/char/virtio_console.c).
constexpr size_t kPortWriteMax = 32 * 1024;
// A list_dir page also ends once its entries take this much JSON: names and link targets
// are up to 6 times longer escaped, and a response must fit in one frame.
constexpr size_t kListDirPageBytes = 256 * 1024;
// An exit event's error message is cut to this (it may name a path the host sent).
constexpr size_t kMaxEventError = 4096;
// The newest output of an orphaned main command kept per stream for the next attacher,
// as BoxLite 0.9 keeps for a late attach.
constexpr size_t kMainBacklog = 256 * 1024;
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kAgentVersion[] = "0.1.0";

uint64_t Tag(uint64_t type, int conn, uint32_t stream = 0, int which = 0) {
  return (type << 48) | (static_cast<uint64_t>(conn & 0xff) << 40) |
         (static_cast<uint64_t>(stream) << 8) | static_cast<uint64_t>(which & 0xff);
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

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Opens `path` (absolute or relative to the box root) with symlinks and ".." resolved
// inside the box's root, as a process chrooted there would see it.
Result<base::UniqueFd> OpenInRoot(int root, const std::string& path, uint64_t flags,
                                  uint64_t mode = 0) {
  if (path.find('\0') != std::string::npos) return Status::InvalidArgument("path contains a NUL byte");
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path.empty() ? "." : path;
  int fd = static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof(how)));
  if (fd < 0) return sys::ErrnoStatus(errno, "%s", path.c_str());
  return base::UniqueFd(fd);
}

// The parent directory of `path` inside the root and the last component.
Status OpenParent(int root, const std::string& path, bool create, base::UniqueFd* parent,
                  std::string* name) {
  if (path.find('\0') != std::string::npos) return Status::InvalidArgument("path contains a NUL byte");
  std::string clean = path;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  if (clean.empty() || clean == "/") return Status::InvalidArgument("path names the root", path);
  *name = sys::Basename(clean);
  if (*name == "." || *name == "..") return Status::InvalidArgument("bad path", path);
  std::string dir = sys::Dirname(clean);
  if (create) {
    // mkdir -p, one component at a time, each resolved inside the root.
    std::string cur;
    for (const auto& part : base::Split(dir, '/', true)) {
      auto at = OpenInRoot(root, cur.empty() ? "/" : cur, O_PATH | O_DIRECTORY);
      if (!at.ok()) return at.error();
      if (::mkdirat(at->get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        return sys::ErrnoStatus(errno, "mkdir %s/%s", cur.c_str(), part.c_str());
      }
      cur += "/" + part;
    }
  }
  auto p = OpenInRoot(root, dir, O_PATH | O_DIRECTORY);
  if (!p.ok()) return p.error();
  *parent = std::move(p).value();
  return Status::OK();
}

protocol::FileInfo InfoFromStat(const std::string& path, const struct stat& st) {
  protocol::FileInfo info;
  info.path = path;
  info.kind = S_ISREG(st.st_mode)   ? "file"
              : S_ISDIR(st.st_mode) ? "dir"
              : S_ISLNK(st.st_mode) ? "symlink"
                                    : "other";
  info.mode = st.st_mode & 07777;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.size = st.st_size;
  info.mtime = st.st_mtim.tv_sec;
  return info;
}

// Everything the child needs after fork, prepared before it.
struct ChildPlan {
  std::vector<std::string> argv_store;
  std::vector<std::string> env_store;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<std::string> candidates;  // Paths to try, inside the chroot.
  std::string rootfs;  // Empty: no chroot (ServerOptions::host_processes).
  std::string cwd;
  bool switch_user = true;
  std::string pty_slave;  // Non-empty: open this as the controlling terminal.
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  int fds[3] = {-1, -1, -1};
  int status_fd = -1;
  int cgroup_procs_fd = -1;  // When set: join the box's cgroup (pids limit) first.
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
  int report[2] = {err, code};
  ssize_t ignored = ::write(plan.status_fd, report, sizeof(report));
  (void)ignored;
  _exit(code);
}

[[noreturn]] void ChildMain(const ChildPlan& plan) {
  // After fork: async-signal-safe calls only (the agent is single-threaded, but keep the
  // child minimal anyway).
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::setpriority(PRIO_PROCESS, 0, 0);  // The agent's own priority is not the user's.
  if (plan.cgroup_procs_fd >= 0) {
    ssize_t ignored = ::write(plan.cgroup_procs_fd, "0", 1);
    (void)ignored;
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
  if (!plan.rootfs.empty() && ::chroot(plan.rootfs.c_str()) != 0) {
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

}  // namespace

Server::Server(std::vector<base::UniqueFd> ports, std::string rootfs, ServerOptions options)
    : rootfs_(std::move(rootfs)), options_(options) {
  for (size_t i = 0; i < ports.size(); ++i) {
    auto conn = std::make_unique<Conn>();
    conn->index = static_cast<int>(i);
    conn->port = std::move(ports[i]);
    conns_.push_back(std::move(conn));
  }
}

Server::~Server() = default;

void Server::Watch(int fd, uint32_t events, uint64_t tag, bool* watching) {
  bool want = events != 0;
  if (!want && !*watching) return;
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = tag;
  int op = !want ? EPOLL_CTL_DEL : (*watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
  if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
    ConsoleLog("epoll_ctl fd %d: %s", fd, ::strerror(errno));
    return;
  }
  *watching = want;
}

Status Server::Run() {
  BOXLITE_RETURN_IF_ERROR(Open());
  while (!shutdown_) BOXLITE_RETURN_IF_ERROR(Step(-1));
  // Give the final responses a moment to leave before the VM stops.
  for (int i = 0; i < 100; ++i) {
    bool pending = false;
    for (auto& conn : conns_) {
      if (!conn->connected || conn->outq.empty()) continue;
      pending = true;
      struct pollfd p = {conn->port.get(), POLLOUT, 0};
      ::poll(&p, 1, 10);
      FlushPort(conn.get());
    }
    if (!pending) break;
  }
  return Status::OK();
}

Status Server::Open() {
  struct utsname uts;
  splice_ok_ = options_.force_splice ||
               (::uname(&uts) == 0 && std::string_view(uts.release).ends_with("-boxlite.2"));
  root_dir_.reset(::open(rootfs_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_dir_) return sys::ErrnoStatus(errno, "open %s", rootfs_.c_str());
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return sys::ErrnoStatus(errno, "epoll_create1");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  signal_fd_.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return sys::ErrnoStatus(errno, "signalfd");
  timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  bool yes = false;
  Watch(signal_fd_.get(), EPOLLIN, Tag(kTagSignal, 0), &yes);
  yes = false;
  Watch(timer_fd_.get(), EPOLLIN, Tag(kTagTimer, 0), &yes);
  for (auto& conn : conns_) Watch(conn->port.get(), EPOLLIN, Tag(kTagPort, conn->index), &conn->watching);
  return Status::OK();
}

Status Server::Step(int timeout_ms) {
  // Files have no readiness events: while one can move, poll without blocking.
  bool files_ready = false;
  for (auto& [key, exec] : execs_) {
    Output& out = exec->out[1];
    if (exec->is_file && out.fd && !out.eof && out.credit > 0 &&
        exec->conn->queued_bytes < kFileQueueLimit) {
      files_ready = true;
      break;
    }
  }
  struct epoll_event events[64];
  int n = ::epoll_wait(epoll_.get(), events, 64, files_ready ? 0 : timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return Status::OK();
    return sys::ErrnoStatus(errno, "epoll_wait");
  }
  // Second line of defence behind the request boundary (HandleRequest): nothing thrown
  // while serving one event may end PID 1.
  for (int i = 0; i < n && !shutdown_; ++i) {
    Status handled = CatchAll("serving an event", [&] {
      OnEvent(events[i]);
      return Status::OK();
    });
    if (!handled.ok()) ConsoleLog("%s", handled.ToString().c_str());
  }
  Status rest = CatchAll("moving files and output", [&] {
    if (!shutdown_) PumpFiles();
    FlushPending();
    return Status::OK();
  });
  if (!rest.ok()) ConsoleLog("%s", rest.ToString().c_str());
  return Status::OK();
}

void Server::OnEvent(const struct epoll_event& e) {
  uint64_t tag = e.data.u64;
  uint64_t type = tag >> 48;
  int conn_index = static_cast<int>((tag >> 40) & 0xff);
  auto stream = static_cast<uint32_t>((tag >> 8) & 0xffffffffu);
  int which = static_cast<int>(tag & 0xff);
  uint32_t ev = e.events;
  Conn* conn = conn_index < static_cast<int>(conns_.size()) ? conns_[conn_index].get() : nullptr;
  switch (type) {
    case kTagPort:
      if (conn == nullptr) break;
      if (ev & EPOLLIN) OnPortReadable(conn);
      if (conn->connected && (ev & EPOLLOUT)) FlushPort(conn);
      if (conn->connected && (ev & (EPOLLHUP | EPOLLERR)) && !(ev & EPOLLIN)) {
        OnPortHangup(conn);
      }
      break;
    case kTagSignal: {
      struct signalfd_siginfo info;
      while (::read(signal_fd_.get(), &info, sizeof(info)) > 0) {
      }
      ReapChildren();
      break;
    }
    case kTagTimer:
      OnReconnectTimer();
      break;
    default: {
      if (conn == nullptr) break;
      Exec* exec = FindExec(conn, stream);
      if (exec == nullptr) break;
      if (type == kTagOutput) {
        PumpOutput(exec, which);
      } else if (type == kTagStdin) {
        FlushStdin(exec);
      }
      if (exec->exited) MaybeFinish(exec);
      break;
    }
  }
  OnSplicesDone();
}

void Server::OnPortReadable(Conn* conn) {
  while (conn->connected) {
    char* buf = conn->decoder.Prepare(kReadChunk);
    ssize_t n = ::read(conn->port.get(), buf, kReadChunk);
    if (n < 0) {
      conn->decoder.Commit(0);
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      OnPortHangup(conn);
      return;
    }
    conn->decoder.Commit(static_cast<size_t>(n));
    if (n == 0) {
      OnPortHangup(conn);
      return;
    }
    while (true) {
      auto frame = conn->decoder.Next();
      if (!frame.ok()) {
        ConsoleLog("port %d: dropping the host connection: %s", conn->index,
                   frame.error().ToString().c_str());
        DropConnection(conn);
        return;
      }
      if (!frame->has_value()) break;
      HandleFrame(conn, std::move(**frame));
      if (shutdown_ || !conn->connected) return;
    }
  }
}

void Server::KillExecsOf(Conn* conn, bool spare_main) {
  for (auto& [key, exec] : execs_) {
    if (exec->conn != conn || (spare_main && exec->main)) continue;
    if (!exec->is_file && !exec->exited && exec->pid > 0) ::kill(-exec->pid, SIGKILL);
  }
}

void Server::OnPortHangup(Conn* conn) {
  if (!conn->connected) return;
  // Not the end of the session yet. The guest learns of host connections through the
  // virtio-serial control queue, handled later in a work queue, while data is taken in
  // at once (drivers/char/virtio_console.c): when a host connects just after another
  // left, its hello can be read, and answered, before the port reports the previous host
  // gone. Ending the session on that late report dropped the new host's queued response
  // (it then waited for its hello until it gave up) or its next requests. So the session
  // ends at the next reconnect tick if the port still reports no host (OnReconnectTimer),
  // or at once when a new host says hello (DoHello). Output keeps being queued meanwhile.
  conn->connected = false;
  conn->hangup_pending = true;
  Watch(conn->port.get(), 0, Tag(kTagPort, conn->index), &conn->watching);
  conn->out_watching = false;
  ArmReconnectTimer();
}

void Server::DropConnection(Conn* conn) {
  if (!conn->connected && !conn->hangup_pending) return;
  conn->connected = false;
  conn->hangup_pending = false;
  conn->hello_while_hung_up = false;
  Watch(conn->port.get(), 0, Tag(kTagPort, conn->index), &conn->watching);
  conn->out_watching = false;
  conn->decoder = protocol::FrameDecoder();
  EndSession(conn);
  ArmReconnectTimer();
}

void Server::EndSession(Conn* conn) {
  conn->session = false;
  conn->outq.clear();
  conn->queued_bytes = 0;
  // Nothing of the old session may reach the port (a new host may be on it already).
  bool connected = conn->connected;
  bool pending = conn->hangup_pending;
  conn->connected = false;
  conn->hangup_pending = false;
  // Nobody is left to read these execs' output or wait for them; the main command is
  // the box's own and lives on (OrphanMain).
  KillExecsOf(conn, /*spare_main=*/true);
  std::vector<ExecKey> exited;
  std::vector<ExecKey> orphans;
  for (auto it = execs_.begin(); it != execs_.end();) {
    Exec* exec = it->second.get();
    if (exec->conn != conn) {
      ++it;  // Splices queued on other ports still claim their pipes' bytes.
      continue;
    }
    for (auto& out : exec->out) out.splicing = 0;  // Its queued splices are gone.
    if (exec->main && !exec->finished) {
      if (!exec->orphaned) orphans.push_back(it->first);
      ++it;
      continue;
    }
    if (exec->is_file || exec->finished) {
      if (exec->put_dir) ::unlinkat(exec->put_dir.get(), exec->put_tmp.c_str(), 0);
      it = execs_.erase(it);
      continue;
    }
    // Stop reading output nobody will receive, so the process's exit finishes the exec
    // (a stream id a later host reuses must not find it still there).
    for (int which = 1; which <= 2; ++which) {
      exec->out[which].eof = true;
      UpdateWatch(exec, which);
    }
    if (exec->stdin_watching) Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
    if (exec->exited) exited.push_back(it->first);
    ++it;
  }
  for (ExecKey key : exited) {
    auto it = execs_.find(key);
    if (it != execs_.end()) MaybeFinish(it->second.get());
  }
  for (ExecKey key : orphans) {
    auto it = execs_.find(key);
    if (it != execs_.end()) OrphanMain(it->second.get());
  }
  conn->connected = connected;
  conn->hangup_pending = pending;
}

void Server::ArmReconnectTimer() {
  if (timer_armed_) return;
  struct itimerspec spec = {};
  spec.it_interval.tv_nsec = 20 * 1000 * 1000;
  spec.it_value.tv_nsec = 20 * 1000 * 1000;
  ::timerfd_settime(timer_fd_.get(), 0, &spec, nullptr);
  timer_armed_ = true;
}

// The orphaned main command moves to a stream id no host uses, so a host that connects
// to this port later can reuse every id; its output is read as it comes and dropped.
constexpr uint32_t kOrphanStream = 0xffffffffu;

void Server::OrphanMain(Exec* exec) {
  ExecKey old_key = Key(exec->conn, exec->stream);
  auto node = execs_.extract(old_key);
  if (node.empty()) return;
  exec->orphaned = true;
  exec->stream = kOrphanStream;
  for (auto& b : exec->backlog) b.clear();
  exec->stdin_pending.clear();
  if (exec->stdin_watching) Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
  node.key() = Key(exec->conn, kOrphanStream);
  ExecKey new_key = node.key();
  execs_.insert(std::move(node));
  if (exec->pid > 0 && !exec->exited) pid_to_exec_[exec->pid] = new_key;
  for (int which = 1; which <= 2; ++which) {
    exec->out[which].credit = INT64_MAX / 2;
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

void Server::OnReconnectTimer() {
  uint64_t ticks;
  while (::read(timer_fd_.get(), &ticks, sizeof(ticks)) > 0) {
  }
  bool waiting = false;
  for (auto& conn : conns_) {
    if (conn->connected) continue;
    struct pollfd p = {conn->port.get(), POLLIN | POLLOUT, 0};
    if (::poll(&p, 1, 0) < 0 || (p.revents & POLLHUP)) {
      if (conn->hangup_pending && !conn->hello_while_hung_up) {
        // Still no host: the one that left is gone (see OnPortHangup).
        conn->hangup_pending = false;
        conn->decoder = protocol::FrameDecoder();
        EndSession(conn.get());
      }
      waiting = true;
      continue;
    }
    // A host is there: the same one (the hangup was its predecessor's, reported late) or
    // a new one, whose hello ends the previous session.
    conn->hangup_pending = false;
    conn->hello_while_hung_up = false;
    conn->connected = true;
    conn->out_watching = false;
    Watch(conn->port.get(), EPOLLIN, Tag(kTagPort, conn->index), &conn->watching);
    conn->flush_pending = true;
  }
  if (!waiting) {
    struct itimerspec off = {};
    ::timerfd_settime(timer_fd_.get(), 0, &off, nullptr);
    timer_armed_ = false;
  }
}

void Server::HandleFrame(Conn* conn, protocol::Frame frame) {
  switch (frame.kind) {
    case protocol::FrameKind::kRequest:
      HandleRequest(conn, frame.stream, frame.payload);
      break;
    case protocol::FrameKind::kData: {
      auto data = protocol::ParseData(frame.payload);
      if (data.ok() && data->fd == protocol::kFdStdin) OnStdinData(conn, frame.stream, data->bytes);
      break;
    }
    case protocol::FrameKind::kClose: {
      auto fd = protocol::ParseClose(frame.payload);
      if (fd.ok() && *fd == protocol::kFdStdin) OnStdinClose(conn, frame.stream);
      break;
    }
    case protocol::FrameKind::kCredit: {
      auto credit = protocol::ParseCredit(frame.payload);
      if (credit.ok()) OnCredit(conn, frame.stream, credit->fd, credit->bytes);
      break;
    }
    default:
      // Responses and events only flow guest -> host; ignore strays.
      break;
  }
}

// The request boundary: whatever a request does, it gets one response, and nothing it
// throws leaves this function.
void Server::HandleRequest(Conn* conn, uint32_t stream, std::string_view payload) {
  protocol::Json reply = protocol::Json::object();
  Status s = CatchAll("request", [&] {
    BOXLITE_ASSIGN_OR_RETURN(protocol::Json req, protocol::ParseObject(payload));
    return DispatchRequest(conn, stream, req, &reply);
  });
  if (!s.ok()) reply = protocol::Json::object();
  Status sent = CatchAll("response", [&] {
    Respond(conn, stream, s, std::move(reply));
    return Status::OK();
  });
  if (!sent.ok()) {
    ConsoleLog("%s", sent.ToString().c_str());
    Respond(conn, stream, Status::ResourceExhausted("the agent could not build the response"));
  }
  if (replay_after_response_) {
    auto it = execs_.find(*replay_after_response_);
    replay_after_response_.reset();
    if (it != execs_.end()) ReplayBacklog(it->second.get());
  }
}

Status Server::DispatchRequest(Conn* conn, uint32_t stream, const protocol::Json& req,
                               protocol::Json* reply) {
  std::string op;
  BOXLITE_RETURN_IF_ERROR(protocol::GetString(req, "op", &op, true));
  Status s;
  if (op == "hello") {
    s = DoHello(conn, req, reply);
  } else if (op == "exec") {
    s = DoExec(conn, stream, req, reply);
  } else if (op == "attach") {
    s = DoAttach(conn, stream, req, reply);
  } else if (op == "signal") {
    s = DoSignal(conn, req);
  } else if (op == "resize") {
    s = DoResize(conn, req);
  } else if (op == "get_file") {
    s = DoGetFile(conn, stream, req, reply);
  } else if (op == "put_file") {
    s = DoPutFile(conn, stream, req, reply);
  } else if (op == "stat") {
    s = DoStat(req, reply);
  } else if (op == "list_dir") {
    s = DoListDir(req, reply);
  } else if (op == "metrics") {
    s = DoMetrics(reply);
  } else if (op == "ping") {
    s = Status::OK();
  } else if (op == "shutdown") {
    for (auto& c : conns_) KillExecsOf(c.get());
    if (options_.machine) ::sync();
    shutdown_ = true;
  } else {
    s = Status::NotSupported("unknown request", op);
  }
  return s;
}

void Server::Respond(Conn* conn, uint32_t stream, const Status& status, protocol::Json body) {
  std::string payload = status.ok() ? protocol::EncodeOkResponse(std::move(body))
                                    : protocol::EncodeErrorResponse(status);
  if (payload.size() > protocol::kMaxPayload) {
    // A frame cannot carry it (a long path the host sent, echoed back escaped).
    payload = protocol::EncodeErrorResponse(Status::ResourceExhausted(base::StrFormat(
        "the response would take %zu bytes, more than one frame holds", payload.size())));
  }
  std::string frame;
  protocol::AppendFrame(&frame, protocol::FrameKind::kResponse, stream, payload);
  Send(conn, std::move(frame));
}

void Server::SendExitEvent(Conn* conn, uint32_t stream, protocol::ExitEvent ev) {
  if (ev.error.size() > kMaxEventError) ev.error.resize(kMaxEventError);
  std::string frame;
  protocol::AppendFrame(&frame, protocol::FrameKind::kEvent, stream,
                        protocol::Dump(protocol::ToJson(ev)));
  Send(conn, std::move(frame));
}

Status Server::DoHello(Conn* conn, const protocol::Json& req, protocol::Json* reply) {
  // A host says hello first on every connection: one on a port whose session is still on
  // means the previous host left without the port saying so yet (OnPortHangup).
  if (conn->session) EndSession(conn);
  conn->session = true;
  struct pollfd p = {conn->port.get(), POLLIN, 0};
  conn->hello_while_hung_up = ::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP) != 0;
  protocol::HelloRequest hello;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &hello));
  if (hello.version != protocol::kProtocolVersion) {
    return Status::NotSupported(base::StrFormat(
        "protocol version %lld; this agent speaks %d", static_cast<long long>(hello.version),
        protocol::kProtocolVersion));
  }
  // The first hello configures the box; later clients (other ports, reconnects) attach.
  if (!configured_) {
    struct timespec start;
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    if (options_.machine) BOXLITE_RETURN_IF_ERROR(ApplyBoxConfig(hello.config));
    struct timespec end;
    ::clock_gettime(CLOCK_MONOTONIC, &end);
    config_ms_ = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    config_ = hello.config;
    configured_ = true;
  }
  protocol::HelloResponse resp;
  resp.agent_version = kAgentVersion;
  resp.config_ms = config_ms_;
  struct utsname uts;
  if (::uname(&uts) == 0) resp.kernel = std::string(uts.release);
  struct timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  resp.uptime_ms = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  *reply = protocol::ToJson(resp);
  return Status::OK();
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

  auto passwd = sys::ReadFile(rootfs_ + "/etc/passwd");
  auto group = sys::ReadFile(rootfs_ + "/etc/group");
  BOXLITE_ASSIGN_OR_RETURN(Identity id, ResolveUser(r.user, passwd.value_or(std::string()),
                                                    group.value_or(std::string())));
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
  plan.cwd = r.cwd.empty() ? "/" : r.cwd;
  plan.uid = id.uid;
  plan.gid = id.gid;
  plan.groups = id.groups;
  plan.security.capabilities = config_.capabilities;
  plan.security.limits = config_.limits;
  plan.security.close_fds = config_.close_fds;
  if (!options_.machine) {
    if (!options_.host_processes) return Status::NotSupported("exec: this server starts no processes");
    plan.rootfs.clear();  // On the host's file system, beneath the served directory.
    plan.cwd = sys::JoinPath(rootfs_, plan.cwd);
    plan.switch_user = false;
  }
  base::UniqueFd cgroup_procs = options_.machine ? OpenExecCgroup() : base::UniqueFd();
  plan.cgroup_procs_fd = cgroup_procs.get();

  if (r.main && (r.detached || main_running_)) {
    return Status::FailedPrecondition(r.detached ? "a main command cannot be detached"
                                                 : "the box runs a main command already");
  }
  if (r.detached) {
    // Background process: stdio on the console, nothing to stream, reaped as an orphan.
    // Off the machine, the host's console is not the box's: output goes nowhere.
    base::UniqueFd console(options_.machine ? ::open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC)
                                            : -1);
    base::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    plan.fds[0] = null.get();
    plan.fds[1] = plan.fds[2] = console ? console.get() : null.get();
    int sp[2];
    if (::pipe2(sp, O_CLOEXEC) != 0) return sys::ErrnoStatus(errno, "pipe");
    base::UniqueFd status_read(sp[0]);
    base::UniqueFd status_write(sp[1]);
    plan.status_fd = sp[1];
    pid_t pid = ::vfork();  // Why vfork: see the attached case below.
    if (pid < 0) return sys::ErrnoStatus(errno, "fork");
    if (pid == 0) ChildMain(plan);
    status_write.reset();
    int report[2];
    ssize_t n;
    do {
      n = ::read(status_read.get(), report, sizeof(report));
    } while (n < 0 && errno == EINTR);
    if (n == sizeof(report)) {
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
      SetNonBlocking(p[1]);
    } else {
      child_ends[0].reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    for (int which = 1; which <= 2; ++which) {
      if (::pipe2(p, O_CLOEXEC) != 0) return sys::ErrnoStatus(errno, "pipe");
      exec->out[which].fd.reset(p[0]);
      child_ends[which].reset(p[1]);
      SetNonBlocking(p[0]);
      ::fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
    }
    for (int i = 0; i < 3; ++i) plan.fds[i] = child_ends[i].get();
  }
  int sp[2];
  if (::pipe2(sp, O_CLOEXEC | O_NONBLOCK) != 0) return sys::ErrnoStatus(errno, "pipe");
  base::UniqueFd status_read(sp[0]);
  base::UniqueFd status_write(sp[1]);
  plan.status_fd = sp[1];

  // vfork: the child only makes system calls before execve (see ChildMain), and not
  // copying the agent's page tables saves part of an exec's cost under TCG.
  pid_t pid = ::vfork();
  if (pid < 0) return sys::ErrnoStatus(errno, "fork");
  if (pid == 0) ChildMain(plan);
  exec->pid = pid;
  // The parent of a vfork resumes once the child has called execve or exited, and a
  // child that fails writes its report before exiting: whatever is in the pipe now is
  // all there will be. (The report is a nonblocking write of 8 bytes; it cannot tear.)
  int report[2];
  if (::read(status_read.get(), report, sizeof(report)) == sizeof(report)) {
    exec->start_error = IsNotFound(report[0], report[1]) ? kNotFound : ::strerror(report[0]);
  }
  for (auto& end : child_ends) end.reset();
  for (int which = 1; which <= 2; ++which) exec->out[which].credit = r.window;
  ExecKey key = Key(conn, stream);
  pid_to_exec_[pid] = key;
  if (exec->main) main_running_ = true;
  Exec* raw = exec.get();
  execs_[key] = std::move(exec);
  UpdateWatch(raw, 1);
  UpdateWatch(raw, 2);
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
    exec->put_received += bytes.size();
    if (exec->put_error.ok() && exec->stdin_fd) {
      Status w = sys::WriteAll(exec->stdin_fd.get(), bytes);
      if (!w.ok()) exec->put_error = w.Wrap(exec->put_path);
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
  if (!exec->stdin_fd) return;
  exec->stdin_pending.append(bytes);
  FlushStdin(exec);
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
    if (exec->stdin_watching) {
      Watch(exec->stdin_fd.get(), 0, Tag(kTagStdin, exec->conn->index, exec->stream),
            &exec->stdin_watching);
    }
    exec->stdin_fd.reset();
  }
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
  uint32_t want =
      (!out.eof && out.credit > 0 && out.splicing == 0) ? uint32_t{EPOLLIN} : 0u;
  Watch(out.fd.get(), want, Tag(kTagOutput, exec->conn->index, exec->stream, which),
        &out.watching);
}

void Server::PumpOutput(Exec* exec, int which) {
  Output& out = exec->out[which];
  if (!out.fd || out.eof || out.credit <= 0 || out.splicing > 0) return;
  Conn* conn = exec->conn;
  if (exec->orphaned) {
    // Nobody reads the main command's output now: drain it so it never blocks, keeping
    // the newest kMainBacklog bytes for the next host that attaches.
    static char sink[kReadChunk];  // The loop is single-threaded.
    ssize_t n = ::read(out.fd.get(), sink, sizeof(sink));
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
  size_t cap = std::min<size_t>(static_cast<size_t>(out.credit), kReadChunk);
  int avail = 0;
  if (splice_ok_ && out.pollable && !exec->tty &&
      ::ioctl(out.fd.get(), FIONREAD, &avail) == 0 && avail > 0) {
    // Zero copy: a header now, then the pipe's pages spliced into the port.
    size_t n = std::min(static_cast<size_t>(avail), cap);
    std::string header;
    protocol::AppendDataHeader(&header, exec->stream, static_cast<uint8_t>(which), n);
    out.credit -= static_cast<int64_t>(n);
    out.splicing += n;
    Send(conn, std::move(header));
    SendSplice(conn, exec->stream, which, out.fd.get(), n);
    UpdateWatch(exec, which);
    return;
  }
  // A pty, a file, or a pipe that reads as empty: read to learn about data or EOF.
  std::string frame;
  protocol::AppendDataHeader(&frame, exec->stream, static_cast<uint8_t>(which), cap);
  size_t header = frame.size();
  frame.resize(header + cap);
  ssize_t n = ::read(out.fd.get(), frame.data() + header, cap);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    // EOF, or EIO from a pty whose last slave closed.
    out.eof = true;
    UpdateWatch(exec, which);
    std::string close;
    protocol::AppendClose(&close, exec->stream, static_cast<uint8_t>(which));
    Send(conn, std::move(close));
    if (exec->is_file) {
      exec->exited = true;
      MaybeFinish(exec);
    }
    return;
  }
  frame.resize(header + static_cast<size_t>(n));
  std::string fixed;
  protocol::AppendDataHeader(&fixed, exec->stream, static_cast<uint8_t>(which),
                             static_cast<size_t>(n));
  std::memcpy(frame.data(), fixed.data(), header);
  out.credit -= n;
  Send(conn, std::move(frame));
  UpdateWatch(exec, which);
}

void Server::PumpFiles() {
  std::vector<ExecKey> files;
  for (auto& [key, exec] : execs_) {
    if (exec->is_file && exec->out[1].fd && !exec->out[1].eof) files.push_back(key);
  }
  for (ExecKey key : files) {
    // PumpOutput frees the exec when it finishes: look it up again every round.
    while (true) {
      auto it = execs_.find(key);
      if (it == execs_.end()) break;
      Exec* exec = it->second.get();
      Output& out = exec->out[1];
      if (!out.fd || out.eof || out.credit <= 0 || !exec->conn->connected ||
          exec->conn->queued_bytes >= kFileQueueLimit) {
        break;
      }
      int64_t before = out.credit;
      PumpOutput(exec, 1);
      auto again = execs_.find(key);
      if (again != execs_.end() && again->second->out[1].credit == before &&
          !again->second->out[1].eof) {
        break;  // No progress (EINTR): the next loop round retries.
      }
    }
  }
}

void Server::ReapChildren() {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = pid_to_exec_.find(pid);
    if (it == pid_to_exec_.end()) {
      NoteChildReaped(pid);  // A boot helper (init.h), or an orphan PID 1 adopted.
      continue;
    }
    ExecKey key = it->second;
    pid_to_exec_.erase(it);
    auto e = execs_.find(key);
    if (e == execs_.end()) continue;
    e->second->exited = true;
    e->second->wait_status = status;
    MaybeFinish(e->second.get());
  }
}

void Server::MaybeFinish(Exec* exec) {
  if (!exec->exited || exec->finished) return;
  Conn* conn = exec->conn;
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
    exec->out[which].eof = true;
    UpdateWatch(exec, which);
  }
  if (exec->stdin_watching) Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
  auto node = execs_.extract(Key(conn, exec->stream));
  if (!node.empty() && node.mapped()->main) OnMainExit(*node.mapped(), exit_code);
}

// Small frames queued in one loop round leave in one port write: under emulation every
// write to the port is a trap into QEMU and a system call on the host, so an exec's
// response, stream closes and exit event share one when they can. Frames are merged only
// up to what one port write takes; bulk data keeps its own buffer (no copy).
void Server::Send(Conn* conn, std::string bytes) {
  if (!conn->connected && !conn->hangup_pending) return;
  conn->queued_bytes += bytes.size();
  conn->flush_pending = true;
  if (!conn->outq.empty() && !conn->outq.back().splice_fd &&
      conn->outq.back().bytes.size() + bytes.size() <= kPortWriteMax) {
    conn->outq.back().bytes += bytes;
    return;
  }
  OutItem item;
  item.bytes = std::move(bytes);
  conn->outq.push_back(std::move(item));
}

void Server::SendSplice(Conn* conn, uint32_t stream, int which, int fd, size_t len) {
  if (!conn->connected && !conn->hangup_pending) return;
  conn->queued_bytes += len;
  OutItem item;
  item.splice_fd.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  item.splice_left = len;
  item.splice_len = len;
  item.stream = stream;
  item.which = which;
  conn->outq.push_back(std::move(item));
  conn->flush_pending = true;
}

void Server::FlushPending() {
  while (true) {
    bool any = false;
    for (auto& conn : conns_) {
      if (!conn->flush_pending) continue;
      conn->flush_pending = false;
      any = true;
      FlushPort(conn.get());
    }
    if (!any) return;
    OnSplicesDone();  // May queue exit events.
  }
}

void Server::FlushPort(Conn* conn) {
  while (!conn->outq.empty()) {
    OutItem& item = conn->outq.front();
    ssize_t n;
    if (item.splice_fd) {
      n = ::splice(item.splice_fd.get(), nullptr, conn->port.get(), nullptr, item.splice_left,
                   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) item.splice_left -= static_cast<size_t>(n);
      if (n == 0 && item.splice_left > 0) {
        // The bytes FIONREAD counted are gone: the frame cannot keep its length.
        n = -1;
        errno = EPIPE;
      }
    } else {
      n = ::write(conn->port.get(), item.bytes.data() + item.offset,
                  item.bytes.size() - item.offset);
      if (n > 0) item.offset += static_cast<size_t>(n);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      ConsoleLog("port %d: writing to the host failed: %s", conn->index, ::strerror(errno));
      DropConnection(conn);
      return;
    }
    conn->queued_bytes -= std::min(conn->queued_bytes, static_cast<size_t>(n));
    bool done = item.splice_fd ? item.splice_left == 0 : item.offset == item.bytes.size();
    if (done) {
      if (item.splice_fd) spliced_.push_back({Key(conn, item.stream), item.which, item.splice_len});
      conn->outq.pop_front();
    }
  }
  bool need_out = !conn->outq.empty();
  // A port with a hangup pending is not watched: the reconnect tick resumes it.
  if (conn->connected && need_out != conn->out_watching) {
    uint32_t want = EPOLLIN | (need_out ? uint32_t{EPOLLOUT} : 0u);
    Watch(conn->port.get(), want, Tag(kTagPort, conn->index), &conn->watching);
    conn->out_watching = need_out;
  }
}

void Server::OnSplicesDone() {
  while (!spliced_.empty()) {
    Spliced done = spliced_.back();
    spliced_.pop_back();
    auto it = execs_.find(done.key);
    if (it == execs_.end()) continue;
    Exec* exec = it->second.get();
    Output& out = exec->out[done.which];
    out.splicing -= std::min(out.splicing, done.len);
    UpdateWatch(exec, done.which);
    if (exec->exited) MaybeFinish(exec);
  }
}

Status Server::DoGetFile(Conn* conn, uint32_t stream, const protocol::Json& req,
                         protocol::Json* reply) {
  protocol::GetFileRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  const std::string& path = r.path;
  if (FindExec(conn, stream) != nullptr) return Status::AlreadyExists("stream in use");
  BOXLITE_ASSIGN_OR_RETURN(auto fd, OpenInRoot(root_dir_.get(), path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", path.c_str());
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + " is not a regular file");
  }
  auto exec = std::make_unique<Exec>();
  exec->conn = conn;
  exec->stream = stream;
  exec->is_file = true;
  exec->out[1].fd = std::move(fd);
  exec->out[1].pollable = false;
  exec->out[1].credit = r.window;
  exec->out[2].eof = true;
  execs_[Key(conn, stream)] = std::move(exec);
  *reply = protocol::ToJson(InfoFromStat(path, st));
  return Status::OK();
}

Status Server::DoPutFile(Conn* conn, uint32_t stream, const protocol::Json& req,
                         protocol::Json* reply) {
  WaitForRootfs();
  protocol::FileInfo info;
  bool no_replace = false;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &info));
  BOXLITE_RETURN_IF_ERROR(protocol::GetBool(req, "no_replace", &no_replace));
  if (FindExec(conn, stream) != nullptr) return Status::AlreadyExists("stream in use");
  base::UniqueFd parent;
  std::string name;
  BOXLITE_RETURN_IF_ERROR(OpenParent(root_dir_.get(), info.path, true, &parent, &name));
  struct stat existing;
  bool exists = ::fstatat(parent.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && info.kind == "dir" && !S_ISDIR(existing.st_mode)) {
    return Status::FailedPrecondition(info.path + " exists in the box and is not a directory");
  }
  if (exists && no_replace && info.kind != "dir") {
    return Status::AlreadyExists(info.path +
                                 " already exists in the box and overwrite is off; it was left "
                                 "as it was");
  }
  auto apply_owner = [&](int dirfd, const char* entry, int flags) -> Status {
    if (::fchownat(dirfd, entry, static_cast<uid_t>(info.uid), static_cast<gid_t>(info.gid),
                   flags) != 0) {
      return sys::ErrnoStatus(errno, "chown %s", info.path.c_str());
    }
    return Status::OK();
  };
  if (info.kind == "dir") {
    if (::mkdirat(parent.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
      return sys::ErrnoStatus(errno, "mkdir %s", info.path.c_str());
    }
    BOXLITE_RETURN_IF_ERROR(apply_owner(parent.get(), name.c_str(), AT_SYMLINK_NOFOLLOW));
    if (::fchmodat(parent.get(), name.c_str(), static_cast<mode_t>(info.mode), 0) != 0) {
      return sys::ErrnoStatus(errno, "chmod %s", info.path.c_str());
    }
    return Status::OK();
  }
  if (info.kind == "symlink") {
    if (!no_replace) ::unlinkat(parent.get(), name.c_str(), 0);
    if (::symlinkat(info.target.c_str(), parent.get(), name.c_str()) != 0) {
      return sys::ErrnoStatus(errno, "symlink %s", info.path.c_str());
    }
    return apply_owner(parent.get(), name.c_str(), AT_SYMLINK_NOFOLLOW);
  }
  if (info.kind != "file") return Status::InvalidArgument("put_file kind must be file, dir or symlink");
  // Content goes to a temporary sibling, renamed over the target once complete.
  std::string tmp_name = base::StrFormat(".%s.boxlite-%d-%u", name.c_str(), conn->index, stream);
  int fd = ::openat(parent.get(), tmp_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sys::ErrnoStatus(errno, "create %s", info.path.c_str());
  auto exec = std::make_unique<Exec>();
  exec->conn = conn;
  exec->stream = stream;
  exec->is_file = true;
  exec->stdin_fd.reset(fd);
  exec->out[1].eof = true;
  exec->out[2].eof = true;
  exec->put_path = info.path;
  exec->put_expected = static_cast<uint64_t>(info.size);
  exec->put_tmp = tmp_name;
  exec->put_name = name;
  exec->put_no_replace = no_replace;
  exec->put_dir = std::move(parent);
  exec->put_mode = static_cast<mode_t>(info.mode);
  exec->put_uid = static_cast<uid_t>(info.uid);
  exec->put_gid = static_cast<gid_t>(info.gid);
  protocol::Json r = {{"stdin_window", kStdinWindow}};
  execs_[Key(conn, stream)] = std::move(exec);
  *reply = r;
  return Status::OK();
}

void Server::FinishPut(Exec* exec) {
  Conn* conn = exec->conn;
  Status s = exec->put_error;
  int dirfd = exec->put_dir.get();
  const std::string& name = exec->put_name;
  if (s.ok() && exec->put_received != exec->put_expected) {
    s = Status::IoError(base::StrFormat("%s: received %llu of %llu bytes", exec->put_path.c_str(),
                                        static_cast<unsigned long long>(exec->put_received),
                                        static_cast<unsigned long long>(exec->put_expected)));
  }
  if (s.ok() && ::fchown(exec->stdin_fd.get(), exec->put_uid, exec->put_gid) != 0) {
    s = sys::ErrnoStatus(errno, "chown %s", exec->put_path.c_str());
  }
  // chmod after chown: chown clears setuid/setgid bits.
  if (s.ok() && ::fchmod(exec->stdin_fd.get(), exec->put_mode) != 0) {
    s = sys::ErrnoStatus(errno, "chmod %s", exec->put_path.c_str());
  }
  // renameat2(RENAME_NOREPLACE): an entry that appeared during the transfer is kept.
  if (s.ok() && ::renameat2(dirfd, exec->put_tmp.c_str(), dirfd, name.c_str(),
                            exec->put_no_replace ? RENAME_NOREPLACE : 0) != 0) {
    s = errno == EEXIST && exec->put_no_replace
            ? Status::AlreadyExists(exec->put_path + " already exists in the box and overwrite is off")
            : sys::ErrnoStatus(errno, "rename into %s", exec->put_path.c_str());
  }
  if (!s.ok()) ::unlinkat(dirfd, exec->put_tmp.c_str(), 0);
  if (exec->stdin_unacked > 0) {
    std::string credit;
    protocol::AppendCredit(&credit, exec->stream, protocol::kFdStdin,
                           static_cast<uint32_t>(exec->stdin_unacked));
    Send(conn, std::move(credit));
  }
  protocol::ExitEvent ev;
  ev.exit_code = s.ok() ? 0 : 1;
  ev.error = s.ok() ? "" : s.message();
  SendExitEvent(conn, exec->stream, std::move(ev));
  execs_.erase(Key(conn, exec->stream));
}

Status Server::DoStat(const protocol::Json& req, protocol::Json* reply) {
  protocol::StatRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  const std::string& path = r.path;
  struct stat st;
  if (r.follow) {
    // Symlinks resolve inside the box's root, as the box's own processes see them.
    BOXLITE_ASSIGN_OR_RETURN(auto fd, OpenInRoot(root_dir_.get(), path, O_PATH));
    if (::fstat(fd.get(), &st) != 0) return sys::ErrnoStatus(errno, "%s", path.c_str());
    *reply = protocol::ToJson(InfoFromStat(path, st));
    return Status::OK();
  }
  if (path == "/" || path.empty()) {
    if (::fstat(root_dir_.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat /");
    *reply = protocol::ToJson(InfoFromStat("/", st));
    return Status::OK();
  }
  base::UniqueFd parent;
  std::string name;
  Status opened = OpenParent(root_dir_.get(), path, false, &parent, &name);
  if (!opened.ok()) {
    // Name what was asked for, not the directory that failed on the way.
    return Status(opened.code(), path + ": " + (opened.IsNotFound() ? "no such file or directory"
                                                                    : opened.message()));
  }
  if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return sys::ErrnoStatus(errno, "%s", path.c_str());
  }
  protocol::FileInfo info = InfoFromStat(path, st);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = ::readlinkat(parent.get(), name.c_str(), target, sizeof(target));
    if (n > 0) info.target.assign(target, static_cast<size_t>(n));
  }
  *reply = protocol::ToJson(info);
  return Status::OK();
}

Status Server::DoListDir(const protocol::Json& req, protocol::Json* reply) {
  protocol::ListDirRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  const std::string& path = r.path;
  BOXLITE_ASSIGN_OR_RETURN(auto dirfd, OpenInRoot(root_dir_.get(), path, O_RDONLY | O_DIRECTORY));
  int dup_fd = ::fcntl(dirfd.get(), F_DUPFD_CLOEXEC, 3);
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    ::close(dup_fd);
    return sys::ErrnoStatus(errno, "opendir %s", path.c_str());
  }
  std::vector<std::string> names;
  while (struct dirent* ent = ::readdir(dir)) {
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    names.emplace_back(ent->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  protocol::ListDirResponse page;
  size_t start = static_cast<size_t>(r.offset);
  size_t end = std::min(names.size(), start + protocol::kListDirMaxEntries);
  size_t page_bytes = 0;
  for (size_t i = start; i < end; ++i) {
    if (page_bytes >= kListDirPageBytes) {
      end = i;
      break;
    }
    struct stat st;
    if (::fstatat(dirfd.get(), names[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    protocol::FileInfo info = InfoFromStat(names[i], st);
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlinkat(dirfd.get(), names[i].c_str(), target, sizeof(target));
      if (n > 0) info.target.assign(target, static_cast<size_t>(n));
    }
    page_bytes += protocol::Dump(protocol::ToJson(info)).size();
    page.entries.push_back(std::move(info));
  }
  page.next_offset = end < names.size() ? static_cast<int64_t>(end) : -1;
  *reply = protocol::ToJson(page);
  return Status::OK();
}

Status Server::DoMetrics(protocol::Json* reply) {
  protocol::GuestMetrics m;
  auto meminfo = sys::ReadFile("/proc/meminfo");
  int64_t total = 0;
  int64_t available = 0;
  if (meminfo.ok()) {
    for (const auto& line : base::Split(*meminfo, '\n')) {
      if (line.starts_with("MemTotal:")) total = std::atoll(line.c_str() + 9) * 1024;
      if (line.starts_with("MemAvailable:")) available = std::atoll(line.c_str() + 13) * 1024;
    }
  }
  m.mem_total = std::clamp<int64_t>(total, 0, protocol::kMaxGuestCount);
  m.mem_available = std::clamp<int64_t>(available, 0, m.mem_total);
  auto stat = sys::ReadFile("/proc/stat");
  if (stat.ok()) {
    // "cpu  user nice system idle iowait irq softirq ..." in USER_HZ ticks.
    auto fields = base::Split(base::Split(*stat, '\n')[0], ' ', true);
    int64_t busy = 0;
    int64_t idle = 0;
    for (size_t i = 1; i < fields.size(); ++i) {
      int64_t v = std::atoll(fields[i].c_str());
      if (i == 4 || i == 5) {
        idle += v;
      } else {
        busy += v;
      }
    }
    m.cpu_busy_ticks = std::clamp<int64_t>(busy, 0, protocol::kMaxGuestCount);
    m.cpu_idle_ticks = std::clamp<int64_t>(idle, 0, protocol::kMaxGuestCount);
    m.ticks_per_second = static_cast<int64_t>(::sysconf(_SC_CLK_TCK));
  }
  int64_t procs = 0;
  auto pids = sys::ListDir("/proc");
  if (pids.ok()) {
    for (const auto& p : *pids) {
      if (!p.empty() && std::isdigit(static_cast<unsigned char>(p[0]))) ++procs;
    }
  }
  m.processes = procs;
  // Network: eth0's byte counters and the TCP totals, when the box has a network.
  auto counter = [](const char* name) -> int64_t {
    auto text = sys::ReadFile(std::string("/sys/class/net/eth0/statistics/") + name);
    if (!text.ok()) return -1;
    return static_cast<int64_t>(std::min<uint64_t>(base::ParseUint(base::Trim(*text)).value_or(0),
                                                   protocol::kMaxGuestCount));
  };
  int64_t rx = counter("rx_bytes");
  int64_t tx = counter("tx_bytes");
  if (rx >= 0 && tx >= 0) {
    m.net_rx_bytes = rx;
    m.net_tx_bytes = tx;
    // /proc/net/snmp: a "Tcp:" line of names, then one of values.
    auto snmp = sys::ReadFile("/proc/net/snmp");
    std::vector<std::string> names;
    int64_t opens = 0;
    int64_t errors = 0;
    for (const auto& line : base::Split(snmp.value_or(std::string()), '\n')) {
      if (!line.starts_with("Tcp:")) continue;
      auto fields = base::Split(line, ' ', true);
      if (names.empty()) {
        names = fields;
        continue;
      }
      for (size_t i = 1; i < fields.size() && i < names.size(); ++i) {
        int64_t v = static_cast<int64_t>(base::ParseUint(fields[i]).value_or(0));
        if (names[i] == "ActiveOpens" || names[i] == "PassiveOpens") opens += v;
        if (names[i] == "AttemptFails" || names[i] == "EstabResets" || names[i] == "InErrs") {
          errors += v;
        }
      }
    }
    m.tcp_opens = std::clamp<int64_t>(opens, 0, protocol::kMaxGuestCount);
    m.tcp_errors = std::clamp<int64_t>(errors, 0, protocol::kMaxGuestCount);
  }
  int64_t running = 0;
  for (auto& [key, exec] : execs_) running += exec->is_file ? 0 : 1;
  m.execs_running = running;
  struct timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  m.uptime_ms = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  *reply = protocol::ToJson(m);
  return Status::OK();
}

}  // namespace boxlite::agent

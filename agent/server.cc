// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Design: one thread, one level-triggered epoll set. Sources are tagged in the epoll data
// word: the port, a signalfd for SIGCHLD, a timerfd used only while the host is
// disconnected, and per exec its stdout/stderr (or pty) read ends, its stdin write end
// and a status pipe that reports a failed execve. Output is read only while the host has
// granted credit for it, so a process printing gigabytes stalls on its own pipe instead of
// filling guest memory. An exec finishes when its process has exited and the output it
// left in the pipes was sent; descendants that keep the pipes open do not hold it up.
// When the host disconnects (the port reads EOF or hangs up), every running exec is
// killed, buffered output is dropped and the loop polls for a new connection.
#include "agent/server.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/init.h"
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
constexpr uint64_t kTagStatus = 6;

constexpr int64_t kStdinWindow = 1 << 20;
constexpr size_t kReadChunk = 256 * 1024;
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kAgentVersion[] = "0.1.0";

uint64_t Tag(uint64_t type, uint32_t stream, int which = 0) {
  return (type << 40) | (static_cast<uint64_t>(stream) << 8) | static_cast<uint64_t>(which);
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

// Everything the child needs after fork, prepared before it.
struct ChildPlan {
  std::vector<std::string> argv_store;
  std::vector<std::string> env_store;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<std::string> candidates;  // Paths to try, inside the chroot.
  std::string rootfs;
  std::string cwd;
  std::string pty_slave;  // Non-empty: open this as the controlling terminal.
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  int fds[3] = {-1, -1, -1};
  int status_fd = -1;
};

void WriteStr(int fd, const char* s) {
  ssize_t ignored = ::write(fd, s, std::strlen(s));
  (void)ignored;
}

[[noreturn]] void ChildFail(const ChildPlan& plan, int err, const char* what, const char* arg,
                            int code) {
  // After fork: async-signal-safe calls only.
  WriteStr(2, "boxlite: ");
  WriteStr(2, what);
  WriteStr(2, " \"");
  WriteStr(2, arg);
  WriteStr(2, "\": ");
  WriteStr(2, err == ENOENT && code == 127 ? "executable file not found in $PATH"
                                           : ::strerror(err));
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
  if (::chroot(plan.rootfs.c_str()) != 0) ChildFail(plan, errno, "chroot", "/", 126);
  if (::chdir(plan.cwd.c_str()) != 0) ChildFail(plan, errno, "chdir to", plan.cwd.c_str(), 126);
  if (::setgroups(plan.groups.size(), plan.groups.data()) != 0 || ::setgid(plan.gid) != 0 ||
      ::setuid(plan.uid) != 0) {
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

Server::Server(base::UniqueFd port, std::string rootfs)
    : port_(std::move(port)), rootfs_(std::move(rootfs)) {}

Server::~Server() = default;

void Server::Watch(int fd, uint32_t events, uint64_t tag, bool* watching) {
  bool want = events != 0;
  if (want == *watching && !want) return;
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
  struct utsname uts;
  splice_ok_ = ::uname(&uts) == 0 && base::EndsWith(uts.release, "-boxlite");
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
  bool port_watching = false;
  Watch(port_.get(), EPOLLIN, Tag(kTagPort, 0), &port_watching);
  port_out_watching_ = false;

  struct epoll_event events[64];
  while (!shutdown_) {
    int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::ErrnoStatus(errno, "epoll_wait");
    }
    for (int i = 0; i < n && !shutdown_; ++i) {
      uint64_t tag = events[i].data.u64;
      uint64_t type = tag >> 40;
      auto stream = static_cast<uint32_t>((tag >> 8) & 0xffffffffu);
      int which = static_cast<int>(tag & 0xff);
      uint32_t ev = events[i].events;
      switch (type) {
        case kTagPort:
          if (ev & EPOLLIN) OnPortReadable();
          if (connected_ && (ev & EPOLLOUT)) FlushPort();
          if (connected_ && (ev & (EPOLLHUP | EPOLLERR)) && !(ev & EPOLLIN)) OnPortHangup();
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
          auto it = execs_.find(stream);
          if (it == execs_.end()) break;
          Exec* exec = it->second.get();
          if (type == kTagOutput) {
            PumpOutput(exec, which);
          } else if (type == kTagStdin) {
            FlushStdin(exec);
          } else if (type == kTagStatus) {
            OnStatusPipe(exec);
          }
          if (exec->exited) MaybeFinish(exec);
          break;
        }
      }
      OnSplicesDone();
    }
  }
  // Give the final responses a moment to leave before the VM stops.
  for (int i = 0; i < 100 && connected_ && !outq_.empty(); ++i) {
    struct pollfd p = {port_.get(), POLLOUT, 0};
    ::poll(&p, 1, 10);
    FlushPort();
  }
  return Status::OK();
}

void Server::OnPortReadable() {
  while (connected_) {
    char* buf = decoder_.Prepare(kReadChunk);
    ssize_t n = ::read(port_.get(), buf, kReadChunk);
    if (n < 0) {
      decoder_.Commit(0);
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      OnPortHangup();
      return;
    }
    decoder_.Commit(static_cast<size_t>(n));
    if (n == 0) {
      OnPortHangup();
      return;
    }
    while (true) {
      auto frame = decoder_.Next();
      if (!frame.ok()) {
        ConsoleLog("dropping the host connection: %s", frame.error().ToString().c_str());
        OnPortHangup();
        return;
      }
      if (!frame->has_value()) break;
      HandleFrame(std::move(**frame));
      if (shutdown_) return;
    }
  }
}

void Server::OnPortHangup() {
  if (!connected_) return;
  connected_ = false;
  bool watching = true;
  Watch(port_.get(), 0, Tag(kTagPort, 0), &watching);
  port_out_watching_ = false;
  outq_.clear();
  spliced_.clear();
  spliced_len_.clear();
  for (auto& [id, exec] : execs_) {
    for (auto& out : exec->out) out.splicing = 0;
  }
  decoder_ = protocol::FrameDecoder();
  // Nobody is left to read these execs' output or wait for them.
  for (auto& [stream, exec] : execs_) {
    if (!exec->exited && exec->pid > 0) ::kill(-exec->pid, SIGKILL);
  }
  struct itimerspec spec = {};
  spec.it_interval.tv_nsec = 20 * 1000 * 1000;
  spec.it_value.tv_nsec = 20 * 1000 * 1000;
  ::timerfd_settime(timer_fd_.get(), 0, &spec, nullptr);
}

void Server::OnReconnectTimer() {
  uint64_t ticks;
  while (::read(timer_fd_.get(), &ticks, sizeof(ticks)) > 0) {
  }
  if (connected_) return;
  struct pollfd p = {port_.get(), POLLIN | POLLOUT, 0};
  if (::poll(&p, 1, 0) < 0 || (p.revents & POLLHUP)) return;
  connected_ = true;
  struct itimerspec off = {};
  ::timerfd_settime(timer_fd_.get(), 0, &off, nullptr);
  bool watching = false;
  Watch(port_.get(), EPOLLIN, Tag(kTagPort, 0), &watching);
}

void Server::HandleFrame(protocol::Frame frame) {
  switch (frame.kind) {
    case protocol::FrameKind::kRequest:
      HandleRequest(frame.stream, frame.payload);
      break;
    case protocol::FrameKind::kData: {
      auto data = protocol::ParseData(frame.payload);
      if (data.ok() && data->fd == protocol::kFdStdin) OnStdinData(frame.stream, data->bytes);
      break;
    }
    case protocol::FrameKind::kClose: {
      auto fd = protocol::ParseClose(frame.payload);
      if (fd.ok() && *fd == protocol::kFdStdin) OnStdinClose(frame.stream);
      break;
    }
    case protocol::FrameKind::kCredit: {
      auto credit = protocol::ParseCredit(frame.payload);
      if (credit.ok()) OnCredit(frame.stream, credit->fd, credit->bytes);
      break;
    }
    default:
      // Responses and events only flow guest -> host; ignore strays.
      break;
  }
}

void Server::HandleRequest(uint32_t stream, std::string_view payload) {
  auto req = protocol::ParseObject(payload);
  if (!req.ok()) {
    Respond(stream, req.error());
    return;
  }
  std::string op;
  Status s = protocol::GetString(*req, "op", &op, true);
  if (!s.ok()) {
    Respond(stream, s);
    return;
  }
  protocol::Json reply = protocol::Json::object();
  if (op == "hello") {
    s = DoHello(*req, &reply);
  } else if (op == "exec") {
    s = DoExec(stream, *req, &reply);
  } else if (op == "signal") {
    s = DoSignal(*req);
  } else if (op == "resize") {
    s = DoResize(*req);
  } else if (op == "ping") {
    s = Status::OK();
  } else if (op == "shutdown") {
    for (auto& [id, exec] : execs_) {
      if (!exec->exited && exec->pid > 0) ::kill(-exec->pid, SIGKILL);
    }
    ::sync();
    shutdown_ = true;
  } else {
    s = Status::NotSupported("unknown request", op);
  }
  Respond(stream, s, std::move(reply));
}

void Server::Respond(uint32_t stream, const Status& status, protocol::Json body) {
  std::string frame;
  protocol::AppendFrame(&frame, protocol::FrameKind::kResponse, stream,
                        status.ok() ? protocol::EncodeOkResponse(std::move(body))
                                    : protocol::EncodeErrorResponse(status));
  Send(std::move(frame));
}

Status Server::DoHello(const protocol::Json& req, protocol::Json* reply) {
  protocol::HelloRequest hello;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &hello));
  if (hello.version != protocol::kProtocolVersion) {
    return Status::NotSupported(base::StrFormat(
        "protocol version %lld; this agent speaks %d", static_cast<long long>(hello.version),
        protocol::kProtocolVersion));
  }
  if (!configured_) {
    BOXLITE_RETURN_IF_ERROR(ApplyBoxConfig(hello.config));
    configured_ = true;
  }
  protocol::HelloResponse resp;
  resp.agent_version = kAgentVersion;
  struct utsname uts;
  if (::uname(&uts) == 0) resp.kernel = std::string(uts.release);
  struct timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  resp.uptime_ms = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  *reply = protocol::ToJson(resp);
  return Status::OK();
}

Status Server::DoExec(uint32_t stream, const protocol::Json& req, protocol::Json* reply) {
  if (!configured_) return Status::FailedPrecondition("exec before hello");
  if (execs_.count(stream)) return Status::AlreadyExists("stream in use", std::to_string(stream));
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

  auto exec = std::make_unique<Exec>();
  exec->stream = stream;
  exec->tty = r.tty;
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
  if (::pipe2(sp, O_CLOEXEC) != 0) return sys::ErrnoStatus(errno, "pipe");
  exec->status_fd.reset(sp[0]);
  base::UniqueFd status_write(sp[1]);
  plan.status_fd = sp[1];
  SetNonBlocking(sp[0]);

  pid_t pid = ::fork();
  if (pid < 0) return sys::ErrnoStatus(errno, "fork");
  if (pid == 0) ChildMain(plan);
  exec->pid = pid;
  for (auto& end : child_ends) end.reset();
  status_write.reset();
  for (int which = 1; which <= 2; ++which) exec->out[which].credit = r.window;
  pid_to_stream_[pid] = stream;
  Exec* raw = exec.get();
  execs_[stream] = std::move(exec);
  bool status_watching = false;
  Watch(raw->status_fd.get(), EPOLLIN, Tag(kTagStatus, stream), &status_watching);
  UpdateWatch(raw, 1);
  UpdateWatch(raw, 2);
  protocol::ExecResponse resp;
  resp.pid = pid;
  resp.stdin_window = raw->stdin_fd ? kStdinWindow : 0;
  *reply = protocol::ToJson(resp);
  return Status::OK();
}

Status Server::DoSignal(const protocol::Json& req) {
  protocol::SignalRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  auto it = execs_.find(static_cast<uint32_t>(r.target));
  if (it == execs_.end() || it->second->exited) {
    return Status::NotFound("no running exec on stream", std::to_string(r.target));
  }
  // The exec leads its own process group: signal the whole group, as a terminal would.
  if (::kill(-it->second->pid, static_cast<int>(r.signal)) != 0 &&
      ::kill(it->second->pid, static_cast<int>(r.signal)) != 0) {
    return sys::ErrnoStatus(errno, "signal %lld", static_cast<long long>(r.signal));
  }
  return Status::OK();
}

Status Server::DoResize(const protocol::Json& req) {
  protocol::ResizeRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  auto it = execs_.find(static_cast<uint32_t>(r.target));
  if (it == execs_.end()) return Status::NotFound("no exec on stream", std::to_string(r.target));
  if (!it->second->tty) return Status::FailedPrecondition("resize: the exec has no terminal");
  struct winsize ws = {};
  ws.ws_row = static_cast<unsigned short>(r.rows);
  ws.ws_col = static_cast<unsigned short>(r.cols);
  if (::ioctl(it->second->out[1].fd.get(), TIOCSWINSZ, &ws) != 0) {
    return sys::ErrnoStatus(errno, "resize terminal");
  }
  return Status::OK();
}

void Server::OnStdinData(uint32_t stream, std::string_view bytes) {
  auto it = execs_.find(stream);
  if (it == execs_.end()) return;
  Exec* exec = it->second.get();
  if (!exec->stdin_fd || exec->stdin_close_requested) return;
  exec->stdin_pending.append(bytes);
  FlushStdin(exec);
}

void Server::OnStdinClose(uint32_t stream) {
  auto it = execs_.find(stream);
  if (it == execs_.end()) return;
  it->second->stdin_close_requested = true;
  FlushStdin(it->second.get());
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
      exec->stdin_fd.reset();
      exec->stdin_watching = false;
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
    Send(std::move(frame));
  }
  if (exec->stdin_pending.empty() && exec->stdin_close_requested && exec->stdin_fd) {
    if (exec->tty) {
      // A terminal has no half-close: send EOF (^D) the way a user would.
      ssize_t ignored = ::write(exec->stdin_fd.get(), "\x04", 1);
      (void)ignored;
    }
    bool was = exec->stdin_watching;
    if (was) Watch(exec->stdin_fd.get(), 0, Tag(kTagStdin, exec->stream), &exec->stdin_watching);
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
  Watch(exec->stdin_fd.get(), want, Tag(kTagStdin, exec->stream), &exec->stdin_watching);
}

void Server::OnCredit(uint32_t stream, uint8_t fd, uint32_t bytes) {
  auto it = execs_.find(stream);
  if (it == execs_.end() || (fd != 1 && fd != 2)) return;
  Exec* exec = it->second.get();
  exec->out[fd].credit += bytes;
  UpdateWatch(exec, fd);
  if (exec->exited) MaybeFinish(exec);
}

void Server::UpdateWatch(Exec* exec, int which) {
  Output& out = exec->out[which];
  if (!out.fd) return;
  uint32_t want = (!out.eof && out.credit > 0 && out.splicing == 0) ? uint32_t{EPOLLIN} : 0u;
  Watch(out.fd.get(), want, Tag(kTagOutput, exec->stream, which), &out.watching);
}

void Server::PumpOutput(Exec* exec, int which) {
  Output& out = exec->out[which];
  if (!out.fd || out.eof || out.credit <= 0 || out.splicing > 0) return;
  size_t cap = std::min<size_t>(static_cast<size_t>(out.credit), kReadChunk);
  int avail = 0;
  if (splice_ok_ && !exec->tty && ::ioctl(out.fd.get(), FIONREAD, &avail) == 0 && avail > 0) {
    // Zero copy: a header now, then the pipe's pages spliced into the port.
    size_t n = std::min(static_cast<size_t>(avail), cap);
    std::string header;
    protocol::AppendDataHeader(&header, exec->stream, static_cast<uint8_t>(which), n);
    out.credit -= static_cast<int64_t>(n);
    out.splicing += n;
    Send(std::move(header));
    SendSplice(exec->stream, which, out.fd.get(), n);
    UpdateWatch(exec, which);
    return;
  }
  // A pty, or a pipe that reads as empty: read to learn about data or EOF.
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
    Send(std::move(close));
    return;
  }
  frame.resize(header + static_cast<size_t>(n));
  std::string fixed;
  protocol::AppendDataHeader(&fixed, exec->stream, static_cast<uint8_t>(which),
                             static_cast<size_t>(n));
  std::memcpy(frame.data(), fixed.data(), header);
  out.credit -= n;
  Send(std::move(frame));
  UpdateWatch(exec, which);
}

void Server::OnStatusPipe(Exec* exec) {
  int report[2];
  ssize_t n = ::read(exec->status_fd.get(), report, sizeof(report));
  if (n < 0 && errno == EAGAIN) return;
  if (n == sizeof(report)) {
    exec->start_error = report[0] == ENOENT && report[1] == 127
                            ? "executable file not found in $PATH"
                            : ::strerror(report[0]);
  }
  bool watching = true;
  Watch(exec->status_fd.get(), 0, Tag(kTagStatus, exec->stream), &watching);
  exec->status_fd.reset();
}

void Server::ReapChildren() {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = pid_to_stream_.find(pid);
    if (it == pid_to_stream_.end()) continue;  // An orphan PID 1 adopted.
    uint32_t stream = it->second;
    pid_to_stream_.erase(it);
    auto e = execs_.find(stream);
    if (e == execs_.end()) continue;
    e->second->exited = true;
    e->second->wait_status = status;
    MaybeFinish(e->second.get());
  }
}

void Server::MaybeFinish(Exec* exec) {
  if (!exec->exited || exec->finished) return;
  if (exec->status_fd) OnStatusPipe(exec);
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
        std::string close;
        protocol::AppendClose(&close, exec->stream, static_cast<uint8_t>(which));
        Send(std::move(close));
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
  std::string frame;
  protocol::AppendFrame(&frame, protocol::FrameKind::kEvent, exec->stream,
                        protocol::ToJson(ev).dump());
  Send(std::move(frame));
  for (int which = 1; which <= 2; ++which) {
    exec->out[which].eof = true;
    UpdateWatch(exec, which);
  }
  if (exec->stdin_watching) Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
  execs_.erase(exec->stream);
}

void Server::Send(std::string bytes) {
  if (!connected_) return;
  OutItem item;
  item.bytes = std::move(bytes);
  outq_.push_back(std::move(item));
  FlushPort();
}

void Server::SendSplice(uint32_t stream, int which, int fd, size_t len) {
  if (!connected_) return;
  OutItem item;
  item.splice_fd.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  item.splice_left = len;
  item.splice_len = len;
  item.stream = stream;
  item.which = which;
  outq_.push_back(std::move(item));
  FlushPort();
}

void Server::FlushPort() {
  while (!outq_.empty()) {
    OutItem& item = outq_.front();
    ssize_t n;
    if (item.splice_fd) {
      n = ::splice(item.splice_fd.get(), nullptr, port_.get(), nullptr, item.splice_left,
                   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) item.splice_left -= static_cast<size_t>(n);
      if (n == 0 && item.splice_left > 0) {
        // The pipe ran dry under us (cannot happen while we own the bytes FIONREAD
        // counted); pad so the frame keeps its announced length.
        n = -1;
        errno = EPIPE;
      }
    } else {
      n = ::write(port_.get(), item.bytes.data() + item.offset, item.bytes.size() - item.offset);
      if (n > 0) item.offset += static_cast<size_t>(n);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      ConsoleLog("writing to the host failed: %s", ::strerror(errno));
      OnPortHangup();
      return;
    }
    bool done = item.splice_fd ? item.splice_left == 0 : item.offset == item.bytes.size();
    if (done) {
      if (item.splice_fd) {
        spliced_.emplace_back(item.stream, item.which);
        spliced_len_.push_back(item.splice_len);
      }
      outq_.pop_front();
    }
  }
  bool need_out = !outq_.empty();
  if (need_out != port_out_watching_) {
    uint32_t want = EPOLLIN | (need_out ? uint32_t{EPOLLOUT} : 0u);
    bool watching = true;
    Watch(port_.get(), want, Tag(kTagPort, 0), &watching);
    port_out_watching_ = need_out;
  }
}

void Server::OnSplicesDone() {
  while (!spliced_.empty()) {
    auto [stream, which] = spliced_.back();
    size_t len = spliced_len_.back();
    spliced_.pop_back();
    spliced_len_.pop_back();
    auto it = execs_.find(stream);
    if (it == execs_.end()) continue;
    Exec* exec = it->second.get();
    Output& out = exec->out[which];
    out.splicing -= std::min(out.splicing, len);
    UpdateWatch(exec, which);
    if (exec->exited) MaybeFinish(exec);
  }
}

}  // namespace boxlite::agent

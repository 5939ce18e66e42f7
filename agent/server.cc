// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Design: one thread, one level-triggered epoll set. Sources are tagged in the epoll data
// word (type | connection | stream | fd): each agent port, a signalfd for SIGCHLD, a
// timerfd that fires once a tick after a port reports its host gone, and per exec its
// stdout/stderr (or pty) read ends and its stdin write end. A failed execve is known as
// soon as vfork returns (see DoExec). Output is read only while the host has granted
// credit for it, so a process printing gigabytes stalls on its own pipe instead of
// filling guest memory; pipe contents go to the port with splice(2) when the kernel
// allows it. Small frames queued during one loop round leave in one port write; a new
// exec's process runs before its response leaves (DoExec, Step), so that a quick
// command's response, output and exit event are one port write. An exec
// finishes when its process has exited and the output it left in the pipes was sent;
// descendants that keep the pipes open do not hold it up. Files (get_file/put_file)
// are streams too, pumped from the loop because epoll cannot watch regular files.
// When a host disconnects, its execs are killed and its queued output dropped; the port
// is watched edge-triggered until a host connects again (AwaitHost). A hangup the port
// reports counts only if it still holds a tick later, and a hello starts a new session
// (OnPortHangup, DoHello): the guest learns of connections after it has taken in their
// data. The box's main command outlives its host: its newest output is kept until a host
// attaches to it.
// This file: the connections (ports, frames, requests and their dispatch, hello, hangup,
// the reconnect timer, output to the host). server_exec.cc runs processes, server_files.cc
// moves files, server_metrics.cc answers metrics; server_internal.h holds what they share.
#include "agent/server.h"
#include "agent/server_internal.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/guard.h"
#include "agent/init.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"

namespace boxlite::agent {

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
  dev_null_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));  // Retried per exec if missing.
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
  close_timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  yes = false;
  if (close_timer_fd_) Watch(close_timer_fd_.get(), EPOLLIN, Tag(kTagCloseTimer, 0), &yes);
  for (auto& conn : conns_) {
    Watch(conn->port.get(), EPOLLIN, Tag(kTagPort, conn->index), &conn->watching);
    ResetStaging(conn.get());
  }
  return Status::OK();
}

void Server::ResetStaging(Conn* conn) {
  conn->staging[0].reset();
  conn->staging[1].reset();
  if (!splice_ok_) return;  // Exec output is read and written instead (PumpOutput).
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return;  // Without it: two writes a frame.
  conn->staging[0].reset(p[0]);
  conn->staging[1].reset(p[1]);
  ::fcntl(p[1], F_SETPIPE_SZ, kStagingPipeSize);  // Smaller if refused: SendStaged copes.
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
  int wait_ms = files_ready ? 0 : timeout_ms;
  if (!paused_.empty()) {
    int pause_ms = paused_now_ ? 0 : kBulkPauseMs;
    if (wait_ms < 0 || wait_ms > pause_ms) wait_ms = pause_ms;
  }
  int n = ::epoll_wait(epoll_.get(), events, 64, wait_ms);
  // At most kBulkPauseMs, less when something else woke the loop.
  Status resumed = CatchAll("resuming paused output", [&] {
    ResumePaused();
    return Status::OK();
  });
  if (!resumed.ok()) ConsoleLog("%s", resumed.ToString().c_str());
  if (n < 0) {
    if (errno == EINTR) return Status::OK();
    return sys::ErrnoStatus(errno, "epoll_wait");
  }
  ServeEvents(events, n);
  if (!started_.empty()) {
    // Execs were started this round (DoExec): each process ran before the agent went on,
    // until it ended, blocked or was preempted at a tick.
    Status taken = CatchAll("taking in started execs", [&] {
      TakeInStarted();
      return Status::OK();
    });
    if (!taken.ok()) ConsoleLog("%s", taken.ToString().c_str());
  }
  Status rest = CatchAll("moving files and output", [&] {
    if (!shutdown_) PumpFiles();
    FlushPending();
    return Status::OK();
  });
  if (!rest.ok()) ConsoleLog("%s", rest.ToString().c_str());
  RetireFinished();
  SetBatch(false);
  return Status::OK();
}

void Server::ServeEvents(const struct epoll_event* events, int n) {
  // SIGCHLD first: an exec whose process has exited is then finished from its pipes'
  // contents (MaybeFinish) in the same round as the end of its outputs, which the events
  // of its pipes would otherwise report one by one (holding their closes meanwhile).
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < n && !shutdown_; ++i) {
      bool signal = (events[i].data.u64 >> 48) == kTagSignal;
      if (signal != (pass == 0)) continue;
      // Second line of defence behind the request boundary (HandleRequest): nothing
      // thrown while serving one event may end PID 1.
      Status handled = CatchAll("serving an event", [&] {
        OnEvent(events[i]);
        return Status::OK();
      });
      if (!handled.ok()) ConsoleLog("%s", handled.ToString().c_str());
    }
  }
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
      if (!conn->connected) {
        OnPortWithoutHost(conn);
        break;
      }
      if (ev & EPOLLIN) OnPortReadable(conn);
      if (conn->connected && (ev & EPOLLOUT)) FlushPort(conn);
      if (conn->connected && (ev & (EPOLLHUP | EPOLLERR)) && !(ev & EPOLLIN)) {
        OnPortHangup(conn);
      }
      break;
    case kTagSignal: {
      // Only SIGCHLD comes here, pending at most once: one read takes it.
      struct signalfd_siginfo info[4];
      while (::read(signal_fd_.get(), info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      }
      ReapChildren();
      break;
    }
    case kTagTimer:
      OnReconnectTimer();
      break;
    case kTagCloseTimer:
      OnCloseTimer();
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

void Server::OnPortHangup(Conn* conn) {
  if (!conn->connected) return;
  // Not the end of the session yet. The guest learns of host connections through the
  // virtio-serial control queue, handled later in a work queue, while data is taken in
  // at once (drivers/char/virtio_console.c): when a host connects just after another
  // left, its hello can be read, and answered, before the port reports the previous host
  // gone. Ending the session on that late report dropped the new host's queued response
  // (it then waited for its hello until it gave up) or its next requests. So the session
  // ends at the reconnect tick if the port still reports no host (OnReconnectTimer), or
  // at once when a new host says hello (DoHello). Output keeps being queued meanwhile.
  conn->connected = false;
  conn->hangup_pending = true;
  AwaitHost(conn);
  ArmReconnectTimer();
}

void Server::DropConnection(Conn* conn) {
  if (!conn->connected && !conn->hangup_pending) return;
  conn->connected = false;
  conn->hangup_pending = false;
  conn->hello_while_hung_up = false;
  conn->decoder = protocol::FrameDecoder();
  EndSession(conn);
  AwaitHost(conn);
  ArmReconnectTimer();
}

void Server::EndSession(Conn* conn) {
  conn->session = false;
  if (frozen_by_ == conn) (void)ThawNow();  // Its host is gone: nobody will thaw.
  conn->outq.clear();
  ResetStaging(conn);
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
    for (auto& out : exec->out) {
      out.splicing = 0;  // Its queued splices are gone,
      out.close_held = false;  // and nobody is left to tell.
    }
    if (exec->main && !exec->finished) {
      if (!exec->orphaned) orphans.push_back(it->first);
      ++it;
      continue;
    }
    if (exec->is_file || exec->tunnel || exec->finished) {
      if (exec->put.dir) ::unlinkat(exec->put.dir.get(), exec->put.tmp.c_str(), 0);
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

void Server::AwaitHost(Conn* conn) {
  conn->out_watching = false;
  if (!options_.machine) {
    // Off the box the ports are sockets (tests): a hung-up socket stays hung up, and a
    // new host is a new descriptor put in its place, which epoll does not follow. Those
    // are polled by the reconnect timer instead.
    Watch(conn->port.get(), 0, Tag(kTagPort, conn->index), &conn->watching);
    return;
  }
  // Registering reports the port's state once; after that only the driver's wakeups do
  // (drivers/char/virtio_console.c wakes the port's waiters when the host opens or closes
  // it). EPOLLOUT: a host that connects and sends nothing makes the port writable.
  Watch(conn->port.get(), EPOLLIN | EPOLLOUT | EPOLLET, Tag(kTagPort, conn->index),
        &conn->watching);
}

void Server::OnPortWithoutHost(Conn* conn) {
  struct pollfd p = {conn->port.get(), POLLIN | POLLOUT, 0};
  if (::poll(&p, 1, 0) < 0 || (p.revents & POLLHUP)) {
    // Still no host (or a host whose arrival the guest is not told of yet: its data may
    // be in, and the driver wakes the port again once it learns of it). A pending hangup
    // is decided at the tick (OnReconnectTimer).
    return;
  }
  TakeHostIn(conn);
}

void Server::TakeHostIn(Conn* conn) {
  // A host is there: the same one (the hangup was its predecessor's, reported late) or a
  // new one, whose hello ends the previous session.
  conn->hangup_pending = false;
  conn->hello_while_hung_up = false;
  conn->connected = true;
  conn->out_watching = false;
  Watch(conn->port.get(), EPOLLIN, Tag(kTagPort, conn->index), &conn->watching);
  conn->flush_pending = true;
}

void Server::ArmReconnectTimer() {
  if (timer_armed_) return;
  struct itimerspec spec = {};
  spec.it_value.tv_nsec = kReconnectTickNs;
  // In the box the tick comes once; off it, it repeats while a port has no host.
  if (!options_.machine) spec.it_interval.tv_nsec = kReconnectTickNs;
  ::timerfd_settime(timer_fd_.get(), 0, &spec, nullptr);
  timer_armed_ = true;
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
      waiting = true;  // In the box, the port's next wakeup tells of a host (AwaitHost).
      continue;
    }
    TakeHostIn(conn.get());
  }
  if (!waiting || options_.machine) {
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
  } else if (op == "connect") {
    s = DoConnect(conn, stream, req, reply);
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
  } else if (op == "refresh") {
    s = DoRefresh(req);
  } else if (op == "freeze") {
    s = DoFreeze(conn, req, reply);
  } else if (op == "thaw") {
    s = DoThaw();
  } else if (op == "ping") {
    s = Status::OK();
  } else if (op == "shutdown") {
    for (auto& c : conns_) KillExecsOf(c.get());
    (void)ThawNow();
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
  // The launcher's hello configures the box; later clients (other ports, reconnects) attach.
  // A client that attaches before the launcher said hello is sent away: its empty config
  // must not become the box's (nor be saved into a warm-start template meanwhile).
  if (hello.attach && !configured_) {
    return Status::FailedPrecondition("the box is still starting: ask again after its launcher's hello");
  }
  if (!configured_) {
    struct timespec start;
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    if (options_.machine) BOXLITE_RETURN_IF_ERROR(ApplyBoxConfig(hello.config));
    struct timespec end;
    ::clock_gettime(CLOCK_MONOTONIC, &end);
    config_ms_ = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    config_ = hello.config;
    configured_ = true;
    if (options_.machine) LimitBoundingSet();
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

Status Server::DoRefresh(const protocol::Json& req) {
  protocol::RefreshRequest refresh;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &refresh));
  if (options_.machine) BOXLITE_RETURN_IF_ERROR(ApplyRefresh(refresh));
  config_.hostname = refresh.hostname;  // Execs' $HOSTNAME.
  ConsoleLog("agent: resumed as box %s", refresh.box_id.c_str());
  return Status::OK();
}

// Small frames queued in one loop round leave in one port write: under emulation every
// write to the port is a trap into QEMU and a system call on the host, so an exec's
// response, stream closes and exit event share one when they can. Frames are merged only
// up to what one port write takes; bulk data keeps its own buffer (no copy).
void Server::Send(Conn* conn, std::string bytes) {
  if (!conn->connected && !conn->hangup_pending) return;
  conn->queued_bytes += bytes.size();
  conn->flush_pending = true;
  if (!conn->outq.empty() && !conn->outq.back().splice_fd && conn->outq.back().staged_left == 0 &&
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

bool Server::SendStaged(Conn* conn, uint32_t stream, int which, int fd, size_t len) {
  if (!conn->staging[1]) return false;
  if (!conn->connected && !conn->hangup_pending) return true;  // Dropped, as Send() drops.
  // Behind anything but staged frames, the frame would overtake what is queued.
  size_t staged = conn->outq.empty() ? 0 : conn->outq.back().staged_left;
  if (!conn->outq.empty() && staged == 0) return false;
  std::string header;
  protocol::AppendDataHeader(&header, stream, static_cast<uint8_t>(which), len);
  if (staged + header.size() + len > kStagingLimit) return false;
  ssize_t w = ::write(conn->staging[1].get(), header.data(), header.size());
  if (w != static_cast<ssize_t>(header.size())) {
    // A pipe write this small is all or nothing: nothing was staged.
    return false;
  }
  ssize_t moved = ::splice(fd, nullptr, conn->staging[1].get(), nullptr, len, SPLICE_F_NONBLOCK);
  size_t in_pipe = header.size() + static_cast<size_t>(std::max<ssize_t>(moved, 0));
  if (conn->outq.empty()) conn->outq.emplace_back();
  conn->outq.back().staged_left += in_pipe;
  conn->queued_bytes += header.size() + len;
  conn->flush_pending = true;
  if (in_pipe < header.size() + len) {
    // The staging pipe ran out of pages (the exec's were many and small): the rest of
    // this frame's data is copied and follows the staged part.
    size_t rest = header.size() + len - in_pipe;
    OutItem tail;
    tail.bytes.resize(rest);
    ssize_t r = ::read(fd, tail.bytes.data(), rest);
    if (r != static_cast<ssize_t>(rest)) {
      // The bytes FIONREAD counted are gone: the frame cannot keep its length.
      ConsoleLog("port %d: exec output vanished from its pipe", conn->index);
      DropConnection(conn);
      return true;
    }
    conn->outq.push_back(std::move(tail));
  }
  return true;
}

void Server::SetBatch(bool batch) {
  if (batch == batch_) return;
  // SCHED_BATCH keeps the nice value and only gives up preempting on wakeup.
  struct sched_param param = {};
  if (::sched_setscheduler(0, batch ? SCHED_BATCH : SCHED_OTHER, &param) == 0) batch_ = batch;
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
    if (item.staged_left > 0) {
      n = ::splice(conn->staging[0].get(), nullptr, conn->port.get(), nullptr, item.staged_left,
                   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) item.staged_left -= static_cast<size_t>(n);
      if (n == 0) {
        // A virtio-serial port's splice returns 0 for an empty pipe: the staged bytes
        // are gone, and the frames cannot keep their lengths.
        n = -1;
        errno = EPIPE;
      }
    } else if (item.splice_fd) {
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
    bool done = item.splice_fd ? item.splice_left == 0
                : item.bytes.empty() ? item.staged_left == 0
                                     : item.offset == item.bytes.size();
    if (done) {
      if (item.splice_fd) spliced_.push_back({Key(conn, item.stream), item.which, item.splice_len});
      conn->outq.pop_front();
    }
  }
  bool need_out = !conn->outq.empty();
  // A port without a host is watched only for its return (AwaitHost).
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

}  // namespace boxlite::agent

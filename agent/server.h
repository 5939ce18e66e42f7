// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's protocol server: one epoll loop on one thread serving every agent port
// ("boxlite.agent", "boxlite.agent.1", ...: one per host client, so several host
// processes can use one box at once). It runs execs (fork -> chroot -> setgid/setuid ->
// execve), pumps their stdio as data frames under per-stream credit, moves files in and
// out, reaps every child (PID 1 adopts orphans), and answers control requests. A bad
// request gets an error response; the loop never exits because of what a host sent.
// Not thread-safe: everything runs on the loop thread.
#pragma once

#include <sys/epoll.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/status.h"
#include "src/base/unique_fd.h"
#include "src/protocol/frame.h"
#include "src/protocol/messages.h"

namespace boxlite::agent {

// What the server may do beyond its ports and the files beneath its root.
struct ServerOptions {
  // As PID 1 of a box: apply the box configuration on hello, start processes, sync on
  // shutdown. Off, it touches nothing else, so that the in-process tests and
  // fuzz/agent_request_fuzzer.cc can serve a temporary directory on a host: hello only
  // checks its config and exec fails after checking its request.
  bool machine = true;
  // With the machine off, start processes anyway, as the in-process tests of exec do
  // (tests/inprocess): on the host's own file system, with no chroot, no cgroup and no
  // change of user, each in `rootfs` (or the cwd it asks for beneath it). Files are
  // still served from `rootfs` only.
  bool host_processes = false;
  // Splice exec output into the ports on any kernel. A port that is a socket (the
  // in-process tests) takes splice(2) everywhere; a virtio-serial port needs the fix in
  // guest/kernel/patches, which Open() detects by the kernel's release name.
  bool force_splice = false;
};

class Server {
 public:
  // `ports` are the opened virtio-serial ports (non-blocking), index 0 first. `rootfs` is
  // the directory execs chroot into.
  Server(std::vector<base::UniqueFd> ports, std::string rootfs,
         ServerOptions options = ServerOptions());
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Serves until a shutdown request; returns then (the caller powers off). Returns an
  // error only when the loop itself cannot continue (epoll failure).
  Status Run();

  // Run() in pieces, for in-process callers: Open() once, then Step() serves one round of
  // the loop, waiting up to `timeout_ms` (-1: forever) for something to do.
  Status Open();
  Status Step(int timeout_ms);
  bool shutting_down() const { return shutdown_; }

 private:
  // What goes to a port, in order: encoded frames, or pipe contents to splice.
  struct OutItem {
    std::string bytes;
    size_t offset = 0;
    base::UniqueFd splice_fd;  // A dup of the pipe, so the exec may finish meanwhile.
    size_t splice_left = 0;
    size_t splice_len = 0;
    uint32_t stream = 0;
    int which = 0;
    // Bytes waiting in the connection's staging pipe (whole data frames, headers and
    // contents, moved there from exec pipes: PumpOutput), spliced to the port as one.
    size_t staged_left = 0;
  };

  // One host client on one port.
  struct Conn {
    int index = 0;
    base::UniqueFd port;
    protocol::FrameDecoder decoder;
    std::deque<OutItem> outq;
    // Where exec output becomes whole frames without a copy (PumpOutput): a frame's
    // header is written into this pipe and the exec pipe's pages are spliced in behind
    // it, so header and data reach the port in one write (one virtqueue buffer, one
    // notification of the host) instead of two. Read end [0], write end [1].
    base::UniqueFd staging[2];
    size_t queued_bytes = 0;
    bool connected = true;
    bool watching = false;
    bool out_watching = false;
    bool flush_pending = false;  // Queued by Send(); written at the end of the loop round.
    // A host answered a hello on this port and its session has not ended yet.
    bool session = false;
    // The port reported no host, but that may be the previous host's leaving, announced
    // late (see OnPortHangup): the session ends only if the port still reports no host at
    // the next reconnect tick. Output keeps being queued meanwhile.
    bool hangup_pending = false;
    // The session's hello was read while the port reported no host: its host is there,
    // the guest has not been told yet, so no hangup seen before it is told ends it.
    bool hello_while_hung_up = false;
  };

  struct Output {
    base::UniqueFd fd;
    int64_t credit = 0;
    bool eof = false;
    bool watching = false;
    uint64_t watched_tag = 0;  // The epoll tag it is watched with (it changes on attach).
    bool pollable = true;  // false for regular files (epoll cannot watch them).
    size_t splicing = 0;   // Bytes announced in a header and not yet spliced to the port.
    // The stream ended while its process still runs: a process closes its output as it
    // exits, just before its parent learns of the exit, so the close frame waits (at most
    // kCloseHoldNs) to leave with the exit event in one port write and one wakeup of the
    // host, instead of a port write of its own.
    bool close_held = false;
    // A bulk chunk just left: the pipe is not watched; the next loop round reads it
    // (ResumePaused), after kBulkPauseMs if the chunk left less than a whole frame in it,
    // so the writer fills it further and the next chunk is larger.
    bool paused = false;
    // The pipe was grown to kExecPipeSize (at its first bulk chunk: see PumpOutput).
    bool grown = false;
  };

  // What a put_file keeps while its data arrives (agent/server_files.cc):
  // the data goes to `tmp` in `dir`, renamed to `name` when complete.
  struct Transfer {
    base::UniqueFd dir;
    std::string tmp;
    std::string name;
    bool no_replace = false;  // put_file "no_replace": keep an existing `name`.
    std::string path;         // As the host named it, for messages.
    mode_t mode = 0644;
    uid_t uid = 0;
    gid_t gid = 0;
    uint64_t expected = 0;
    uint64_t received = 0;
    Status error;
  };

  // A running process, or a file being sent to or received from the host.
  struct Exec {
    Conn* conn = nullptr;
    uint32_t stream = 0;
    pid_t pid = -1;
    bool tty = false;
    bool is_file = false;     // A get_file/put_file transfer rather than a process.
    // A TCP connection to a port in the box (connect, agent/server_tunnel.cc): stdin_fd
    // and out[1].fd are the one socket (dups); no process, no stderr.
    bool tunnel = false;
    Output out[3];            // Index 1 = stdout (or the pty or the file), 2 = stderr.
    base::UniqueFd stdin_fd;  // Process stdin, or the file being written.
    std::string stdin_pending;
    bool stdin_close_requested = false;
    bool stdin_watching = false;
    int64_t stdin_unacked = 0;  // Bytes consumed not yet credited back.
    std::string start_error;
    // The box's main command (ExecRequest::main): outlives its connection ("orphaned",
    // output drained and dropped) and powers the VM off when it ends.
    bool main = false;
    bool main_optional = false;
    bool orphaned = false;
    // While orphaned: the newest output of each stream (kMainBacklog bytes at most), for
    // the next host that attaches (DoAttach).
    std::string backlog[3];
    bool exited = false;
    int wait_status = 0;
    bool finished = false;
    int exec_cgroup = -1;  // The exec cgroup its process was started in (ExecCgroupDir).
    Transfer put;  // A put_file's state (is_file set); a get_file needs only out[1].
  };

  using ExecKey = uint64_t;
  static ExecKey Key(const Conn* conn, uint32_t stream) {
    return (static_cast<uint64_t>(conn->index) << 32) | stream;
  }

  // After the round's port writes: closes what finished execs held and checks whether
  // their exec cgroups are empty again, so that none of it delays the exit events.
  void RetireFinished();

  // Connections.
  // Serves one epoll_wait's events, SIGCHLD first.
  void ServeEvents(const struct epoll_event* events, int n);
  void OnEvent(const struct epoll_event& e);
  void OnPortReadable(Conn* conn);
  // The port reports that no host is connected: the session ends at the reconnect tick
  // unless a host is back by then.
  void OnPortHangup(Conn* conn);
  // The host is gone (or broke the protocol): its session ends now.
  void DropConnection(Conn* conn);
  // Ends the connection's session: kills its execs (the main command is orphaned instead),
  // drops its transfers and the output queued for it.
  void EndSession(Conn* conn);
  // In the box, a port without a host is watched edge-triggered: the port's driver wakes
  // its waiters when a host connects or leaves, and nothing else happens on it meanwhile,
  // so an idle box with ports no host uses is not woken (a level-triggered watch would
  // report the hangup at every wait, and polling it woke the agent 50 times a second).
  // The reconnect timer fires once, a tick after a hangup, to end that session if the
  // port still reports no host. Off the box (sockets, in tests) ports are polled instead.
  void AwaitHost(Conn* conn);
  // The port woke while it had no host: takes the host in if one is there now.
  void OnPortWithoutHost(Conn* conn);
  // A host is on the port again: its data is read from here on.
  void TakeHostIn(Conn* conn);
  void ArmReconnectTimer();
  void OnReconnectTimer();
  // Held close frames (Output::close_held): the timer, and sending them.
  void HoldClose(Exec* exec, int which);
  void SendHeldCloses(Exec* exec);
  void DisarmCloseTimerIfIdle();
  void OnCloseTimer();
  void HandleFrame(Conn* conn, protocol::Frame frame);
  void HandleRequest(Conn* conn, uint32_t stream, std::string_view payload);
  Status DispatchRequest(Conn* conn, uint32_t stream, const protocol::Json& req, protocol::Json* reply);
  void Respond(Conn* conn, uint32_t stream, const Status& status, protocol::Json body = {});
  void SendExitEvent(Conn* conn, uint32_t stream, protocol::ExitEvent ev);
  void Send(Conn* conn, std::string bytes);
  void SendSplice(Conn* conn, uint32_t stream, int which, int fd, size_t len);
  // Queues one data frame of `len` bytes of `fd` (a pipe holding at least that much)
  // through the connection's staging pipe; false when the staging pipe cannot take it now
  // (nothing was queued then).
  bool SendStaged(Conn* conn, uint32_t stream, int which, int fd, size_t len);
  // Empties the staging pipe along with the queue it belongs to.
  void ResetStaging(Conn* conn);
  void FlushPort(Conn* conn);
  // Writes what this loop round queued, and what finishing splices queue in turn.
  void FlushPending();
  // The agent's policy: SCHED_BATCH (the same nice value; no preemption of the box's
  // processes on wakeup) from the start of an exec's process to the end of that loop
  // round's port write, SCHED_OTHER otherwise.
  void SetBatch(bool batch);
  void OnSplicesDone();

  // Requests.
  Status DoHello(Conn* conn, const protocol::Json& req, protocol::Json* reply);
  // attach {"target": "main"}: the connection takes over the orphaned main command.
  Status DoAttach(Conn* conn, uint32_t stream, const protocol::Json& req, protocol::Json* reply);
  // After the attach response: the backlog, then live output.
  void ReplayBacklog(Exec* exec);
  Status DoExec(Conn* conn, uint32_t stream, const protocol::Json& req, protocol::Json* reply);
  // Once the box is configured (PID 1 only): the agent drops its own capability bounding
  // set to the box's capabilities, so its children inherit it instead of each dropping
  // it again before execve (one prctl per capability). The agent keeps its permitted and
  // effective sets, and it starts no program but the box's own.
  void LimitBoundingSet();
  Status DoSignal(Conn* conn, const protocol::Json& req);
  Status DoResize(Conn* conn, const protocol::Json& req);
  Status DoGetFile(Conn* conn, uint32_t stream, const protocol::Json& req, protocol::Json* reply);
  Status DoPutFile(Conn* conn, uint32_t stream, const protocol::Json& req, protocol::Json* reply);
  Status DoStat(const protocol::Json& req, protocol::Json* reply);
  // connect {"port", "window"} (agent/server_tunnel.cc): a TCP connection to the port in
  // the box, relayed on the request's stream like an exec's stdin and stdout.
  Status DoConnect(Conn* conn, uint32_t stream, const protocol::Json& req, protocol::Json* reply);
  // A tunnel whose two directions have ended, or that the host ended (`abort`), is
  // finished: its exit event goes out and the socket is closed.
  void MaybeEndTunnel(Exec* exec, bool abort = false);
  Status DoListDir(const protocol::Json& req, protocol::Json* reply);
  Status DoMetrics(protocol::Json* reply);
  // A memory restore's new clock, entropy and identity (ApplyRefresh).
  Status DoRefresh(const protocol::Json& req);
  // freeze / thaw (agent/server_freeze.cc): the box disk's file system frozen for a
  // consistent copy, thawed on request, when the freezing host's session ends, or by a
  // guard process after the requested time even if this loop is stuck on the frozen disk.
  Status DoFreeze(Conn* conn, const protocol::Json& req, protocol::Json* reply);
  Status DoThaw();
  // Ends a freeze (and its guard); OK when nothing is frozen.
  Status ThawNow();

  // Streams.
  Exec* FindExec(Conn* conn, uint32_t stream);
  void OnStdinData(Conn* conn, uint32_t stream, std::string_view bytes);
  void OnStdinClose(Conn* conn, uint32_t stream);
  void OnCredit(Conn* conn, uint32_t stream, uint8_t fd, uint32_t bytes);
  void PumpOutput(Exec* exec, int which);
  // Ends the bulk pauses (Output::paused): each paused pipe's next chunk leaves now.
  void ResumePaused();
  void PumpFiles();
  void FlushStdin(Exec* exec);
  void FinishPut(Exec* exec);
  void ReapChildren();
  // A child waitpid() returned: an exec's process (its exec is finished when its output
  // allows), or another child of PID 1.
  void OnReaped(pid_t pid, int status);
  // The execs started this round (started_): each process ran before the agent went on
  // (DoExec); one that has ended is reaped and finished now, the pipes of those still
  // running are watched.
  void TakeInStarted();
  void MaybeFinish(Exec* exec);
  void UpdateWatch(Exec* exec, int which);
  void UpdateStdinWatch(Exec* exec);
  // Kills the connection's running execs; the main command too unless `spare_main`.
  void KillExecsOf(Conn* conn, bool spare_main = false);
  // Keeps the main command running without its connection (OnPortHangup).
  void OrphanMain(Exec* exec);
  // The main command ended (MaybeFinish): report it and power off, or carry on without one.
  void OnMainExit(const Exec& exec, int64_t exit_code);
  void Watch(int fd, uint32_t events, uint64_t tag, bool* watching);

  std::string rootfs_;
  ServerOptions options_;
  base::UniqueFd root_dir_;  // O_PATH of rootfs_, for lookups confined to it.
  base::UniqueFd dev_null_;  // /dev/null, opened once: the stdin of execs without one.
  std::vector<std::unique_ptr<Conn>> conns_;
  base::UniqueFd epoll_;
  base::UniqueFd signal_fd_;
  base::UniqueFd timer_fd_;
  bool timer_armed_ = false;
  base::UniqueFd close_timer_fd_;
  bool close_timer_armed_ = false;
  bool configured_ = false;
  protocol::BoxConfig config_;
  int64_t config_ms_ = 0;  // How long applying config_ took.
  bool bounding_set_dropped_ = false;  // LimitBoundingSet succeeded.
  // splice(2) into the port needs the sg-list fix in guest/kernel/patches; only our own
  // kernel (release "-boxlite.2" or later, see guest/kernel/boxlite.config) has it.
  bool splice_ok_ = false;
  bool shutdown_ = false;
  bool main_running_ = false;  // A main command was started and has not ended.
  // Execs whose processes were started this loop round: Step() takes in what they left
  // before flushing, then watches the pipes of those still running.
  std::vector<ExecKey> started_;
  // Execs finished this loop round (MaybeFinish), destroyed once the port write that
  // carries their exit events is done (RetireFinished).
  std::vector<std::unique_ptr<Exec>> retired_;
  // Descriptors closed at the same point: the child's ends of a started exec's pipes.
  std::vector<base::UniqueFd> close_after_write_;
  // Processes whose exit TakeInStarted() read without reaping them, reaped then too.
  std::vector<pid_t> reap_after_write_;
  bool batch_ = false;  // SetBatch(true) succeeded.
  std::map<ExecKey, std::unique_ptr<Exec>> execs_;
  std::map<pid_t, ExecKey> pid_to_exec_;
  // Splices completed inside FlushPort, handled from the loop (never re-entrantly).
  struct Spliced {
    ExecKey key;
    int which;
    size_t len;
  };
  std::vector<Spliced> spliced_;
  // Outputs paused after a bulk chunk (Output::paused), resumed by Step() (ResumePaused)
  // after kBulkPauseMs, or at its next round when `paused_now_` (one of them had a whole
  // frame left in its pipe).
  std::vector<std::pair<ExecKey, int>> paused_;
  bool paused_now_ = false;
  // While the disk is frozen: the guard process that thaws it at the deadline, and the
  // connection that froze it.
  pid_t thaw_guard_ = -1;
  Conn* frozen_by_ = nullptr;
  // The exec an attach response was just queued for: its backlog follows the response.
  std::optional<ExecKey> replay_after_response_;
};

}  // namespace boxlite::agent

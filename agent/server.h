// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's protocol server: one epoll loop on one thread serving the virtio-serial
// port. It runs execs (fork -> chroot -> setgid/setuid -> execve), pumps their stdio as
// data frames under per-stream credit, reaps every child (PID 1 adopts orphans), and
// answers control requests. A bad request gets an error response; the loop never exits
// because of what the host sent. Not thread-safe: everything runs on the loop thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "boxlite/status.h"
#include "src/base/unique_fd.h"
#include "src/protocol/frame.h"
#include "src/protocol/messages.h"

namespace boxlite::agent {

class Server {
 public:
  // `port` is the opened virtio-serial port (non-blocking). `rootfs` is the directory
  // execs chroot into.
  Server(base::UniqueFd port, std::string rootfs);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Serves until a shutdown request; returns then (the caller powers off). Returns an
  // error only when the loop itself cannot continue (epoll failure).
  Status Run();

 private:
  struct Output {
    base::UniqueFd fd;
    int64_t credit = 0;
    bool eof = false;
    bool watching = false;
    size_t splicing = 0;  // Bytes announced in a header and not yet spliced to the port.
  };
  struct Exec {
    uint32_t stream = 0;
    pid_t pid = -1;
    bool tty = false;
    Output out[3];  // Index 1 = stdout (or the pty), 2 = stderr; 0 unused.
    base::UniqueFd stdin_fd;
    std::string stdin_pending;
    bool stdin_close_requested = false;
    bool stdin_watching = false;
    int64_t stdin_unacked = 0;  // Bytes written to the process not yet credited back.
    base::UniqueFd status_fd;   // Reports an errno when execve failed.
    std::string start_error;
    bool exited = false;
    int wait_status = 0;
    bool finished = false;
  };

  void OnPortReadable();
  void OnPortHangup();
  void OnReconnectTimer();
  void HandleFrame(protocol::Frame frame);
  void HandleRequest(uint32_t stream, std::string_view payload);
  void Respond(uint32_t stream, const Status& status, protocol::Json body = {});
  Status DoHello(const protocol::Json& req, protocol::Json* reply);
  Status DoExec(uint32_t stream, const protocol::Json& req, protocol::Json* reply);
  Status DoSignal(const protocol::Json& req);
  Status DoResize(const protocol::Json& req);
  void OnStdinData(uint32_t stream, std::string_view bytes);
  void OnStdinClose(uint32_t stream);
  void OnCredit(uint32_t stream, uint8_t fd, uint32_t bytes);

  void PumpOutput(Exec* exec, int which);
  void FlushStdin(Exec* exec);
  void OnStatusPipe(Exec* exec);
  void ReapChildren();
  void MaybeFinish(Exec* exec);
  void UpdateWatch(Exec* exec, int which);
  void UpdateStdinWatch(Exec* exec);

  void Send(std::string bytes);
  // Queues `len` bytes to be moved from `fd` (a pipe) to the port with splice(2), right
  // after the bytes queued before: the data never passes through the agent's memory.
  void SendSplice(uint32_t stream, int which, int fd, size_t len);
  void FlushPort();
  bool PortBusy() const { return !outq_.empty(); }
  void Watch(int fd, uint32_t events, uint64_t tag, bool* watching);

  base::UniqueFd port_;
  std::string rootfs_;
  base::UniqueFd epoll_;
  base::UniqueFd signal_fd_;
  base::UniqueFd timer_fd_;
  protocol::FrameDecoder decoder_;
  // What goes to the port, in order: encoded frames, or pipe contents to splice.
  struct OutItem {
    std::string bytes;
    size_t offset = 0;
    base::UniqueFd splice_fd;  // A dup of the pipe, so the exec may finish meanwhile.
    size_t splice_left = 0;
    size_t splice_len = 0;
    uint32_t stream = 0;
    int which = 0;
  };
  // Splices that completed during FlushPort, handled from the loop (not re-entrantly).
  std::vector<std::pair<uint32_t, int>> spliced_;
  std::vector<size_t> spliced_len_;
  void OnSplicesDone();
  std::deque<OutItem> outq_;
  bool port_out_watching_ = false;
  bool connected_ = true;
  bool configured_ = false;
  // splice(2) into the port needs the sg-list fix in guest/kernel/patches; only our own
  // kernel ("-boxlite" release) has it.
  bool splice_ok_ = false;
  bool shutdown_ = false;
  std::map<uint32_t, std::unique_ptr<Exec>> execs_;
  std::map<pid_t, uint32_t> pid_to_stream_;
};

}  // namespace boxlite::agent

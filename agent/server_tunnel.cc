// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's tunnels (agent/server.h, docs/protocol.md "connect"): a host asks for a TCP
// connection to a port in the box and the agent relays it on the request's stream. The
// socket takes the place of an exec's pipes: data on fd 0 is written to it under the
// stdin window, what it reads goes out on fd 1 under the host's credit, `close` on fd 0
// is a half close (shutdown SHUT_WR), and any `signal` naming the stream closes it. The
// exit event (code 0) follows once both directions have ended, so a tunnel holds at
// most its two windows of bytes here, like an exec.
#include "agent/server.h"
#include "agent/server_internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

#include "src/base/macros.h"
#include "src/sys/errno_status.h"

namespace boxlite::agent {

namespace {

// A connected, non-blocking TCP socket to `address`:`port`, or the errno of the attempt.
// The target is the box itself (loopback or its own address), so connect(2) completes
// (or is refused) at once, unless a firewall in the box drops it: then it gives up after
// 2 s (EINPROGRESS from SO_SNDTIMEO).
Result<base::UniqueFd> ConnectTcp(const std::string& address, uint16_t port, int* err) {
  struct sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    *err = EINVAL;
    return Status::InvalidArgument("connect: not an IPv4 address", address);
  }
  base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    *err = errno;
    return sys::ErrnoStatus(errno, "socket");
  }
  // A firewall in the box that drops the SYN must not hold the agent's loop for long.
  struct timeval limit = {2, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof(sa));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    *err = errno;
    return sys::ErrnoStatus(errno, "connect to %s:%u", address.c_str(), port);
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return fd;
}

}  // namespace

Status Server::DoConnect(Conn* conn, uint32_t stream, const protocol::Json& req,
                         protocol::Json* reply) {
  if (!configured_) return Status::FailedPrecondition("connect before hello");
  if (!options_.machine && !options_.host_processes) {
    return Status::NotSupported("connect: this server opens no connections");
  }
  if (FindExec(conn, stream) != nullptr) {
    return Status::AlreadyExists("stream in use", std::to_string(stream));
  }
  int64_t port = 0;
  int64_t window = protocol::kDefaultWindow;
  BOXLITE_RETURN_IF_ERROR(protocol::GetInt(req, "port", &port, true));
  BOXLITE_RETURN_IF_ERROR(protocol::GetInt(req, "window", &window));
  if (port < 1 || port > 65535) {
    return Status::InvalidArgument("connect: port out of range", std::to_string(port));
  }
  if (window < 0 || window > INT32_MAX) return Status::InvalidArgument("connect: window out of range");

  // Loopback first: it reaches servers bound to 0.0.0.0 or 127.0.0.1. Then the box's
  // own address (BoxLite 0.9's target), for a server bound to eth0 only.
  std::vector<std::string> targets = {"127.0.0.1"};
  const std::string& cidr = config_.network.address;
  if (!cidr.empty()) targets.push_back(cidr.substr(0, cidr.find('/')));
  base::UniqueFd sock;
  Status last;
  int err = 0;
  for (const auto& address : targets) {
    auto fd = ConnectTcp(address, static_cast<uint16_t>(port), &err);
    if (fd.ok()) {
      sock = std::move(*fd);
      break;
    }
    last = fd.error();
    if (err != ECONNREFUSED) break;
  }
  if (!sock) {
    if (err == ECONNREFUSED) {
      return Status::NotFound("nothing listens on TCP port " + std::to_string(port) + " in the box");
    }
    return last;
  }
  int dup_fd = ::fcntl(sock.get(), F_DUPFD_CLOEXEC, 3);
  if (dup_fd < 0) return sys::ErrnoStatus(errno, "dup socket");

  auto exec = std::make_unique<Exec>();
  exec->conn = conn;
  exec->stream = stream;
  exec->tunnel = true;
  exec->stdin_fd = std::move(sock);
  exec->out[1].fd.reset(dup_fd);
  exec->out[1].credit = window;
  exec->out[2].eof = true;  // A socket has one output.
  Exec* raw = exec.get();
  execs_[Key(conn, stream)] = std::move(exec);
  UpdateWatch(raw, 1);
  protocol::ExecResponse resp;
  resp.stdin_window = kStdinWindow;
  *reply = protocol::ToJson(resp);
  return Status::OK();
}

void Server::MaybeEndTunnel(Exec* exec, bool abort) {
  if (exec->exited) return;
  if (abort) {
    // The host closed the tunnel: nothing more is read or written.
    exec->out[1].eof = true;
    UpdateWatch(exec, 1);
    if (exec->stdin_watching) Watch(exec->stdin_fd.get(), 0, 0, &exec->stdin_watching);
    exec->stdin_pending.clear();
    exec->stdin_fd.reset();
  }
  if (!exec->out[1].eof || exec->stdin_fd) return;
  // Both ways are done; the caller's MaybeFinish sends the exit event and closes.
  exec->exited = true;
  exec->wait_status = 0;
}

}  // namespace boxlite::agent

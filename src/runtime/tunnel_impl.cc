// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/tunnel_impl.h"

#include <algorithm>

#include "src/base/macros.h"

namespace boxlite::runtime {

TunnelImpl::TunnelImpl(std::shared_ptr<ExecImpl> stream, int port)
    : stream_(std::move(stream)), port_(port) {}

TunnelImpl::~TunnelImpl() { (void)Close(); }

Status TunnelImpl::Closed() const {
  return Status::FailedPrecondition("the tunnel to port " + std::to_string(port_) + " is closed",
                                    "open a new tunnel with connect()");
}

Result<std::string> TunnelImpl::Read(size_t max_bytes, std::optional<std::chrono::milliseconds> timeout) {
  if (max_bytes == 0) return Status::InvalidArgument("read: max_bytes must be at least 1");
  std::lock_guard<std::mutex> lock(read_mu_);
  if (closed_) return Closed();
  if (pending_.empty() && !eof_) {
    auto chunk = stream_->Read(1, timeout);
    if (!chunk.ok()) {
      if (closed_) return Closed();
      return chunk.error().Wrap("read from the tunnel to port " + std::to_string(port_));
    }
    if (chunk->empty()) eof_ = true;
    pending_ = std::move(*chunk);
  }
  size_t n = std::min(max_bytes, pending_.size());
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

Status TunnelImpl::Write(std::string_view bytes) {
  if (closed_) return Closed();
  if (write_shut_) {
    return Status::FailedPrecondition("write after shutdown_write on the tunnel to port " +
                                      std::to_string(port_), "open a new tunnel to send more");
  }
  Status s = stream_->WriteStdin(bytes);
  if (s.ok()) return s;
  // The agent ended the stream (the guest's side reset, or Close() raced): the connection
  // is over, whatever ExecImpl calls it.
  if (s.IsFailedPrecondition() || closed_) return Closed();
  return s.Wrap("write to the tunnel to port " + std::to_string(port_));
}

Status TunnelImpl::ShutdownWrite() {
  if (closed_) return Closed();
  if (write_shut_.exchange(true)) return Status::OK();
  return stream_->CloseStdin();
}

Status TunnelImpl::Close() {
  if (closed_.exchange(true)) return Status::OK();
  // Any signal on a tunnel's stream closes its socket in the guest (docs/protocol.md).
  Status s = stream_->Kill();
  // A box that is gone has closed it already.
  return s.IsUnavailable() ? Status::OK() : s;
}

Result<std::shared_ptr<TunnelImpl>> OpenTunnelOn(const std::shared_ptr<AgentChannel>& channel, int port,
                                                 ExecImpl::Explainer explain) {
  if (port < 1 || port > 65535) {
    return Status::InvalidArgument("tunnel: port " + std::to_string(port) + " is out of range",
                                   "give a TCP port from 1 to 65535");
  }
  std::shared_ptr<StreamSink> sink;
  uint32_t stream = 0;
  protocol::Json req = {{"port", port}, {"window", protocol::kDefaultWindow}};
  auto reply = channel->Call("connect", std::move(req), Clock::now() + std::chrono::seconds(30), &sink, &stream);
  if (!reply.ok()) {
    if (reply.error().IsUnavailable()) return explain ? explain(reply.error()) : reply.error();
    if (reply.error().IsNotSupported()) {
      return Status::NotSupported("the box's agent has no tunnels", "restart the box with this BoxLite's guest");
    }
    return reply.error().Wrap("tunnel to port " + std::to_string(port));
  }
  protocol::ExecResponse resp;
  Status parsed = protocol::FromJson(*reply, &resp);
  if (!parsed.ok()) {
    channel->Release(stream);
    return Status::ProtocolError(parsed.message());
  }
  auto exec = std::make_shared<ExecImpl>(channel, stream, sink, 0, resp.stdin_window, false, std::move(explain));
  return std::make_shared<TunnelImpl>(std::move(exec), port);
}

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// TunnelImpl implements boxlite::Connection on an agent channel stream opened with a
// "connect" request (docs/protocol.md). The stream works like an exec's: the guest's
// bytes arrive on fd 1 under the credit this side returns as the caller reads, the
// caller's bytes go out on fd 0 under the agent's stdin window, close on fd 0 is the
// half close, and a signal request ends the tunnel. So it reuses ExecImpl for the
// stream and adds the byte-count reads and the tunnel's own errors.
// Thread-safety: as boxlite::Connection.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "boxlite/tunnel.h"
#include "src/runtime/channel.h"
#include "src/runtime/exec_impl.h"

namespace boxlite::runtime {

class TunnelImpl final : public Connection {
 public:
  TunnelImpl(std::shared_ptr<ExecImpl> stream, int port);
  ~TunnelImpl() override;

  Result<std::string> Read(size_t max_bytes, std::optional<std::chrono::milliseconds> timeout) override;
  Status Write(std::string_view bytes) override;
  Status ShutdownWrite() override;
  Status Close() override;

 private:
  Status Closed() const;

  std::shared_ptr<ExecImpl> stream_;
  int port_;
  std::mutex read_mu_;
  std::string pending_;  // The rest of the last chunk (at most one frame). Guarded by read_mu_.
  bool eof_ = false;     // Guarded by read_mu_.
  std::atomic<bool> write_shut_{false};
  std::atomic<bool> closed_{false};
};

// Sends a "connect" request for TCP `port` in the box on `channel` and returns the
// connection on its stream. Nothing listening there is NotFound; a lost channel goes
// through `explain`.
Result<std::shared_ptr<TunnelImpl>> OpenTunnelOn(const std::shared_ptr<AgentChannel>& channel, int port,
                                                 ExecImpl::Explainer explain);

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite serve` (docs/server.md): BoxLite 0.9's REST + WebSocket API over one local
// Runtime, on Boost.Beast. A few I/O threads run every connection asynchronously; the
// runtime's blocking calls run on a worker pool, so a slow box never stalls other clients.
// Bounded everywhere: connections, header time, JSON bodies, uploads (streamed to disk),
// and each WebSocket's queued output.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/runtime.h"
#include "src/server/exec_session.h"
#include "src/server/handlers.h"

namespace boxlite::server {

// Whether `host` (an IP address or "localhost") is a loopback address; false for a name
// that is neither.
bool IsLoopbackHost(const std::string& host);

// Checks ServerOptions before binding: a non-loopback host needs an API key.
Status ValidateServerOptions(const ServerOptions& options);

class Server {
 public:
  // Binds and starts serving. The runtime is shared with the caller.
  static Result<std::unique_ptr<Server>> Start(std::shared_ptr<Runtime> runtime,
                                               const ServerOptions& options,
                                               const ReaperConfig& reaper);
  ~Server();

  // The bound address ("127.0.0.1") and port (the real one when 0 was asked).
  const std::string& host() const;
  int port() const;

  // Stops accepting, closes every connection, kills the execs it started, then stops
  // the runtime's boxes that are not detached (Runtime::Shutdown(timeout_seconds)).
  // Idempotent.
  void Shutdown(int timeout_seconds);

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxlite::server

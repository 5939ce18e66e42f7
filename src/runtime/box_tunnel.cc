// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Box::Tunnel: a TCP connection to a port in the running box over its agent channel
// (src/runtime/tunnel_impl.h, docs/protocol.md "connect").
#include "src/runtime/box_impl.h"
#include "src/runtime/tunnel_impl.h"

#include "src/base/macros.h"

namespace boxlite::runtime {

Result<std::shared_ptr<Connection>> BoxImpl::Tunnel(int port) {
  if (port < 1 || port > 65535) {
    return Status::InvalidArgument("tunnel: port " + std::to_string(port) + " is out of range",
                                   "give a TCP port from 1 to 65535");
  }
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  BOXLITE_ASSIGN_OR_RETURN(auto tunnel, OpenTunnelOn(channel, port, DeathExplainer()));
  return std::shared_ptr<Connection>(std::move(tunnel));
}

}  // namespace boxlite::runtime

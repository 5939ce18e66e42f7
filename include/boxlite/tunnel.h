// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Connection is one TCP connection into a box, opened by Box::Tunnel(port): a byte
// stream to a port in the guest (BoxLite 0.9's box.network.tunnel(port).connect()). It
// rides the box's agent channel, not its network, so it works for a box without network
// too (docs/protocol.md, "connect"). Both directions are flow-controlled: bytes not read
// here hold the guest's sender back, and a write blocks while the guest has not taken
// the bytes before it. Nothing on the host listens for it.
//
// Thread-safety: all methods may be called from any thread; one reader and one writer
// may work at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite {

class Connection {
 public:
  virtual ~Connection() = default;

  // Up to `max_bytes` (at least 1) received from the guest; an empty string once the
  // guest's side has closed (its writes are over). With a timeout that expires,
  // DeadlineExceeded. FailedPrecondition after Close().
  virtual Result<std::string> Read(size_t max_bytes,
                                   std::optional<std::chrono::milliseconds> timeout = std::nullopt) = 0;
  // Sends all of `bytes`. FailedPrecondition after ShutdownWrite() or Close(), or once
  // the connection has ended.
  virtual Status Write(std::string_view bytes) = 0;
  // Half close: the guest reads end of stream; reading here goes on.
  virtual Status ShutdownWrite() = 0;
  // Closes both directions now; later calls do nothing. The destructor closes too.
  virtual Status Close() = 0;
};

}  // namespace boxlite

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// QEMU's `-netdev stream` / `-netdev socket` framing: every Ethernet frame is preceded by
// its length as a 4-byte big-endian integer. FrameReader splits a byte stream into frames
// (a frame may arrive across any number of reads); AppendFramed does the reverse.
// Thread-safety: a FrameReader is used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "boxlite/result.h"

namespace boxlite::net {

// QEMU's NET_BUFSIZE: no backend sends or accepts a larger frame.
constexpr size_t kMaxStreamFrame = 4096 + 65536;

class FrameReader {
 public:
  // Space for at least `min` more bytes; write into it, then Commit() what was written.
  std::span<uint8_t> WritableTail(size_t min);
  void Commit(size_t n);

  // The next complete frame, nullopt when more bytes are needed, or a ProtocolError for a
  // zero or oversized length (the stream cannot be resynchronised after that). The span
  // is valid until the next call to any method.
  Result<std::optional<std::span<const uint8_t>>> Next();

 private:
  std::vector<uint8_t> buf_;
  size_t start_ = 0;  // First unconsumed byte.
  size_t end_ = 0;    // One past the last committed byte.
};

// Appends `frame` with its length prefix to `out`.
void AppendFramed(std::span<const uint8_t> frame, std::string* out);

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/stream_framing.h"

#include <cstring>

#include "src/base/strings.h"

namespace boxlite::net {

std::span<uint8_t> FrameReader::WritableTail(size_t min) {
  if (buf_.size() - end_ < min) {
    // Move the unconsumed bytes to the front before growing.
    if (start_ > 0) {
      std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    if (buf_.size() - end_ < min) buf_.resize(end_ + min);
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void FrameReader::Commit(size_t n) { end_ += n; }

Result<std::optional<std::span<const uint8_t>>> FrameReader::Next() {
  if (end_ - start_ < 4) return std::optional<std::span<const uint8_t>>();
  const uint8_t* p = buf_.data() + start_;
  uint32_t len = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (len == 0 || len > kMaxStreamFrame) {
    return Status::ProtocolError(base::StrFormat("bad frame length %u from QEMU", len));
  }
  if (end_ - start_ < 4 + size_t{len}) return std::optional<std::span<const uint8_t>>();
  std::span<const uint8_t> frame(p + 4, len);
  start_ += 4 + size_t{len};
  if (start_ == end_) start_ = end_ = 0;
  return std::optional<std::span<const uint8_t>>(frame);
}

void AppendFramed(std::span<const uint8_t> frame, std::string* out) {
  uint32_t len = static_cast<uint32_t>(frame.size());
  char header[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                    static_cast<char>(len >> 8), static_cast<char>(len)};
  out->append(header, 4);
  out->append(reinterpret_cast<const char*>(frame.data()), frame.size());
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/protocol/frame.h"

#include <algorithm>
#include <cstring>

#include "src/base/macros.h"
#include "src/base/strings.h"

namespace boxlite::protocol {
namespace {

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
               static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) |
         (static_cast<uint32_t>(u[2]) << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

void PutHeader(std::string* out, FrameKind kind, uint32_t stream, size_t payload_len) {
  BOXLITE_CHECK(payload_len <= kMaxPayload);
  PutU32(out, static_cast<uint32_t>(payload_len + 5));
  out->push_back(static_cast<char>(kind));
  PutU32(out, stream);
}

}  // namespace

std::string_view FrameKindName(FrameKind kind) {
  switch (kind) {
    case FrameKind::kRequest:
      return "request";
    case FrameKind::kResponse:
      return "response";
    case FrameKind::kData:
      return "data";
    case FrameKind::kClose:
      return "close";
    case FrameKind::kCredit:
      return "credit";
    case FrameKind::kEvent:
      return "event";
  }
  return "unknown";
}

void AppendFrame(std::string* out, FrameKind kind, uint32_t stream, std::string_view payload) {
  PutHeader(out, kind, stream, payload.size());
  out->append(payload);
}

void AppendDataHeader(std::string* out, uint32_t stream, uint8_t fd, size_t len) {
  PutHeader(out, FrameKind::kData, stream, len + 1);
  out->push_back(static_cast<char>(fd));
}

void AppendData(std::string* out, uint32_t stream, uint8_t fd, std::string_view bytes) {
  AppendDataHeader(out, stream, fd, bytes.size());
  out->append(bytes);
}

void AppendClose(std::string* out, uint32_t stream, uint8_t fd) {
  PutHeader(out, FrameKind::kClose, stream, 1);
  out->push_back(static_cast<char>(fd));
}

void AppendCredit(std::string* out, uint32_t stream, uint8_t fd, uint32_t bytes) {
  PutHeader(out, FrameKind::kCredit, stream, 5);
  out->push_back(static_cast<char>(fd));
  PutU32(out, bytes);
}

Result<DataPayload> ParseData(std::string_view payload) {
  if (payload.empty()) return Status::ProtocolError("data frame without an fd byte");
  return DataPayload{static_cast<uint8_t>(payload[0]), payload.substr(1)};
}

Result<uint8_t> ParseClose(std::string_view payload) {
  if (payload.size() != 1) {
    return Status::ProtocolError(
        base::StrFormat("close frame payload is %zu bytes, want 1", payload.size()));
  }
  return static_cast<uint8_t>(payload[0]);
}

Result<CreditPayload> ParseCredit(std::string_view payload) {
  if (payload.size() != 5) {
    return Status::ProtocolError(
        base::StrFormat("credit frame payload is %zu bytes, want 5", payload.size()));
  }
  return CreditPayload{static_cast<uint8_t>(payload[0]), GetU32(payload.data() + 1)};
}

void FrameDecoder::Feed(std::string_view bytes) {
  std::memcpy(Prepare(bytes.size()), bytes.data(), bytes.size());
  Commit(bytes.size());
}

char* FrameDecoder::Prepare(size_t n) {
  if (end_ + n > cap_) {
    size_t live = end_ - begin_;
    if (live + n <= cap_ && begin_ > 0) {
      std::memmove(buf_.get(), buf_.get() + begin_, live);
    } else {
      size_t cap = std::max(cap_ * 2, live + n);
      std::unique_ptr<char[]> grown(new char[cap]);
      if (live) std::memcpy(grown.get(), buf_.get() + begin_, live);
      buf_ = std::move(grown);
      cap_ = cap;
    }
    begin_ = 0;
    end_ = live;
  }
  prepared_ = n;
  return buf_.get() + end_;
}

void FrameDecoder::Commit(size_t n) {
  BOXLITE_CHECK(n <= prepared_);
  end_ += n;
  prepared_ = 0;
}

Result<std::optional<Frame>> FrameDecoder::Next() {
  if (failed_) return *failed_;
  size_t avail = end_ - begin_;
  if (avail < kLengthSize) return std::optional<Frame>();
  const char* p = buf_.get() + begin_;
  uint32_t length = GetU32(p);
  if (length < 5 || length > kMaxFrameLength) {
    failed_ = Status::ProtocolError(
        base::StrFormat("frame length %u outside [5, %u]", length, kMaxFrameLength));
    return *failed_;
  }
  if (avail >= kHeaderSize) {
    auto kind = static_cast<uint8_t>(p[4]);
    if (kind == 0 || kind > kMaxFrameKind) {
      failed_ = Status::ProtocolError(base::StrFormat("unknown frame kind %u", kind));
      return *failed_;
    }
  }
  if (avail < kLengthSize + length) return std::optional<Frame>();
  Frame frame;
  frame.kind = static_cast<FrameKind>(p[4]);
  frame.stream = GetU32(p + 5);
  frame.payload.assign(p + kHeaderSize, length - 5);
  begin_ += kLengthSize + length;
  if (begin_ == end_) begin_ = end_ = 0;
  return std::optional<Frame>(std::move(frame));
}

}  // namespace boxlite::protocol

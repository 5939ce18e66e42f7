// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// See docs/protocol.md for the full format.
//
// The frame codec of the host<->guest channel, shared byte for byte by the runtime and
// the guest agent. It does no I/O: it maps bytes to frames and back, so it can be fuzzed.
// Thread-safety: a FrameDecoder belongs to one reader; the free functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "boxlite/result.h"

namespace boxlite::protocol {

// Frame: u32 length | u8 kind | u32 stream | payload, little-endian. `length` counts
// kind + stream + payload.
constexpr size_t kLengthSize = 4;
constexpr size_t kHeaderSize = 9;
constexpr uint32_t kMaxFrameLength = 1u << 20;
constexpr size_t kMaxPayload = kMaxFrameLength - 5;

enum class FrameKind : uint8_t {
  kRequest = 1,   // JSON request; the stream id names the request (and an exec).
  kResponse = 2,  // JSON response to the request with the same stream id.
  kData = 3,      // u8 fd | bytes: stdin (0), stdout (1), stderr (2) or file content (0/1).
  kClose = 4,     // u8 fd: no more data on that fd of the stream.
  kCredit = 5,    // u8 fd | u32 bytes: the receiver may accept that many more bytes.
  kEvent = 6,     // JSON event on a stream (e.g. an exec's exit) or on stream 0.
};
constexpr uint8_t kMaxFrameKind = 6;

std::string_view FrameKindName(FrameKind kind);

struct Frame {
  FrameKind kind = FrameKind::kRequest;
  uint32_t stream = 0;
  std::string payload;
};

// File descriptors named in data, close and credit frames.
constexpr uint8_t kFdStdin = 0;
constexpr uint8_t kFdStdout = 1;
constexpr uint8_t kFdStderr = 2;

// Appends one encoded frame to `out`. The payload must be at most kMaxPayload bytes.
void AppendFrame(std::string* out, FrameKind kind, uint32_t stream, std::string_view payload);
// Appends the header of a data frame whose `len` content bytes the caller appends (or
// sends with writev) right after: avoids copying bulk data.
void AppendDataHeader(std::string* out, uint32_t stream, uint8_t fd, size_t len);
void AppendData(std::string* out, uint32_t stream, uint8_t fd, std::string_view bytes);
void AppendClose(std::string* out, uint32_t stream, uint8_t fd);
void AppendCredit(std::string* out, uint32_t stream, uint8_t fd, uint32_t bytes);
// The largest content a data frame can carry (payload minus the fd byte).
constexpr size_t kMaxDataChunk = kMaxPayload - 1;

// Parsed payloads of the small binary kinds. ProtocolError on a malformed payload.
struct DataPayload {
  uint8_t fd;
  std::string_view bytes;  // Points into the frame's payload.
};
Result<DataPayload> ParseData(std::string_view payload);
Result<uint8_t> ParseClose(std::string_view payload);
struct CreditPayload {
  uint8_t fd;
  uint32_t bytes;
};
Result<CreditPayload> ParseCredit(std::string_view payload);

// Reassembles frames from a byte stream that arrives in arbitrary pieces.
class FrameDecoder {
 public:
  // Appends received bytes.
  void Feed(std::string_view bytes);
  // Returns space for up to `n` bytes to read(2) into directly; call Commit with the
  // count actually read. Cheaper than Feed for the hot path.
  char* Prepare(size_t n);
  void Commit(size_t n);

  // The next complete frame, nullopt when more bytes are needed, or ProtocolError for a
  // bad length or an unknown kind. After an error the decoder stays failed: the peer is
  // no longer trustworthy and the connection must be dropped.
  Result<std::optional<Frame>> Next();

  size_t buffered() const { return end_ - begin_; }

 private:
  // Bytes [begin_, end_) of buf_ are received and not yet decoded. Raw storage: reading
  // into it must not pay for zero-filling.
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t prepared_ = 0;
  std::optional<Status> failed_;
};

}  // namespace boxlite::protocol

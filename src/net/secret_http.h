// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The plaintext side of secret substitution (docs/networking.md, "Secrets"): HTTP/1.1
// requests from the guest, parsed with http-parser, are written out again with every
// placeholder replaced by its secret's value in the request target (path and query),
// the header values and the body. Responses are not touched (they do not pass here).
//
// Bodies are streamed through a bounded window: a placeholder split across reads (or
// chunks) is still replaced. Because a replacement changes the body's length:
// - a chunked body is decoded and written out chunked again;
// - a Content-Length body of at most kMaxBufferedBody bytes is held until complete and
//   sent with its new Content-Length, unless the request says `Expect: 100-continue`
//   (the client waits for the server before sending it);
// - a larger body, or one behind `Expect: 100-continue`, is sent chunked instead
//   (Content-Length is dropped; HTTP/1.1 servers must accept chunked requests). An
//   HTTP/1.0 request cannot be chunked: over the limit it is refused.
// After a request that upgrades the connection (WebSocket, CONNECT), the bytes that
// follow pass unchanged. Request trailers are dropped.
//
// Nothing here logs; errors name the HTTP problem, never request contents.
// Thread-safety: one thread per object.
#pragma once

#include <http_parser.h>

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "boxlite/status.h"

namespace boxlite::net {

// One placeholder and the value that replaces it.
struct Replacement {
  std::string placeholder;  // Non-empty.
  std::string value;
};

// Replaces placeholders in a byte stream. Push returns what can be written now; it
// keeps back at most (longest placeholder - 1) bytes that may begin a placeholder,
// which Finish releases.
class StreamReplacer {
 public:
  explicit StreamReplacer(const std::vector<Replacement>* replacements);
  void Push(std::string_view in, std::string* out);
  void Finish(std::string* out);

  // Every placeholder in `text` replaced (the first listed placeholder wins where two
  // start at the same place; none overlaps another by construction).
  static std::string ReplaceAll(std::string_view text, const std::vector<Replacement>& r);

 private:
  const std::vector<Replacement>* replacements_;
  size_t keep_ = 0;
  std::string pending_;
};

class RequestRewriter {
 public:
  explicit RequestRewriter(std::vector<Replacement> replacements);
  RequestRewriter(const RequestRewriter&) = delete;
  RequestRewriter& operator=(const RequestRewriter&) = delete;

  // Parses `in` (the guest's plaintext, any split) and appends the rewritten bytes to
  // `out`. An error (malformed request, head over kMaxHead, HTTP/1.0 body over the
  // limit) ends the connection; nothing of the bad request has been written.
  Status Feed(std::string_view in, std::string* out);

  // True after an upgrade: every later byte is passed unchanged.
  bool upgraded() const { return upgraded_; }
  // Bytes buffered for the request in progress (a held body, the head).
  size_t buffered() const;

  static constexpr size_t kMaxHead = 64 << 10;
  static constexpr size_t kMaxBufferedBody = 1 << 20;

 private:
  enum class BodyMode { kNone, kBuffer, kChunked };
  static int OnMessageBegin(http_parser* p);
  static int OnUrl(http_parser* p, const char* at, size_t n);
  static int OnHeaderField(http_parser* p, const char* at, size_t n);
  static int OnHeaderValue(http_parser* p, const char* at, size_t n);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t n);
  static int OnMessageComplete(http_parser* p);
  int HeadersComplete();
  void WriteChunk(std::string_view data);

  std::vector<Replacement> replacements_;
  http_parser parser_;
  http_parser_settings settings_;
  StreamReplacer body_;
  std::string* out_ = nullptr;
  std::string url_;
  std::vector<std::pair<std::string, std::string>> headers_;
  size_t head_bytes_ = 0;
  bool in_value_ = false;
  bool head_done_ = false;
  BodyMode mode_ = BodyMode::kNone;
  std::string held_body_;
  std::string head_out_;  // The rewritten head while the body is held.
  std::string error_;
  bool upgraded_ = false;
};

}  // namespace boxlite::net

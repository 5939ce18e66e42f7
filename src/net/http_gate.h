// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The Host check on every request of a plain HTTP/1.x connection (docs/networking.md,
// "Egress allow-list"). The flow interceptor checks the first request's Host before it
// connects; a kept-alive connection can then carry more requests, and each of them may
// name another site served from the same address. HttpRequestGate sits on the guest ->
// server direction of such a flow and lets a request's bytes through only once its head
// was read whole and its Host allowed:
// - a request head (request line and headers) is held until complete, at most kMaxHead
//   bytes, and read by SniffHttpHost (flow_sniff.h: one Host, CRLF line ends, an
//   absolute-form target that agrees), then by http-parser for the framing of its body;
// - the body is passed on as it arrives and skipped by its framing (Content-Length or
//   chunked, as http-parser reads it); the next request's head follows it, pipelined or
//   not; empty lines between requests are passed on (servers ignore them);
// - a head that does not parse, is over the bound, names a host `allowed` refuses, or
//   has ambiguous framing (Content-Length with chunked, two Content-Lengths) makes Feed
//   return false: the caller resets the flow, and none of that request reached the
//   server;
// - a request that upgrades the connection (WebSocket, CONNECT) opens it only once the
//   server agreed: the gate also reads the server's responses (FromServer; http-parser,
//   HEAD and 1xx answers included) and holds the guest's bytes after such a request
//   (at most kMaxHead) until that request's response. A 101 (a 2xx to CONNECT) makes
//   the rest of the connection opaque, no longer HTTP and unchecked; any other answer
//   puts the held bytes back under the check. A server whose responses do not parse
//   keeps the Host check on requests, but can no longer have a connection upgraded.
// The bytes come from the guest and are hostile: nothing here assumes UTF-8 or trusts a
// length it has not bounded. Nothing is logged.
// Thread-safety: one thread per object.
#pragma once

#include <http_parser.h>

#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "src/net/flow_sniff.h"

namespace boxlite::net {

class HttpRequestGate {
 public:
  // Whether a request may name `name` (normalized; empty when the head names none).
  using AllowFn = std::function<bool(std::string_view name)>;

  explicit HttpRequestGate(AllowFn allowed);
  HttpRequestGate(const HttpRequestGate&) = delete;
  HttpRequestGate& operator=(const HttpRequestGate&) = delete;

  // Takes the guest's next bytes (any split) and appends to `out` those that may go to
  // the server now. False: refuse the flow (and every later call returns false).
  bool Feed(std::string_view in, std::string* out);

  // The server's bytes, as they are passed to the guest (any split). False: refuse the
  // flow. Afterwards call Feed with no bytes: an answered upgrade may have released
  // held bytes (or put them back under the check).
  bool FromServer(std::string_view in);

  // Requests whose head was allowed so far.
  size_t requests() const { return requests_; }
  bool opaque() const { return state_ == State::kOpaque; }

  static constexpr size_t kMaxHead = kMaxHttpHead;

 private:
  enum class State { kHead, kBody, kAwaitUpgrade, kOpaque };
  // A request sent and not answered yet.
  struct Sent {
    bool head = false;     // HEAD: its response has no body whatever it says.
    bool upgrade = false;  // Upgrade (101 opens) or CONNECT (2xx opens).
    bool connect = false;
  };
  static int OnHeadersComplete(http_parser* p);
  static int OnMessageComplete(http_parser* p);
  static int OnResponseHeaders(http_parser* p);
  bool Process(size_t* at, std::string* out);
  bool StartRequest(std::string_view head, std::string* out);
  void EndRequest();

  AllowFn allowed_;
  http_parser parser_;
  http_parser_settings settings_;
  State state_ = State::kHead;
  std::string buf_;  // Received, not yet passed on (a head in progress).
  size_t scanned_ = 0;  // Bytes of that head already searched for its end.
  bool head_done_ = false;
  bool message_done_ = false;
  bool failed_ = false;
  size_t requests_ = 0;
  // The server's side.
  http_parser rparser_;
  http_parser_settings rsettings_;
  std::deque<Sent> sent_;  // At most a bounded number (kMaxPipelined).
  bool responses_broken_ = false;
  bool responses_done_ = false;  // Upgraded: the server's bytes are no longer read.

 public:
  static constexpr size_t kMaxPipelined = 1024;
};

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Secret substitution for HTTP/2 (docs/networking.md, "Secrets"). When the guest and the
// real server both chose h2 by ALPN (secret_tls.h negotiates the server first), the
// plaintext of both TLS connections passes through an H2Bridge: two nghttp2 sessions, a
// server towards the guest and a client towards the server, with every guest stream
// opened as a stream to the server.
// - Request header values (pseudo-headers included: :path carries the query) have every
//   placeholder replaced; `content-length` is dropped (a replacement changes the body's
//   length, and HTTP/2 frames the body by END_STREAM). Request DATA is streamed through a
//   StreamReplacer per stream (a placeholder split across frames is still replaced).
// - Responses, informational responses and trailers (both ways) pass unchanged.
// - RST_STREAM is passed to the peer stream; server push is disabled.
// - Flow control holds: a side's window is reopened (nghttp2_session_consume) only as
//   its bytes are sent on, so at most about kMaxBuffered bytes wait per stream.
// Nothing is logged; input is hostile and nghttp2 validates the framing of both sides
// (a protocol error ends the connection with GOAWAY).
// The bridge does no I/O: its owner feeds it each side's plaintext and writes what it
// appends to the output strings. Thread-safety: one thread per object.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/status.h"
#include "src/net/secret_http.h"

namespace boxlite::net {

class H2Bridge {
 public:
  explicit H2Bridge(std::vector<Replacement> replacements);
  ~H2Bridge();
  H2Bridge(const H2Bridge&) = delete;
  H2Bridge& operator=(const H2Bridge&) = delete;

  // Sends both sides' connection prefaces (SETTINGS); call once first.
  Status Start(std::string* to_guest, std::string* to_upstream);
  // A side's plaintext. An error ends the flow (nghttp2 has queued GOAWAY, sent here).
  Status FromGuest(std::string_view in, std::string* to_guest, std::string* to_upstream);
  Status FromUpstream(std::string_view in, std::string* to_guest, std::string* to_upstream);
  // Neither session has anything more to read or write: the connection is over.
  bool done() const;

  static constexpr size_t kMaxBuffered = 256 << 10;

  struct Half;
  struct Stream;

 private:
  Status Flush(std::string* to_guest, std::string* to_upstream);

  std::vector<Replacement> replacements_;
  nghttp2_session* guest_ = nullptr;     // Server session: the guest is its client.
  nghttp2_session* upstream_ = nullptr;  // Client session towards the real server.
  std::map<int32_t, std::unique_ptr<Stream>> streams_;  // By the guest's stream id.

  friend struct H2Callbacks;
};

}  // namespace boxlite::net

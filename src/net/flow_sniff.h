// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Reading the name a guest's TCP flow is for from its first bytes, for the egress
// allow-list's Host/SNI check (docs/networking.md): the server_name of a TLS ClientHello
// (port 443) and the Host of an HTTP/1.x request head (port 80). The bytes come from the
// guest and are hostile: every length is checked, the parsers look at no more than
// kMaxTlsHello / kMaxHttpHead bytes, and a flow whose head does not parse is refused by
// the caller. A ClientHello split over several TLS records or TCP segments is read whole.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace boxlite::net {

enum class SniffState {
  kNeedMore,  // Not complete yet: read more bytes and call again with all of them.
  kDone,      // `name` holds the name (empty: the head names none, e.g. no SNI).
  kInvalid,   // Not a ClientHello / HTTP request head, or over the bound.
};

struct Sniffed {
  SniffState state = SniffState::kNeedMore;
  std::string name;  // Lower case, no trailing dot, port removed; may be an IP literal.
};

inline constexpr size_t kMaxTlsHello = 16 * 1024 + 5 * 4;  // Records' headers included.
inline constexpr size_t kMaxHttpHead = 16 * 1024;

// Whether `head` starts like a TLS handshake record (so port 80 may carry TLS too).
bool LooksLikeTls(std::span<const uint8_t> head);

Sniffed SniffTlsServerName(std::span<const uint8_t> head);
Sniffed SniffHttpHost(std::span<const uint8_t> head);

}  // namespace boxlite::net

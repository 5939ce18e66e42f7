// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Where a remote runtime's requests go: the server's URL taken apart (scheme, host, port,
// base path) and the request targets of its routes (docs/remote.md, "URLs"). Values only.
#pragma once

#include <string>
#include <string_view>

#include "boxlite/result.h"

namespace boxlite::remote {

struct Endpoint {
  bool tls = false;        // https.
  std::string host;        // A name or an address (IPv6 without brackets).
  std::string port;        // Always set: the URL's, else 80 or 443.
  std::string base_path;   // The URL's path without a trailing '/': "" or "/api".
  // The Host header: host[:port] with the port only when it is not the scheme's default.
  std::string HostHeader() const;
  // "http://127.0.0.1:8100/api", for messages.
  std::string ToString() const;
};

// Parses an http:// or https:// URL (no user info, query or fragment). InvalidArgument
// saying what is wrong otherwise.
Result<Endpoint> ParseEndpoint(std::string_view url);

// Checks and normalizes a path prefix: leading and trailing '/' dropped; the segments may
// hold [A-Za-z0-9._~-] only (no "." or ".." segments). Empty stays empty.
Result<std::string> NormalizePathPrefix(std::string_view prefix);

// The request target of a route: {base}/v1/{prefix}{route} when `prefix` is non-empty,
// else {base}/v1{route}. `route` starts with '/'. Routes that never take a prefix
// (/me, /config) are built with an empty one.
std::string RouteTarget(const Endpoint& endpoint, std::string_view prefix, std::string_view route);

// Percent-encodes a path segment or query value (everything but RFC 3986's unreserved).
std::string EscapeComponent(std::string_view s);

}  // namespace boxlite::remote

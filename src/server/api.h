// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The pure parts of `boxlite serve` (docs/server.md): the route table the router and
// `boxlite serve --print-routes` share, path and query parsing, the mapping of a Status
// onto BoxLite 0.9's error envelope, and the API-key check. No I/O; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "boxlite/status.h"

namespace boxlite::server {

enum class RouteId {
  kConfig,
  kMe,
  kMetrics,
  kVolumeCreate,
  kVolumeList,
  kVolumeGet,
  kVolumeDelete,
  kBoxCreate,
  kBoxList,
  kBoxImport,
  kBoxGet,
  kBoxHead,
  kBoxDelete,
  kBoxStart,
  kBoxStop,
  kBoxMetrics,
  kBoxAttach,
  kExecCreate,
  kExecGet,
  kExecDelete,
  kExecAttach,
  kExecSignal,
  kExecResize,
  kFilesPut,
  kFilesGet,
  kSnapshotCreate,
  kSnapshotList,
  kSnapshotGet,
  kSnapshotDelete,
  kSnapshotRestore,
  kClone,
  kExport,
};

// What a route reads from the client after the request header.
enum class BodyKind {
  kNone,       // Nothing (a body is read and ignored up to the JSON cap).
  kJson,       // A JSON object, at most kMaxJsonBody bytes.
  kUpload,     // Raw bytes streamed to a file (tar or .boxlite), at most --max-upload-bytes.
  kWebSocket,  // An upgrade to a WebSocket.
};

struct Route {
  const char* method;   // "GET", "POST", ...
  const char* pattern;  // "/v1/boxes/{box_id}": `{name}` matches one segment.
  RouteId id;
  BodyKind body;
  bool is_public;  // Served without the API key (GET /v1/config).
};

// The one route table: the router matches against it and `--print-routes` prints it (the
// OpenAPI test compares openapi/serve.openapi.yaml with that output).
const std::vector<Route>& Routes();

constexpr size_t kMaxJsonBody = size_t{1} << 20;

struct RouteMatch {
  const Route* route = nullptr;                 // Null: no route for this method and path.
  std::map<std::string, std::string> params;    // Decoded path parameters by name.
  bool path_known = false;  // The path matched a route of another method (405, not 404).
};

// Matches a method and a path (no query) against Routes(). Segments are percent-decoded
// before they are captured; an empty or undecodable segment matches nothing.
RouteMatch MatchRoute(std::string_view method, std::string_view path);

// Splits "path?query" and decodes the query ("a=1&b=x%20y"; '+' is a space). A key given
// twice keeps its last value.
std::string_view TargetPath(std::string_view target);
std::map<std::string, std::string> ParseQuery(std::string_view target);

// Percent-decodes `in` (nullopt for a bad escape or a NUL). `plus_is_space` for queries.
std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space);

// "true"/"1"/"false"/"0" (any case); nullopt for anything else.
std::optional<bool> ParseBoolParam(std::string_view value);

// BoxLite 0.9's (status, type, code) for an error.
struct HttpError {
  unsigned status;
  std::string type;  // "NotFoundError"
  std::string code;  // "not_found"
};
HttpError MapStatus(const Status& s);

// The envelope {"error":{"message","type","code","request_id"?, "boxlite_code", "subject"?}}:
// 0.9's fields plus our own Status code name and subject, so our clients can rebuild the
// Status exactly (0.9 clients ignore the extra fields).
nlohmann::json ErrorBody(const Status& s, std::string_view request_id);

// Checks an Authorization header against `api_key` in constant time ("Bearer KEY" or
// "bearer KEY"). An empty api_key accepts every request.
bool CheckApiKey(std::string_view api_key, std::string_view authorization);

// The request id a client sent when it is usable (1..128 printable ASCII, no spaces),
// else a fresh random one.
std::string RequestIdFor(std::string_view sent);

// 32 random hex characters (OpenSSL's RNG): execution ids and minted request ids.
std::string RandomHex(size_t bytes);

}  // namespace boxlite::server

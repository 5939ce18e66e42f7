// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// BoxLite 0.9's REST wire format as the client reads and writes it (docs/remote.md):
// the error envelope mapped to a Status, the request bodies built from our options, and
// the response bodies parsed into our structs. Every response is untrusted input: missing
// or mistyped fields take their defaults, strings are bounded, nothing throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/snapshot.h"
#include "boxlite/status.h"

namespace boxlite::remote {

// The Status of a failed response: the envelope {"error":{"message","type","code"}}
// decides by `code` (0.9's codes, then ours); without one, by the HTTP status: 401 and
// 403 are PermissionDenied "auth: ...", 502..504 Unavailable. `what` says what the call
// was ("create box"); the message is one line, bounded.
Status StatusFromResponse(int http_status, std::string_view body, std::string_view what);

// A JSON document from a response body; ProtocolError when it is not one.
Result<nlohmann::json> ParseBody(std::string_view body, std::string_view what);

// What a remote runtime cannot do with these options: NotSupported ("unsupported: ...")
// for what 0.9's REST client rejects and what the server does not take, InvalidArgument
// for a lifecycle rule. OK when the box can be created remotely.
Status CheckRemoteBoxOptions(const BoxOptions& options);
// The CreateBoxRequest of `options` (call CheckRemoteBoxOptions first).
nlohmann::json CreateBoxRequest(const BoxOptions& options);

// The ExecRequest of `options`; NotSupported for what the route cannot carry.
Result<nlohmann::json> ExecRequest(const ExecOptions& options);

// Response bodies.
BoxInfo BoxInfoFromJson(const nlohmann::json& j);
BoxMetrics BoxMetricsFromJson(const nlohmann::json& j);
RuntimeMetrics RuntimeMetricsFromJson(const nlohmann::json& j);
VolumeInfo VolumeInfoFromJson(const nlohmann::json& j);
SnapshotInfo SnapshotInfoFromJson(const nlohmann::json& j);

// Seconds since the epoch of an RFC 3339 time ("2026-01-02T03:04:05.123Z", "+01:00"); 0
// when it is not one.
int64_t ParseRfc3339(std::string_view text);

}  // namespace boxlite::remote

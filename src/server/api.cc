// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/server/api.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <random>
#include <nlohmann/json.hpp>

#include "src/base/strings.h"

namespace boxlite::server {

const std::vector<Route>& Routes() {
  using B = BodyKind;
  static const std::vector<Route>* routes = new std::vector<Route>{
      {"GET", "/v1/config", RouteId::kConfig, B::kNone, true},
      {"GET", "/v1/me", RouteId::kMe, B::kNone, false},
      {"GET", "/v1/metrics", RouteId::kMetrics, B::kNone, false},
      {"POST", "/v1/volumes", RouteId::kVolumeCreate, B::kJson, false},
      {"GET", "/v1/volumes", RouteId::kVolumeList, B::kNone, false},
      {"GET", "/v1/volumes/{volume_id}", RouteId::kVolumeGet, B::kNone, false},
      {"DELETE", "/v1/volumes/{volume_id}", RouteId::kVolumeDelete, B::kNone, false},
      {"POST", "/v1/boxes", RouteId::kBoxCreate, B::kJson, false},
      {"GET", "/v1/boxes", RouteId::kBoxList, B::kNone, false},
      {"POST", "/v1/boxes/import", RouteId::kBoxImport, B::kUpload, false},
      {"GET", "/v1/boxes/{box_id}", RouteId::kBoxGet, B::kNone, false},
      {"HEAD", "/v1/boxes/{box_id}", RouteId::kBoxHead, B::kNone, false},
      {"DELETE", "/v1/boxes/{box_id}", RouteId::kBoxDelete, B::kNone, false},
      {"POST", "/v1/boxes/{box_id}/start", RouteId::kBoxStart, B::kNone, false},
      {"POST", "/v1/boxes/{box_id}/stop", RouteId::kBoxStop, B::kNone, false},
      {"GET", "/v1/boxes/{box_id}/metrics", RouteId::kBoxMetrics, B::kNone, false},
      {"GET", "/v1/boxes/{box_id}/attach", RouteId::kBoxAttach, B::kWebSocket, false},
      {"POST", "/v1/boxes/{box_id}/exec", RouteId::kExecCreate, B::kJson, false},
      {"GET", "/v1/boxes/{box_id}/executions/{execution_id}", RouteId::kExecGet, B::kNone, false},
      {"DELETE", "/v1/boxes/{box_id}/executions/{execution_id}", RouteId::kExecDelete, B::kNone,
       false},
      {"GET", "/v1/boxes/{box_id}/executions/{execution_id}/attach", RouteId::kExecAttach,
       B::kWebSocket, false},
      {"POST", "/v1/boxes/{box_id}/executions/{execution_id}/signal", RouteId::kExecSignal,
       B::kJson, false},
      {"POST", "/v1/boxes/{box_id}/executions/{execution_id}/resize", RouteId::kExecResize,
       B::kJson, false},
      {"PUT", "/v1/boxes/{box_id}/files", RouteId::kFilesPut, B::kUpload, false},
      {"GET", "/v1/boxes/{box_id}/files", RouteId::kFilesGet, B::kNone, false},
      {"POST", "/v1/boxes/{box_id}/snapshots", RouteId::kSnapshotCreate, B::kJson, false},
      {"GET", "/v1/boxes/{box_id}/snapshots", RouteId::kSnapshotList, B::kNone, false},
      {"GET", "/v1/boxes/{box_id}/snapshots/{name}", RouteId::kSnapshotGet, B::kNone, false},
      {"DELETE", "/v1/boxes/{box_id}/snapshots/{name}", RouteId::kSnapshotDelete, B::kNone,
       false},
      {"POST", "/v1/boxes/{box_id}/snapshots/{name}/restore", RouteId::kSnapshotRestore,
       B::kNone, false},
      {"POST", "/v1/boxes/{box_id}/clone", RouteId::kClone, B::kJson, false},
      {"POST", "/v1/boxes/{box_id}/export", RouteId::kExport, B::kJson, false},
  };
  return *routes;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

RouteMatch MatchRoute(std::string_view method, std::string_view path) {
  RouteMatch result;
  auto got = base::Split(path, '/');
  for (const auto& route : Routes()) {
    auto want = base::Split(route.pattern, '/');
    if (want.size() != got.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < want.size() && ok; ++i) {
      if (want[i].size() > 2 && want[i].front() == '{' && want[i].back() == '}') {
        auto decoded = PercentDecode(got[i], false);
        if (!decoded || decoded->empty() || decoded->find('/') != std::string::npos) {
          ok = false;
        } else {
          params[std::string(want[i].substr(1, want[i].size() - 2))] = *decoded;
        }
      } else if (want[i] != got[i]) {
        ok = false;
      }
    }
    if (!ok) continue;
    // A literal segment beats a parameter ("/v1/boxes/import" is not box "import"): routes
    // with literals are listed first for the same shape, so the first full match wins.
    if (method == route.method) {
      result.route = &route;
      result.params = std::move(params);
      result.path_known = true;
      return result;
    }
    result.path_known = true;
  }
  return result;
}

std::string_view TargetPath(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::map<std::string, std::string> ParseQuery(std::string_view target) {
  std::map<std::string, std::string> out;
  size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (key && value) out[*key] = *value;
  }
  return out;
}

std::optional<bool> ParseBoolParam(std::string_view value) {
  std::string v;
  for (char c : value) v.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return std::nullopt;
}

HttpError MapStatus(const Status& s) {
  StatusSubject subject = s.subject();
  bool image = subject == StatusSubject::kImage || subject == StatusSubject::kRegistry;
  switch (s.code()) {
    case StatusCode::kOk:
      return {200, "", ""};
    case StatusCode::kInvalidArgument:
      return {400, "InvalidArgumentError", "invalid_argument"};
    case StatusCode::kNotSupported:
      return {400, "UnsupportedError", "unsupported"};
    case StatusCode::kNotFound:
      if (image) return {422, "ImageError", "image_pull_failed"};
      return {404, "NotFoundError", "not_found"};
    case StatusCode::kAlreadyExists:
      return {409, "AlreadyExistsError", "already_exists"};
    case StatusCode::kFailedPrecondition:
      return {409, "InvalidStateError", "invalid_state"};
    case StatusCode::kCancelled:
      return {409, "StoppedError", "stopped"};
    case StatusCode::kDeadlineExceeded:
      return {504, "TimeoutError", "timeout"};
    case StatusCode::kResourceExhausted:
      return {429, "ResourceExhaustedError", "resource_exhausted"};
    case StatusCode::kAuthentication:
      return {422, "ImageError", "image_pull_failed"};
    case StatusCode::kUnavailable:
      if (image) return {503, "UpstreamUnavailableError", "upstream_unavailable"};
      if (subject == StatusSubject::kExec) return {422, "ExecutionError", "execution_failed"};
      return {503, "EngineError", "engine_unavailable"};
    case StatusCode::kCorruption:
      if (image) return {422, "ImageError", "image_pull_failed"};
      return {500, "StorageError", "storage_error"};
    case StatusCode::kIoError:
    case StatusCode::kPermissionDenied:
      return {500, "StorageError", "storage_error"};
    case StatusCode::kProtocolError:
      if (subject == StatusSubject::kExec) return {422, "ExecutionError", "execution_failed"};
      return {500, "InternalError", "internal"};
    case StatusCode::kInternal:
      if (subject == StatusSubject::kExec) return {422, "ExecutionError", "execution_failed"};
      return {500, "InternalError", "internal"};
  }
  return {500, "InternalError", "internal"};
}

nlohmann::json ErrorBody(const Status& s, std::string_view request_id) {
  HttpError e = MapStatus(s);
  nlohmann::json err = {{"message", s.message()},
                        {"type", e.type},
                        {"code", e.code},
                        {"boxlite_code", std::string(StatusCodeName(s.code()))}};
  if (s.subject() != StatusSubject::kNone) {
    err["subject"] = std::string(StatusSubjectName(s.subject()));
  }
  if (!request_id.empty()) err["request_id"] = std::string(request_id);
  return nlohmann::json{{"error", err}};
}

bool CheckApiKey(std::string_view api_key, std::string_view authorization) {
  if (api_key.empty()) return true;
  std::string_view token;
  for (std::string_view scheme : {"Bearer ", "bearer "}) {
    if (authorization.substr(0, scheme.size()) == scheme) {
      token = authorization.substr(scheme.size());
      break;
    }
  }
  if (token.empty()) return false;
  // Compare digests so neither the key's length nor its bytes leak through timing.
  unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
  unsigned int alen = 0, blen = 0;
  if (EVP_Digest(api_key.data(), api_key.size(), a, &alen, EVP_sha256(), nullptr) != 1 ||
      EVP_Digest(token.data(), token.size(), b, &blen, EVP_sha256(), nullptr) != 1 ||
      alen != blen) {
    return false;
  }
  return CRYPTO_memcmp(a, b, alen) == 0;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // OpenSSL's RNG does not fail on Linux once seeded; the kernel's is the fallback.
    std::random_device rd;
    for (auto& c : raw) c = static_cast<char>(rd());
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string RequestIdFor(std::string_view sent) {
  bool usable = !sent.empty() && sent.size() <= 128;
  for (char c : sent) {
    if (c <= ' ' || c > '~') usable = false;
  }
  return usable ? std::string(sent) : RandomHex(16);
}

}  // namespace boxlite::server

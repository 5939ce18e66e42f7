// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// RegistryClient speaks the read side of the OCI distribution API (v2) over libcurl:
// manifests by tag or digest and blobs streamed to a file, with
//   - authentication: anonymous or credentialed Bearer tokens (realm/service/scope from
//     WWW-Authenticate), Basic auth, credentials from a docker config.json, a token cache
//     per (registry, scope);
//   - redirects followed by hand: Authorization goes only to the registry's own origin,
//     never to the host a blob is redirected to (S3, a CDN);
//   - retries with exponential backoff on 5xx, 408, 429 (Retry-After honoured), dropped
//     connections and stalls; a blob cut mid-transfer is resumed with a Range request
//     (or restarted when the server ignores the range);
//   - timeouts: connect, whole-request for small documents, stall (no byte for N s) for
//     blobs;
//   - scheme: https, except registries listed as insecure (plain http). Loopback
//     registries (localhost, 127.0.0.0/8, ::1) try https and fall back to http when the TLS
//     handshake fails, as docker does for them.
// It never writes HTTP or JSON by hand: libcurl does the wire, nlohmann::json the JSON.
//
// Thread-safety: all methods may be called concurrently from any thread; the token cache,
// the curl handle pool and the statistics are internally synchronised.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/image/auth.h"
#include "src/image/manifest.h"

namespace boxlite::image {

struct RegistryOptions {
  // host[:port] reached over plain http ("127.0.0.1:5000").
  std::vector<std::string> insecure_registries;
  // Registries configured by the runtime (RuntimeOptions::registries, validated): their
  // transport, TLS verification and credentials, which win over the docker config.
  std::vector<ImageRegistry> registries;
  // A docker config.json to read credentials from; empty: none.
  std::string docker_config_path;
  // Where "docker.io" references go.
  std::string docker_hub_url = "https://registry-1.docker.io";
  std::chrono::milliseconds connect_timeout{15000};
  // Whole-request limit for manifests and tokens.
  std::chrono::milliseconds request_timeout{120000};
  // A blob transfer that moves no byte for this long is dropped (and retried).
  std::chrono::seconds stall_timeout{60};
  // Attempts per request (1 = no retry) and the backoff between them.
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{15000};
  std::string user_agent = "boxlite/0.1";
};

// Where a repository is fetched from: a registry or a mirror of one.
struct Endpoint {
  std::string base_url;      // "https://ghcr.io", "http://127.0.0.1:5000", a mirror URL.
  std::string display;       // host[:port] for messages and credential lookup.
  bool http_fallback = false;  // Loopback: retry over http when the TLS handshake fails.
  bool is_mirror = false;
  // From a configured ImageRegistry: accept any certificate from this host (only).
  bool skip_verify = false;
  // From a configured ImageRegistry: sent on every request to this registry's origin
  // (bearer_token), or used for Basic and token-service challenges (username/password).
  std::string bearer_token;
  std::optional<Credentials> credentials;
};

struct ManifestResponse {
  std::string body;
  std::string media_type;  // From the Content-Type header (parameters stripped).
  std::string digest;      // "sha256:<hex>" of body, checked against the server's.
};

// Counters since construction; for progress reports and tests.
struct RegistryStats {
  uint64_t manifest_requests = 0;
  uint64_t blob_requests = 0;   // Blob GETs sent to a registry (retries included).
  uint64_t token_requests = 0;
  uint64_t retries = 0;
  uint64_t blob_bytes = 0;      // Body bytes received for blobs.
};

class RegistryClient {
 public:
  explicit RegistryClient(RegistryOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // The endpoint of a registry named as in references ("docker.io", "host:5000").
  Endpoint EndpointFor(const std::string& registry) const;
  // The endpoint of a mirror URL ("http://127.0.0.1:5000", "https://mirror.example/x").
  // InvalidArgument when it is not an http(s) URL.
  Result<Endpoint> MirrorEndpoint(const std::string& url) const;

  // GET /v2/<repository>/manifests/<reference> accepting all four manifest types. When
  // `reference` is a digest the body must hash to it. Errors: NotFound ("manifest
  // <reference> not found in <registry>"), Authentication, Unavailable, Corruption.
  Result<ManifestResponse> GetManifest(const Endpoint& endpoint, const std::string& repository,
                                       const std::string& reference);

  // GET /v2/<repository>/blobs/<digest>, written to `fd` from offset 0 (the file is
  // truncated first and on restarts). On success the file holds exactly `size` bytes
  // whose sha256 is `digest`; otherwise Corruption (mismatch) or the transfer error.
  // `progress(done, total)` is called from this thread as bytes arrive; `cancel`, when
  // set by another thread, aborts with Cancelled.
  Status GetBlob(const Endpoint& endpoint, const std::string& repository,
                 const std::string& digest, uint64_t size, int fd,
                 const std::function<void(uint64_t, uint64_t)>& progress,
                 const std::atomic<bool>* cancel);

  RegistryStats stats() const;

 private:
  struct Request;
  struct Response;
  class BodySink;
  struct HandlePool;

  // One HTTP exchange, no retry, no redirect. A transport failure is returned as the
  // response's curl code.
  Response Perform(const Request& request, BodySink* sink, const std::atomic<bool>* cancel);
  // Perform with redirects, authentication and retries. `sink` receives 2xx bodies.
  Result<Response> Fetch(const Endpoint& endpoint, const std::string& repository,
                         const std::string& path, const std::vector<std::string>& headers,
                         bool is_blob, BodySink* sink, const std::atomic<bool>* cancel);
  // Answers a 401: returns the Authorization value to retry with.
  Result<std::string> Authenticate(const Endpoint& endpoint, const std::string& repository,
                                   const std::string& scope, const Response& challenge,
                                   const std::atomic<bool>* cancel);
  Result<BearerToken> FetchToken(const Endpoint& endpoint, const AuthChallenge& challenge,
                                 const std::string& scope, const Credentials* creds,
                                 const std::atomic<bool>* cancel);
  Result<std::optional<Credentials>> CredentialsFor(const Endpoint& endpoint);
  std::string BaseUrl(const Endpoint& endpoint);
  void SleepBackoff(int attempt, std::chrono::milliseconds hint, const std::atomic<bool>* cancel);

  RegistryOptions options_;
  AuthCache auth_cache_;
  std::unique_ptr<HandlePool> pool_;
  std::mutex mu_;
  std::map<std::string, bool> use_http_;  // Guarded by mu_: loopback origins that fell back.

  std::atomic<uint64_t> manifest_requests_{0};
  std::atomic<uint64_t> blob_requests_{0};
  std::atomic<uint64_t> token_requests_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> blob_bytes_{0};
};

// Splits "a, b,,c" into trimmed non-empty items (used for the environment lists).
std::vector<std::string> SplitList(std::string_view s);

// A mirror URL as MirrorEndpoint uses it: "https://" added when there is no scheme,
// trailing '/' dropped. InvalidArgument when it is not an http(s) URL with a host.
Result<std::string> NormalizeMirrorUrl(const std::string& url);

}  // namespace boxlite::image

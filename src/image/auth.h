// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Registry authentication pieces that do no I/O of their own:
//   - WWW-Authenticate parsing (RFC 7235 challenges; quoted values may hold commas and
//     backslash-escaped quotes: scope="repository:a:pull,push");
//   - credentials from a docker config.json ("auths": base64 "auth" or
//     "username"/"password"; keys may be URLs such as "https://index.docker.io/v1/");
//   - token responses of the distribution token protocol ("token"/"access_token",
//     "expires_in");
//   - a cache of Authorization header values keyed by registry and scope.
//
// Thread-safety: the free functions are pure; AuthCache is internally synchronised.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "src/base/base64.h"

namespace boxlite::image {

struct AuthChallenge {
  std::string scheme;                         // Lowercased: "bearer", "basic".
  std::map<std::string, std::string> params;  // Keys lowercased; values unquoted.

  std::string Param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  }
};

// Parses every challenge in a WWW-Authenticate header value (several may be joined by
// commas). ProtocolError on malformed input (unterminated quote, missing scheme).
Result<std::vector<AuthChallenge>> ParseWwwAuthenticate(std::string_view header);

struct Credentials {
  std::string username;
  std::string password;
  // An OAuth2 refresh token from `docker login` against some registries. Not used yet:
  // such registries need the OAuth2 POST flow of the token protocol.
  std::string identity_token;

  bool empty() const { return username.empty() && password.empty(); }
};

// Parses a docker config.json and returns the credentials for `registry` ("docker.io",
// "ghcr.io", "127.0.0.1:5000"), or nullopt when it has none. docker.io also matches the
// historical keys "https://index.docker.io/v1/", "index.docker.io" and
// "registry-1.docker.io". InvalidArgument for malformed JSON or a bad base64 "auth".
Result<std::optional<Credentials>> CredentialsFromDockerConfig(std::string_view config_json,
                                                               std::string_view registry);

// Reads `path` (missing file: nullopt) and calls CredentialsFromDockerConfig.
Result<std::optional<Credentials>> LoadDockerCredentials(const std::string& path,
                                                         std::string_view registry);

// The docker config path: $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
std::string DefaultDockerConfigPath();

struct BearerToken {
  std::string token;
  std::chrono::seconds expires_in{60};  // The protocol's default when absent.
};

// Parses a token endpoint's JSON answer. ProtocolError when it holds no token.
Result<BearerToken> ParseTokenResponse(std::string_view body);

// The docker config's "auth" and Basic credentials are base64 (src/base/base64.h:
// OpenSSL's codec; decoding takes padding as optional and rejects whitespace).
using base::Base64Decode;
using base::Base64Encode;

// Caches Authorization header values ("Bearer x", "Basic y") per (registry, scope) until
// they expire. A Basic value is stored with an empty scope and serves every scope.
class AuthCache {
 public:
  using Clock = std::chrono::steady_clock;

  // Returns the cached header value, or nullopt when absent or expired.
  std::optional<std::string> Get(const std::string& registry, const std::string& scope);
  // Stores a header value; `ttl` of zero means no expiry.
  void Put(const std::string& registry, const std::string& scope, std::string header_value,
           std::chrono::seconds ttl);
  // Forgets what a server just refused.
  void Erase(const std::string& registry, const std::string& scope);

 private:
  struct Entry {
    std::string value;
    std::optional<Clock::time_point> expires;
  };
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Entry> entries_;  // Guarded by mu_.
};

}  // namespace boxlite::image

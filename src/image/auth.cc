// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/image/auth.h"

#include <cctype>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/fs.h"

namespace boxlite::image {
namespace {

using nlohmann::json;

bool IsTokenChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~': case '/':
      return true;
    default:
      return false;
  }
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Strips "https://" and any path: "https://index.docker.io/v1/" -> "index.docker.io".
std::string RegistryHostOfKey(std::string_view key) {
  if (key.starts_with("https://")) key.remove_prefix(8);
  else if (key.starts_with("http://")) key.remove_prefix(7);
  size_t slash = key.find('/');
  if (slash != std::string_view::npos) key = key.substr(0, slash);
  return base::ToLower(key);
}

bool IsDockerHubAlias(const std::string& host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

Result<Credentials> CredentialsFromEntry(const json& entry, const std::string& key) {
  Credentials creds;
  if (!entry.is_object()) {
    return Status::InvalidArgument("docker config", "auths entry \"" + key + "\" is not an object");
  }
  auto str = [&](const char* field) -> std::string {
    auto it = entry.find(field);
    return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  creds.username = str("username");
  creds.password = str("password");
  creds.identity_token = str("identitytoken");
  std::string auth = str("auth");
  if (!auth.empty()) {
    auto decoded = Base64Decode(auth);
    if (!decoded) {
      return Status::InvalidArgument("docker config",
                                     "the \"auth\" of \"" + key + "\" is not valid base64");
    }
    size_t colon = decoded->find(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument(
          "docker config", "the \"auth\" of \"" + key + "\" does not decode to user:password");
    }
    creds.username = decoded->substr(0, colon);
    creds.password = decoded->substr(colon + 1);
  }
  return creds;
}

}  // namespace

Result<std::vector<AuthChallenge>> ParseWwwAuthenticate(std::string_view s) {
  std::vector<AuthChallenge> out;
  size_t i = 0;
  const size_t n = s.size();
  auto skip_spaces = [&] {
    while (i < n && IsSpace(s[i])) ++i;
  };
  auto read_token = [&] {
    size_t start = i;
    while (i < n && IsTokenChar(s[i])) ++i;
    return std::string(s.substr(start, i - start));
  };
  while (true) {
    while (i < n && (IsSpace(s[i]) || s[i] == ',')) ++i;
    if (i >= n) break;
    std::string word = read_token();
    if (word.empty()) {
      return Status::ProtocolError(
          "malformed WWW-Authenticate header",
          base::StrFormat("unexpected character at offset %zu", i));
    }
    size_t after_word = i;
    skip_spaces();
    bool is_param = i < n && s[i] == '=' && !out.empty();
    if (is_param) {
      // token68 ("Basic YWxh==") ends in '=' padding followed by nothing or ','.
      size_t eqs = 0;
      while (i + eqs < n && s[i + eqs] == '=') ++eqs;
      size_t k = i + eqs;
      while (k < n && IsSpace(s[k])) ++k;
      bool token68_shape = eqs > 1 || k >= n || s[k] == ',';
      if (token68_shape && out.back().params.empty()) {
        out.back().params["token68"] = word + std::string(eqs, '=');
        i += eqs;
        continue;
      }
      ++i;  // '='
      skip_spaces();
      std::string value;
      if (i < n && s[i] == '"') {
        ++i;
        bool closed = false;
        while (i < n) {
          char c = s[i++];
          if (c == '\\' && i < n) {
            value += s[i++];
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            value += c;
          }
        }
        if (!closed) {
          return Status::ProtocolError("malformed WWW-Authenticate header",
                                       "unterminated quoted value of \"" + word + "\"");
        }
      } else {
        // Unquoted values should be tokens; servers also send bare URLs, so read up to
        // the next separator.
        size_t start = i;
        while (i < n && s[i] != ',' && !IsSpace(s[i]) && s[i] != '"') ++i;
        value = std::string(s.substr(start, i - start));
      }
      out.back().params[base::ToLower(word)] = std::move(value);
      skip_spaces();
      if (i < n && s[i] != ',') {
        return Status::ProtocolError(
            "malformed WWW-Authenticate header",
            base::StrFormat("expected ',' after the value of \"%s\"", word.c_str()));
      }
      continue;
    }
    if (i < n && s[i] == '=') {
      return Status::ProtocolError("malformed WWW-Authenticate header",
                                   "parameter \"" + word + "\" before any scheme");
    }
    i = after_word;
    AuthChallenge challenge;
    challenge.scheme = base::ToLower(word);
    out.push_back(std::move(challenge));
    skip_spaces();
  }
  if (out.empty()) return Status::ProtocolError("empty WWW-Authenticate header");
  return out;
}

Result<std::optional<Credentials>> CredentialsFromDockerConfig(std::string_view config_json,
                                                               std::string_view registry) {
  json doc = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::InvalidArgument("docker config", "not a JSON object");
  }
  auto auths = doc.find("auths");
  if (auths == doc.end() || !auths->is_object()) return std::optional<Credentials>();
  std::string want = base::ToLower(registry);
  bool hub = IsDockerHubAlias(want);
  // An exact key wins over one that only matches after stripping scheme and path.
  const json* exact = nullptr;
  const json* loose = nullptr;
  std::string exact_key;
  std::string loose_key;
  for (auto it = auths->begin(); it != auths->end(); ++it) {
    std::string host = RegistryHostOfKey(it.key());
    bool match = hub ? IsDockerHubAlias(host) : host == want;
    if (!match) continue;
    if (base::ToLower(it.key()) == want && exact == nullptr) {
      exact = &it.value();
      exact_key = it.key();
    } else if (loose == nullptr) {
      loose = &it.value();
      loose_key = it.key();
    }
  }
  const json* entry = exact ? exact : loose;
  if (entry == nullptr) return std::optional<Credentials>();
  BOXLITE_ASSIGN_OR_RETURN(Credentials creds,
                           CredentialsFromEntry(*entry, exact ? exact_key : loose_key));
  if (creds.empty() && creds.identity_token.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(std::move(creds));
}

Result<std::optional<Credentials>> LoadDockerCredentials(const std::string& path,
                                                         std::string_view registry) {
  if (path.empty() || !sys::Exists(path)) return std::optional<Credentials>();
  BOXLITE_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(path));
  auto creds = CredentialsFromDockerConfig(text, registry);
  if (!creds) return creds.error().Wrap(path);
  return creds;
}

std::string DefaultDockerConfigPath() {
  const char* dir = std::getenv("DOCKER_CONFIG");
  if (dir != nullptr && *dir != '\0') return sys::JoinPath(dir, "config.json");
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return {};
  return sys::JoinPath(home, ".docker/config.json");
}

Result<BearerToken> ParseTokenResponse(std::string_view body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::ProtocolError("token response", "not a JSON object");
  }
  BearerToken out;
  for (const char* field : {"token", "access_token"}) {
    auto it = doc.find(field);
    if (it != doc.end() && it->is_string() && !it->get<std::string>().empty()) {
      out.token = it->get<std::string>();
      break;
    }
  }
  if (out.token.empty()) return Status::ProtocolError("token response", "it holds no token");
  auto exp = doc.find("expires_in");
  if (exp != doc.end() && exp->is_number_integer()) {
    int64_t secs = exp->get<int64_t>();
    if (secs > 60) out.expires_in = std::chrono::seconds(secs);
  }
  return out;
}

std::optional<std::string> AuthCache::Get(const std::string& registry, const std::string& scope) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& key : {scope, std::string()}) {
    auto it = entries_.find({registry, key});
    if (it == entries_.end()) continue;
    if (it->second.expires && Clock::now() >= *it->second.expires) {
      entries_.erase(it);
      continue;
    }
    return it->second.value;
  }
  return std::nullopt;
}

void AuthCache::Put(const std::string& registry, const std::string& scope,
                    std::string header_value, std::chrono::seconds ttl) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry entry{std::move(header_value), std::nullopt};
  if (ttl.count() > 0) {
    // Renew a little early so a token never expires between check and use.
    auto margin = ttl > std::chrono::seconds(40) ? std::chrono::seconds(20) : ttl / 4;
    entry.expires = Clock::now() + ttl - margin;
  }
  entries_[{registry, scope}] = std::move(entry);
}

void AuthCache::Erase(const std::string& registry, const std::string& scope) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase({registry, scope});
}

}  // namespace boxlite::image

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/endpoint.h"

#include <curl/curl.h>

#include <memory>

namespace boxlite::remote {
namespace {

// One part of a parsed URL (curl's parser), or nullopt when the URL lacks it.
std::optional<std::string> UrlPart(CURLU* u, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, 0) != CURLUE_OK || value == nullptr) return std::nullopt;
  std::string out(value);
  curl_free(value);
  return out;
}

bool Unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

}  // namespace

std::string Endpoint::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? "443" : "80")) h += ":" + port;
  return h;
}

std::string Endpoint::ToString() const {
  return std::string(tls ? "https://" : "http://") + HostHeader() + base_path;
}

Result<Endpoint> ParseEndpoint(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("bad server URL '" + std::string(url) + "': " + std::string(why) +
                                   " (expected http://HOST[:PORT][/PATH] or https://...)");
  };
  if (url.empty()) return bad("empty");
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u) return Status::ResourceExhausted("out of memory parsing a URL");
  if (curl_url_set(u.get(), CURLUPART_URL, std::string(url).c_str(), 0) != CURLUE_OK) {
    return bad("not a URL");
  }
  Endpoint ep;
  std::string scheme = UrlPart(u.get(), CURLUPART_SCHEME).value_or("");
  if (scheme == "https") {
    ep.tls = true;
  } else if (scheme != "http") {
    return bad("the scheme must be http or https");
  }
  if (UrlPart(u.get(), CURLUPART_USER) || UrlPart(u.get(), CURLUPART_PASSWORD)) {
    return bad("user info is not allowed (give the key as a bearer token)");
  }
  if (UrlPart(u.get(), CURLUPART_QUERY) || UrlPart(u.get(), CURLUPART_FRAGMENT)) {
    return bad("a query or fragment is not allowed");
  }
  ep.host = UrlPart(u.get(), CURLUPART_HOST).value_or("");
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']') {
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  }
  if (ep.host.empty()) return bad("no host");
  ep.port = UrlPart(u.get(), CURLUPART_PORT).value_or(ep.tls ? "443" : "80");
  std::string path = UrlPart(u.get(), CURLUPART_PATH).value_or("");
  while (!path.empty() && path.back() == '/') path.pop_back();
  ep.base_path = path;
  return ep;
}

Result<std::string> NormalizePathPrefix(std::string_view prefix) {
  size_t b = prefix.find_first_not_of('/');
  if (b == std::string_view::npos) return std::string();
  size_t e = prefix.find_last_not_of('/');
  std::string out(prefix.substr(b, e - b + 1));
  size_t start = 0;
  while (start <= out.size()) {
    size_t slash = out.find('/', start);
    std::string_view seg = std::string_view(out).substr(
        start, (slash == std::string::npos ? out.size() : slash) - start);
    bool ok = !seg.empty() && seg != "." && seg != "..";
    for (char c : seg) ok = ok && Unreserved(c);
    if (!ok) {
      return Status::InvalidArgument("bad path prefix '" + std::string(prefix) +
                                     "': segments of letters, digits and . _ ~ - separated by /");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string RouteTarget(const Endpoint& endpoint, std::string_view prefix, std::string_view route) {
  std::string t = endpoint.base_path + "/v1";
  if (!prefix.empty()) t += "/" + std::string(prefix);
  t += route;
  return t;
}

std::string EscapeComponent(std::string_view s) {
  // curl takes no handle for this since 7.82 (Debian 12 has 7.88).
  char* escaped = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
  if (escaped == nullptr) return std::string();
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

}  // namespace boxlite::remote

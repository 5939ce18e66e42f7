// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Design: every request goes through three layers.
//   Perform   one HTTP exchange on a pooled curl easy handle (connections are reused per
//             handle); headers of the final response are collected, 2xx bodies go to a
//             BodySink, other bodies are kept (bounded) for error messages.
//   Exchange  follows redirects by hand. The Authorization header is attached only while
//             the URL's origin (scheme, host, port) is the one the credential belongs to,
//             so a registry redirecting a blob to object storage never leaks its token.
//   Fetch     authentication (one 401 -> challenge -> token/basic -> repeat) and retries
//             with exponential backoff for transient failures. A BodySink may ask for a
//             Range header on a retry, which is how a cut blob is resumed.
// Errors name the registry host and, for auth failures, point at `docker login`.
//
// Size: one file on purpose: the three layers below share the pooled handles and the
// credential-origin rule, which must be read together to keep tokens from leaking.

#include "src/image/registry_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/image/reference.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::image {
namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;
constexpr size_t kMaxTokenBytes = 1 << 20;
constexpr size_t kMaxErrorBodyBytes = 64 << 10;
constexpr int kMaxRedirects = 10;
constexpr uint64_t kProgressStep = 256 << 10;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// "scheme://host:port" with the default port spelled out, lowercased; empty if unparsable.
std::string OriginOf(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return {};
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* scheme = nullptr;
    char* host = nullptr;
    char* port = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
      out = base::ToLower(std::string(scheme) + "://" + host + ":" + port);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

// host[:port] of a URL for messages.
std::string HostOf(const std::string& url) {
  std::string_view rest = url;
  size_t scheme = rest.find("://");
  if (scheme != std::string_view::npos) rest.remove_prefix(scheme + 3);
  size_t end = rest.find_first_of("/?#");
  return std::string(rest.substr(0, end));
}

bool IsLoopbackHost(std::string_view host_port) {
  std::string_view host = host_port;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
    return host == "::1";
  }
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host.starts_with("127.");
}

// Turns a distribution error body ({"errors":[{"code","message"}]}) into one line.
std::string RegistryErrorDetail(const std::string& body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> parts;
  if (doc.is_object()) {
    auto errors = doc.find("errors");
    if (errors != doc.end() && errors->is_array()) {
      for (const auto& e : *errors) {
        if (!e.is_object()) continue;
        std::string code = e.value("code", "");
        std::string message = e.value("message", "");
        parts.push_back(code.empty() ? message : code + ": " + message);
      }
    }
  }
  if (!parts.empty()) return base::Join(parts, "; ");
  std::string_view trimmed = base::Trim(body);
  if (trimmed.size() > 200) trimmed = trimmed.substr(0, 200);
  for (char c : trimmed) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return {};
  }
  return std::string(trimmed);
}

bool IsRedirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool IsRetryableStatus(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

bool IsRetryableCurl(CURLcode code) {
  switch (code) {
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool IsTlsHandshakeError(CURLcode code) {
  return code == CURLE_SSL_CONNECT_ERROR;
}

std::string AuthHint(const std::string& registry) {
  return base::StrFormat(
      "if the image is private, configure credentials for %s (ImageRegistry username/password "
      "or bearer_token, \"auth\" in --config), or run `docker login %s`",
      registry.c_str(), registry.c_str());
}

}  // namespace

std::vector<std::string> SplitList(std::string_view s) {
  std::vector<std::string> out;
  for (const auto& item : base::Split(s, ',')) {
    std::string_view t = base::Trim(item);
    if (!t.empty()) out.emplace_back(t);
  }
  return out;
}

struct RegistryClient::Request {
  std::string url;
  std::vector<std::string> headers;
  bool skip_verify = false;  // Only ever set for the configured registry's own host.
  bool is_blob = false;
  size_t max_body = kMaxManifestBytes;
};

struct RegistryClient::Response {
  CURLcode curl_code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::map<std::string, std::vector<std::string>> headers;  // Lowercased names.
  std::string body;
  std::string redirect_url;
  std::string url;  // The URL this response came from.
  Status sink_error;
  bool cancelled = false;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() || it->second.empty() ? std::string() : it->second.back();
  }
  bool ok() const { return curl_code == CURLE_OK && status >= 200 && status < 300; }
};

class RegistryClient::BodySink {
 public:
  virtual ~BodySink() = default;
  // Headers to send with the next attempt (a Range to resume).
  virtual std::vector<std::string> ExtraHeaders() { return {}; }
  // Called once per 2xx response before its first byte (or after it when empty). A
  // non-OK result aborts the transfer; Unavailable means "retry".
  virtual Status Begin(const Response& response) = 0;
  virtual Status Write(const char* data, size_t len) = 0;
};

struct RegistryClient::HandlePool {
  std::mutex mu;
  std::vector<CURL*> idle;  // Guarded by mu.

  ~HandlePool() {
    for (CURL* h : idle) curl_easy_cleanup(h);
  }
  CURL* Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        curl_easy_reset(h);  // Keeps the handle's connection cache.
        return h;
      }
    }
    return curl_easy_init();
  }
  void Release(CURL* h) {
    std::lock_guard<std::mutex> lock(mu);
    if (idle.size() < 16) {
      idle.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }
};

RegistryClient::RegistryClient(RegistryOptions options)
    : options_(std::move(options)), pool_(std::make_unique<HandlePool>()) {
  GlobalInit();
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

RegistryClient::~RegistryClient() = default;

Endpoint RegistryClient::EndpointFor(const std::string& registry) const {
  Endpoint e;
  e.display = registry;
  for (const auto& r : options_.registries) {
    if (base::ToLower(r.host) != base::ToLower(registry)) continue;
    e.base_url = (r.transport == "http" ? "http://" : "https://") + registry;
    e.skip_verify = r.skip_verify && r.transport != "http";
    // As for unconfigured ones: a loopback registry that does not speak TLS at all is
    // reached over http (a certificate that fails verification is still refused).
    e.http_fallback = r.transport != "http" && IsLoopbackHost(registry);
    e.bearer_token = r.bearer_token;
    if (!r.username.empty()) e.credentials = Credentials{r.username, r.password, ""};
    return e;
  }
  if (registry == kDockerHubDomain) {
    e.base_url = options_.docker_hub_url;
    while (!e.base_url.empty() && e.base_url.back() == '/') e.base_url.pop_back();
    return e;
  }
  bool insecure = std::find(options_.insecure_registries.begin(),
                            options_.insecure_registries.end(),
                            registry) != options_.insecure_registries.end();
  if (insecure) {
    e.base_url = "http://" + registry;
  } else {
    e.base_url = "https://" + registry;
    e.http_fallback = IsLoopbackHost(registry);
  }
  return e;
}

Result<std::string> NormalizeMirrorUrl(const std::string& url) {
  std::string u = url;
  if (u.find("://") == std::string::npos) u = "https://" + u;
  if (!u.starts_with("http://") && !u.starts_with("https://")) {
    return Status::InvalidArgument("invalid registry mirror \"" + url + "\"",
                                   "expected an http:// or https:// URL");
  }
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (OriginOf(u).empty() || HostOf(u).empty()) {
    return Status::InvalidArgument("invalid registry mirror \"" + url + "\"", "not a URL");
  }
  return u;
}

Result<Endpoint> RegistryClient::MirrorEndpoint(const std::string& url) const {
  BOXLITE_ASSIGN_OR_RETURN(std::string u, NormalizeMirrorUrl(url));
  Endpoint e;
  e.base_url = u;
  e.display = HostOf(u);
  e.is_mirror = true;
  return e;
}

RegistryStats RegistryClient::stats() const {
  RegistryStats s;
  s.manifest_requests = manifest_requests_.load();
  s.blob_requests = blob_requests_.load();
  s.token_requests = token_requests_.load();
  s.retries = retries_.load();
  s.blob_bytes = blob_bytes_.load();
  return s;
}

std::string RegistryClient::BaseUrl(const Endpoint& endpoint) {
  if (!endpoint.http_fallback) return endpoint.base_url;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = use_http_.find(endpoint.base_url);
  if (it != use_http_.end() && it->second && endpoint.base_url.starts_with("https://")) {
    return "http://" + endpoint.base_url.substr(8);
  }
  return endpoint.base_url;
}

RegistryClient::Response RegistryClient::Perform(const Request& request, BodySink* sink,
                                                 const std::atomic<bool>* cancel) {
  Response resp;
  resp.url = request.url;
  CURL* h = pool_->Acquire();
  if (h == nullptr) {
    resp.curl_code = CURLE_OUT_OF_MEMORY;
    resp.curl_error = "curl_easy_init failed";
    return resp;
  }
  struct Ctx {
    Response* response;
    BodySink* sink;
    const std::atomic<bool>* cancel;
    CURL* handle;
    size_t max_body;
    bool began;
    bool too_large;
  } ctx{&resp, sink, cancel, h, request.max_body, false, false};

  auto header_cb = +[](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* c = static_cast<Ctx*>(user);
    size_t len = size * n;
    std::string_view line(data, len);
    if (line.starts_with("HTTP/")) {
      c->response->headers.clear();  // A new response (after 100-continue or similar).
      return len;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    std::string name = base::ToLower(base::Trim(line.substr(0, colon)));
    std::string value(base::Trim(line.substr(colon + 1)));
    c->response->headers[name].push_back(std::move(value));
    return len;
  };
  auto write_cb = +[](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* c = static_cast<Ctx*>(user);
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(c->handle, CURLINFO_RESPONSE_CODE, &status);
    bool success = status >= 200 && status < 300;
    if (success && c->sink != nullptr) {
      if (!c->began) {
        c->began = true;
        c->response->status = status;
        Status s = c->sink->Begin(*c->response);
        if (!s.ok()) {
          c->response->sink_error = std::move(s);
          return 0;
        }
      }
      Status s = c->sink->Write(data, len);
      if (!s.ok()) {
        c->response->sink_error = std::move(s);
        return 0;
      }
      return len;
    }
    size_t limit = success ? c->max_body : kMaxErrorBodyBytes;
    if (c->response->body.size() + len > limit) {
      if (success) {
        c->too_large = true;
        return 0;
      }
      c->response->body.append(data, limit - c->response->body.size());
      return len;
    }
    c->response->body.append(data, len);
    return len;
  };
  auto xfer_cb = +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
    auto* c = static_cast<Ctx*>(user);
    return c->cancel != nullptr && c->cancel->load() ? 1 : 0;
  };

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const auto& header : request.headers) headers = curl_slist_append(headers, header.c_str());
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (request.skip_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  if (request.is_blob) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
  } else {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  }
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xfer_cb);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ctx);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);

  resp.curl_code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  char* redirect = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect != nullptr) {
    resp.redirect_url = redirect;
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
  pool_->Release(h);
  curl_slist_free_all(headers);

  resp.curl_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(resp.curl_code);
  resp.cancelled = resp.curl_code == CURLE_ABORTED_BY_CALLBACK;
  if (ctx.too_large) {
    resp.sink_error = Status::ProtocolError(
        "response too large", base::StrFormat("%s sent more than %zu bytes",
                                              HostOf(request.url).c_str(), request.max_body));
  }
  if (resp.curl_code == CURLE_OK && sink != nullptr && !ctx.began && resp.status >= 200 &&
      resp.status < 300) {
    resp.sink_error = sink->Begin(resp);  // An empty body.
  }
  return resp;
}

namespace {

Status TransportStatus(CURLcode code, const std::string& error, const std::string& host) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return Status::Unavailable("cannot resolve registry host " + host, error);
    case CURLE_COULDNT_CONNECT:
      return Status::Unavailable("cannot connect to registry " + host, error);
    case CURLE_OPERATION_TIMEDOUT:
      return Status::DeadlineExceeded("registry " + host + " timed out", error);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return Status::Unavailable(
          "TLS connection to registry " + host + " failed",
          error + "; if the registry serves plain HTTP, configure it with transport \"http\" "
                  "(or BOXLITE_INSECURE_REGISTRIES); for a self-signed certificate, "
                  "skip_verify=true");
    default:
      return Status::Unavailable("transfer from registry " + host + " failed", error);
  }
}

}  // namespace

void RegistryClient::SleepBackoff(int attempt, std::chrono::milliseconds hint,
                                  const std::atomic<bool>* cancel) {
  retries_.fetch_add(1);
  auto delay = options_.initial_backoff;
  for (int i = 1; i < attempt && delay < options_.max_backoff; ++i) delay *= 2;
  delay = std::min(delay, options_.max_backoff);
  if (hint > delay) delay = std::min(hint, std::chrono::milliseconds(60000));
  thread_local std::minstd_rand rng(static_cast<unsigned>(
      std::chrono::steady_clock::now().time_since_epoch().count()));
  delay += std::chrono::milliseconds(
      std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(delay.count() / 5, 0))(rng));
  auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until) {
    if (cancel != nullptr && cancel->load()) return;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
}

Result<std::optional<Credentials>> RegistryClient::CredentialsFor(const Endpoint& endpoint) {
  if (endpoint.credentials) return endpoint.credentials;
  return LoadDockerCredentials(options_.docker_config_path, endpoint.display);
}

Result<RegistryClient::Response> RegistryClient::Fetch(
    const Endpoint& endpoint, const std::string& repository, const std::string& path,
    const std::vector<std::string>& headers, bool is_blob, BodySink* sink,
    const std::atomic<bool>* cancel) {
  const std::string scope = "repository:" + repository + ":pull";
  Status last_error;
  int attempt = 0;
  while (attempt < options_.max_attempts) {
    ++attempt;
    if (cancel != nullptr && cancel->load()) return Status::Cancelled("pull cancelled");
    const std::string base = BaseUrl(endpoint);
    const std::string origin = OriginOf(base);
    std::optional<std::string> auth = auth_cache_.Get(origin, scope);
    const bool fixed_token = !endpoint.bearer_token.empty();
    if (fixed_token) auth = "Bearer " + endpoint.bearer_token;
    const std::string host = base::ToLower(HostOf(base));
    bool authenticated_once = false;
    std::string url = base + path;
    Request req;
    req.is_blob = is_blob;
    req.max_body = is_blob ? 0 : kMaxManifestBytes;
    int hops = 0;
    bool retry = false;
    std::chrono::milliseconds hint{0};
    while (true) {
      req.url = url;
      req.headers = headers;
      if (sink != nullptr) {
        for (auto& h : sink->ExtraHeaders()) req.headers.push_back(std::move(h));
      }
      bool same_origin = OriginOf(url) == origin;
      if (auth && same_origin) req.headers.push_back("Authorization: " + *auth);
      req.skip_verify = endpoint.skip_verify && base::ToLower(HostOf(url)) == host;
      if (is_blob && same_origin) blob_requests_.fetch_add(1);
      Response resp = Perform(req, sink, cancel);
      if (resp.cancelled && cancel != nullptr && cancel->load()) {
        return Status::Cancelled("pull cancelled");
      }
      if (!resp.sink_error.ok()) {
        if (!resp.sink_error.IsUnavailable()) return resp.sink_error;
        last_error = resp.sink_error;
        retry = true;
        break;
      }
      if (resp.curl_code != CURLE_OK) {
        if (IsTlsHandshakeError(resp.curl_code) && endpoint.http_fallback && same_origin &&
            url.starts_with("https://")) {
          BOXLITE_LOG(kInfo, "registry %s: TLS handshake failed, using plain http (loopback)",
                      endpoint.display.c_str());
          std::lock_guard<std::mutex> lock(mu_);
          use_http_[endpoint.base_url] = true;
          --attempt;  // The scheme switch is not a failed attempt: no backoff either.
          break;
        }
        Status s = TransportStatus(resp.curl_code, resp.curl_error, HostOf(url));
        if (!IsRetryableCurl(resp.curl_code)) return s;
        BOXLITE_LOG(kInfo, "attempt %d: %s", attempt, s.ToString().c_str());
        last_error = s;
        retry = true;
        break;
      }
      if (IsRedirect(resp.status) && !resp.redirect_url.empty()) {
        if (++hops > kMaxRedirects) {
          return Status::ProtocolError("too many redirects", "from " + HostOf(base + path));
        }
        url = resp.redirect_url;
        continue;
      }
      if (resp.status == 401 && same_origin && fixed_token) {
        return Status::Authentication(
            base::StrFormat("registry %s refused the configured bearer token for %s",
                            endpoint.display.c_str(), repository.c_str()),
            "check the token (ImageRegistry bearer_token, or auth.token in the config)");
      }
      if (resp.status == 401 && same_origin && !authenticated_once) {
        authenticated_once = true;
        if (auth) auth_cache_.Erase(origin, scope);
        BOXLITE_ASSIGN_OR_RETURN(std::string fresh,
                                 Authenticate(endpoint, repository, scope, resp, cancel));
        if (auth && fresh == *auth) {
          return Status::Authentication(
              base::StrFormat("registry %s refused the credentials for %s",
                              endpoint.display.c_str(), repository.c_str()),
              AuthHint(endpoint.display));
        }
        auth = std::move(fresh);
        url = base + path;
        hops = 0;
        continue;
      }
      if (resp.status == 401 && same_origin && endpoint.credentials && authenticated_once) {
        return Status::Authentication(
            base::StrFormat("registry %s refused the configured credentials of user \"%s\" for %s",
                            endpoint.display.c_str(), endpoint.credentials->username.c_str(),
                            repository.c_str()),
            "check the username and password configured for it");
      }
      if (resp.status == 401 || resp.status == 403) {
        // Docker Hub answers 401 for repositories that do not exist, too.
        std::string detail = RegistryErrorDetail(resp.body);
        return Status::Authentication(
            base::StrFormat("registry %s denied access to %s (HTTP %ld%s%s); the repository "
                            "does not exist or needs credentials",
                            HostOf(url).c_str(), repository.c_str(), resp.status,
                            detail.empty() ? "" : ": ", detail.c_str()),
            AuthHint(endpoint.display));
      }
      if (IsRetryableStatus(resp.status)) {
        std::string detail = RegistryErrorDetail(resp.body);
        last_error = Status::Unavailable(
            base::StrFormat("registry %s answered HTTP %ld", HostOf(url).c_str(), resp.status),
            detail);
        auto retry_after = base::ParseUint(resp.Header("retry-after"));
        if (retry_after) hint = std::chrono::milliseconds(*retry_after * 1000);
        BOXLITE_LOG(kInfo, "attempt %d: %s", attempt, last_error.ToString().c_str());
        retry = true;
        break;
      }
      return resp;
    }
    if (retry && attempt < options_.max_attempts) SleepBackoff(attempt, hint, cancel);
  }
  if (last_error.ok()) return Status::Internal("registry request loop ended without a result");
  return last_error.Wrap(base::StrFormat("giving up after %d attempts", options_.max_attempts));
}

Result<std::string> RegistryClient::Authenticate(const Endpoint& endpoint,
                                                 const std::string& repository,
                                                 const std::string& scope,
                                                 const Response& challenge_resp,
                                                 const std::atomic<bool>* cancel) {
  auto it = challenge_resp.headers.find("www-authenticate");
  if (it == challenge_resp.headers.end() || it->second.empty()) {
    return Status::Authentication(
        base::StrFormat("registry %s answered 401 for %s without a WWW-Authenticate challenge",
                        endpoint.display.c_str(), repository.c_str()),
        AuthHint(endpoint.display));
  }
  std::vector<AuthChallenge> challenges;
  for (const auto& value : it->second) {
    auto parsed = ParseWwwAuthenticate(value);
    if (!parsed) return parsed.error().Wrap("registry " + endpoint.display);
    for (auto& c : *parsed) challenges.push_back(std::move(c));
  }
  BOXLITE_ASSIGN_OR_RETURN(std::optional<Credentials> creds, CredentialsFor(endpoint));
  const std::string origin = OriginOf(BaseUrl(endpoint));
  for (const auto& c : challenges) {
    if (c.scheme != "bearer") continue;
    std::string want_scope = c.Param("scope").empty() ? scope : c.Param("scope");
    BOXLITE_ASSIGN_OR_RETURN(BearerToken token,
                             FetchToken(endpoint, c, want_scope, creds ? &*creds : nullptr,
                                        cancel));
    // Cached under the scope we ask with, which may be narrower than the challenge's.
    std::string value = "Bearer " + token.token;
    auth_cache_.Put(origin, scope, value, token.expires_in);
    return value;
  }
  for (const auto& c : challenges) {
    if (c.scheme != "basic") continue;
    if (!creds || creds->username.empty()) {
      return Status::Authentication(
          base::StrFormat("registry %s requires a user name and password for %s",
                          endpoint.display.c_str(), repository.c_str()),
          AuthHint(endpoint.display));
    }
    std::string value = "Basic " + Base64Encode(creds->username + ":" + creds->password);
    auth_cache_.Put(origin, "", value, std::chrono::seconds(0));
    return value;
  }
  std::vector<std::string> schemes;
  for (const auto& c : challenges) schemes.push_back(c.scheme);
  return Status::Authentication(
      base::StrFormat("registry %s asks for unsupported authentication (%s)",
                      endpoint.display.c_str(), base::Join(schemes, ", ").c_str()));
}

Result<BearerToken> RegistryClient::FetchToken(const Endpoint& endpoint,
                                               const AuthChallenge& challenge,
                                               const std::string& scope,
                                               const Credentials* creds,
                                               const std::atomic<bool>* cancel) {
  std::string realm = challenge.Param("realm");
  if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
    return Status::ProtocolError(
        "registry " + endpoint.display + " sent a Bearer challenge with an invalid realm",
        "\"" + realm + "\"");
  }
  CURLU* u = curl_url();
  if (u == nullptr) return Status::Internal("curl_url failed");
  std::string url;
  {
    bool ok = curl_url_set(u, CURLUPART_URL, realm.c_str(), 0) == CURLUE_OK;
    std::string service = challenge.Param("service");
    if (ok && !service.empty()) {
      ok = curl_url_set(u, CURLUPART_QUERY, ("service=" + service).c_str(),
                        CURLU_APPENDQUERY | CURLU_URLENCODE) == CURLUE_OK;
    }
    for (const auto& s : base::Split(scope, ' ', /*skip_empty=*/true)) {
      if (!ok) break;
      ok = curl_url_set(u, CURLUPART_QUERY, ("scope=" + s).c_str(),
                        CURLU_APPENDQUERY | CURLU_URLENCODE) == CURLUE_OK;
    }
    char* full = nullptr;
    if (ok && curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK) url = full;
    curl_free(full);
  }
  curl_url_cleanup(u);
  if (url.empty()) {
    return Status::ProtocolError("registry " + endpoint.display + " sent an unusable token realm",
                                 "\"" + realm + "\"");
  }
  const bool with_creds = creds != nullptr && !creds->username.empty();
  if (creds != nullptr && creds->username.empty() && !creds->identity_token.empty()) {
    BOXLITE_LOG(kWarn, "registry %s: identity tokens are not supported; asking anonymously",
                endpoint.display.c_str());
  }
  const std::string realm_origin = OriginOf(url);
  Status last_error;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    std::string current = url;
    Response resp;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      Request req;
      req.url = current;
      req.max_body = kMaxTokenBytes;
      req.skip_verify = endpoint.skip_verify &&
                        base::ToLower(HostOf(current)) == base::ToLower(endpoint.display);
      if (with_creds && OriginOf(current) == realm_origin) {
        req.headers.push_back("Authorization: Basic " +
                              Base64Encode(creds->username + ":" + creds->password));
      }
      token_requests_.fetch_add(1);
      resp = Perform(req, nullptr, cancel);
      if (resp.curl_code != CURLE_OK || !IsRedirect(resp.status) || resp.redirect_url.empty()) {
        break;
      }
      current = resp.redirect_url;
    }
    if (resp.cancelled && cancel != nullptr && cancel->load()) {
      return Status::Cancelled("pull cancelled");
    }
    if (!resp.sink_error.ok()) return resp.sink_error;
    if (resp.curl_code != CURLE_OK) {
      last_error = TransportStatus(resp.curl_code, resp.curl_error, HostOf(current))
                       .Wrap("token service of " + endpoint.display);
      if (!IsRetryableCurl(resp.curl_code)) return last_error;
    } else if (IsRetryableStatus(resp.status)) {
      last_error = Status::Unavailable(base::StrFormat(
          "token service %s answered HTTP %ld", HostOf(current).c_str(), resp.status));
    } else if (resp.status == 401 || resp.status == 403) {
      if (with_creds) {
        return Status::Authentication(
            base::StrFormat("registry %s rejected the credentials of user \"%s\"",
                            endpoint.display.c_str(), creds->username.c_str()),
            base::StrFormat("check them with `docker login %s` (token service %s: HTTP %ld)",
                            endpoint.display.c_str(), HostOf(current).c_str(), resp.status));
      }
      return Status::Authentication(
          base::StrFormat("registry %s refused anonymous access (token service: HTTP %ld)",
                          endpoint.display.c_str(), resp.status),
          AuthHint(endpoint.display));
    } else if (resp.status != 200) {
      return Status::ProtocolError(
          base::StrFormat("token service %s answered HTTP %ld", HostOf(current).c_str(),
                          resp.status),
          RegistryErrorDetail(resp.body));
    } else {
      auto token = ParseTokenResponse(resp.body);
      if (!token) return token.error().Wrap("registry " + endpoint.display);
      return token;
    }
    if (attempt < options_.max_attempts) SleepBackoff(attempt, std::chrono::milliseconds(0), cancel);
  }
  if (last_error.ok()) return Status::Internal("token request loop ended without a result");
  return last_error;
}

Result<ManifestResponse> RegistryClient::GetManifest(const Endpoint& endpoint,
                                                     const std::string& repository,
                                                     const std::string& reference) {
  manifest_requests_.fetch_add(1);
  std::vector<std::string> headers = {"Accept: " + ManifestAcceptHeader()};
  // Failures to talk to the registry are about the registry; a manifest it does not
  // have is a missing image.
  BOXLITE_ASSIGN_OR_RETURN(
      Response resp,
      AboutSubject(Fetch(endpoint, repository, "/v2/" + repository + "/manifests/" + reference,
                         headers, /*is_blob=*/false, nullptr, nullptr),
                   StatusSubject::kRegistry));
  if (resp.status == 404) {
    return Status::NotFound(base::StrFormat("manifest %s:%s not found in registry %s",
                                            repository.c_str(), reference.c_str(),
                                            endpoint.display.c_str()),
                            RegistryErrorDetail(resp.body))
        .WithSubject(StatusSubject::kImage);
  }
  if (resp.status != 200) {
    return Status::Unavailable(base::StrFormat("registry %s answered HTTP %ld for manifest %s:%s",
                                               endpoint.display.c_str(), resp.status,
                                               repository.c_str(), reference.c_str()),
                               RegistryErrorDetail(resp.body))
        .WithSubject(StatusSubject::kRegistry);
  }
  ManifestResponse out;
  std::string ctype = resp.Header("content-type");
  out.media_type = base::ToLower(base::Trim(ctype.substr(0, ctype.find(';'))));
  out.digest = "sha256:" + base::Sha256Hex(resp.body);
  std::string server_digest = resp.Header("docker-content-digest");
  if (server_digest.starts_with("sha256:") && server_digest != out.digest) {
    return Status::Corruption(
        base::StrFormat("manifest %s:%s from %s does not match its Docker-Content-Digest",
                        repository.c_str(), reference.c_str(), endpoint.display.c_str()),
        base::StrFormat("header says %s, content hashes to %s", server_digest.c_str(),
                        out.digest.c_str()));
  }
  if (reference.starts_with("sha256:") && reference != out.digest) {
    return Status::Corruption(
        base::StrFormat("manifest %s from %s does not match its digest", reference.c_str(),
                        endpoint.display.c_str()),
        "content hashes to " + out.digest);
  }
  out.body = std::move(resp.body);
  return out;
}

namespace {

// Writes a blob into a file, hashing as it goes; resumes with Range after a cut.
class BlobFileSinkImpl {
 public:
  BlobFileSinkImpl(int fd, std::string digest, uint64_t size,
                   const std::function<void(uint64_t, uint64_t)>& progress)
      : fd_(fd), digest_(std::move(digest)), size_(size), progress_(progress),
        hasher_(std::make_unique<base::Sha256>()) {}

  uint64_t have() const { return have_; }

  Status Reset() {
    if (::ftruncate(fd_, 0) != 0) return sys::ErrnoStatus(errno, "truncate blob temp file");
    if (::lseek(fd_, 0, SEEK_SET) != 0) return sys::ErrnoStatus(errno, "seek blob temp file");
    hasher_ = std::make_unique<base::Sha256>();
    have_ = 0;
    return Status::OK();
  }

  // `status` 206 continues at have_ when the range starts there; 200 restarts.
  Status Begin(long status, const std::string& content_range) {
    if (status == 206) {
      // "bytes START-END/TOTAL"
      uint64_t start = UINT64_MAX;
      if (content_range.starts_with("bytes ")) {
        std::string_view r = std::string_view(content_range).substr(6);
        auto parsed = base::ParseUint(r.substr(0, r.find('-')));
        if (parsed) start = *parsed;
      }
      if (start != have_) {
        BOXLITE_RETURN_IF_ERROR(Reset());
        return Status::Unavailable("blob " + digest_, "server resumed at the wrong offset");
      }
      return Status::OK();
    }
    if (have_ > 0) return Reset();
    return Status::OK();
  }

  Status Write(const char* data, size_t len) {
    if (have_ + len > size_) {
      return Status::Corruption(
          "blob " + digest_,
          base::StrFormat("the registry sent more than the %llu bytes the manifest declares",
                          static_cast<unsigned long long>(size_)));
    }
    BOXLITE_RETURN_IF_ERROR(sys::WriteAll(fd_, data, len).Wrap("write blob " + digest_));
    hasher_->Update(data, len);
    have_ += len;
    if (progress_ && (have_ - reported_ >= kProgressStep || have_ == size_)) {
      reported_ = have_;
      progress_(have_, size_);
    }
    return Status::OK();
  }

  Status Finish() {
    if (have_ != size_) {
      return Status::Corruption(
          "blob " + digest_,
          base::StrFormat("received %llu bytes, the manifest declares %llu",
                          static_cast<unsigned long long>(have_),
                          static_cast<unsigned long long>(size_)));
    }
    std::string got = "sha256:" + hasher_->FinishHex();
    if (got != digest_) {
      return Status::Corruption("blob " + digest_ + " failed verification",
                                "its content hashes to " + got);
    }
    return Status::OK();
  }

 private:
  int fd_;
  std::string digest_;
  uint64_t size_;
  const std::function<void(uint64_t, uint64_t)>& progress_;
  std::unique_ptr<base::Sha256> hasher_;
  uint64_t have_ = 0;
  uint64_t reported_ = 0;
};

}  // namespace

Status RegistryClient::GetBlob(const Endpoint& endpoint, const std::string& repository,
                               const std::string& digest, uint64_t size, int fd,
                               const std::function<void(uint64_t, uint64_t)>& progress,
                               const std::atomic<bool>* cancel) {
  BOXLITE_RETURN_IF_ERROR(ValidateDigest(digest, "blob digest"));
  BlobFileSinkImpl file(fd, digest, size, progress);
  BOXLITE_RETURN_IF_ERROR(file.Reset());

  class Adapter : public BodySink {
   public:
    Adapter(BlobFileSinkImpl* file, std::atomic<uint64_t>* bytes) : file_(file), bytes_(bytes) {}
    std::vector<std::string> ExtraHeaders() override {
      if (file_->have() == 0) return {};
      return {base::StrFormat("Range: bytes=%llu-",
                              static_cast<unsigned long long>(file_->have()))};
    }
    Status Begin(const Response& r) override {
      return file_->Begin(r.status, r.Header("content-range"));
    }
    Status Write(const char* data, size_t len) override {
      bytes_->fetch_add(len);
      return file_->Write(data, len);
    }

   private:
    BlobFileSinkImpl* file_;
    std::atomic<uint64_t>* bytes_;
  } adapter(&file, &blob_bytes_);

  std::vector<std::string> headers;
  auto resp = Fetch(endpoint, repository, "/v2/" + repository + "/blobs/" + digest, headers,
                    /*is_blob=*/true, &adapter, cancel);
  // A blob the registry's own manifest names but cannot serve is the registry's fault.
  if (!resp) return resp.error().Wrap("fetch blob " + digest).WithDefaultSubject(StatusSubject::kRegistry);
  if (resp->status == 404) {
    return Status::NotFound(
               base::StrFormat("blob %s not found in registry %s", digest.c_str(),
                               endpoint.display.c_str()),
               "repository " + repository)
        .WithSubject(StatusSubject::kRegistry);
  }
  if (resp->status != 200 && resp->status != 206) {
    return Status::Unavailable(base::StrFormat("registry %s answered HTTP %ld for blob %s",
                                               HostOf(resp->url).c_str(), resp->status,
                                               digest.c_str()),
                               RegistryErrorDetail(resp->body))
        .WithSubject(StatusSubject::kRegistry);
  }
  return file.Finish();
}

}  // namespace boxlite::image

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/secret_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/net/egress_rules.h"

namespace boxlite::net {
namespace {

constexpr unsigned char kHttp11Alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kH2Alpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Whether a ClientHello's ALPN extension body lists `proto` (bounded; hostile input).
bool AlpnOffers(const unsigned char* p, size_t n, std::string_view proto) {
  if (n < 2 || ((size_t{p[0]} << 8) | p[1]) != n - 2) return false;
  for (size_t at = 2; at < n;) {
    size_t len = p[at];
    if (len == 0 || at + 1 + len > n) return false;
    if (std::string_view(reinterpret_cast<const char*>(p + at + 1), len) == proto) return true;
    at += 1 + len;
  }
  return false;
}

// The host name of a ClientHello's server_name extension body; empty when none.
std::string HelloServerName(const unsigned char* p, size_t n) {
  if (n < 5 || ((size_t{p[0]} << 8) | p[1]) != n - 2 || p[2] != 0) return {};
  size_t len = (size_t{p[3]} << 8) | p[4];
  if (5 + len > n) return {};
  return std::string(reinterpret_cast<const char*>(p + 5), len);
}

bool IsDnsName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string CanonicalName(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return base::ToLower(s);
}

// Reads everything a memory BIO holds.
void DrainBio(BIO* bio, std::string* out) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n > 0) {
    out->append(data, static_cast<size_t>(n));
    (void)BIO_reset(bio);
  }
}

// Feeds all of `bytes` to an SSL object's write side (memory BIOs never block).
bool WriteAllSsl(SSL* ssl, std::string* bytes) {
  size_t off = 0;
  while (off < bytes->size()) {
    size_t chunk = std::min<size_t>(bytes->size() - off, INT_MAX / 2);
    int n = SSL_write(ssl, bytes->data() + off, static_cast<int>(chunk));
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  bytes->clear();
  return true;
}

// An SSL object of `ctx` reading from *in and writing to *out, two memory BIOs it owns;
// null (and both null) when out of memory.
SslPtr NewMemorySsl(SSL_CTX* ctx, BIO** in, BIO** out) {
  SslPtr ssl(SSL_new(ctx));
  *in = BIO_new(BIO_s_mem());
  *out = BIO_new(BIO_s_mem());
  if (!ssl || !*in || !*out) {
    BIO_free(*in);
    BIO_free(*out);
    *in = *out = nullptr;
    return nullptr;
  }
  SSL_set_bio(ssl.get(), *in, *out);
  return ssl;
}

}  // namespace

bool SecretHostMatches(std::string_view pattern, std::string_view sni) {
  auto rule = ParseEgressRule(pattern);
  if (!rule.ok() || !rule->Allows(443)) return false;
  if (rule->kind != EgressRule::Kind::kHost && rule->kind != EgressRule::Kind::kWildcard) {
    return false;
  }
  std::string name;
  if (!IsDnsName(sni) || !NormalizeHostName(sni, &name)) return false;
  if (!NameMatches(*rule, name)) return false;
  // A secret's "*.domain" covers one label under the domain (BoxLite 0.9's rule for
  // secrets), narrower than allow_net's any depth: a value goes to no more hosts than
  // the pattern plainly names.
  return rule->kind != EgressRule::Kind::kWildcard ||
         name.find('.') == name.size() - rule->name.size() - 1;
}

Result<std::unique_ptr<SecretTlsProxy>> SecretTlsProxy::Create(SecretCa ca,
                                                               std::vector<SecretRule> rules,
                                                               std::string_view roots_pem) {
  std::unique_ptr<SecretTlsProxy> p(new SecretTlsProxy());
  p->ca_ = std::move(ca);
  p->rules_ = std::move(rules);
  p->server_ctx_.reset(SSL_CTX_new(TLS_server_method()));
  p->client_ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!p->server_ctx_ || !p->client_ctx_) {
    return Status::Internal("make the secret TLS contexts: " + OpenSslError());
  }
  SSL_CTX* s = p->server_ctx_.get();
  SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
  // The guest's side of the TLS never leaves the host, and the guest chooses its client:
  // accept what small clients offer (busybox wget sends no signature_algorithms, which
  // means SHA-1 signatures, refused at OpenSSL's default level). The server's side keeps
  // OpenSSL's defaults.
  SSL_CTX_set_security_level(s, 0);
  SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(s, 0);
  SSL_CTX_set_tlsext_servername_callback(s, &SecretTlsFlow::OnServerName);
  SSL_CTX_set_alpn_select_cb(s, &SecretTlsFlow::OnAlpn, nullptr);
  SSL_CTX_set_client_hello_cb(s, &SecretTlsFlow::OnClientHello, nullptr);
  SSL_CTX* c = p->client_ctx_.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  if (roots_pem.empty()) {
    if (SSL_CTX_set_default_verify_paths(c) != 1) {
      return Status::Internal("load the host's trusted certificates: " + OpenSslError());
    }
  } else {
    BIO* bio = BIO_new_mem_buf(roots_pem.data(), static_cast<int>(roots_pem.size()));
    STACK_OF(X509_INFO)* infos = bio ? PEM_X509_INFO_read_bio(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    int added = 0;
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); ++i) {
      X509_INFO* info = sk_X509_INFO_value(infos, i);
      if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1) ++added;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    if (added == 0) return Status::InvalidArgument("no trusted certificate in the roots given");
  }
  if (SSL_CTX_set_alpn_protos(c, kHttp11Alpn, sizeof(kHttp11Alpn)) != 0) {
    return Status::Internal("set ALPN for upstream TLS: " + OpenSslError());
  }
  return p;
}

SecretTlsProxy::~SecretTlsProxy() = default;

std::vector<Replacement> SecretTlsProxy::ReplacementsFor(std::string_view sni) const {
  std::vector<Replacement> out;
  for (const auto& rule : rules_) {
    for (const auto& host : rule.hosts) {
      if (SecretHostMatches(host, sni)) {
        out.push_back({rule.placeholder, rule.value});
        break;
      }
    }
  }
  return out;
}

Status SecretTlsProxy::UseLeaf(SSL* ssl, const std::string& server_name) {
  std::lock_guard<std::mutex> lock(ca_mu_);
  // Both kinds: OpenSSL picks the one the client's signature algorithms allow.
  for (auto kind : {SecretCa::LeafKind::kEc, SecretCa::LeafKind::kRsa}) {
    BOXLITE_ASSIGN_OR_RETURN(X509* leaf, ca_.MintLeaf(server_name, kind));
    if (SSL_use_certificate(ssl, leaf) != 1 || SSL_use_PrivateKey(ssl, ca_.leaf_key(kind)) != 1) {
      return Status::Internal("use the leaf certificate: " + OpenSslError());
    }
  }
  return Status::OK();
}

std::unique_ptr<SecretTlsFlow> SecretTlsProxy::NewFlow(std::string peer) {
  return std::make_unique<SecretTlsFlow>(this, std::move(peer));
}

SecretTlsFlow::SecretTlsFlow(SecretTlsProxy* proxy, std::string peer)
    : proxy_(proxy), peer_(std::move(peer)) {}

SecretTlsFlow::~SecretTlsFlow() = default;

int SecretTlsFlow::OnClientHello(SSL* ssl, int*, void*) {
  auto* self = static_cast<SecretTlsFlow*>(SSL_get_app_data(ssl));
  if (self == nullptr || self->upstream_negotiated_) return SSL_CLIENT_HELLO_SUCCESS;
  const unsigned char* p = nullptr;
  size_t n = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
                                &n) != 1 ||
      !AlpnOffers(p, n, "h2")) {
    return SSL_CLIENT_HELLO_SUCCESS;  // HTTP/1.1 only: nothing to ask the server first.
  }
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &n) != 1) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  std::string name = HelloServerName(p, n);
  if (!IsDnsName(name) || self->proxy_->ReplacementsFor(name).empty()) {
    return SSL_CLIENT_HELLO_SUCCESS;  // Passed through (OnServerName decides).
  }
  self->hello_sni_ = std::move(name);
  return SSL_CLIENT_HELLO_RETRY;  // Held until the server's ALPN is known.
}

int SecretTlsFlow::OnAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                          const unsigned char* in, unsigned int inlen, void*) {
  auto* self = static_cast<SecretTlsFlow*>(SSL_get_app_data(ssl));
  bool h2 = self != nullptr && self->upstream_h2_;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, h2 ? kH2Alpn : kHttp11Alpn,
                            h2 ? sizeof(kH2Alpn) : sizeof(kHttp11Alpn), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // No ALPN: HTTP/1.1 all the same.
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int SecretTlsFlow::OnServerName(SSL* ssl, int*, void*) {
  auto* self = static_cast<SecretTlsFlow*>(SSL_get_app_data(ssl));
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (self == nullptr || name == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  std::vector<Replacement> replacements = self->proxy_->ReplacementsFor(name);
  if (replacements.empty()) return SSL_TLSEXT_ERR_ALERT_FATAL;  // Passed through.
  std::string canonical = CanonicalName(name);
  Status leaf = self->proxy_->UseLeaf(ssl, canonical);
  if (!leaf.ok()) {
    BOXLITE_LOG(kWarn, "boxlite-net: no certificate for %s, its TLS passes unchanged: %s",
                canonical.c_str(), leaf.ToString().c_str());
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  self->server_name_ = std::move(canonical);
  self->rewriter_ = std::make_unique<RequestRewriter>(std::move(replacements));
  self->decided_intercept_ = true;
  return SSL_TLSEXT_ERR_OK;
}

void SecretTlsFlow::Passthrough() {
  BOXLITE_LOG(kDebug, "boxlite-net: TLS flow to %s passes unchanged (no secret for its name)",
              peer_.c_str());
  mode_ = Mode::kPassthrough;
  guest_ssl_.reset();
  guest_in_ = guest_out_ = nullptr;
  rewriter_.reset();
  ERR_clear_error();
  to_upstream_ += hello_;
  hello_.clear();
  hello_.shrink_to_fit();
}

void SecretTlsFlow::Fail(const std::string& why) {
  BOXLITE_LOG(kWarn, "boxlite-net: secret TLS flow to %s (%s) closed: %s",
              server_name_.empty() ? "?" : server_name_.c_str(), peer_.c_str(), why.c_str());
  ERR_clear_error();
  to_up_plain_.clear();
  to_guest_plain_.clear();
  guest_write_done_ = upstream_write_done_ = true;
}

void SecretTlsFlow::FromGuest(std::span<const uint8_t> bytes) {
  if (finished()) return;
  if (mode_ == Mode::kPassthrough) {
    to_upstream_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return;
  }
  if (mode_ == Mode::kClientHello) {
    hello_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (!guest_ssl_) {
      guest_ssl_ = NewMemorySsl(proxy_->server_ctx(), &guest_in_, &guest_out_);
      if (!guest_ssl_) return Fail("out of memory for TLS");
      SSL_set_app_data(guest_ssl_.get(), this);
      SSL_set_accept_state(guest_ssl_.get());
    }
    BIO_write(guest_in_, bytes.data(), static_cast<int>(bytes.size()));
    int r = SSL_do_handshake(guest_ssl_.get());
    if (!decided_intercept_) {
      int e = r <= 0 ? SSL_get_error(guest_ssl_.get(), r) : SSL_ERROR_NONE;
      if (e == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
        // The guest offers h2 to a name with a secret: ask the server first.
        guest_held_ = true;
        server_name_ = CanonicalName(hello_sni_);
        StartUpstream(/*offer_h2=*/true);
        return;
      }
      bool more = e == SSL_ERROR_WANT_READ && hello_.size() < kMaxClientHello;
      if (!more) Passthrough();
      return;
    }
    StartUpstream(/*offer_h2=*/false);
    return;
  }
  BIO_write(guest_in_, bytes.data(), static_cast<int>(bytes.size()));
  Pump();
}

void SecretTlsFlow::StartUpstream(bool offer_h2) {
  mode_ = Mode::kIntercept;
  hello_.clear();
  hello_.shrink_to_fit();
  up_ssl_ = NewMemorySsl(proxy_->client_ctx(), &up_in_, &up_out_);
  if (!up_ssl_) return Fail("out of memory for TLS");
  SSL_set_connect_state(up_ssl_.get());
  if (SSL_set_tlsext_host_name(up_ssl_.get(), server_name_.c_str()) != 1 ||
      SSL_set1_host(up_ssl_.get(), server_name_.c_str()) != 1 ||
      (offer_h2 && SSL_set_alpn_protos(up_ssl_.get(), kH2Alpn, sizeof(kH2Alpn)) != 0)) {
    return Fail("cannot name the upstream server: " + OpenSslError());
  }
  BOXLITE_LOG(kDebug, "boxlite-net: substituting secrets for %s (%s)", server_name_.c_str(),
              peer_.c_str());
  Pump();
}

// The server's handshake is done while the guest's was held: answer the guest's ALPN
// with what the server chose, and bridge HTTP/2 when that is h2.
void SecretTlsFlow::UpstreamReady() {
  guest_held_ = false;
  upstream_negotiated_ = true;
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(up_ssl_.get(), &p, &n);
  upstream_h2_ = std::string_view(reinterpret_cast<const char*>(p), n) == "h2";
  if (!upstream_h2_) return;
  bridge_ = std::make_unique<H2Bridge>(proxy_->ReplacementsFor(server_name_));
  Status started = bridge_->Start(&to_guest_plain_, &to_up_plain_);
  if (!started.ok()) Fail(started.message());
}

void SecretTlsFlow::FromUpstream(std::span<const uint8_t> bytes) {
  if (finished()) return;
  if (mode_ == Mode::kClientHello) Passthrough();  // The server spoke first: not TLS.
  if (mode_ == Mode::kPassthrough) {
    to_guest_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return;
  }
  BIO_write(up_in_, bytes.data(), static_cast<int>(bytes.size()));
  Pump();
}

void SecretTlsFlow::GuestEof() {
  guest_eof_ = true;
  if (mode_ == Mode::kClientHello) Passthrough();
  if (mode_ == Mode::kPassthrough) {
    upstream_write_done_ = true;
    return;
  }
  Pump();
}

void SecretTlsFlow::UpstreamEof() {
  upstream_eof_ = true;
  if (mode_ == Mode::kClientHello) Passthrough();
  if (mode_ == Mode::kPassthrough) {
    guest_write_done_ = true;
    return;
  }
  if (!SSL_is_init_finished(up_ssl_.get())) return Fail("the server closed during the TLS handshake");
  Pump();
}

std::string SecretTlsFlow::TakeForGuest() { return std::exchange(to_guest_, {}); }
std::string SecretTlsFlow::TakeForUpstream() { return std::exchange(to_upstream_, {}); }

void SecretTlsFlow::Drain() {
  if (guest_out_) DrainBio(guest_out_, &to_guest_);
  if (up_out_) DrainBio(up_out_, &to_upstream_);
}

namespace {

// One step of a handshake on memory BIOs; false when it failed for good.
bool StepHandshake(SSL* ssl, bool* progress) {
  if (SSL_is_init_finished(ssl)) return true;
  int r = SSL_do_handshake(ssl);
  if (r > 0) {
    *progress = true;
    return true;
  }
  int e = SSL_get_error(ssl, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

enum class ReadEnd { kWouldBlock, kClosed, kFailed, kRefused };

// Reads the plaintext `ssl` has into `sink` (false: refused) until it would block.
template <typename Sink>
ReadEnd ReadPlain(SSL* ssl, bool* progress, Sink&& sink) {
  char buf[16384];
  for (;;) {
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n > 0) {
      *progress = true;
      if (!sink(std::string_view(buf, static_cast<size_t>(n)))) return ReadEnd::kRefused;
      continue;
    }
    int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_ZERO_RETURN) {
      *progress = true;
      return ReadEnd::kClosed;
    }
    return e == SSL_ERROR_WANT_READ ? ReadEnd::kWouldBlock : ReadEnd::kFailed;
  }
}

}  // namespace

void SecretTlsFlow::Pump() {
  SSL* g = guest_ssl_.get();
  SSL* u = up_ssl_.get();
  for (bool progress = true; progress && !finished();) {
    progress = false;
    if (guest_held_ && SSL_is_init_finished(u)) {
      UpstreamReady();
      if (finished()) return;
      progress = true;
    }
    if (!guest_held_ && !StepHandshake(g, &progress)) {
      Drain();  // The alert, if any.
      return Fail("TLS handshake with the guest failed: " + OpenSslError("connection closed"));
    }
    if (!StepHandshake(u, &progress)) {
      long verify = SSL_get_verify_result(u);
      std::string why = verify != X509_V_OK
                            ? std::string("the server's certificate is not trusted (") +
                                  X509_verify_cert_error_string(verify) + ")"
                            : OpenSslError("connection closed");
      return Fail("TLS to the server failed: " + why);
    }
    if (SSL_is_init_finished(g) && !guest_eof_) {
      Status fed;
      ReadEnd end = ReadPlain(g, &progress, [&](std::string_view plain) {
        fed = bridge_ ? bridge_->FromGuest(plain, &to_guest_plain_, &to_up_plain_)
                      : rewriter_->Feed(plain, &to_up_plain_);
        return fed.ok();
      });
      if (end == ReadEnd::kRefused) return Fail(fed.message());
      if (end == ReadEnd::kFailed) {
        return Fail("reading the guest's TLS failed: " + OpenSslError("connection closed"));
      }
      guest_eof_ = end == ReadEnd::kClosed;
    }
    if (SSL_is_init_finished(u)) {
      if (!to_up_plain_.empty()) {
        if (!WriteAllSsl(u, &to_up_plain_)) return Fail("TLS write to the server failed");
        progress = true;
      }
      if (!upstream_eof_) {
        Status fed;
        ReadEnd end = ReadPlain(u, &progress, [&](std::string_view plain) {
          if (!bridge_) {
            to_guest_plain_.append(plain);
            return true;
          }
          fed = bridge_->FromUpstream(plain, &to_guest_plain_, &to_up_plain_);
          return fed.ok();
        });
        if (end == ReadEnd::kRefused) return Fail(fed.message());
        if (end == ReadEnd::kFailed) {
          return Fail("reading the server's TLS failed: " + OpenSslError("connection closed"));
        }
        upstream_eof_ = end == ReadEnd::kClosed;
      }
      if (bridge_ && bridge_->done()) guest_eof_ = upstream_eof_ = true;  // GOAWAY, both ends.
      if (guest_eof_ && to_up_plain_.empty() && !upstream_write_done_) {
        SSL_shutdown(u);
        upstream_write_done_ = true;
      }
    }
    if (SSL_is_init_finished(g)) {
      if (!to_guest_plain_.empty()) {
        if (!WriteAllSsl(g, &to_guest_plain_)) return Fail("TLS write to the guest failed");
        progress = true;
      }
      if (upstream_eof_ && to_guest_plain_.empty() && !guest_write_done_) {
        SSL_shutdown(g);
        guest_write_done_ = true;
      }
    }
    Drain();
  }
  Drain();
}

namespace {

// Writes what it can of `*out` to non-blocking `fd`; false on an error.
bool WriteSome(int fd, std::string* out) {
  while (!out->empty()) {
    ssize_t n = ::send(fd, out->data(), out->size(), MSG_NOSIGNAL);
    if (n > 0) {
      out->erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

}  // namespace

void RunSecretFlow(SecretTlsProxy* proxy, int guest, int upstream, std::string_view head,
                   std::string peer) {
  for (int fd : {guest, upstream}) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) (void)::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  auto flow = proxy->NewFlow(std::move(peer));
  if (!head.empty()) {
    flow->FromGuest({reinterpret_cast<const uint8_t*>(head.data()), head.size()});
  }
  std::string to_guest, to_up;
  bool guest_open = true, up_open = true, guest_shut = false, up_shut = false;
  uint8_t buf[16384];
  for (;;) {
    to_guest += flow->TakeForGuest();
    to_up += flow->TakeForUpstream();
    if (!WriteSome(guest, &to_guest) || !WriteSome(upstream, &to_up)) break;
    if (flow->guest_write_done() && to_guest.empty() && !guest_shut) {
      (void)::shutdown(guest, SHUT_WR);
      guest_shut = true;
    }
    if (flow->upstream_write_done() && to_up.empty() && !up_shut) {
      (void)::shutdown(upstream, SHUT_WR);
      up_shut = true;
    }
    if (flow->finished() && to_guest.empty() && to_up.empty()) break;
    if (!guest_open && !up_open) break;
    // A side is read only while what it sent before is not piling up for the other.
    short gev = (guest_open && to_up.size() < SecretTlsFlow::kMaxPending ? POLLIN : 0) |
                (to_guest.empty() ? 0 : POLLOUT);
    short uev = (up_open && to_guest.size() < SecretTlsFlow::kMaxPending ? POLLIN : 0) |
                (to_up.empty() ? 0 : POLLOUT);
    pollfd fds[2] = {{guest, gev, 0}, {upstream, uev, 0}};
    int r = ::poll(fds, 2, SecretTlsFlow::kIdleTimeoutMs);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // Idle for too long, or poll failed.
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)) || !(fds[i].events & POLLIN)) continue;
      ssize_t n = ::recv(fds[i].fd, buf, sizeof(buf), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n > 0) {
        std::span<const uint8_t> data(buf, static_cast<size_t>(n));
        i == 0 ? flow->FromGuest(data) : flow->FromUpstream(data);
      } else if (i == 0) {
        guest_open = false;
        flow->GuestEof();
      } else {
        up_open = false;
        flow->UpstreamEof();
      }
    }
  }
}

}  // namespace boxlite::net

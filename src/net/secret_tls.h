// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Secret substitution over TLS (docs/networking.md, "Secrets"). boxlite-net hands each
// guest TCP flow to port 443 of a box with secrets to a SecretTlsFlow, which reads the
// TLS ClientHello and decides:
// - its server name (SNI) matches a secret's hosts: the flow terminates the guest's TLS
//   with a leaf certificate from the box's CA (secret_ca.h), opens TLS to the real
//   server itself (verified against the host's default roots, OpenSSL's default paths,
//   so SSL_CERT_FILE/SSL_CERT_DIR apply; host name = SNI), and forwards the guest's
//   requests through a RequestRewriter (secret_http.h) that replaces the placeholders
//   of the secrets matching that name. Responses pass unchanged.
// - HTTP/2: when the guest's ALPN offers h2, its handshake is held after the
//   ClientHello (OpenSSL's client_hello callback) while the flow connects to the server
//   offering h2 and http/1.1; the guest is then offered what the server chose (h2, or
//   http/1.1 only). With h2 on both sides the plaintext goes through an H2Bridge
//   (secret_h2.h) instead of the RequestRewriter.
// - otherwise (no SNI, another name, not TLS): the flow passes every byte unchanged,
//   the ClientHello included; the placeholder reaches that server as the guest wrote it.
//
// The flow does no I/O: its owner feeds it the bytes read from each side and writes
// what it returns to the other, so it plugs into any event loop. Logs name hosts and
// errors, never values.
// Thread-safety: a SecretTlsProxy and its flows belong to one thread.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "src/net/secret_ca.h"
#include "src/net/secret_h2.h"
#include "src/net/secret_http.h"

namespace boxlite::net {

// A secret as boxlite-net holds it (from the runtime; never on its command line).
struct SecretRule {
  std::string name;
  std::string placeholder;
  std::string value;
  std::vector<std::string> hosts;  // "host", "*.domain", each optionally ":443".
};

// Whether TLS server name `sni` matches host pattern `pattern`. The patterns are
// allow_net's (one parser: egress_rules.h): an exact name (case-insensitive, trailing dot
// ignored) or "*.domain" (any name under domain, not the apex), optionally ":443";
// addresses, CIDRs and other ports never match (only 443 is intercepted). `sni` must be
// a valid DNS name.
bool SecretHostMatches(std::string_view pattern, std::string_view sni);

class SecretTlsProxy;

// Runs one guest connection to port 443 through the proxy until both sides are done:
// `guest` and `upstream` are connected stream sockets (made non-blocking here), `head`
// the bytes already read from the guest (the ClientHello). Blocks; for a flow thread of
// the interception layer (flow_intercept.h) or a test. `peer` names the destination in
// logs.
void RunSecretFlow(SecretTlsProxy* proxy, int guest, int upstream, std::string_view head,
                   std::string peer);

struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

class SecretTlsFlow;

class SecretTlsProxy {
 public:
  // Upstream servers are verified against `roots_pem` (PEM certificates), or when it is
  // empty against OpenSSL's default paths.
  static Result<std::unique_ptr<SecretTlsProxy>> Create(SecretCa ca, std::vector<SecretRule> rules,
                                                        std::string_view roots_pem = {});
  SecretTlsProxy(const SecretTlsProxy&) = delete;
  SecretTlsProxy& operator=(const SecretTlsProxy&) = delete;
  ~SecretTlsProxy();

  // The replacements for a flow to `sni`; empty: not intercepted.
  std::vector<Replacement> ReplacementsFor(std::string_view sni) const;

  // A flow for one guest connection to port 443. `peer` names the destination in logs.
  std::unique_ptr<SecretTlsFlow> NewFlow(std::string peer);

  // Puts the leaf certificate for `server_name` (minted once, cached) and its key on
  // `ssl`. Thread-safe: flows run on threads of their own.
  Status UseLeaf(SSL* ssl, const std::string& server_name);
  SSL_CTX* server_ctx() const { return server_ctx_.get(); }
  SSL_CTX* client_ctx() const { return client_ctx_.get(); }

 private:
  SecretTlsProxy() = default;
  std::mutex ca_mu_;
  SecretCa ca_;  // Guarded by ca_mu_ (its leaf cache).
  std::vector<SecretRule> rules_;
  SslCtxPtr server_ctx_;
  SslCtxPtr client_ctx_;
};

class SecretTlsFlow {
 public:
  enum class Mode { kClientHello, kPassthrough, kIntercept };

  SecretTlsFlow(SecretTlsProxy* proxy, std::string peer);
  ~SecretTlsFlow();
  SecretTlsFlow(const SecretTlsFlow&) = delete;
  SecretTlsFlow& operator=(const SecretTlsFlow&) = delete;

  // Bytes read from the guest's connection / the upstream server's.
  void FromGuest(std::span<const uint8_t> bytes);
  void FromUpstream(std::span<const uint8_t> bytes);
  // The side's connection ended (read returned 0) or failed.
  void GuestEof();
  void UpstreamEof();

  // What to write to each side; the caller takes it all (and writes it in order).
  std::string TakeForGuest();
  std::string TakeForUpstream();
  bool HasOutput() const { return !to_guest_.empty() || !to_upstream_.empty(); }
  // Once taken output is written: shut down writing to that side (no more will come).
  bool guest_write_done() const { return guest_write_done_; }
  bool upstream_write_done() const { return upstream_write_done_; }
  // Both directions are over (or the flow failed): close both connections once the
  // output is written.
  bool finished() const { return guest_write_done_ && upstream_write_done_; }
  // Flow control: false while this many bytes wait for the other side; stop reading.
  bool WantsGuestData() const { return to_upstream_.size() < kMaxPending; }
  bool WantsUpstreamData() const { return to_guest_.size() < kMaxPending; }

  Mode mode() const { return mode_; }
  const std::string& server_name() const { return server_name_; }

  static constexpr size_t kMaxClientHello = 64 << 10;
  static constexpr int kIdleTimeoutMs = 15 * 60 * 1000;  // RunSecretFlow: no byte either way.
  static constexpr size_t kMaxPending = 1 << 20;

  // OpenSSL callbacks of the proxy's server context.
  static int OnServerName(SSL* ssl, int* alert, void* arg);
  static int OnAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                    const unsigned char* in, unsigned int inlen, void* arg);
  static int OnClientHello(SSL* ssl, int* alert, void* arg);

  // The guest and the server speak HTTP/2 through this flow.
  bool http2() const { return bridge_ != nullptr; }

 private:
  void Passthrough();
  void Pump();
  void Fail(const std::string& why);
  void Drain();
  void StartUpstream(bool offer_h2);
  void UpstreamReady();

  SecretTlsProxy* proxy_;
  std::string peer_;
  Mode mode_ = Mode::kClientHello;
  std::string server_name_;
  bool decided_intercept_ = false;
  std::string hello_;  // The raw ClientHello bytes until the mode is decided.
  SslPtr guest_ssl_;   // Server side, towards the guest.
  SslPtr up_ssl_;      // Client side, towards the real server.
  BIO* guest_in_ = nullptr;   // Owned by guest_ssl_.
  BIO* guest_out_ = nullptr;
  BIO* up_in_ = nullptr;
  BIO* up_out_ = nullptr;
  std::unique_ptr<RequestRewriter> rewriter_;
  // HTTP/2 (see the top of this file).
  std::string hello_sni_;             // The SNI, read in the client_hello callback.
  bool guest_held_ = false;           // The guest's handshake waits for the server's.
  bool upstream_negotiated_ = false;  // upstream_h2_ is known.
  bool upstream_h2_ = false;
  std::unique_ptr<H2Bridge> bridge_;
  std::string to_up_plain_;     // Rewritten requests before the upstream handshake ends.
  std::string to_guest_plain_;  // Responses before the guest handshake ends.
  std::string to_guest_;
  std::string to_upstream_;
  bool guest_write_done_ = false;
  bool upstream_write_done_ = false;
  bool guest_eof_ = false;
  bool upstream_eof_ = false;
};

}  // namespace boxlite::net

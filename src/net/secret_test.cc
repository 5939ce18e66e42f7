// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Secret substitution (secret_http.h, secret_tls.h, secret_ca.h) tested in-process: a
// real OpenSSL client (the "guest") talks through a SecretTlsFlow, pumped over loopback
// sockets, to a real OpenSSL server that records what it received.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <http_parser.h>
#include <nghttp2/nghttp2.h>

#include "src/base/log.h"
#include "src/base/unique_fd.h"
#include "src/net/secret_ca.h"
#include "src/net/secret_config.h"
#include "src/net/secret_http.h"
#include "src/net/secret_tls.h"

namespace boxlite::net {
namespace {

using base::UniqueFd;

constexpr char kValue[] = "sk-live-4f1d2c9e8b7a6f5e";
constexpr char kPlaceholder[] = "boxlite-secret-API_KEY-0123456789abcdef0123456789abcdef";

std::vector<Replacement> OneReplacement() { return {{kPlaceholder, kValue}}; }

// ---- Plain substitution --------------------------------------------------------------

TEST(StreamReplacerTest, ReplacesAcrossEverySplit) {
  std::string in = std::string("a=") + kPlaceholder + "&b=" + kPlaceholder + "x";
  std::string want = std::string("a=") + kValue + "&b=" + kValue + "x";
  auto r = OneReplacement();
  for (size_t step = 1; step <= in.size(); ++step) {
    StreamReplacer s(&r);
    std::string out;
    for (size_t i = 0; i < in.size(); i += step) s.Push(std::string_view(in).substr(i, step), &out);
    s.Finish(&out);
    EXPECT_EQ(out, want) << "step " << step;
  }
}

TEST(StreamReplacerTest, KeepsBackOnlyAPossiblePrefix) {
  auto r = OneReplacement();
  StreamReplacer s(&r);
  std::string out;
  s.Push("hello boxlite-secret-API", &out);
  EXPECT_EQ(out, std::string("hello ").substr(0, out.size()));  // Never past the safe part.
  EXPECT_EQ(out.find("boxlite"), std::string::npos);
  s.Push("!", &out);
  s.Finish(&out);
  EXPECT_EQ(out, "hello boxlite-secret-API!");
}

// Parses requests as the server sees them.
struct ParsedRequest {
  std::string method, url, body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool chunked = false;
  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
    }
    return {};
  }
};

class RequestCollector {
 public:
  RequestCollector() {
    http_parser_init(&p_, HTTP_REQUEST);
    p_.data = this;
    http_parser_settings_init(&s_);
    s_.on_message_begin = [](http_parser* p) {
      Self(p)->reqs.emplace_back();
      Self(p)->in_value_ = false;
      return 0;
    };
    s_.on_url = [](http_parser* p, const char* at, size_t n) {
      Self(p)->reqs.back().url.append(at, n);
      return 0;
    };
    s_.on_header_field = [](http_parser* p, const char* at, size_t n) {
      auto& h = Self(p)->reqs.back().headers;
      if (Self(p)->in_value_ || h.empty()) h.emplace_back();
      Self(p)->in_value_ = false;
      h.back().first.append(at, n);
      return 0;
    };
    s_.on_header_value = [](http_parser* p, const char* at, size_t n) {
      Self(p)->in_value_ = true;
      Self(p)->reqs.back().headers.back().second.append(at, n);
      return 0;
    };
    s_.on_headers_complete = [](http_parser* p) {
      Self(p)->reqs.back().method = http_method_str(static_cast<http_method>(p->method));
      Self(p)->reqs.back().chunked = (p->flags & F_CHUNKED) != 0;
      return 0;
    };
    s_.on_body = [](http_parser* p, const char* at, size_t n) {
      Self(p)->reqs.back().body.append(at, n);
      return 0;
    };
    s_.on_message_complete = [](http_parser* p) {
      Self(p)->complete++;
      return 0;
    };
  }
  // Returns the bytes after an upgrade (empty otherwise); false on a parse error.
  bool Feed(std::string_view data, std::string* rest = nullptr) {
    size_t n = http_parser_execute(&p_, &s_, data.data(), data.size());
    if (p_.upgrade) {
      if (rest) rest->append(data.substr(n));
      return true;
    }
    return HTTP_PARSER_ERRNO(&p_) == HPE_OK && n == data.size();
  }
  bool upgraded() const { return p_.upgrade; }
  std::vector<ParsedRequest> reqs;
  int complete = 0;

 private:
  static RequestCollector* Self(http_parser* p) { return static_cast<RequestCollector*>(p->data); }
  http_parser p_;
  http_parser_settings s_;
  bool in_value_ = false;
};

std::string Rewrite(const std::string& in, size_t step) {
  RequestRewriter rw(OneReplacement());
  std::string out;
  for (size_t i = 0; i < in.size(); i += step) {
    Status s = rw.Feed(std::string_view(in).substr(i, step), &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return out;
}

TEST(RequestRewriterTest, ContentLengthBodyHeaderAndQueryAtEverySplit) {
  std::string body = std::string("{\"key\":\"") + kPlaceholder + "\"}";
  std::string in = std::string("POST /v1/x?key=") + kPlaceholder + "&n=1 HTTP/1.1\r\n" +
                   "Host: api.test\r\nAuthorization: Bearer " + kPlaceholder +
                   "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t step : {1ul, 3ul, 7ul, 64ul, in.size()}) {
    RequestCollector c;
    ASSERT_TRUE(c.Feed(Rewrite(in, step))) << step;
    ASSERT_EQ(c.complete, 1);
    const auto& r = c.reqs[0];
    EXPECT_EQ(r.url, std::string("/v1/x?key=") + kValue + "&n=1");
    EXPECT_EQ(r.Header("Authorization"), std::string("Bearer ") + kValue);
    EXPECT_EQ(r.body, std::string("{\"key\":\"") + kValue + "\"}");
    EXPECT_EQ(r.Header("Content-Length"), std::to_string(r.body.size()));
    EXPECT_FALSE(r.chunked);
  }
}

TEST(RequestRewriterTest, ChunkedBodyIsRechunked) {
  // The placeholder is split across two chunks of the guest's body.
  std::string p = kPlaceholder;
  std::string c1 = "v=" + p.substr(0, 10), c2 = p.substr(10) + ";";
  char h1[16], h2[16];
  snprintf(h1, sizeof h1, "%zx\r\n", c1.size());
  snprintf(h2, sizeof h2, "%zx\r\n", c2.size());
  std::string in = std::string("PUT /u HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n") +
                   h1 + c1 + "\r\n" + h2 + c2 + "\r\n0\r\n\r\n";
  for (size_t step : {1ul, 5ul, in.size()}) {
    RequestCollector c;
    ASSERT_TRUE(c.Feed(Rewrite(in, step)));
    ASSERT_EQ(c.complete, 1);
    EXPECT_TRUE(c.reqs[0].chunked);
    EXPECT_EQ(c.reqs[0].body, std::string("v=") + kValue + ";");
  }
}

TEST(RequestRewriterTest, LargeOrExpectContinueBodiesSwitchToChunked) {
  std::string big(RequestRewriter::kMaxBufferedBody + 100, 'x');
  big.replace(RequestRewriter::kMaxBufferedBody - 5, strlen(kPlaceholder), kPlaceholder);
  std::string in = "POST /big HTTP/1.1\r\nHost: api.test\r\nContent-Length: " +
                   std::to_string(big.size()) + "\r\n\r\n" + big;
  RequestCollector c;
  ASSERT_TRUE(c.Feed(Rewrite(in, 4096)));
  ASSERT_EQ(c.complete, 1);
  EXPECT_TRUE(c.reqs[0].chunked);
  EXPECT_EQ(c.reqs[0].Header("Content-Length"), "");
  std::string want = big;
  want.replace(RequestRewriter::kMaxBufferedBody - 5, strlen(kPlaceholder), kValue);
  EXPECT_EQ(c.reqs[0].body, want);

  std::string small = std::string("t=") + kPlaceholder;
  std::string in2 = "POST /e HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nContent-Length: " +
                    std::to_string(small.size()) + "\r\n\r\n";
  RequestRewriter rw(OneReplacement());
  std::string out;
  ASSERT_TRUE(rw.Feed(in2, &out).ok());
  // The head goes out before the body: the client waits for "100 Continue".
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n\r\n"), std::string::npos);
  ASSERT_TRUE(rw.Feed(small, &out).ok());
  RequestCollector c2;
  ASSERT_TRUE(c2.Feed(out));
  ASSERT_EQ(c2.complete, 1);
  EXPECT_EQ(c2.reqs[0].body, std::string("t=") + kValue);
}

TEST(RequestRewriterTest, SeveralRequestsOnOneConnection) {
  std::string in;
  for (int i = 0; i < 3; ++i) {
    in += "GET /r" + std::to_string(i) + "?k=" + kPlaceholder + " HTTP/1.1\r\nHost: api.test\r\n\r\n";
  }
  RequestCollector c;
  ASSERT_TRUE(c.Feed(Rewrite(in, 11)));
  ASSERT_EQ(c.complete, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.reqs[i].url, "/r" + std::to_string(i) + "?k=" + kValue);
}

TEST(RequestRewriterTest, BytesAfterAnUpgradePassUnchanged) {
  std::string in = std::string("GET /ws?k=") + kPlaceholder +
                   " HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
                   "frame-" + kPlaceholder;
  std::string out = Rewrite(in, 9);
  RequestCollector c;
  std::string rest;
  ASSERT_TRUE(c.Feed(out, &rest));
  EXPECT_TRUE(c.upgraded());
  EXPECT_EQ(c.reqs[0].url, std::string("/ws?k=") + kValue);
  EXPECT_EQ(rest, std::string("frame-") + kPlaceholder);
}

TEST(RequestRewriterTest, MalformedAndOversizedRequestsAreRefused) {
  RequestRewriter rw(OneReplacement());
  std::string out;
  EXPECT_FALSE(rw.Feed("NOT HTTP AT ALL\r\n\r\n", &out).ok());
  RequestRewriter rw2(OneReplacement());
  std::string head = "GET / HTTP/1.1\r\nX-Big: " + std::string(70 << 10, 'a') + "\r\n\r\n";
  EXPECT_FALSE(rw2.Feed(head, &out).ok());
  RequestRewriter rw3(OneReplacement());
  EXPECT_FALSE(rw3.Feed("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                        &out).ok());
  EXPECT_EQ(out.find(kValue), std::string::npos);
}

TEST(SecretHostMatchesTest, ExactAndOneLabelWildcard) {
  EXPECT_TRUE(SecretHostMatches("api.test", "api.test"));
  EXPECT_TRUE(SecretHostMatches("API.test", "api.TEST."));
  EXPECT_TRUE(SecretHostMatches("api.test:443", "api.test"));
  EXPECT_FALSE(SecretHostMatches("api.test:8443", "api.test"));
  EXPECT_FALSE(SecretHostMatches("api.test", "xapi.test"));
  EXPECT_TRUE(SecretHostMatches("*.example.com", "a.example.com"));
  EXPECT_FALSE(SecretHostMatches("*.example.com", "a.b.example.com"));  // One label (0.9).
  EXPECT_FALSE(SecretHostMatches("10.0.0.1", "10.0.0.1"));
  EXPECT_FALSE(SecretHostMatches("10.0.0.0/8", "10.0.0.1"));
  EXPECT_FALSE(SecretHostMatches("*.example.com", "example.com"));
  EXPECT_FALSE(SecretHostMatches("*.example.com", "a,b.example.com"));
  EXPECT_FALSE(SecretHostMatches("", ""));
}

// ---- CA and leaves ---------------------------------------------------------------------

// Whether `leaf` verifies against `ca` for `host` as a TLS server certificate.
bool Verifies(X509* ca, X509* leaf, const std::string& host) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  ERR_clear_error();
  return ok;
}

TEST(SecretCaTest, LeavesVerifyForTheirNameOnly) {
  auto ca = SecretCa::Generate("box1");
  ASSERT_TRUE(ca.ok()) << ca.error().ToString();
  auto leaf = ca->MintLeaf("api.test");
  ASSERT_TRUE(leaf.ok());
  EXPECT_TRUE(Verifies(ca->cert(), *leaf, "api.test"));
  EXPECT_FALSE(Verifies(ca->cert(), *leaf, "other.test"));
  auto again = ca->MintLeaf("api.test");
  EXPECT_EQ(*again, *leaf);  // Cached.
  auto other = SecretCa::Generate("box2");
  EXPECT_FALSE(Verifies(other->cert(), *leaf, "api.test"));
  EXPECT_EQ(X509_check_ca(ca->cert()), 1);
  EXPECT_EQ(X509_check_ca(*leaf), 0);
  EXPECT_EQ(EVP_PKEY_get_id(X509_get0_pubkey(ca->cert())), EVP_PKEY_EC);
  auto rsa = ca->MintLeaf("api.test", SecretCa::LeafKind::kRsa);
  ASSERT_TRUE(rsa.ok());
  EXPECT_EQ(EVP_PKEY_get_id(X509_get0_pubkey(*rsa)), EVP_PKEY_RSA);
  EXPECT_TRUE(Verifies(ca->cert(), *rsa, "api.test"));
}

TEST(SecretCaTest, PemRoundTripKeepsTheCa) {
  auto ca = SecretCa::Generate("box");
  ASSERT_TRUE(ca.ok());
  std::string key = ca->KeyPem(), cert = ca->CertPem();
  EXPECT_NE(key.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(cert.find("PRIVATE"), std::string::npos);
  auto back = SecretCa::FromPem(key, cert);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  auto leaf = back->MintLeaf("api.test");
  ASSERT_TRUE(leaf.ok());
  EXPECT_TRUE(Verifies(ca->cert(), *leaf, "api.test"));
  auto other = SecretCa::Generate("x");
  EXPECT_FALSE(SecretCa::FromPem(other->KeyPem(), cert).ok());
  EXPECT_FALSE(SecretCa::FromPem("junk", cert).ok());
}

// ---- End to end over loopback -----------------------------------------------------------

std::string TempFile(const std::string& text) {
  char path[] = "/tmp/boxlite-secret-test-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

UniqueFd Listen(uint16_t* port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(fd.get(), 16), 0);
  socklen_t len = sizeof a;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

UniqueFd Connect(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// The real HTTPS server: a certificate for api.test and other.test from a test CA; it
// answers every request with 200 and "ok <n>", and after a 101 echoes raw bytes.
class TestServer {
 public:
  explicit TestServer(SecretCa* test_ca) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    X509* leaf = *test_ca->MintLeaf("api.test");
    SSL_CTX_use_certificate(ctx_, leaf);
    SSL_CTX_use_PrivateKey(ctx_, test_ca->leaf_key());
    listen_ = Listen(&port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    stop_ = true;
    shutdown(listen_.get(), SHUT_RDWR);
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }
  std::string received() {
    std::lock_guard<std::mutex> l(mu_);
    return received_;
  }
  std::vector<ParsedRequest> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept(listen_.get(), nullptr, nullptr);
      if (c < 0) return;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) Session(ssl);
      SSL_shutdown(ssl);
      SSL_free(ssl);
      close(c);
      ERR_clear_error();
    }
  }
  void Session(SSL* ssl) {
    RequestCollector rc;
    char buf[16384];
    int answered = 0;
    bool upgraded = false;
    for (;;) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return;
      std::string data(buf, static_cast<size_t>(n));
      {
        std::lock_guard<std::mutex> l(mu_);
        received_ += data;
      }
      if (upgraded) {
        SSL_write(ssl, data.data(), static_cast<int>(data.size()));  // Echo.
        continue;
      }
      std::string rest;
      if (!rc.Feed(data, &rest)) return;
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_ = rc.reqs;
      }
      while (answered < rc.complete) {
        std::string body = "ok " + std::to_string(answered++);
        std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\n\r\n" + body;
        if (rc.upgraded()) resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
      }
      if (rc.upgraded()) {
        upgraded = true;
        if (!rest.empty()) SSL_write(ssl, rest.data(), static_cast<int>(rest.size()));
      }
    }
  }

  SSL_CTX* ctx_;
  UniqueFd listen_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string received_;
  std::vector<ParsedRequest> requests_;
};

// boxlite-net's part in miniature: accepts "guest" connections and pumps each through a
// SecretTlsFlow to the server, one at a time.
class FlowPump {
 public:
  FlowPump(SecretTlsProxy* proxy, uint16_t upstream_port) : proxy_(proxy), up_port_(upstream_port) {
    listen_ = Listen(&port_);
    thread_ = std::thread([this] { Run(); });
  }
  ~FlowPump() { Stop(); }
  // Ends the pump once the flow in progress ends.
  void Stop() {
    if (!thread_.joinable()) return;
    shutdown(listen_.get(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::atomic<int> served{0};

 private:
  void Run() {
    for (;;) {
      UniqueFd guest(accept(listen_.get(), nullptr, nullptr));
      if (!guest) return;
      UniqueFd up = Connect(up_port_);
      // As the interception layer does: the handler takes a flow whose SNI has a secret.
      RunSecretFlow(proxy_, guest.get(), up.get(), {}, "127.0.0.1:" + std::to_string(up_port_));
      served++;
    }
  }
  SecretTlsProxy* proxy_;
  uint16_t up_port_;
  UniqueFd listen_;
  uint16_t port_ = 0;
  std::thread thread_;
};
// The guest: an OpenSSL client that trusts `ca_pem` and names `sni`.
class Guest {
 public:
  Guest(uint16_t port, const std::string& ca_pem, const std::string& sni,
        const char* sigalgs = nullptr) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (sigalgs != nullptr) {  // A TLS 1.2 client that signs with these only.
      SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION);
      SSL_CTX_set1_sigalgs_list(ctx_, sigalgs);
    }
    BIO* b = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
    X509* ca = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca);
    X509_free(ca);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    static const unsigned char alpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx_, alpn, sizeof alpn);
    fd_ = Connect(port);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_.get());
    SSL_set_tlsext_host_name(ssl_, sni.c_str());
    SSL_set1_host(ssl_, sni.c_str());
    connected_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~Guest() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  bool connected() const { return connected_; }
  SSL* ssl() const { return ssl_; }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  // Sends `data` in TLS records of `step` bytes.
  void Send(const std::string& data, size_t step) {
    for (size_t i = 0; i < data.size(); i += step) {
      SSL_write(ssl_, data.data() + i, static_cast<int>(std::min(step, data.size() - i)));
    }
  }
  // Reads until `want` is in what was read, or the connection ends.
  std::string ReadUntil(const std::string& want) {
    std::string got;
    char buf[4096];
    while (got.find(want) == std::string::npos) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  void Close() { SSL_shutdown(ssl_); }

 private:
  SSL_CTX* ctx_;
  UniqueFd fd_;
  SSL* ssl_;
  bool connected_ = false;
};

class SecretTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // As boxlite-net: a closed peer is an error, not a signal.
    test_ca_ = std::make_unique<SecretCa>(*SecretCa::Generate("test roots"));
    roots_ = TempFile(test_ca_->CertPem());
    // The upstream side trusts the host's default roots: point OpenSSL's default at the
    // test CA, as the VM test does with SSL_CERT_FILE.
    setenv("SSL_CERT_FILE", roots_.c_str(), 1);
    server_ = std::make_unique<TestServer>(test_ca_.get());
    auto ca = SecretCa::Generate("box");
    box_ca_pem_ = ca->CertPem();
    SecretRule rule{"API_KEY", kPlaceholder, kValue, {"api.test", "*.wild.test"}};
    auto proxy = SecretTlsProxy::Create(std::move(*ca), {rule});
    ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
    proxy_ = std::move(*proxy);
    pump_ = std::make_unique<FlowPump>(proxy_.get(), server_->port());
  }
  void TearDown() override {
    pump_.reset();
    server_.reset();
    unsetenv("SSL_CERT_FILE");
    unlink(roots_.c_str());
  }
  std::unique_ptr<SecretCa> test_ca_;
  std::string roots_, box_ca_pem_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<SecretTlsProxy> proxy_;
  std::unique_ptr<FlowPump> pump_;
};

TEST_F(SecretTlsTest, SubstitutesInHeaderQueryAndBodyOverKeepAlive) {
  Guest g(pump_->port(), box_ca_pem_, "api.test");
  ASSERT_TRUE(g.connected());
  // The guest offered h2 first; the server has no h2, so the guest gets http/1.1.
  EXPECT_EQ(g.alpn(), "http/1.1");
  std::string body = std::string("secret=") + kPlaceholder;
  std::string req1 = std::string("POST /a?key=") + kPlaceholder +
                     " HTTP/1.1\r\nHost: api.test\r\nX-Api-Key: " + kPlaceholder +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  g.Send(req1, 5);  // Placeholders split across TLS records.
  EXPECT_NE(g.ReadUntil("ok 0").find("ok 0"), std::string::npos);
  std::string req2 = std::string("GET /b?k=") + kPlaceholder + " HTTP/1.1\r\nHost: api.test\r\n\r\n";
  g.Send(req2, req2.size());
  EXPECT_NE(g.ReadUntil("ok 1").find("ok 1"), std::string::npos);
  g.Close();
  auto reqs = server_->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].url, std::string("/a?key=") + kValue);
  EXPECT_EQ(reqs[0].Header("X-Api-Key"), kValue);
  EXPECT_EQ(reqs[0].body, std::string("secret=") + kValue);
  EXPECT_EQ(reqs[1].url, std::string("/b?k=") + kValue);
  EXPECT_EQ(server_->received().find(kPlaceholder), std::string::npos);
}

TEST_F(SecretTlsTest, RsaOnlyClientsGetAnRsaLeaf) {
  Guest g(pump_->port(), box_ca_pem_, "api.test", "RSA+SHA256");
  ASSERT_TRUE(g.connected());
  std::string req = std::string("GET /r?k=") + kPlaceholder + " HTTP/1.1\r\nHost: api.test\r\n\r\n";
  g.Send(req, req.size());
  EXPECT_NE(g.ReadUntil("ok 0").find("ok 0"), std::string::npos);
  auto reqs = server_->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].url, std::string("/r?k=") + kValue);
}

TEST_F(SecretTlsTest, WebSocketBytesPassAfterTheUpgrade) {
  Guest g(pump_->port(), box_ca_pem_, "api.test");
  ASSERT_TRUE(g.connected());
  g.Send(std::string("GET /ws?k=") + kPlaceholder +
             " HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
         1000);
  EXPECT_NE(g.ReadUntil("\r\n\r\n").find(" 101 "), std::string::npos);
  std::string frame = std::string("\x81\x05hello-") + kPlaceholder;
  g.Send(frame, frame.size());
  EXPECT_NE(g.ReadUntil(kPlaceholder).find(kPlaceholder), std::string::npos);  // Echoed as sent.
  auto reqs = server_->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].url, std::string("/ws?k=") + kValue);
}

TEST_F(SecretTlsTest, TheApexOfAWildcardIsNotIntercepted) {
  // "*.wild.test" does not match "wild.test": the flow passes to the real server, whose
  // certificate (from the test CA) a guest trusting only the box CA refuses.
  {
    Guest g(pump_->port(), box_ca_pem_, "wild.test");
    EXPECT_FALSE(g.connected());
  }
  pump_->Stop();
  EXPECT_EQ(pump_->served.load(), 1);
}

TEST_F(SecretTlsTest, PassThroughKeepsThePlaceholder) {
  // A name without a secret: the guest talks to the real server (trusting its CA).
  auto plain = SecretTlsProxy::Create(*SecretCa::Generate("b2"),
                                      {SecretRule{"K", kPlaceholder, kValue, {"elsewhere.test"}}});
  ASSERT_TRUE(plain.ok());
  FlowPump pump(plain->get(), server_->port());
  Guest g(pump.port(), test_ca_->CertPem(), "api.test");
  ASSERT_TRUE(g.connected());
  std::string req = std::string("GET /p?k=") + kPlaceholder + " HTTP/1.1\r\nHost: api.test\r\n\r\n";
  g.Send(req, req.size());
  EXPECT_NE(g.ReadUntil("ok 0").find("ok 0"), std::string::npos);
  g.Close();
  auto reqs = server_->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].url, std::string("/p?k=") + kPlaceholder);
  EXPECT_EQ(server_->received().find(kValue), std::string::npos);
}

TEST_F(SecretTlsTest, WildcardMatchesOneLabelUnderItsDomain) {
  EXPECT_EQ(proxy_->ReplacementsFor("a.wild.test").size(), 1u);
  EXPECT_TRUE(proxy_->ReplacementsFor("a.b.wild.test").empty());  // BoxLite 0.9's rule.
  EXPECT_TRUE(proxy_->ReplacementsFor("wild.test").empty());
  EXPECT_TRUE(proxy_->ReplacementsFor("other.test").empty());
}

TEST_F(SecretTlsTest, UntrustedServerGetsNothingAndNothingIsLogged) {
  // The host's roots do not include the test CA: the real server is refused.
  std::string empty = TempFile(SecretCa::Generate("unrelated")->CertPem());
  setenv("SSL_CERT_FILE", empty.c_str(), 1);
  auto ca = SecretCa::Generate("box3");
  std::string pem = ca->CertPem();
  auto strict = SecretTlsProxy::Create(std::move(*ca), {SecretRule{"K", kPlaceholder, kValue, {"api.test"}}});
  ASSERT_TRUE(strict.ok());
  FlowPump pump(strict->get(), server_->port());
  base::SetLogLevel(base::LogLevel::kTrace);
  testing::internal::CaptureStderr();
  {
    Guest g(pump.port(), pem, "api.test");
    std::string req = std::string("GET /x?k=") + kPlaceholder + " HTTP/1.1\r\nHost: api.test\r\n\r\n";
    if (g.connected()) {
      g.Send(req, req.size());
      EXPECT_EQ(g.ReadUntil("ok").find("ok"), std::string::npos);
    }
  }
  // Also a malformed request on a trusted flow.
  setenv("SSL_CERT_FILE", roots_.c_str(), 1);
  {
    Guest g(pump_->port(), box_ca_pem_, "api.test");
    ASSERT_TRUE(g.connected());
    g.Send(std::string("GARBAGE ") + kPlaceholder + "\r\n\r\n", 100);
    g.ReadUntil("never");
  }
  pump_->Stop();  // Every log line is written.
  std::string log = testing::internal::GetCapturedStderr();
  base::SetLogLevel(base::LogLevel::kWarn);
  EXPECT_NE(log.find("not trusted"), std::string::npos) << log;
  EXPECT_EQ(log.find(kValue), std::string::npos) << log;
  EXPECT_EQ(server_->received().find(kValue), std::string::npos);
  unlink(empty.c_str());
}


// ---- HTTP/2 ----------------------------------------------------------------------------

// Sends what `s` has to `ssl`, then reads one TLS read into it, until `done` (true) or
// the connection fails (false). Blocking; for the test peers.
bool DriveH2(SSL* ssl, nghttp2_session* s, const std::function<bool()>& done) {
  for (;;) {
    const uint8_t* d = nullptr;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(s, &d)) > 0) {
      if (SSL_write(ssl, d, static_cast<int>(n)) != n) return false;
    }
    if (n < 0) return false;
    if (done()) return true;
    if (!nghttp2_session_want_read(s)) return false;
    char buf[16384];
    int r = SSL_read(ssl, buf, sizeof buf);
    if (r <= 0) return false;
    if (nghttp2_session_mem_recv(s, reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(r)) < 0) {
      return false;
    }
  }
}

struct H2Message {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string send;  // What this peer sends on the stream (the body).
  size_t sent = 0;
  size_t max_frame = 1000;
  std::string trailer;  // When set: sent as a `x-trailer` trailer after the body.
  bool done = false;
  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

ssize_t SendBody(nghttp2_session* session, int32_t stream_id, uint8_t* out, size_t len, uint32_t* flags,
                 nghttp2_data_source* src, void*) {
  auto* m = static_cast<H2Message*>(src->ptr);
  size_t n = std::min({len, m->send.size() - m->sent, m->max_frame});
  std::memcpy(out, m->send.data() + m->sent, n);
  m->sent += n;
  if (m->sent == m->send.size()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!m->trailer.empty()) {
      nghttp2_nv nv = {(uint8_t*)"x-trailer", (uint8_t*)m->trailer.data(), 9, m->trailer.size(),
                       NGHTTP2_NV_FLAG_NONE};
      nghttp2_submit_trailer(session, stream_id, &nv, 1);
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  return static_cast<ssize_t>(n);
}

// Callbacks shared by the test peers: headers and body into the stream's H2Message
// (found by `find`), `on_end` when the peer ended its side.
struct H2Peer {
  std::function<H2Message*(int32_t)> find;
  std::function<void(nghttp2_session*, int32_t)> on_end;
  std::function<void(int32_t, uint32_t)> on_close;  // Optional: a stream closed, its error.

  nghttp2_session* New(bool server) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                const uint8_t* v, size_t vl, uint8_t, void* u) {
          if (H2Message* m = static_cast<H2Peer*>(u)->find(f->hd.stream_id)) {
            m->headers.emplace_back(std::string(reinterpret_cast<const char*>(n), nl),
                                    std::string(reinterpret_cast<const char*>(v), vl));
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* u) {
          if (H2Message* m = static_cast<H2Peer*>(u)->find(id)) {
            m->body.append(reinterpret_cast<const char*>(d), n);
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cbs, [](nghttp2_session* s, const nghttp2_frame* f, void* u) {
          if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
              (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            static_cast<H2Peer*>(u)->on_end(s, f->hd.stream_id);
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, int32_t id, uint32_t error, void* u) {
          auto* peer = static_cast<H2Peer*>(u);
          if (peer->on_close) peer->on_close(id, error);
          return 0;
        });
    nghttp2_session* s = nullptr;
    if (server) {
      nghttp2_session_server_new(&s, cbs, this);
    } else {
      nghttp2_session_client_new(&s, cbs, this);
    }
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, nullptr, 0);
    return s;
  }
};

int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
             unsigned int inlen, void*) {
  static const unsigned char h2[] = {2, 'h', '2'};
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, h2, sizeof h2, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

// The real server, speaking h2 (ALPN): records each request and answers it with 200
// and a body of `response_size` bytes.
class H2Server {
 public:
  H2Server(SecretCa* test_ca, size_t response_size) : response_(response_size, 'r') {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx_, *test_ca->MintLeaf("api.test"));
    SSL_CTX_use_PrivateKey(ctx_, test_ca->leaf_key());
    SSL_CTX_set_alpn_select_cb(ctx_, &SelectH2, nullptr);
    listen_ = Listen(&port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~H2Server() {
    shutdown(listen_.get(), SHUT_RDWR);
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }
  std::vector<H2Message> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return done_;
  }

 private:
  void Serve() {
    for (;;) {
      UniqueFd c(accept(listen_.get(), nullptr, nullptr));
      if (!c) return;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c.get());
      if (SSL_accept(ssl) == 1) Session(ssl);
      SSL_shutdown(ssl);
      SSL_free(ssl);
      ERR_clear_error();
    }
  }
  void Session(SSL* ssl) {
    std::map<int32_t, H2Message> streams;
    H2Peer peer;
    peer.find = [&](int32_t id) { return &streams[id]; };
    peer.on_end = [&](nghttp2_session* s, int32_t id) {
      H2Message& m = streams[id];
      {
        std::lock_guard<std::mutex> l(mu_);
        done_.push_back(m);
      }
      m.send = response_;
      m.max_frame = 16384;
      m.trailer = "done";
      std::string len = std::to_string(response_.size());
      nghttp2_nv nv[] = {
          {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
          {(uint8_t*)"content-length", (uint8_t*)len.data(), 14, len.size(), NGHTTP2_NV_FLAG_NONE}};
      nghttp2_data_provider prd{};
      prd.source.ptr = &m;
      prd.read_callback = &SendBody;
      nghttp2_submit_response(s, id, nv, 2, &prd);
    };
    nghttp2_session* s = peer.New(/*server=*/true);
    DriveH2(ssl, s, [] { return false; });
    nghttp2_session_del(s);
  }

  std::string response_;
  SSL_CTX* ctx_;
  UniqueFd listen_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<H2Message> done_;
};

// The guest speaking h2 on `ssl` (a Guest that negotiated h2): sends the requests
// (headers; a body when `bodies[i]` is not empty) on concurrent streams and waits for
// every response. Returns the responses, in order.
std::vector<H2Message> H2Exchange(
    SSL* ssl, const std::vector<std::vector<std::pair<std::string, std::string>>>& heads,
    const std::vector<std::string>& bodies) {
  std::map<int32_t, H2Message> streams;
  std::vector<int32_t> ids;
  size_t ended = 0;
  H2Peer peer;
  peer.find = [&](int32_t id) { return &streams[id]; };
  peer.on_end = [&](nghttp2_session*, int32_t) { ++ended; };
  nghttp2_session* s = peer.New(/*server=*/false);
  std::vector<H2Message> sending(heads.size());
  for (size_t i = 0; i < heads.size(); ++i) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [k, v] : heads[i]) {
      nv.push_back({(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    sending[i].send = bodies[i];
    nghttp2_data_provider prd{};
    prd.source.ptr = &sending[i];
    prd.read_callback = &SendBody;
    ids.push_back(nghttp2_submit_request(s, nullptr, nv.data(), nv.size(),
                                         bodies[i].empty() ? nullptr : &prd, nullptr));
  }
  DriveH2(ssl, s, [&] { return ended == heads.size(); });
  nghttp2_session_del(s);
  std::vector<H2Message> out;
  for (int32_t id : ids) out.push_back(streams[id]);
  return out;
}

using Head = std::vector<std::pair<std::string, std::string>>;

Head PostHead(const std::string& path, size_t content_length) {
  return {{":method", "POST"}, {":scheme", "https"}, {":authority", "api.test"},
          {":path", path}, {"x-api-key", kPlaceholder},
          {"content-length", std::to_string(content_length)}};
}

TEST_F(SecretTlsTest, Http2IsBridgedWhenTheServerSpeaksItWithSubstitutionEverywhere) {
  H2Server h2(test_ca_.get(), 200 << 10);  // Responses beyond the initial windows.
  FlowPump pump(proxy_.get(), h2.port());
  Guest g(pump.port(), box_ca_pem_, "api.test");
  ASSERT_TRUE(g.connected());
  EXPECT_EQ(g.alpn(), "h2");
  // A body larger than the windows, with placeholders across DATA frames (1000 bytes
  // each) and at its end; a second stream at the same time, with no body.
  std::string body = std::string(995, 'a') + kPlaceholder + std::string(150 << 10, 'b') +
                     kPlaceholder;
  Head get = {{":method", "GET"}, {":scheme", "https"}, {":authority", "api.test"},
              {":path", std::string("/g?k=") + kPlaceholder}};
  auto responses = H2Exchange(g.ssl(), {PostHead(std::string("/p?key=") + kPlaceholder, body.size()), get},
                              {body, ""});
  ASSERT_EQ(responses.size(), 2u);
  for (const auto& r : responses) {
    EXPECT_EQ(r.Header(":status"), "200");
    EXPECT_EQ(r.body, std::string(200 << 10, 'r'));  // Passed unchanged.
    EXPECT_EQ(r.Header("x-trailer"), "done");         // Trailers too.
  }
  auto reqs = h2.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const H2Message* post = reqs[0].Header(":method") == "POST" ? &reqs[0] : &reqs[1];
  const H2Message* got = post == &reqs[0] ? &reqs[1] : &reqs[0];
  EXPECT_EQ(post->Header(":path"), std::string("/p?key=") + kValue);
  EXPECT_EQ(post->Header("x-api-key"), kValue);
  EXPECT_EQ(post->body, std::string(995, 'a') + kValue + std::string(150 << 10, 'b') + kValue);
  // The length changed: the guest's content-length is not passed on.
  EXPECT_EQ(post->Header("content-length"), "");
  EXPECT_EQ(got->Header(":path"), std::string("/g?k=") + kValue);
  for (const auto& r : reqs) {
    for (const auto& [k, v] : r.headers) EXPECT_EQ(v.find(kPlaceholder), std::string::npos) << k;
    EXPECT_EQ(r.body.find(kPlaceholder), std::string::npos);
  }
}


// Hostile HTTP/2 from the guest: a valid client's bytes, mutated and split at random,
// never crash the bridge, and what it sends the server is always a well-formed h2
// client stream (an nghttp2 server reads it without a protocol error) until it stops.
TEST(H2BridgeTest, MutatedGuestStreamsNeverCrashOrCorruptTheServerSide) {
  // A guest's first flight: preface, SETTINGS, a request with a body.
  std::string flight;
  {
    H2Peer peer;
    peer.find = [](int32_t) { return nullptr; };
    peer.on_end = [](nghttp2_session*, int32_t) {};
    nghttp2_session* c = peer.New(/*server=*/false);
    H2Message body;
    body.send = std::string("x=") + kPlaceholder;
    nghttp2_data_provider prd{};
    prd.source.ptr = &body;
    prd.read_callback = &SendBody;
    auto head = PostHead(std::string("/?k=") + kPlaceholder, body.send.size());
    std::vector<nghttp2_nv> nv;
    for (const auto& [k, v] : head) {
      nv.push_back({(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_submit_request(c, nullptr, nv.data(), nv.size(), &prd, nullptr);
    const uint8_t* d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c, &d)) > 0) flight.append((const char*)d, n);
    nghttp2_session_del(c);
  }
  std::mt19937 rng(2);
  for (int i = 0; i < 800; ++i) {
    std::string in = flight;
    int edits = i == 0 ? 0 : 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) in[rng() % in.size()] = static_cast<char>(rng());
    H2Bridge bridge(OneReplacement());
    std::string to_guest, to_up;
    ASSERT_TRUE(bridge.Start(&to_guest, &to_up).ok());
    for (size_t at = 0; at < in.size();) {
      size_t n = 1 + rng() % 64;
      if (!bridge.FromGuest(std::string_view(in).substr(at, n), &to_guest, &to_up).ok()) break;
      at += n;
    }
    // The server's view of what the bridge sent.
    H2Message seen;
    H2Peer server;
    server.find = [&](int32_t) { return &seen; };
    server.on_end = [](nghttp2_session*, int32_t) {};
    nghttp2_session* s = server.New(/*server=*/true);
    ssize_t r = nghttp2_session_mem_recv(s, (const uint8_t*)to_up.data(), to_up.size());
    nghttp2_session_del(s);
    EXPECT_EQ(r, static_cast<ssize_t>(to_up.size())) << i;
    EXPECT_EQ(to_up.find(kPlaceholder), std::string::npos) << i;
    for (const auto& [k, v] : seen.headers) EXPECT_EQ(v.find(kPlaceholder), std::string::npos);
    EXPECT_EQ(seen.body.find(kPlaceholder), std::string::npos) << i;
    if (i == 0) {
      EXPECT_EQ(seen.Header(":path"), std::string("/?k=") + kValue);
      EXPECT_EQ(seen.body, std::string("x=") + kValue);
    }
  }
}


// Moves bytes between an in-memory guest session, the bridge and a server session until
// none move.
void PumpH2(nghttp2_session* guest, H2Bridge* bridge, nghttp2_session* server) {
  for (bool moved = true; moved;) {
    moved = false;
    std::string to_guest, to_up;
    const uint8_t* d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(guest, &d)) > 0) {
      ASSERT_TRUE(bridge->FromGuest({(const char*)d, (size_t)n}, &to_guest, &to_up).ok());
      moved = true;
    }
    while ((n = nghttp2_session_mem_send(server, &d)) > 0) {
      ASSERT_TRUE(bridge->FromUpstream({(const char*)d, (size_t)n}, &to_guest, &to_up).ok());
      moved = true;
    }
    nghttp2_session_mem_recv(server, (const uint8_t*)to_up.data(), to_up.size());
    nghttp2_session_mem_recv(guest, (const uint8_t*)to_guest.data(), to_guest.size());
    moved = moved || !to_up.empty() || !to_guest.empty();
  }
}

TEST(H2BridgeTest, AGuestsResetReachesTheServerStreamAndTheOtherWay) {
  H2Bridge bridge(OneReplacement());
  std::string to_guest, to_up;
  ASSERT_TRUE(bridge.Start(&to_guest, &to_up).ok());
  std::map<int32_t, H2Message> at_guest, at_server;
  std::vector<std::pair<int32_t, uint32_t>> guest_closed, server_closed;
  H2Peer gp, sp;
  gp.find = [&](int32_t id) { return &at_guest[id]; };
  gp.on_end = [](nghttp2_session*, int32_t) {};
  gp.on_close = [&](int32_t id, uint32_t e) { guest_closed.emplace_back(id, e); };
  sp.find = [&](int32_t id) { return &at_server[id]; };
  sp.on_end = [](nghttp2_session*, int32_t) {};
  sp.on_close = [&](int32_t id, uint32_t e) { server_closed.emplace_back(id, e); };
  nghttp2_session* g = gp.New(/*server=*/false);
  nghttp2_session* srv = sp.New(/*server=*/true);
  nghttp2_session_mem_recv(g, (const uint8_t*)to_guest.data(), to_guest.size());
  nghttp2_session_mem_recv(srv, (const uint8_t*)to_up.data(), to_up.size());
  // Two uploads that never end.
  H2Message endless;
  endless.send = std::string(10, 'u') + kPlaceholder;
  nghttp2_data_provider prd{};
  prd.source.ptr = &endless;
  prd.read_callback = [](nghttp2_session*, int32_t, uint8_t* out, size_t len, uint32_t*,
                         nghttp2_data_source* src, void*) -> ssize_t {
    auto* m = static_cast<H2Message*>(src->ptr);
    if (m->sent >= m->send.size()) return NGHTTP2_ERR_DEFERRED;
    size_t n = std::min(len, m->send.size() - m->sent);
    std::memcpy(out, m->send.data() + m->sent, n);
    m->sent += n;
    return static_cast<ssize_t>(n);
  };
  auto head = PostHead("/up", 100);
  std::vector<nghttp2_nv> nv;
  for (const auto& [k, v] : head) {
    nv.push_back({(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  int32_t a = nghttp2_submit_request(g, nullptr, nv.data(), nv.size(), &prd, nullptr);
  int32_t b = nghttp2_submit_request(g, nullptr, nv.data(), nv.size(), &prd, nullptr);
  PumpH2(g, &bridge, srv);
  ASSERT_EQ(at_server.size(), 2u);
  EXPECT_EQ(at_server.begin()->second.body, std::string(10, 'u') + kValue);
  // The guest cancels stream a: the server's stream for it is reset with CANCEL.
  nghttp2_submit_rst_stream(g, NGHTTP2_FLAG_NONE, a, NGHTTP2_CANCEL);
  PumpH2(g, &bridge, srv);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].second, static_cast<uint32_t>(NGHTTP2_CANCEL));
  int32_t server_b = server_closed[0].first == 1 ? 3 : 1;
  // The server refuses the other: the guest's stream b is reset with its code.
  nghttp2_submit_rst_stream(srv, NGHTTP2_FLAG_NONE, server_b, NGHTTP2_REFUSED_STREAM);
  PumpH2(g, &bridge, srv);
  bool b_reset = false;
  for (auto [id, e] : guest_closed) {
    if (id == b) b_reset = e == static_cast<uint32_t>(NGHTTP2_REFUSED_STREAM);
  }
  EXPECT_TRUE(b_reset);
  nghttp2_session_del(g);
  nghttp2_session_del(srv);
}

}  // namespace
}  // namespace boxlite::net

namespace boxlite::net {
namespace {

TEST(SecretProxyConfigTest, RoundTripsAndNeverQuotesTheDocument) {
  auto ca = SecretCa::Generate("cfg");
  ASSERT_TRUE(ca.ok());
  SecretProxyConfig c{ca->KeyPem(), ca->CertPem(), ca->CertPem(),
                      {SecretRule{"K", kPlaceholder, kValue, {"api.test"}}}};
  auto back = SecretProxyConfigFromJson(SecretProxyConfigToJson(c));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->rules[0].value, kValue);
  auto proxy = MakeSecretProxy(*back);
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  EXPECT_EQ((*proxy)->ReplacementsFor("api.test").size(), 1u);
  auto bad = SecretProxyConfigFromJson(std::string("{\"ca_key\":\"") + kValue + "\"}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().ToString().find(kValue), std::string::npos);
  c.roots_pem = "no certificates here";
  EXPECT_FALSE(MakeSecretProxy(c).ok());
}

}  // namespace
}  // namespace boxlite::net

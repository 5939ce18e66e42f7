// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/secret_config.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"

namespace boxlite::net {
namespace {
using Json = nlohmann::json;
}  // namespace

std::string SecretProxyConfigToJson(const SecretProxyConfig& c) {
  Json rules = Json::array();
  for (const auto& r : c.rules) {
    rules.push_back({{"name", r.name}, {"placeholder", r.placeholder}, {"value", r.value},
                     {"hosts", r.hosts}});
  }
  Json j = {{"ca_key", c.ca_key_pem}, {"ca_cert", c.ca_cert_pem}, {"roots", c.roots_pem},
            {"secrets", rules}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<SecretProxyConfig> SecretProxyConfigFromJson(std::string_view text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("the secrets configuration is not a JSON object");
  }
  SecretProxyConfig c;
  try {
    c.ca_key_pem = j.at("ca_key").get<std::string>();
    c.ca_cert_pem = j.at("ca_cert").get<std::string>();
    c.roots_pem = j.value("roots", std::string());
    for (const auto& r : j.at("secrets")) {
      c.rules.push_back({r.at("name").get<std::string>(), r.at("placeholder").get<std::string>(),
                         r.at("value").get<std::string>(),
                         r.at("hosts").get<std::vector<std::string>>()});
    }
  } catch (const Json::exception&) {
    // The message would quote the document, values included: name the problem only.
    return Status::InvalidArgument("the secrets configuration lacks a field or has a wrong type");
  }
  return c;
}

Result<std::unique_ptr<SecretTlsProxy>> MakeSecretProxy(const SecretProxyConfig& c) {
  BOXLITE_ASSIGN_OR_RETURN(SecretCa ca, SecretCa::FromPem(c.ca_key_pem, c.ca_cert_pem));
  return SecretTlsProxy::Create(std::move(ca), c.rules, c.roots_pem);
}

Result<std::string> ReadDefaultRoots() {
  // OpenSSL resolves its default file itself (SSL_CERT_FILE when set); its store then
  // holds the certificates, written out again as PEM.
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return Status::Internal("make a certificate store");
  (void)X509_STORE_set_default_paths(store);
  std::string pem;
  BIO* bio = BIO_new(BIO_s_mem());
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  for (int i = 0; bio && i < sk_X509_OBJECT_num(objects); ++i) {
    X509* cert = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i));
    if (cert != nullptr) (void)PEM_write_bio_X509(bio, cert);
  }
  if (bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    if (n > 0) pem.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  X509_STORE_free(store);
  ERR_clear_error();
  if (pem.empty()) {
    return Status::NotFound(std::string("no trusted certificates for secret hosts in ") +
                                X509_get_default_cert_file(),
                            "install ca-certificates or set SSL_CERT_FILE");
  }
  return pem;
}

}  // namespace boxlite::net

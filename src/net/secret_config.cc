// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/secret_config.h"

#include <openssl/x509.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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
  const char* env = std::getenv(X509_get_default_cert_file_env());
  std::string path = env && *env ? env : X509_get_default_cert_file();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("cannot read the trusted certificates for secret hosts: " + path,
                            "install ca-certificates or set SSL_CERT_FILE");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What the runtime hands boxlite-net for secret substitution, as one JSON document read
// from a descriptor (`--secrets-fd N`, a sealed memfd; never the command line, never a
// file the guest or `inspect` can see): the box CA's key and certificate, the host's
// trusted roots (PEM, read by the runtime from OpenSSL's default file, so SSL_CERT_FILE
// applies: boxlite-net's jail does not show /etc/ssl) and the secrets.
// Thread-safety: pure functions.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "src/net/secret_tls.h"

namespace boxlite::net {

struct SecretProxyConfig {
  std::string ca_key_pem;
  std::string ca_cert_pem;
  std::string roots_pem;  // Empty: OpenSSL's default paths as boxlite-net sees them.
  std::vector<SecretRule> rules;
};

std::string SecretProxyConfigToJson(const SecretProxyConfig& config);
Result<SecretProxyConfig> SecretProxyConfigFromJson(std::string_view json);

// The proxy the configuration describes.
Result<std::unique_ptr<SecretTlsProxy>> MakeSecretProxy(const SecretProxyConfig& config);

// The certificates of OpenSSL's default file (SSL_CERT_FILE when set) as PEM, for
// SecretProxyConfig::roots_pem (OpenSSL reads it; certificate directories are not
// included); an error names the file.
Result<std::string> ReadDefaultRoots();

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A box's own certificate authority for secret substitution (docs/networking.md,
// "Secrets"): an ECDSA P-256 key and a self-signed CA certificate, made on the host when
// a box with secrets is created and kept in the box directory (mode 0600). The guest
// trusts the certificate; the key never leaves the host. MintLeaf issues the server
// certificate boxlite-net shows the guest for one TLS server name: an ECDSA P-256 one and
// an RSA-2048 one for clients that sign with RSA only (busybox wget, older embedded TLS),
// one shared leaf key of each kind per CA (made on first use), one certificate per name
// and kind, cached.
//
// Thread-safety: a SecretCa is not shared between threads.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "boxlite/result.h"

namespace boxlite::net {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The first entry of OpenSSL's error queue as text (empties the queue); `fallback` when
// the queue is empty.
std::string OpenSslError(std::string_view fallback = "unknown OpenSSL error");

class SecretCa {
 public:
  // A fresh CA: a P-256 key from the OS RNG (OpenSSL's) and a certificate valid for ten
  // years whose subject names the box (`label`, e.g. its id).
  static Result<SecretCa> Generate(std::string_view label);
  // The CA written by KeyPem/CertPem.
  static Result<SecretCa> FromPem(std::string_view key_pem, std::string_view cert_pem);

  std::string KeyPem() const;
  std::string CertPem() const;
  X509* cert() const { return cert_.get(); }

  enum class LeafKind { kEc, kRsa };
  // The leaf certificate for `server_name` (a DNS name), signed by this CA, with
  // subjectAltName DNS:<server_name> and serverAuth; its key is leaf_key(kind). Cached
  // per name and kind (at most kMaxLeaves; a full cache is emptied and starts again).
  Result<X509*> MintLeaf(const std::string& server_name, LeafKind kind = LeafKind::kEc);
  EVP_PKEY* leaf_key(LeafKind kind = LeafKind::kEc) const {
    return kind == LeafKind::kEc ? leaf_key_.get() : leaf_rsa_key_.get();
  }

  static constexpr size_t kMaxLeaves = 256;

 private:
  PkeyPtr key_;
  X509Ptr cert_;
  PkeyPtr leaf_key_;
  PkeyPtr leaf_rsa_key_;
  std::map<std::pair<std::string, LeafKind>, X509Ptr> leaves_;
};

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/secret_ca.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <utility>

#include "src/base/macros.h"

namespace boxlite::net {
namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

Status SslFailure(std::string_view what) {
  return Status::Internal(std::string(what) + ": " + OpenSslError());
}

Result<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return SslFailure("generate an EC P-256 key");
  return key;
}

// A random positive 127-bit serial number.
Status SetRandomSerial(X509* cert) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_new(), BN_free);
  if (!bn || !BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) {
    return SslFailure("make a certificate serial number");
  }
  return Status::OK();
}

Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return SslFailure("make a certificate extension");
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return SslFailure("add a certificate extension");
  return Status::OK();
}

// A version 3 certificate for `key`, valid from an hour ago for `days`, named CN=`cn`.
Result<X509Ptr> NewCert(EVP_PKEY* key, const std::string& cn, long days) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return SslFailure("make a certificate");
  BOXLITE_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600) ||
      !X509_set_pubkey(cert.get(), key)) {
    return SslFailure("set a certificate's validity and key");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>("BoxLite"), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                  0)) {
    return SslFailure("name a certificate");
  }
  return cert;
}

}  // namespace

std::string OpenSslError(std::string_view fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

Result<SecretCa> SecretCa::Generate(std::string_view label) {
  SecretCa ca;
  BOXLITE_ASSIGN_OR_RETURN(ca.key_, NewP256Key());
  std::string cn = "BoxLite box CA";
  if (!label.empty()) cn += " " + std::string(label.substr(0, 32));
  BOXLITE_ASSIGN_OR_RETURN(ca.cert_, NewCert(ca.key_.get(), cn, 3650));
  X509* c = ca.cert_.get();
  if (!X509_set_issuer_name(c, X509_get_subject_name(c))) return SslFailure("issue the CA");
  BOXLITE_RETURN_IF_ERROR(AddExtension(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  BOXLITE_RETURN_IF_ERROR(AddExtension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  BOXLITE_RETURN_IF_ERROR(AddExtension(c, c, NID_subject_key_identifier, "hash"));
  if (!X509_sign(c, ca.key_.get(), EVP_sha256())) return SslFailure("sign the CA certificate");
  return ca;
}

Result<SecretCa> SecretCa::FromPem(std::string_view key_pem, std::string_view cert_pem) {
  SecretCa ca;
  BioPtr kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  BioPtr cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  if (!kb || !cb) return SslFailure("read the box CA");
  ca.key_.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  ca.cert_.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!ca.key_ || !ca.cert_) {
    ERR_clear_error();
    return Status::Corruption("the box CA (ca-key.pem, ca.pem) is unreadable: recreate the box");
  }
  if (X509_check_private_key(ca.cert_.get(), ca.key_.get()) != 1) {
    ERR_clear_error();
    return Status::Corruption("the box CA's key does not match its certificate: recreate the box");
  }
  return ca;
}

std::string SecretCa::KeyPem() const {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || !PEM_write_bio_PrivateKey(b.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    return {};
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string SecretCa::CertPem() const {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || !PEM_write_bio_X509(b.get(), cert_.get())) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<X509*> SecretCa::MintLeaf(const std::string& server_name, LeafKind kind) {
  auto key = std::make_pair(server_name, kind);
  if (auto it = leaves_.find(key); it != leaves_.end()) return it->second.get();
  if (leaves_.size() >= kMaxLeaves) leaves_.clear();
  PkeyPtr& leaf_key = kind == LeafKind::kEc ? leaf_key_ : leaf_rsa_key_;
  if (!leaf_key) {
    leaf_key.reset(kind == LeafKind::kEc ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048));
    if (!leaf_key) return SslFailure("generate a leaf key");
  }
  // 397 days: the longest validity clients that cap leaf lifetimes accept.
  BOXLITE_ASSIGN_OR_RETURN(X509Ptr leaf, NewCert(leaf_key.get(), server_name, 397));
  X509* l = leaf.get();
  if (!X509_set_issuer_name(l, X509_get_subject_name(cert_.get()))) {
    return SslFailure("issue a leaf certificate");
  }
  std::string san = "DNS:" + server_name;
  BOXLITE_RETURN_IF_ERROR(AddExtension(l, cert_.get(), NID_basic_constraints, "critical,CA:FALSE"));
  BOXLITE_RETURN_IF_ERROR(AddExtension(l, cert_.get(), NID_key_usage,
                                       kind == LeafKind::kEc ? "critical,digitalSignature"
                                                             : "critical,digitalSignature,keyEncipherment"));
  BOXLITE_RETURN_IF_ERROR(AddExtension(l, cert_.get(), NID_ext_key_usage, "serverAuth"));
  BOXLITE_RETURN_IF_ERROR(AddExtension(l, cert_.get(), NID_subject_alt_name, san.c_str()));
  BOXLITE_RETURN_IF_ERROR(AddExtension(l, cert_.get(), NID_authority_key_identifier, "keyid:always"));
  if (!X509_sign(l, key_.get(), EVP_sha256())) return SslFailure("sign a leaf certificate");
  X509* raw = l;
  leaves_.emplace(std::move(key), std::move(leaf));
  return raw;
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_secrets.h"


#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/net/egress_rules.h"
#include "src/net/secret_ca.h"
#include "src/net/secret_config.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

using Json = nlohmann::json;

// BoxLite 0.9's names: any text; the guest's variable is BOXLITE_SECRET_ and the name in
// upper case with every byte outside [A-Za-z0-9_] as '_' (an empty name: _UNNAMED).
bool ValidSecretName(const std::string& n) {
  return n.size() <= kMaxSecretNameBytes && n.find('\0') == std::string::npos;
}

std::string SecretEnvName(const std::string& name) {
  if (name.empty()) return "BOXLITE_SECRET__UNNAMED";
  std::string out = "BOXLITE_SECRET_";
  for (unsigned char c : name) {
    out += std::isalnum(c) || c == '_' ? static_cast<char>(std::toupper(c)) : '_';
  }
  return out;
}

// allow_net's patterns (one parser: src/net/egress_rules.h), limited to what can match a
// TLS server name on port 443: a host name or *.domain, with no port or 443.
Status CheckSecretHost(const std::string& secret, const std::string& pattern) {
  auto rule = net::ParseEgressRule(pattern);
  if (!rule.ok()) return Status::InvalidArgument("secret " + secret + ": " + rule.error().message());
  if (rule->kind != net::EgressRule::Kind::kHost && rule->kind != net::EgressRule::Kind::kWildcard) {
    return Status::InvalidArgument("secret " + secret + ": host \"" + pattern +
                                   "\" is an address: secrets match TLS server names, give the "
                                   "host name");
  }
  if (rule->port != 0 && rule->port != 443) {
    return Status::InvalidArgument("secret " + secret + ": host \"" + pattern +
                                   "\" names a port other than 443 (secrets are substituted "
                                   "over HTTPS on 443 only)");
  }
  return Status::OK();
}

}  // namespace

Status ValidateSecrets(const std::vector<Secret>& secrets, const std::string& network) {
  if (secrets.empty()) return Status::OK();
  if (network != "nat") {
    return Status::InvalidArgument("secrets need network \"nat\" (NetworkSpec mode \"enabled\")");
  }
  if (secrets.size() > kMaxSecrets) {
    return Status::InvalidArgument(base::StrFormat("at most %zu secrets per box", kMaxSecrets));
  }
  std::set<std::string> names;
  for (const auto& s : secrets) {
    if (!ValidSecretName(s.name)) {
      return Status::InvalidArgument(base::StrFormat(
          "a secret name must be at most %zu bytes without NUL", kMaxSecretNameBytes));
    }
    if (!names.insert(SecretEnvName(s.name)).second) {
      return Status::InvalidArgument("two secrets give the variable " + SecretEnvName(s.name) +
                                     ": rename one (names are upper-cased, and bytes outside "
                                     "[A-Za-z0-9_] become '_')");
    }
    // The value is never quoted in a message.
    if (s.value.empty() || s.value.size() > kMaxSecretValueBytes) {
      return Status::InvalidArgument("secret " + s.name + ": the value must be 1 byte to 64 KiB");
    }
    if (s.value.find('\0') != std::string::npos) {
      return Status::InvalidArgument("secret " + s.name + ": the value must not contain NUL");
    }
    for (const auto& h : s.hosts) BOXLITE_RETURN_IF_ERROR(CheckSecretHost(s.name, h));
    if (!s.placeholder.empty()) {
      if (s.placeholder.size() < 8 || s.placeholder.size() > 256) {
        return Status::InvalidArgument("secret " + s.name +
                                       ": the placeholder must be 8 to 256 characters");
      }
      for (char c : s.placeholder) {
        if (c < 0x21 || c > 0x7e) {
          return Status::InvalidArgument("secret " + s.name +
                                         ": the placeholder must be printable ASCII without spaces");
        }
      }
      if (s.placeholder.find(s.value) != std::string::npos) {
        return Status::InvalidArgument("secret " + s.name + ": the placeholder contains the value");
      }
    }
  }
  for (const auto& a : secrets) {
    for (const auto& b : secrets) {
      if (&a == &b || a.placeholder.empty() || b.placeholder.empty()) continue;
      if (b.placeholder.find(a.placeholder) != std::string::npos) {
        return Status::InvalidArgument("secrets " + a.name + " and " + b.name +
                                       ": one placeholder contains the other");
      }
    }
  }
  return Status::OK();
}

void AssignSecretPlaceholders(std::vector<Secret>* secrets) {
  for (auto& s : *secrets) {
    if (s.placeholder.empty()) s.placeholder = DefaultSecretPlaceholder(s.name);
  }
}

EnvList SecretEnv(const std::vector<Secret>& secrets) {
  EnvList env;
  for (const auto& s : secrets) env.emplace_back(SecretEnvName(s.name), s.placeholder);
  return env;
}

Status SaveSecretValues(const std::string& dir, const std::vector<Secret>& secrets) {
  Json values = Json::object();
  for (const auto& s : secrets) values[s.name] = s.value;
  return sys::WriteFileAtomic(sys::JoinPath(dir, "secrets.json"),
                              values.dump(-1, ' ', false, Json::error_handler_t::replace), 0600);
}

Status LoadSecretValues(const std::string& dir, std::vector<Secret>* secrets) {
  auto text = sys::ReadFile(sys::JoinPath(dir, "secrets.json"));
  if (!text.ok()) {
    return Status::NotFound("the box's secret values (secrets.json) are missing: recreate the box");
  }
  Json values = Json::parse(*text, nullptr, false);
  if (!values.is_object()) {
    return Status::Corruption("the box's secrets.json is unreadable: recreate the box");
  }
  for (auto& s : *secrets) {
    auto it = values.find(s.name);
    if (it == values.end() || !it->is_string()) {
      return Status::Corruption("the box's secrets.json has no value for " + s.name +
                                ": recreate the box");
    }
    s.value = it->get<std::string>();
  }
  return Status::OK();
}

Result<BoxCaPem> LoadOrCreateBoxCa(const std::string& dir, const std::string& box_id) {
  if (!dir.empty()) {
    auto key = sys::ReadFile(sys::JoinPath(dir, "ca-key.pem"));
    auto cert = sys::ReadFile(sys::JoinPath(dir, "ca.pem"));
    if (key.ok() && cert.ok()) return BoxCaPem{std::move(*key), std::move(*cert)};
  }
  BOXLITE_ASSIGN_OR_RETURN(net::SecretCa ca, net::SecretCa::Generate(box_id));
  BoxCaPem pem{ca.KeyPem(), ca.CertPem()};
  if (!dir.empty()) {
    BOXLITE_RETURN_IF_ERROR(sys::WriteFileAtomic(sys::JoinPath(dir, "ca-key.pem"), pem.key, 0600));
    BOXLITE_RETURN_IF_ERROR(sys::WriteFileAtomic(sys::JoinPath(dir, "ca.pem"), pem.cert, 0600));
  }
  return pem;
}

Result<std::string> SecretProxyJson(const std::vector<Secret>& secrets, const BoxCaPem& ca) {
  net::SecretProxyConfig config;
  config.ca_key_pem = ca.key;
  config.ca_cert_pem = ca.cert;
  BOXLITE_ASSIGN_OR_RETURN(config.roots_pem, net::ReadDefaultRoots());
  for (const auto& s : secrets) config.rules.push_back({s.name, s.placeholder, s.value, s.hosts});
  return net::SecretProxyConfigToJson(config);
}

}  // namespace boxlite::runtime

namespace boxlite {

std::string DefaultSecretPlaceholder(std::string_view name) {
  return "<BOXLITE_SECRET:" + std::string(name) + ">";
}

}  // namespace boxlite

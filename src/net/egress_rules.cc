// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/egress_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "src/base/strings.h"

namespace boxlite::net {
namespace {

Status Bad(std::string_view pattern, const std::string& why) {
  std::string shown(pattern.substr(0, 80));
  if (pattern.size() > 80) shown += "...";
  return Status::InvalidArgument("allow_net pattern " + base::ShellQuote(shown) + ": " + why);
}

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::optional<uint16_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  auto v = base::ParseUint(text);
  if (!v || *v < 1 || *v > 65535) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

uint32_t Mask4(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

void Mask6(std::array<uint8_t, 16>* a, int prefix) {
  for (int i = 0; i < 16; ++i) {
    int bits = prefix - i * 8;
    if (bits >= 8) continue;
    (*a)[static_cast<size_t>(i)] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
  }
}

bool In6(const std::array<uint8_t, 16>& a, const EgressRule& r) {
  std::array<uint8_t, 16> m = a;
  Mask6(&m, r.prefix);
  return m == r.v6;
}

// "ADDR" or "ADDR/PREFIX" as a CIDR rule; false when it is not an address at all.
Result<bool> ParseAddress(std::string_view pattern, std::string_view text, EgressRule* r) {
  std::string addr(text);
  std::optional<int> prefix;
  size_t slash = addr.find('/');
  if (slash != std::string::npos) {
    auto p = base::ParseUint(std::string_view(addr).substr(slash + 1));
    addr.resize(slash);
    if (!p || slash + 1 == text.size() || text.size() - slash - 1 > 3) {
      return Bad(pattern, "the CIDR prefix must be a number");
    }
    prefix = static_cast<int>(*p);
  }
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    int pfx = prefix.value_or(32);
    if (pfx > 32) return Bad(pattern, "an IPv4 prefix is 0..32");
    r->kind = EgressRule::Kind::kCidr4;
    r->prefix = pfx;
    r->v4 = ntohl(v4.s_addr) & Mask4(pfx);
    return true;
  }
  if (::inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    int pfx = prefix.value_or(128);
    if (pfx > 128) return Bad(pattern, "an IPv6 prefix is 0..128");
    r->kind = EgressRule::Kind::kCidr6;
    r->prefix = pfx;
    std::memcpy(r->v6.data(), v6.s6_addr, 16);
    Mask6(&r->v6, pfx);
    return true;
  }
  if (prefix) return Bad(pattern, "a CIDR needs an IPv4 or IPv6 address before the '/'");
  return false;
}

}  // namespace

bool NormalizeHostName(std::string_view name, std::string* normalized) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxHostNameLength) return false;
  std::string lower = base::ToLower(name);
  size_t label = 0;
  for (size_t i = 0; i <= lower.size(); ++i) {
    if (i == lower.size() || lower[i] == '.') {
      if (label == 0 || label > 63) return false;
      if (lower[i - 1] == '-' || lower[i - label] == '-') return false;
      label = 0;
      continue;
    }
    if (!IsLabelChar(lower[i])) return false;
    ++label;
  }
  if (normalized != nullptr) *normalized = std::move(lower);
  return true;
}

Result<EgressRule> ParseEgressRule(std::string_view pattern) {
  if (pattern.empty()) return Bad(pattern, "empty (name a host, *.domain, an address or a CIDR)");
  if (pattern.size() > kMaxPatternLength) {
    return Bad(pattern, base::StrFormat("longer than %zu characters", kMaxPatternLength));
  }
  EgressRule r;
  r.text = std::string(pattern);
  std::string_view body = pattern;
  // "[v6]" or "[v6]:port" (a CIDR may be bracketed too).
  if (body.front() == '[') {
    size_t close = body.find(']');
    if (close == std::string_view::npos) return Bad(pattern, "'[' without ']'");
    std::string_view rest = body.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Bad(pattern, "only \":PORT\" may follow ']'");
      auto port = ParsePort(rest.substr(1));
      if (!port) return Bad(pattern, "the port must be 1..65535");
      r.port = *port;
    }
    auto is_addr = ParseAddress(pattern, body.substr(1, close - 1), &r);
    if (!is_addr.ok()) return is_addr.error();
    if (!*is_addr || r.kind != EgressRule::Kind::kCidr6) {
      return Bad(pattern, "brackets hold an IPv6 address");
    }
    return r;
  }
  // A bare IPv6 address or CIDR has several ':' and no port.
  size_t colons = std::count(body.begin(), body.end(), ':');
  if (colons > 1) {
    auto is_addr = ParseAddress(pattern, body, &r);
    if (!is_addr.ok()) return is_addr.error();
    if (!*is_addr) {
      return Bad(pattern, "not an IPv6 address (write a port after one as [ADDRESS]:PORT)");
    }
    return r;
  }
  if (colons == 1) {
    size_t colon = body.find(':');
    auto port = ParsePort(body.substr(colon + 1));
    if (!port) return Bad(pattern, "the port must be 1..65535");
    r.port = *port;
    body = body.substr(0, colon);
  }
  auto is_addr = ParseAddress(pattern, body, &r);
  if (!is_addr.ok()) return is_addr.error();
  if (*is_addr) {
    if (r.kind == EgressRule::Kind::kCidr6) {
      return Bad(pattern, "write an IPv6 address with a port as [ADDRESS]:PORT");
    }
    return r;
  }
  if (body == "*") {
    return Bad(pattern, "'*' would allow every host: leave allow_net empty for that");
  }
  if (body.starts_with("*.")) {
    r.kind = EgressRule::Kind::kWildcard;
    body.remove_prefix(2);
  } else {
    r.kind = EgressRule::Kind::kHost;
  }
  if (body.find('*') != std::string_view::npos) {
    return Bad(pattern, "'*' is only allowed as a leading \"*.\"");
  }
  if (!NormalizeHostName(body, &r.name)) {
    return Bad(pattern,
               "not a host name, *.domain, address or CIDR (labels of letters, digits, '-' "
               "and '_', at most 63 each and 253 in all)");
  }
  return r;
}

Result<EgressRules> EgressRules::Parse(const std::vector<std::string>& patterns) {
  if (patterns.size() > kMaxRules) {
    return Status::InvalidArgument(
        base::StrFormat("allow_net has %zu patterns; at most %zu are allowed", patterns.size(),
                        kMaxRules));
  }
  EgressRules out;
  for (const auto& p : patterns) {
    auto rule = ParseEgressRule(p);
    if (!rule.ok()) return rule.error();
    out.rules_.push_back(std::move(*rule));
  }
  return out;
}

bool NameMatches(const EgressRule& r, std::string_view name) {
  if (r.kind == EgressRule::Kind::kHost) return name == r.name;
  if (r.kind != EgressRule::Kind::kWildcard) return false;
  return name.size() > r.name.size() + 1 && name.ends_with(r.name) &&
         name[name.size() - r.name.size() - 1] == '.';
}

bool EgressRules::AllowsName(std::string_view name) const {
  for (const auto& r : rules_) {
    if (NameMatches(r, name)) return true;
  }
  return false;
}

bool EgressRules::AllowsNameOnPort(std::string_view name, uint16_t port) const {
  for (const auto& r : rules_) {
    if (r.Allows(port) && NameMatches(r, name)) return true;
  }
  return false;
}

bool EgressRules::AllowsAddress(uint32_t v4, uint16_t port) const {
  for (const auto& r : rules_) {
    if (r.kind != EgressRule::Kind::kCidr4 || (port != 0 && !r.Allows(port))) continue;
    if ((v4 & Mask4(r.prefix)) == r.v4) return true;
  }
  return false;
}

bool EgressRules::AllowsAddress(const std::array<uint8_t, 16>& v6, uint16_t port) const {
  for (const auto& r : rules_) {
    if (r.kind != EgressRule::Kind::kCidr6 || (port != 0 && !r.Allows(port))) continue;
    if (In6(v6, r)) return true;
  }
  return false;
}

bool EgressRules::AllowsHostAlias(uint16_t port) const {
  for (const auto& r : rules_) {
    if (r.kind == EgressRule::Kind::kHost && r.name == kHostAlias &&
        (port == 0 || r.Allows(port))) {
      return true;
    }
  }
  return false;
}

}  // namespace boxlite::net

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The egress allow-list (`BoxOptions.allow_net`, docs/networking.md): the one parser and
// validator of its patterns, used by the runtime when a box is created and by
// boxlite-net, which enforces them. A pattern is
//
//   example.com            an exact host name (case-insensitive, a trailing dot ignored)
//   *.example.com          any name under example.com, at any depth, but not example.com
//   192.0.2.7              an IPv4 address
//   198.51.100.0/24        an IPv4 CIDR
//   2001:db8::1            an IPv6 address (bracketed when a port follows)
//   2001:db8::/32          an IPv6 CIDR
//   host.boxlite.internal  the host's loopback (10.0.2.2 in the guest)
//
// each optionally followed by ":PORT" (1..65535; IPv6 as "[2001:db8::1]:443"), which
// limits the rule to that port. Bounds: kMaxRules patterns of at most kMaxPatternLength
// characters. Errors are one line naming the pattern and what is wrong with it.
// Thread-safety: pure functions; an EgressRules is immutable once parsed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"

namespace boxlite::net {

// The name under which the guest reaches the host's loopback (docs/networking.md).
inline constexpr std::string_view kHostAlias = "host.boxlite.internal";

struct EgressRule {
  enum class Kind { kHost, kWildcard, kCidr4, kCidr6 };
  Kind kind = Kind::kHost;
  std::string name;  // kHost: the name; kWildcard: the suffix without "*." (lower case).
  uint32_t v4 = 0;   // kCidr4 (host byte order, masked).
  std::array<uint8_t, 16> v6{};  // kCidr6 (masked).
  int prefix = 0;    // kCidr4: 0..32, kCidr6: 0..128 (an address is a full prefix).
  uint16_t port = 0;  // 0: every port.
  std::string text;   // The pattern as given, for messages.

  bool Allows(uint16_t p) const { return port == 0 || port == p; }
};

inline constexpr size_t kMaxRules = 256;
inline constexpr size_t kMaxPatternLength = 300;
inline constexpr size_t kMaxHostNameLength = 253;

// One pattern; kInvalidArgument naming it when it is not one of the forms above.
Result<EgressRule> ParseEgressRule(std::string_view pattern);

// Whether `name` (any case, a trailing dot ignored) is a syntactically valid DNS name; the
// lower-case form without the dot is stored in `*normalized` when given.
bool NormalizeHostName(std::string_view name, std::string* normalized);

class EgressRules {
 public:
  EgressRules() = default;
  // Every pattern of `patterns`, or the first error. More than kMaxRules is an error.
  static Result<EgressRules> Parse(const std::vector<std::string>& patterns);

  bool empty() const { return rules_.empty(); }
  const std::vector<EgressRule>& rules() const { return rules_; }

  // Whether some name rule matches `name` (normalized: lower case, no trailing dot), for
  // any port (DNS) or for `port` (a Host/SNI check).
  bool AllowsName(std::string_view name) const;
  bool AllowsNameOnPort(std::string_view name, uint16_t port) const;
  // Whether an address or CIDR rule covers the address on `port` (0: any rule, any port).
  bool AllowsAddress(uint32_t v4, uint16_t port) const;
  bool AllowsAddress(const std::array<uint8_t, 16>& v6, uint16_t port) const;
  // Whether host.boxlite.internal is listed for `port` (0: on any port).
  bool AllowsHostAlias(uint16_t port) const;

 private:
  std::vector<EgressRule> rules_;
};

// Whether `name` matches rule `r` (a kHost or kWildcard rule; others never match).
bool NameMatches(const EgressRule& r, std::string_view name);

}  // namespace boxlite::net

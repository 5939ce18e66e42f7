// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/egress_policy.h"

#include <algorithm>

namespace boxlite::net {
namespace {

constexpr size_t kHeaderLen = 12;
constexpr size_t kMaxRecords = 256;

uint16_t U16(std::span<const uint8_t> m, size_t at) {
  return static_cast<uint16_t>((m[at] << 8) | m[at + 1]);
}

// Skips a (possibly compressed) name at `*at`; false when it does not fit.
bool SkipName(std::span<const uint8_t> m, size_t* at) {
  for (int labels = 0; labels < 128; ++labels) {
    if (*at >= m.size()) return false;
    uint8_t len = m[*at];
    if (len == 0) {
      *at += 1;
      return true;
    }
    if ((len & 0xc0) == 0xc0) {
      if (*at + 2 > m.size()) return false;
      *at += 2;
      return true;
    }
    if (len > 63) return false;
    *at += 1 + size_t{len};
  }
  return false;
}

bool IsPorts80or443(uint16_t port) { return port == 80 || port == 443; }

}  // namespace

std::optional<DnsQuestion> ParseDnsQuestion(std::span<const uint8_t> m) {
  if (m.size() < kHeaderLen || U16(m, 4) != 1) return std::nullopt;
  size_t at = kHeaderLen;
  std::string raw;
  while (true) {
    if (at >= m.size()) return std::nullopt;
    uint8_t len = m[at++];
    if (len == 0) break;
    if (len > 63 || at + len > m.size()) return std::nullopt;  // No compression in queries.
    if (!raw.empty()) raw += '.';
    raw.append(reinterpret_cast<const char*>(m.data() + at), len);
    at += len;
    if (raw.size() > kMaxHostNameLength) return std::nullopt;
  }
  if (at + 4 > m.size()) return std::nullopt;
  DnsQuestion q;
  q.qtype = U16(m, at);
  // A name that is not a valid host name (binary labels...) matches no rule: kept as an
  // empty name, which nothing allows.
  if (!NormalizeHostName(raw, &q.name)) q.name.clear();
  return q;
}

std::vector<DnsAddress> ParseDnsAnswers(std::span<const uint8_t> m) {
  std::vector<DnsAddress> out;
  if (m.size() < kHeaderLen) return out;
  size_t qd = U16(m, 4), an = U16(m, 6);
  if (qd > 1 || an > kMaxRecords) return out;
  size_t at = kHeaderLen;
  for (size_t i = 0; i < qd; ++i) {
    if (!SkipName(m, &at) || at + 4 > m.size()) return {};
    at += 4;
  }
  for (size_t i = 0; i < an; ++i) {
    if (!SkipName(m, &at) || at + 10 > m.size()) return out;
    uint16_t type = U16(m, at), cls = U16(m, at + 2);
    uint32_t ttl = (uint32_t{U16(m, at + 4)} << 16) | U16(m, at + 6);
    size_t rdlen = U16(m, at + 8);
    at += 10;
    if (at + rdlen > m.size()) return out;
    if (type == kDnsTypeA && cls == 1 && rdlen == 4) {
      uint32_t v4 = (uint32_t{m[at]} << 24) | (uint32_t{m[at + 1]} << 16) |
                    (uint32_t{m[at + 2]} << 8) | m[at + 3];
      out.push_back({v4, ttl});
    }
    at += rdlen;
  }
  return out;
}

std::optional<std::vector<uint8_t>> DnsAddressResponse(std::span<const uint8_t> query,
                                                       uint16_t qtype, uint32_t v4) {
  if (query.size() < kHeaderLen || U16(query, 4) != 1) return std::nullopt;
  size_t at = kHeaderLen;
  if (!SkipName(query, &at) || at + 4 > query.size()) return std::nullopt;
  at += 4;
  std::vector<uint8_t> out(query.begin(), query.begin() + static_cast<ptrdiff_t>(at));
  out[2] = static_cast<uint8_t>(0x80 | (query[2] & 0x79));  // QR, opcode, RD kept; AA.
  out[2] |= 0x04;
  out[3] = 0x80;  // RA, NOERROR.
  std::fill(out.begin() + 6, out.begin() + 12, 0);
  if (qtype == kDnsTypeA) {
    out[7] = 1;
    const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4,
                          static_cast<uint8_t>(v4 >> 24), static_cast<uint8_t>(v4 >> 16),
                          static_cast<uint8_t>(v4 >> 8), static_cast<uint8_t>(v4)};
    out.insert(out.end(), std::begin(rr), std::end(rr));
  }
  return out;
}

void EgressPolicy::Pin(uint32_t v4, std::string_view name, uint32_t ttl_s, int64_t now_ms) {
  uint32_t ttl = std::clamp(ttl_s, kMinPinSeconds, kMaxPinSeconds);
  int64_t expires = now_ms + int64_t{ttl} * 1000;
  std::lock_guard<std::mutex> lock(mu_);
  auto [first, last] = pins_.equal_range(v4);
  for (auto it = first; it != last; ++it) {
    if (it->second.name == name) {
      it->second.expires_ms = std::max(it->second.expires_ms, expires);
      return;
    }
  }
  if (pins_.size() >= kMaxPins) EvictLocked(now_ms);
  pins_.emplace(v4, Pin_{std::string(name), expires});
}

void EgressPolicy::EvictLocked(int64_t now_ms) {
  std::erase_if(pins_, [now_ms](const auto& p) { return p.second.expires_ms <= now_ms; });
  while (pins_.size() >= kMaxPins) {
    auto soonest = std::min_element(pins_.begin(), pins_.end(), [](const auto& a, const auto& b) {
      return a.second.expires_ms < b.second.expires_ms;
    });
    pins_.erase(soonest);
  }
}

size_t EgressPolicy::pinned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pins_.size();
}

EgressPolicy::Decision EgressPolicy::DecideFlow(uint32_t dst, uint16_t port, bool tcp,
                                                bool is_public, int64_t now_ms) const {
  if (!enabled()) return is_public ? Decision::kAllow : Decision::kRefuse;
  if (rules_.AllowsAddress(dst, port)) return Decision::kAllow;
  if (!is_public) return Decision::kRefuse;
  std::lock_guard<std::mutex> lock(mu_);
  auto [first, last] = pins_.equal_range(dst);
  for (auto it = first; it != last; ++it) {
    if (it->second.expires_ms <= now_ms) continue;
    if (port == 0 ? rules_.AllowsName(it->second.name)
                  : rules_.AllowsNameOnPort(it->second.name, port)) {
      return tcp && IsPorts80or443(port) ? Decision::kInspect : Decision::kAllow;
    }
  }
  return Decision::kRefuse;
}

bool EgressPolicy::AllowsInspectedName(std::string_view name, uint16_t port) const {
  return !name.empty() && rules_.AllowsNameOnPort(name, port);
}

}  // namespace boxlite::net

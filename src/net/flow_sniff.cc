// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/flow_sniff.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

#include "src/base/strings.h"
#include "src/net/egress_rules.h"

namespace boxlite::net {
namespace {

constexpr uint8_t kTlsHandshake = 22;
constexpr uint8_t kClientHello = 1;
constexpr uint16_t kExtServerName = 0;

Sniffed Invalid() { return {SniffState::kInvalid, {}}; }
Sniffed NeedMore() { return {SniffState::kNeedMore, {}}; }

// A bounds-checked reader over one ClientHello body.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> d) : d_(d) {}
  bool Skip(size_t n) {
    if (d_.size() - at_ < n) return false;
    at_ += n;
    return true;
  }
  std::optional<uint32_t> Int(size_t bytes) {
    if (d_.size() - at_ < bytes) return std::nullopt;
    uint32_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v = (v << 8) | d_[at_++];
    return v;
  }
  std::optional<std::span<const uint8_t>> Bytes(size_t n) {
    if (d_.size() - at_ < n) return std::nullopt;
    auto s = d_.subspan(at_, n);
    at_ += n;
    return s;
  }
  // A vector with a `len_bytes` length prefix.
  std::optional<std::span<const uint8_t>> Vec(size_t len_bytes) {
    auto n = Int(len_bytes);
    if (!n) return std::nullopt;
    return Bytes(*n);
  }
  bool done() const { return at_ == d_.size(); }

 private:
  std::span<const uint8_t> d_;
  size_t at_ = 0;
};

// A host name or IP literal as sent (SNI or Host): normalized, or nullopt.
std::optional<std::string> NormalizeName(std::string_view text) {
  std::string out;
  if (NormalizeHostName(text, &out)) return out;
  // IP literals are kept as written (lower case) so the caller can refuse or match them.
  std::string lower = base::ToLower(text);
  if (!lower.empty() && lower.size() <= 64 &&
      lower.find_first_not_of("0123456789abcdef.:") == std::string::npos) {
    return lower;
  }
  return std::nullopt;
}

Sniffed ParseClientHelloBody(std::span<const uint8_t> body) {
  Reader r(body);
  if (!r.Skip(2 + 32)) return Invalid();                 // Version, random.
  auto session = r.Vec(1);
  if (!session || session->size() > 32) return Invalid();
  auto suites = r.Vec(2);
  if (!suites || suites->size() % 2 != 0) return Invalid();
  if (!r.Vec(1)) return Invalid();                       // Compression methods.
  if (r.done()) return {SniffState::kDone, {}};          // No extensions at all.
  auto exts = r.Vec(2);
  if (!exts || !r.done()) return Invalid();
  Reader e(*exts);
  std::optional<std::string> name;
  bool seen = false;
  while (!e.done()) {
    auto type = e.Int(2);
    auto data = e.Vec(2);
    if (!type || !data) return Invalid();
    if (*type != kExtServerName) continue;
    if (seen) return Invalid();  // Two server_name extensions: ambiguous.
    seen = true;
    Reader s(*data);
    auto list = s.Vec(2);
    if (!list || !s.done()) return Invalid();
    Reader l(*list);
    while (!l.done()) {
      auto kind = l.Int(1);
      auto host = l.Vec(2);
      if (!kind || !host) return Invalid();
      if (*kind != 0) continue;
      if (name) return Invalid();  // Two host names: ambiguous.
      name = NormalizeName(std::string_view(reinterpret_cast<const char*>(host->data()),
                                            host->size()));
      if (!name) return Invalid();
    }
  }
  return {SniffState::kDone, name.value_or("")};
}

}  // namespace

bool LooksLikeTls(std::span<const uint8_t> head) {
  return !head.empty() && head[0] == kTlsHandshake && (head.size() < 2 || head[1] == 3);
}

Sniffed SniffTlsServerName(std::span<const uint8_t> head) {
  // The handshake message may span records: gather their payloads.
  std::vector<uint8_t> hs;
  size_t at = 0;
  while (true) {
    if (hs.size() >= 4) {
      if (hs[0] != kClientHello) return Invalid();
      size_t len = (size_t{hs[1]} << 16) | (size_t{hs[2]} << 8) | hs[3];
      if (len + 4 > kMaxTlsHello) return Invalid();
      if (hs.size() >= len + 4) return ParseClientHelloBody({hs.data() + 4, len});
    }
    if (at >= kMaxTlsHello) return Invalid();
    if (head.size() - at < 5) {
      if (head.size() > at && head[at] != kTlsHandshake) return Invalid();
      return NeedMore();
    }
    if (head[at] != kTlsHandshake || head[at + 1] != 3) return Invalid();
    size_t rec = (size_t{head[at + 3]} << 8) | head[at + 4];
    if (rec == 0 || rec > 16384) return Invalid();
    if (head.size() - at - 5 < rec) {
      // Parse what has arrived of this record: an incomplete message needs more anyway.
      if (at + 5 + rec > kMaxTlsHello) return Invalid();
      return NeedMore();
    }
    hs.insert(hs.end(), head.begin() + static_cast<ptrdiff_t>(at + 5),
              head.begin() + static_cast<ptrdiff_t>(at + 5 + rec));
    at += 5 + rec;
  }
}

Sniffed SniffHttpHost(std::span<const uint8_t> head) {
  std::string_view text(reinterpret_cast<const char*>(head.data()),
                        std::min(head.size(), kMaxHttpHead));
  size_t end = text.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    // A request line must look like one early, so a non-HTTP flow fails fast.
    size_t sp = text.find(' ');
    if (sp == std::string_view::npos ? text.size() > 32 : (sp == 0 || sp > 32)) return Invalid();
    return head.size() >= kMaxHttpHead ? Invalid() : NeedMore();
  }
  std::vector<std::string> lines = base::Split(text.substr(0, end + 2), '\n');
  if (lines.size() < 2 || !lines.back().empty()) return Invalid();
  lines.pop_back();
  for (auto& l : lines) {
    if (l.empty() || l.back() != '\r') return Invalid();  // Bare LF: ambiguous framing.
    l.pop_back();
  }
  auto words = base::Split(lines[0], ' ');
  if (words.size() != 3 || !words[2].starts_with("HTTP/1.")) return Invalid();
  std::optional<std::string> host;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    size_t colon = l.find(':');
    if (colon == std::string::npos || colon == 0) return Invalid();
    if (l[0] == ' ' || l[0] == '\t') return Invalid();  // Obsolete line folding.
    if (base::ToLower(std::string_view(l).substr(0, colon)) != "host") continue;
    if (host) return Invalid();  // Two Host headers: ambiguous.
    host = std::string(base::Trim(std::string_view(l).substr(colon + 1)));
  }
  // An absolute-form target names the host too; servers prefer it, so it must agree.
  std::string_view target = words[1];
  std::optional<std::string> target_host;
  std::string lower_target = base::ToLower(target);
  for (std::string_view scheme : {"http://", "https://"}) {
    if (lower_target.starts_with(scheme)) {
      std::string_view rest = std::string_view(target).substr(scheme.size());
      target_host = std::string(rest.substr(0, rest.find_first_of("/?#")));
    }
  }
  if (!host) return target_host ? Invalid() : Sniffed{SniffState::kDone, {}};
  auto strip_port = [](std::string h) {
    if (!h.empty() && h[0] == '[') {
      size_t close = h.find(']');
      return close == std::string::npos ? std::string() : h.substr(1, close - 1);
    }
    size_t colon = h.find(':');
    if (colon != std::string::npos) h.resize(colon);
    return h;
  };
  auto name = NormalizeName(strip_port(*host));
  if (!name) return Invalid();
  if (target_host) {
    auto t = NormalizeName(strip_port(*target_host));
    if (!t || *t != *name) return Invalid();
  }
  return {SniffState::kDone, *name};
}

}  // namespace boxlite::net

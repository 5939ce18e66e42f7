// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A hand-written parser for distribution's reference grammar (no regex: the fuzzer feeds
// it arbitrary bytes and std::regex recurses per character).
#include "src/image/reference.h"

#include <cctype>

#include "src/base/strings.h"

namespace boxlite::image {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;
constexpr size_t kMaxReferenceLength = 4096;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsWordChar(char c) { return IsAlnum(c) || c == '_'; }

// Printable form of a byte for messages.
std::string CharName(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return base::StrFormat("'%c'", c);
  return base::StrFormat("byte 0x%02x", u);
}

// Quotes the reference for messages; control bytes are escaped so a hostile string
// cannot forge log lines.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 300)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      out += base::StrFormat("\\x%02x", u);
    } else {
      out += c;
    }
  }
  if (s.size() > 300) out += "...";
  out += '"';
  return out;
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*; separator := [._] | "__" | "-"+.
// Returns an empty string when valid, else what is wrong.
std::string CheckPathComponent(std::string_view c) {
  if (c.empty()) return "empty path component (a '/' at the start, the end or doubled)";
  for (char ch : c) {
    if (ch >= 'A' && ch <= 'Z') return "repository name must be lowercase";
    if (!IsLowerAlnum(ch) && ch != '.' && ch != '_' && ch != '-') {
      return base::StrFormat("invalid character %s in repository name", CharName(ch).c_str());
    }
  }
  if (!IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) {
    return base::StrFormat("path component \"%s\" must start and end with a letter or digit",
                           std::string(c).c_str());
  }
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !IsLowerAlnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) {
      return base::StrFormat("invalid separator \"%s\" in path component \"%s\"",
                             std::string(sep).c_str(), std::string(c).c_str());
    }
    i = j;
  }
  return {};
}

// domain := host (':' port)?; host := label ('.' label)* | '[' ipv6 ']'.
std::string CheckDomain(std::string_view d) {
  if (d.empty()) return "empty registry host";
  std::string_view host = d;
  std::string_view port;
  if (d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos) return "unterminated '[' in registry host";
    std::string_view inner = d.substr(1, close - 1);
    if (inner.empty()) return "empty IPv6 address in registry host";
    for (char ch : inner) {
      if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.') {
        return base::StrFormat("invalid character %s in IPv6 registry host",
                               CharName(ch).c_str());
      }
    }
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "junk after ']' in registry host";
      port = rest.substr(1);
      if (port.empty()) return "empty port in registry host";
    }
  } else {
    size_t colon = d.find(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return "empty port in registry host";
    }
    for (const auto& label : base::Split(host, '.')) {
      if (label.empty()) return base::StrFormat("empty label in registry host \"%s\"",
                                                std::string(host).c_str());
      for (char ch : label) {
        if (!IsAlnum(ch) && ch != '-') {
          return base::StrFormat("invalid character %s in registry host", CharName(ch).c_str());
        }
      }
      if (label.front() == '-' || label.back() == '-') {
        return base::StrFormat("registry host label \"%s\" must not start or end with '-'",
                               label.c_str());
      }
    }
  }
  if (!port.empty()) {
    for (char ch : port) {
      if (ch < '0' || ch > '9') {
        return base::StrFormat("registry port \"%s\" is not a number", std::string(port).c_str());
      }
    }
    if (port.size() > 5) return "registry port out of range";
  }
  return {};
}

std::string CheckTag(std::string_view tag) {
  if (tag.empty()) return "empty tag after ':'";
  if (tag.size() > kMaxTagLength) {
    return base::StrFormat("tag is %zu characters long; the limit is %zu", tag.size(),
                           kMaxTagLength);
  }
  if (!IsWordChar(tag.front())) return "tag must start with a letter, digit or '_'";
  for (char ch : tag) {
    if (!IsWordChar(ch) && ch != '.' && ch != '-') {
      return base::StrFormat("invalid character %s in tag", CharName(ch).c_str());
    }
  }
  return {};
}

std::string CheckDigest(std::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return "digest must look like sha256:<64 hex digits>";
  }
  std::string_view algo = digest.substr(0, colon);
  std::string_view hex = digest.substr(colon + 1);
  if (algo != "sha256") {
    for (char ch : algo) {
      if (!IsAlnum(ch) && ch != '+' && ch != '.' && ch != '_' && ch != '-') {
        return "digest must look like sha256:<64 hex digits>";
      }
    }
    return base::StrFormat("unsupported digest algorithm \"%s\" (only sha256 is supported)",
                           std::string(algo).c_str());
  }
  for (char ch : hex) {
    if (ch >= 'A' && ch <= 'F') return "sha256 digest must be lowercase hex";
    if (!IsHex(ch)) {
      return base::StrFormat("invalid character %s in sha256 digest", CharName(ch).c_str());
    }
  }
  if (hex.size() != 64) {
    return base::StrFormat("sha256 digest must have 64 hex digits, got %zu", hex.size());
  }
  return {};
}

}  // namespace

std::string Reference::Name() const { return registry + "/" + repository; }

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

Status ValidateDigest(std::string_view digest, std::string_view what) {
  std::string err = CheckDigest(digest);
  if (err.empty()) return Status::OK();
  return Status::InvalidArgument(
      base::StrFormat("invalid %s %s", std::string(what).c_str(), Quote(digest).c_str()), err);
}

Result<Reference> ParseReference(std::string_view ref) {
  auto fail = [&](const std::string& what) -> Status {
    return Status::InvalidArgument("invalid image reference " + Quote(ref), what)
        .WithSubject(StatusSubject::kImage);
  };
  if (ref.empty()) return fail("it is empty");
  if (ref.size() > kMaxReferenceLength) return fail("it is too long");
  for (char ch : ref) {
    if (std::isspace(static_cast<unsigned char>(ch))) return fail("it contains whitespace");
  }

  Reference out;
  std::string_view rest = ref;
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view digest = rest.substr(at + 1);
    if (digest.empty()) return fail("empty digest after '@'");
    std::string err = CheckDigest(digest);
    if (!err.empty()) return fail(err);
    out.digest = std::string(digest);
    rest = rest.substr(0, at);
  }
  if (rest.empty()) return fail("missing repository name");

  // A ':' after the last '/' starts the tag; one before it belongs to a host:port.
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.find(':', last_slash == std::string_view::npos ? 0 : last_slash + 1);
  // "[::1]/x" has colons only inside the brackets, which precede the first slash.
  if (colon != std::string_view::npos && last_slash == std::string_view::npos &&
      rest.front() == '[') {
    return fail("a registry host needs a repository after it");
  }
  if (colon != std::string_view::npos) {
    std::string_view tag = rest.substr(colon + 1);
    std::string err = CheckTag(tag);
    if (!err.empty()) return fail(err);
    out.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return fail("missing repository name");

  std::string_view domain;
  std::string_view path = rest;
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    std::string_view first = rest.substr(0, slash);
    bool has_upper = false;
    for (char ch : first) has_upper |= (ch >= 'A' && ch <= 'Z');
    if (first.find_first_of(".:[") != std::string_view::npos || first == "localhost" ||
        has_upper) {
      domain = first;
      path = rest.substr(slash + 1);
    }
  }
  if (!domain.empty()) {
    std::string err = CheckDomain(domain);
    if (!err.empty()) return fail(err);
  }
  if (path.empty()) return fail("missing repository name after the registry host");
  for (const auto& component : base::Split(path, '/')) {
    std::string err = CheckPathComponent(component);
    if (!err.empty()) return fail(err);
  }

  if (domain.empty() || domain == "index.docker.io") domain = kDockerHubDomain;
  out.registry = std::string(domain);
  out.repository = std::string(path);
  if (out.registry == kDockerHubDomain && out.repository.find('/') == std::string::npos) {
    out.repository = "library/" + out.repository;
  }
  if (out.Name().size() > kMaxNameLength) {
    return fail(base::StrFormat("repository name is longer than %zu characters", kMaxNameLength));
  }
  if (out.tag.empty() && out.digest.empty()) out.tag = "latest";
  return out;
}

}  // namespace boxlite::image

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/image/tar_path.h"

#include "boxlite/status.h"
#include "src/base/strings.h"

namespace boxlite::image {

namespace {

constexpr size_t kMaxPathBytes = 16u << 20;

}  // namespace

std::string_view CleanPath::component(size_t i) const {
  size_t start = i == 0 ? 0 : ends_[i - 1] + 1;
  return std::string_view(path_).substr(start, ends_[i] - start);
}

std::string_view CleanPath::prefix(size_t n) const {
  if (n == 0) return {};
  return std::string_view(path_).substr(0, ends_[n - 1]);
}

Result<CleanPath> CleanTarPath(std::string_view raw) {
  if (raw.size() > kMaxPathBytes) {
    return Status::Corruption("path too long", base::StrFormat("%zu bytes", raw.size()));
  }
  CleanPath out;
  out.path_.reserve(raw.size());
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view comp = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      if (out.ends_.empty()) {
        return Status::Corruption("path escapes the image root", QuoteForMessage(raw));
      }
      out.ends_.pop_back();
      out.path_.resize(out.ends_.empty() ? 0 : out.ends_.back());
      continue;
    }
    if (comp.size() > kMaxNameBytes) {
      return Status::Corruption(
          base::StrFormat("name component longer than %zu bytes (%zu)", kMaxNameBytes,
                          comp.size()),
          QuoteForMessage(comp, 64));
    }
    if (!out.ends_.empty()) out.path_.push_back('/');
    out.path_.append(comp);
    out.ends_.push_back(static_cast<uint32_t>(out.path_.size()));
  }
  return out;
}

std::string QuoteForMessage(std::string_view s, size_t max) {
  bool cut = s.size() > max;
  if (cut) s = s.substr(0, max);
  std::string out = "'";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\'' || c == '\\') {
      out += base::StrFormat("\\x%02x", u);
    } else {
      out += c;
    }
  }
  if (cut) out += "...";
  out += '\'';
  return out;
}

}  // namespace boxlite::image

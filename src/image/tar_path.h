// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Lexical cleaning of tar entry names for the ext4 writer. A tar name is untrusted: it may
// be absolute, contain "." and ".." components, doubled slashes or components longer than
// ext4 allows. CleanTarPath turns it into a list of plain components relative to the image
// root, or fails when ".." would climb above the root (Docker rejects such entries too;
// clamping would silently put files where their author did not mean them to go).
//
// Symlinks are not looked at here: the writer resolves them inside the image afterwards.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"

namespace boxlite::image {

// ext4's limit on one name, in bytes.
inline constexpr size_t kMaxNameBytes = 255;

// A cleaned path: components joined by single slashes, no ".", no "..", no leading slash.
// The root is the empty path with zero components.
class CleanPath {
 public:
  CleanPath() = default;

  const std::string& str() const { return path_; }
  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  // The i-th component; i < size().
  std::string_view component(size_t i) const;
  // The last component; the path must not be empty.
  std::string_view base() const { return component(size() - 1); }
  // The first n components joined by slashes ("" for n == 0); n <= size().
  std::string_view prefix(size_t n) const;

 private:
  friend Result<CleanPath> CleanTarPath(std::string_view raw);
  std::string path_;
  std::vector<uint32_t> ends_;  // End offset of each component in path_.
};

// Cleans `raw` lexically. Errors (Corruption): a ".." that leaves the root, a component
// longer than kMaxNameBytes, a name longer than 16 MiB.
Result<CleanPath> CleanTarPath(std::string_view raw);

// `s` in single quotes for messages, cut to `max` bytes ("..." marks the cut; a path may
// be 20,000 bytes long) and with control characters, quotes and backslashes as \xNN (a
// hostile name must not forge log lines).
std::string QuoteForMessage(std::string_view s, size_t max = 160);

}  // namespace boxlite::image

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/base/base64.h"

#include <openssl/evp.h>

#include <algorithm>

namespace boxlite::base {
namespace {

// OpenSSL takes int lengths: work in chunks well below INT_MAX (multiples of 3 bytes in,
// 4 characters out).
constexpr size_t kChunkBytes = 3 << 20;
constexpr size_t kChunkChars = kChunkBytes / 3 * 4;

bool InAlphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (size_t at = 0; at < data.size(); at += kChunkBytes) {
    std::string_view part = data.substr(at, kChunkBytes);
    std::string block((part.size() + 2) / 3 * 4 + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(block.data()),
                            reinterpret_cast<const unsigned char*>(part.data()),
                            static_cast<int>(part.size()));
    out.append(block.data(), static_cast<size_t>(n));
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), InAlphabet)) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  for (size_t at = 0; at < text.size(); at += kChunkChars) {
    std::string part(text.substr(at, kChunkChars));
    // The last group is padded back for the decoder, which counts padding as zero bytes.
    size_t pad = (4 - part.size() % 4) % 4;
    part.append(pad, '=');
    std::string block(part.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(block.data()),
                            reinterpret_cast<const unsigned char*>(part.data()),
                            static_cast<int>(part.size()));
    if (n < 0 || static_cast<size_t>(n) < pad) return std::nullopt;
    out.append(block.data(), static_cast<size_t>(n) - pad);
  }
  return out;
}

}  // namespace boxlite::base

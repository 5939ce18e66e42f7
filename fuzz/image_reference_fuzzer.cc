// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Fuzzes image reference parsing. Besides "no crash", it checks that normalisation is a
// fixed point: a parsed reference prints to a string that parses to the same reference.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/image/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto ref = boxlite::image::ParseReference(input);
  if (!ref.ok()) {
    if (ref.error().message().empty()) __builtin_trap();
    return 0;
  }
  const std::string normalized = ref->String();
  auto again = boxlite::image::ParseReference(normalized);
  if (!again.ok() || !(*again == *ref) || again->String() != normalized) __builtin_trap();
  if (ref->tag.empty() && ref->digest.empty()) __builtin_trap();
  if (!ref->digest.empty() && !boxlite::image::ValidateDigest(ref->digest).ok()) __builtin_trap();
  return 0;
}

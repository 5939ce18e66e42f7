// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Base64 (RFC 4648, standard alphabet) over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
// Part of boxlite_base_crypto (it links OpenSSL). Thread-safe: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace boxlite::base {

// Padded, no line breaks.
std::string Base64Encode(std::string_view data);

// Padding optional (any '=' run at the end); nullopt for whitespace, a character outside
// the alphabet, '=' inside, or a length no encoding has (4n+1 characters).
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace boxlite::base

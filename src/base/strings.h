// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Small string helpers. Thread-safe: all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boxlite::base {

// printf-style formatting into a std::string.
std::string StrFormat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

std::vector<std::string> Split(std::string_view s, char sep, bool skip_empty = false);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view Trim(std::string_view s);
std::string ToLower(std::string_view s);

// Parses a whole decimal number; nullopt on any junk, sign where unsigned, or overflow.
std::optional<int64_t> ParseInt(std::string_view s);
std::optional<uint64_t> ParseUint(std::string_view s);

// Quotes a string for error messages and shell-like display: 'a b' -> "'a b'".
std::string ShellQuote(std::string_view s);

// "1.5 MiB", "512 B".
std::string HumanBytes(uint64_t bytes);

}  // namespace boxlite::base

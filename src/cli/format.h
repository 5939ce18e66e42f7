// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Output formats of the CLI's --format flags: JSON (nlohmann), YAML (yaml-cpp) and a
// subset of Go's text/template, the way `docker inspect -f` is used:
//   literal text, {{.Field}}, {{.A.B}}, {{.}}, {{json .Field}}, {{json .}}
// Anything else ({{if}}, {{range}}, pipes, functions other than json) is an error that
// names the action. Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "boxlite/result.h"

namespace boxlite::cli {

// RFC 3339 in UTC ("2026-01-02T03:04:05Z"), the form BoxLite 0.9 prints times in.
std::string Rfc3339(int64_t unix_seconds);

// `value` as YAML (a document without the leading "---"), ending in a newline. Strings
// that YAML would read back as another type (numbers, booleans, dates, "null") are
// quoted; bytes that are not UTF-8 become U+FFFD.
std::string ToYaml(const nlohmann::json& value);

// `value` as one line of JSON; bytes that are not UTF-8 become U+FFFD.
std::string ToJson(const nlohmann::json& value, int indent = -1);

// Checks a template once, before any box is looked at.
Status CheckTemplate(std::string_view text);

// Evaluates the template subset above against `data` (no newline is added). A missing
// field is an error naming it.
Result<std::string> RenderTemplate(std::string_view text, const nlohmann::json& data);

}  // namespace boxlite::cli

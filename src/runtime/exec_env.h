// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// How an exec's environment, working directory and user are derived from the image's
// config, the box's options and the exec's own options (later wins). Pure functions,
// unit-tested. Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "boxlite/options.h"

namespace boxlite::runtime {

// Merges "K=V" lists and pairs in order; a later key replaces an earlier one in place.
std::vector<std::string> MergeEnv(const std::vector<std::string>& image_env,
                                  const EnvList& box_env, const EnvList& exec_env);

// The first non-empty of the arguments, else `fallback`.
std::string FirstNonEmpty(std::initializer_list<std::string> values, std::string fallback);

// Box ids are BoxLite 0.9's: 12 Base62 characters ([0-9A-Za-z], about 71 bits) from the
// kernel's CSPRNG. Ids minted before (32 hex digits) stay valid: lookups compare strings.
constexpr size_t kBoxIdLength = 12;
std::string NewBoxId();

// Validates a box name: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}.
bool IsValidBoxName(const std::string& name);

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/exec_env.h"

#include <sys/random.h>

#include <cctype>

namespace boxlite::runtime {

std::vector<std::string> MergeEnv(const std::vector<std::string>& image_env,
                                  const EnvList& box_env, const EnvList& exec_env) {
  std::vector<std::string> out;
  auto set = [&out](const std::string& key, const std::string& value) {
    std::string entry = key + "=" + value;
    for (auto& e : out) {
      if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
        e = std::move(entry);
        return;
      }
    }
    out.push_back(std::move(entry));
  };
  for (const auto& e : image_env) {
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    set(e.substr(0, eq), e.substr(eq + 1));
  }
  for (const auto& [k, v] : box_env) set(k, v);
  for (const auto& [k, v] : exec_env) set(k, v);
  return out;
}

std::string FirstNonEmpty(std::initializer_list<std::string> values, std::string fallback) {
  for (const auto& v : values) {
    if (!v.empty()) return v;
  }
  return fallback;
}

std::string NewBoxId() {
  static constexpr char kBase62[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string id;
  while (id.size() < kBoxIdLength) {
    unsigned char bytes[32];
    size_t got = 0;
    while (got < sizeof(bytes)) {
      ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
      if (n > 0) got += static_cast<size_t>(n);
    }
    for (unsigned char b : bytes) {
      // 248 = 4 * 62: bytes above it would favour the first characters.
      if (b < 248 && id.size() < kBoxIdLength) id += kBase62[b % 62];
    }
  }
  return id;
}

bool IsValidBoxName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace boxlite::runtime

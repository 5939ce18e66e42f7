// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/base/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace boxlite::base {
namespace {

std::atomic<int>& Level() {
  static std::atomic<int> level{static_cast<int>(LogLevel::kWarn)};
  return level;
}

}  // namespace

bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= Level().load(); }

void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  static constexpr std::string_view kNames[] = {"error", "warn", "info", "debug", "trace"};
  for (int i = 0; i < 5; ++i) {
    if (name == kNames[i]) {
      *level = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

void Log(LogLevel level, const char* fmt, ...) {
  static const char* kTags[] = {"error", "warning", "info", "debug", "trace"};
  char buf[2048];
  int n = std::snprintf(buf, sizeof(buf), "boxlite: %s: ", kTags[static_cast<int>(level)]);
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof(buf) - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + static_cast<size_t>(m < 0 ? 0 : m);
  if (len > sizeof(buf) - 2) len = sizeof(buf) - 2;
  buf[len++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, buf, len);
  (void)ignored;
}

}  // namespace boxlite::base

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Leveled logging to stderr, at level warn until SetLogLevel (Runtime::Open sets the level
// RuntimeOptions.log_level or BOXLITE_LOG names). Thread-safe: each message is one write(2).
#pragma once

#include <string_view>

namespace boxlite::base {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

bool LogEnabled(LogLevel level);
void SetLogLevel(LogLevel level);
// "error", "warn", "info", "debug" or "trace"; false for anything else.
bool ParseLogLevel(std::string_view name, LogLevel* level);
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace boxlite::base

#define BOXLITE_LOG(level, ...)                                                   \
  do {                                                                            \
    if (::boxlite::base::LogEnabled(::boxlite::base::LogLevel::level))            \
      ::boxlite::base::Log(::boxlite::base::LogLevel::level, __VA_ARGS__);        \
  } while (0)

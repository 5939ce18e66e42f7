// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Leveled logging to stderr. The level comes from BOXLITE_LOG (error, warn, info, debug,
// trace; default warn) and is read once. Thread-safe: each message is one write(2).
#pragma once

namespace boxlite::base {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

bool LogEnabled(LogLevel level);
void SetLogLevel(LogLevel level);
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace boxlite::base

#define BOXLITE_LOG(level, ...)                                                   \
  do {                                                                            \
    if (::boxlite::base::LogEnabled(::boxlite::base::LogLevel::level))            \
      ::boxlite::base::Log(::boxlite::base::LogLevel::level, __VA_ARGS__);        \
  } while (0)

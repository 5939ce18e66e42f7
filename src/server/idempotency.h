// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The Idempotency-Key cache of POST /v1/boxes (docs/server.md, "Idempotency"): the first
// request with a key runs; a later one with the same key and the same body gets the
// first one's reply again; the same key with another body is refused (422), as is the
// same key while the first request is still running (409). Entries live 24 hours; the
// cache holds at most `capacity` keys (the oldest go first). Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace boxlite::server {

class IdempotencyCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Reply {
    unsigned status = 0;
    std::string body;
  };

  enum class Outcome {
    kRun,        // First use: run the request, then call Finish (or Abandon).
    kReplay,     // Same key, same body: send `reply`.
    kMismatch,   // Same key, another body.
    kInFlight,   // Same key while the first request runs.
  };

  explicit IdempotencyCache(size_t capacity = 10000,
                            std::chrono::seconds ttl = std::chrono::hours(24))
      : capacity_(capacity), ttl_(ttl) {}

  // `body_digest` identifies the request body (a SHA-256 of it).
  Outcome Begin(const std::string& key, std::string_view body_digest, Reply* reply,
                Clock::time_point now = Clock::now());
  // Stores the reply of the request that got kRun.
  void Finish(const std::string& key, Reply reply, Clock::time_point now = Clock::now());
  // Forgets a key whose request failed (a failure is not replayed: the client may retry).
  void Abandon(const std::string& key);

  size_t size();

 private:
  struct Entry {
    std::string digest;
    bool done = false;
    Reply reply;
    Clock::time_point expires;
    std::list<std::string>::iterator order;
  };
  void EvictLocked(Clock::time_point now);

  std::mutex mu_;
  size_t capacity_;
  std::chrono::seconds ttl_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> order_;  // Oldest first.
};

}  // namespace boxlite::server

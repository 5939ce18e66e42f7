// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/server/idempotency.h"

namespace boxlite::server {

void IdempotencyCache::EvictLocked(Clock::time_point now) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    bool expired = it != entries_.end() && it->second.done && it->second.expires <= now;
    if (!expired && entries_.size() <= capacity_) break;
    if (it != entries_.end()) entries_.erase(it);
    order_.pop_front();
  }
}

IdempotencyCache::Outcome IdempotencyCache::Begin(const std::string& key,
                                                  std::string_view body_digest, Reply* reply,
                                                  Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  EvictLocked(now);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.done && it->second.expires <= now) {
    order_.erase(it->second.order);
    entries_.erase(it);
    it = entries_.end();
  }
  if (it != entries_.end()) {
    if (it->second.digest != body_digest) return Outcome::kMismatch;
    if (!it->second.done) return Outcome::kInFlight;
    *reply = it->second.reply;
    return Outcome::kReplay;
  }
  order_.push_back(key);
  Entry e;
  e.digest = std::string(body_digest);
  e.expires = now + ttl_;
  e.order = std::prev(order_.end());
  entries_.emplace(key, std::move(e));
  EvictLocked(now);
  return Outcome::kRun;
}

void IdempotencyCache::Finish(const std::string& key, Reply reply, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.done = true;
  it->second.reply = std::move(reply);
  it->second.expires = now + ttl_;
}

void IdempotencyCache::Abandon(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  order_.erase(it->second.order);
  entries_.erase(it);
}

size_t IdempotencyCache::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace boxlite::server

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The replay backlog of one exec stream: the latest `capacity` bytes of output, kept so a
// client that attaches late (or again, after its connection dropped) sees what it missed
// (BoxLite 0.9 keeps 256 KiB per stream). Older bytes are dropped from the front. Not
// thread-safe: the exec session's lock guards it.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace boxlite::server {

constexpr size_t kBacklogBytes = 256 * 1024;

class Backlog {
 public:
  explicit Backlog(size_t capacity = kBacklogBytes) : capacity_(capacity) {}

  void Append(std::string_view bytes) {
    total_ += bytes.size();
    if (bytes.size() >= capacity_) {
      chunks_.clear();
      size_ = 0;
      bytes = bytes.substr(bytes.size() - capacity_);
    }
    chunks_.emplace_back(bytes);
    size_ += bytes.size();
    while (size_ > capacity_) {
      std::string& front = chunks_.front();
      size_t excess = size_ - capacity_;
      if (front.size() <= excess) {
        size_ -= front.size();
        chunks_.pop_front();
      } else {
        front.erase(0, excess);
        size_ -= excess;
      }
    }
    dropped_ = total_ - size_;
  }

  // The kept bytes, oldest first.
  std::string Contents() const {
    std::string out;
    out.reserve(size_);
    for (const auto& c : chunks_) out += c;
    return out;
  }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  // Bytes appended over the backlog's life, and how many of them were dropped.
  size_t total() const { return total_; }
  size_t dropped() const { return dropped_; }

 private:
  size_t capacity_;
  std::deque<std::string> chunks_;
  size_t size_ = 0;
  size_t total_ = 0;
  size_t dropped_ = 0;
};

}  // namespace boxlite::server

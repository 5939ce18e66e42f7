// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// UniqueFd owns one file descriptor and closes it on destruction (close is not retried
// on EINTR: on Linux the descriptor is gone either way). Move-only. A raw `int fd` in
// our code is always a non-owning parameter.
#pragma once

#include <unistd.h>

#include <utility>

namespace boxlite::base {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // Gives up ownership; the caller must close the result.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);
  }

 private:
  int fd_ = -1;
};

}  // namespace boxlite::base

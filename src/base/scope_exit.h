// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// ScopeExit runs a callable when it goes out of scope unless Cancel() was called: the
// rollback of a half-built object. Not thread-safe; lives on one stack.
#pragma once

#include <utility>

namespace boxlite::base {

template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F fn) : fn_(std::move(fn)) {}
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  ~ScopeExit() {
    if (armed_) fn_();
  }
  // Keeps what was built: the rollback will not run.
  void Cancel() { armed_ = false; }

 private:
  F fn_;
  bool armed_ = true;
};

}  // namespace boxlite::base

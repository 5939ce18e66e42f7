// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Result<T> holds either a T or a non-OK Status. Its surface follows C++23
// std::expected<T, Status> (has_value, value, error, operator*, operator->) so it can
// become an alias later. Accessing the value of an error aborts: check first.
//
// Thread-safety: a value type, like T.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <type_traits>
#include <utility>

#include "boxlite/status.h"

namespace boxlite {

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(const T& value) : value_(value) {}  // NOLINT: implicit like std::expected.
  Result(T&& value) : value_(std::move(value)) {}  // NOLINT
  template <typename U,
            typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                        !std::is_same_v<std::decay_t<U>, Status> &&
                                        !std::is_same_v<std::decay_t<U>, Result<T>>>>
  Result(U&& value) : value_(T(std::forward<U>(value))) {}  // NOLINT
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) {
      std::fprintf(stderr, "boxlite: Result constructed from an OK status\n");
      std::abort();
    }
  }

  bool has_value() const { return value_.has_value(); }
  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return has_value(); }

  T& value() & { Check(); return *value_; }
  const T& value() const& { Check(); return *value_; }
  T&& value() && { Check(); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The error; OK when a value is present.
  const Status& error() const { return status_; }
  const Status& status() const { return status_; }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void Check() const {
    if (!value_.has_value()) {
      std::fprintf(stderr, "boxlite: value() of a failed Result: %s\n",
                   status_.ToString().c_str());
      std::abort();
    }
  }

  std::optional<T> value_;
  Status status_;
};

// Marks the error of `result` (if any) with `subject` unless it names one already; see
// Status::WithDefaultSubject. For module boundaries: `return AboutSubject(store->Get(r), ...)`.
template <typename T>
Result<T> AboutSubject(Result<T> result, StatusSubject subject) {
  if (result.ok()) return result;
  return result.error().WithDefaultSubject(subject);
}
inline Status AboutSubject(const Status& status, StatusSubject subject) {
  return status.WithDefaultSubject(subject);
}

}  // namespace boxlite

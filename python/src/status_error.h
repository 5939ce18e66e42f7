// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// StatusError carries a failed boxlite::Status out of a binding function to the one
// place that turns it into a Python exception (RegisterStatusTranslator). It is the only
// C++ exception the binding throws; the core never throws (docs/errors.md).
//
// Thread-safety: a value type. It may be created and thrown without the GIL; the
// translator runs with the GIL held.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include <nanobind/nanobind.h>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite::python {

// What the failed call was about. The Python helper uses it, after the Status's own
// subject (StatusSubject, set where the error was born), to pick the exception class: a
// NotFound without a subject while starting a box is a BoxStartError.
enum class Domain { kRuntime, kBox, kStart, kExec, kImage, kCopy };

class StatusError final : public std::exception {
 public:
  StatusError(Status status, Domain domain, std::string context)
      : status_(std::move(status)), domain_(domain), context_(std::move(context)) {}

  const char* what() const noexcept override { return status_.message().c_str(); }
  const Status& status() const { return status_; }
  Domain domain() const { return domain_; }
  const std::string& context() const { return context_; }

 private:
  Status status_;
  Domain domain_;
  std::string context_;
};

// Throws StatusError when `status` is not OK.
inline void ThrowIfError(const Status& status, Domain domain, std::string context) {
  if (!status.ok()) throw StatusError(status, domain, std::move(context));
}

// Returns the value of `result` or throws its error as a StatusError.
template <typename T>
T ValueOrThrow(Result<T> result, Domain domain, std::string context) {
  if (!result.ok()) throw StatusError(result.error(), domain, std::move(context));
  return std::move(result).value();
}

// Installs the translator that hands every StatusError to
// boxlite.errors.error_from_status(code, message, context, domain, subject) and raises
// what it returns. `fallback` is raised when that helper cannot be imported (a broken install).
void RegisterStatusTranslator(nanobind::handle fallback);

}  // namespace boxlite::python

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's exception boundary. The core does not throw, but the standard library and
// nlohmann-json can (bad_alloc, length_error, a JSON type error): as PID 1 the agent must
// never let one escape, because PID 1 exiting panics the guest kernel and the box is
// gone. Every request runs inside CatchAll, which turns anything thrown into an error
// Status that is answered like any other failed request.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "boxlite/status.h"

namespace boxlite::agent {

// Runs `f` (returning Status); whatever it throws becomes an Internal (or, for an
// allocation failure, ResourceExhausted) Status naming `what`.
template <typename F>
Status CatchAll(const char* what, F&& f) noexcept {
  try {
    try {
      return f();
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted(std::string(what) + ": out of memory");
    } catch (const std::exception& e) {
      return Status::Internal(std::string(what) + " failed: " + e.what());
    } catch (...) {
      return Status::Internal(std::string(what) + " failed: unknown exception");
    }
  } catch (...) {
    // Building the message itself failed (no memory left even for that).
    return Status(StatusCode::kResourceExhausted, std::string());
  }
}

}  // namespace boxlite::agent

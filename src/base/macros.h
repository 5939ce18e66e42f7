// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Propagation and assertion macros. BOXLITE_CHECK is for invariants of our own code and
// is always on; never use it on input from users, images or the guest (those get a
// Status).
#pragma once

#include <cstdio>
#include <cstdlib>

#include "boxlite/result.h"
#include "boxlite/status.h"

#define BOXLITE_CONCAT_INNER(a, b) a##b
#define BOXLITE_CONCAT(a, b) BOXLITE_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define BOXLITE_RETURN_IF_ERROR(expr)                 \
  do {                                                \
    ::boxlite::Status boxlite_status_ = (expr);       \
    if (!boxlite_status_.ok()) return boxlite_status_; \
  } while (0)

// `BOXLITE_ASSIGN_OR_RETURN(auto fd, Open(path));` declares `fd` from a Result's value or
// returns its error.
#define BOXLITE_ASSIGN_OR_RETURN(lhs, expr) \
  BOXLITE_ASSIGN_OR_RETURN_IMPL(BOXLITE_CONCAT(boxlite_result_, __LINE__), lhs, expr)
#define BOXLITE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.has_value()) return tmp.error();           \
  lhs = std::move(tmp).value()

#define BOXLITE_CHECK(cond)                                                              \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "boxlite: check failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                               \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#ifdef NDEBUG
#define BOXLITE_DCHECK(cond) \
  do {                       \
  } while (0)
#else
#define BOXLITE_DCHECK(cond) BOXLITE_CHECK(cond)
#endif

#define BOXLITE_DISALLOW_COPY(Type) \
  Type(const Type&) = delete;       \
  Type& operator=(const Type&) = delete

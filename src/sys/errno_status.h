// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The one place errno becomes a Status: ENOENT -> NotFound, EEXIST -> AlreadyExists,
// EACCES/EPERM -> PermissionDenied, ENOSPC/EDQUOT/ENOMEM -> ResourceExhausted, anything
// else -> IoError. The message is "<context>: <strerror>".
#pragma once

#include "boxlite/status.h"

namespace boxlite::sys {

Status ErrnoStatus(int err, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace boxlite::sys

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/errno_status.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

namespace boxlite::sys {

Status ErrnoStatus(int err, const char* fmt, ...) {
  char context[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(context, sizeof(context), fmt, ap);
  va_end(ap);
  std::string message = context;
  message += ": ";
  message += std::strerror(err);
  if (err == EMFILE) {
    // What to do about it: the limit is per process, and every box holds descriptors.
    struct rlimit lim;
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      char hint[160];
      std::snprintf(hint, sizeof(hint),
                    " (this process's limit of %llu open files, RLIMIT_NOFILE: raise it, "
                    "e.g. with `ulimit -n`, or close what it holds)",
                    static_cast<unsigned long long>(lim.rlim_cur));
      message += hint;
    }
  } else if (err == ENFILE) {
    message += " (the system's table of open files is full: raise fs.file-max)";
  }
  StatusCode code = StatusCode::kIoError;
  switch (err) {
    case ENOENT:
      code = StatusCode::kNotFound;
      break;
    case EEXIST:
      code = StatusCode::kAlreadyExists;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      code = StatusCode::kPermissionDenied;
      break;
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      code = StatusCode::kResourceExhausted;
      break;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
      code = StatusCode::kInvalidArgument;
      break;
    default:
      break;
  }
  return Status(code, std::move(message), err);
}

}  // namespace boxlite::sys

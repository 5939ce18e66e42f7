// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/limits.h"

#include <cstdio>

namespace boxlite::sys {

namespace {

// The kernel's ceiling on any process's descriptors: an "unlimited" hard limit means this.
rlim_t KernelOpenFileCeiling() {
  unsigned long long n = 0;
  if (FILE* f = std::fopen("/proc/sys/fs/nr_open", "re")) {
    if (std::fscanf(f, "%llu", &n) != 1) n = 0;
    std::fclose(f);
  }
  return static_cast<rlim_t>(n);
}

}  // namespace

rlim_t RaiseOpenFileLimit() {
  struct rlimit lim;
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  rlim_t target = lim.rlim_max;
  if (target == RLIM_INFINITY) target = KernelOpenFileCeiling();
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < target) {
    struct rlimit raised = {target, lim.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim.rlim_cur = target;
  }
  return lim.rlim_cur;
}

}  // namespace boxlite::sys

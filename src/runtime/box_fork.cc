// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Forks: running copies of a running box sharing its memory copy-on-write.
#include "src/runtime/box_impl.h"

namespace boxlite::runtime {

Result<std::vector<std::shared_ptr<Box>>> BoxImpl::Fork(const ForkOptions&) {
  return Status::NotSupported("fork is not built yet");
}

}  // namespace boxlite::runtime

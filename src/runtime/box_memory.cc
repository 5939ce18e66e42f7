// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Memory snapshots: a box's RAM, device state and disk saved together, and boots from them.
#include "src/runtime/box_impl.h"

namespace boxlite::runtime {

Status BoxImpl::SaveMemoryLocked(const std::string&) {
  return Status::NotSupported("memory snapshots are not built yet");
}

Status BoxImpl::RestoreMemoryLocked(const std::string&) {
  return Status::NotSupported("memory snapshots are not built yet");
}

}  // namespace boxlite::runtime

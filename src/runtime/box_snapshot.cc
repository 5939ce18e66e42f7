// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Disk and memory snapshots of a box, and clones (docs/snapshots.md).
#include "src/runtime/box_impl.h"

namespace boxlite::runtime {

Result<SnapshotInfo> BoxImpl::CreateSnapshot(const std::string&, const SnapshotOptions&) {
  return Status::NotSupported("snapshots are not built yet");
}
Result<std::vector<SnapshotInfo>> BoxImpl::ListSnapshots() {
  return Status::NotSupported("snapshots are not built yet");
}
Result<std::optional<SnapshotInfo>> BoxImpl::GetSnapshot(const std::string&) {
  return Status::NotSupported("snapshots are not built yet");
}
Status BoxImpl::RemoveSnapshot(const std::string&) {
  return Status::NotSupported("snapshots are not built yet");
}
Status BoxImpl::RestoreSnapshot(const std::string&) {
  return Status::NotSupported("snapshots are not built yet");
}
Result<std::shared_ptr<Box>> BoxImpl::Clone(const std::string&, const CloneOptions&) {
  return Status::NotSupported("clones are not built yet");
}

}  // namespace boxlite::runtime

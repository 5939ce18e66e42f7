// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Exporting a box as a .boxlite archive (docs/snapshots.md has the format).
#include "src/runtime/box_impl.h"

namespace boxlite::runtime {

Result<std::string> BoxImpl::Export(const std::string&, const ExportOptions&) {
  return Status::NotSupported("export is not built yet");
}

}  // namespace boxlite::runtime

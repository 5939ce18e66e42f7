// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Importing a .boxlite archive as a new box. The archive is hostile input.
#include "src/runtime/runtime_impl.h"

namespace boxlite::runtime {

Result<std::shared_ptr<Box>> RuntimeImpl::ImportBox(const std::string&, const std::string&,
                                                    bool) {
  return Status::NotSupported("import_box is not built yet");
}

}  // namespace boxlite::runtime

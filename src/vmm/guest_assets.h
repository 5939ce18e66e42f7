// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Finds what every VM boots from: the guest kernel (vmlinux) and the initramfs holding
// the agent, in the first data directory that has both: the runtime's setting
// (RuntimeOptions.data_dir, else $BOXLITE_DATA_DIR), the install location compiled in,
// then <dir of the executable>/../share/boxlite. The same directory holds the built-in
// images. Thread-safe (no state).
#pragma once

#include <string>
#include <vector>

#include "boxlite/result.h"

namespace boxlite::vmm {

struct GuestAssets {
  std::string data_dir;
  std::string kernel;
  std::string initramfs;
};

std::vector<std::string> DataDirCandidates(const std::string& explicit_dir);
Result<GuestAssets> LocateGuestAssets(const std::string& explicit_dir);

}  // namespace boxlite::vmm

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/guest_assets.h"

#include "src/base/strings.h"
#include "src/sys/fs.h"

#ifndef BOXLITE_DATADIR
#define BOXLITE_DATADIR "/usr/local/share/boxlite"
#endif

namespace boxlite::vmm {

std::vector<std::string> DataDirCandidates(const std::string& explicit_dir) {
  std::vector<std::string> dirs;
  if (!explicit_dir.empty()) dirs.push_back(explicit_dir);
  dirs.emplace_back(BOXLITE_DATADIR);
  dirs.push_back(sys::JoinPath(sys::Dirname(sys::SelfExeDir()), "share/boxlite"));
  return dirs;
}

Result<GuestAssets> LocateGuestAssets(const std::string& explicit_dir) {
  auto dirs = DataDirCandidates(explicit_dir);
  for (const auto& dir : dirs) {
    GuestAssets assets{dir, sys::JoinPath(dir, "vmlinux"), sys::JoinPath(dir, "initramfs.cpio")};
    if (sys::Exists(assets.kernel) && sys::Exists(assets.initramfs)) return assets;
  }
  return Status::NotFound("the guest kernel and initramfs (vmlinux, initramfs.cpio) are not in " +
                              base::Join(dirs, ", "),
                          "run `make demo` (or scripts/setup.sh) to build and install them, or "
                          "set BOXLITE_DATA_DIR");
}

}  // namespace boxlite::vmm

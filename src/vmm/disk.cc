// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/disk.h"

#include <fcntl.h>
#include <unistd.h>

#include "src/sys/fs.h"
#include "src/sys/subprocess.h"

namespace boxlite::vmm {

Result<base::UniqueFd> OpenDiskOverlay(const DiskOverlay& disk) {
  if (!disk.keep || !sys::Exists(disk.path)) {
    auto created = sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                    disk.backing, disk.path, std::to_string(disk.size_mib) + "M"});
    if (!created.ok()) {
      ::unlink(disk.path.c_str());
      return created.error().Wrap("create the box disk");
    }
  }
  auto opened = sys::Open(disk.path, O_RDWR | O_CLOEXEC);
  if (!disk.keep) ::unlink(disk.path.c_str());
  return opened;
}

}  // namespace boxlite::vmm

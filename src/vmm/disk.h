// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A box's disk: a qcow2 overlay (made by `qemu-img create`) on the image's raw ext4 base,
// so the box's writes never reach the base that boxes of the same image share. QEMU gets
// the overlay and the base as descriptors (src/vmm/qemu.h), never as paths. An empty
// overlay depends only on the base's path and the size, so one made once can be copied:
// a box then starts without a qemu-img process (about 20 ms of its start).
// Thread-safety: OpenDiskOverlay is thread-safe for different paths.
#pragma once

#include <cstdint>
#include <string>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::vmm {

struct DiskOverlay {
  std::string path;      // The overlay file.
  std::string backing;   // The raw base it reads through to.
  int64_t size_mib = 0;  // The size the guest sees.
  // A persistent box's disk: an overlay already at `path` is reused, and the file stays.
  // Otherwise a new overlay is made and unlinked once open: only the descriptor names it.
  bool keep = false;
  // Optional, for a new overlay: where an empty overlay of this backing and size is kept.
  // A new overlay is a copy of it (made there first with qemu-img when missing, or when
  // its header names another backing file or size). When the template cannot be made or
  // read, the overlay is made with qemu-img as without one.
  std::string template_path;
};

// Creates the overlay when needed and opens it read-write (O_CLOEXEC). On error no file
// this call created is left at `path`; errors say what `qemu-img` said.
Result<base::UniqueFd> OpenDiskOverlay(const DiskOverlay& disk);

}  // namespace boxlite::vmm

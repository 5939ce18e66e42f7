// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Snapshots, clones, forks and exported boxes (docs/snapshots.md): the plain structs of
// Box::CreateSnapshot and its relatives. Values only; thread-safe to copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace boxlite {

// How a snapshot is taken. BoxLite 0.9's SnapshotOptions is empty: a disk snapshot.
struct SnapshotOptions {
  // Also save the guest's memory and device state: restoring brings the box back running
  // with its processes. Needs a running box.
  bool memory = false;
};

// One snapshot of a box, as BoxLite 0.9 reports it plus what a memory snapshot adds.
struct SnapshotInfo {
  std::string id;       // Unique across the home (12 Base62 characters).
  std::string box_id;
  std::string name;     // 1..255 bytes, no leading '.', no '/', '\\' or NUL.
  int64_t created_unix = 0;
  uint64_t container_disk_bytes = 0;  // Bytes the saved disk occupies.
  uint64_t size_bytes = 0;            // Everything the snapshot occupies.
  bool memory = false;                // Holds memory and device state too.
  uint64_t memory_bytes = 0;          // Bytes the saved memory occupies (0: none).
};

struct CloneOptions {};   // BoxLite 0.9's placeholder.
struct ExportOptions {};  // BoxLite 0.9's placeholder.

// Box::Fork: `count` running boxes, each with its own id, name, hostname and RNG state,
// sharing the source's memory copy-on-write.
struct ForkOptions {
  int count = 1;
  std::vector<std::string> names;  // Empty, or `count` names (an empty name: generated).
  // Fork from this memory snapshot of the box instead of its live state.
  std::string snapshot;
};

}  // namespace boxlite

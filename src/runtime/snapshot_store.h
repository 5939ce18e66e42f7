// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Where a box's snapshots live (docs/snapshots.md). A persistent box keeps them under its
// directory:
//   snapshots/<name>/info.json    id, box_id, name, created_unix, memory (sizes are read
//                                 from the files, never stored)
//   snapshots/<name>/disk.qcow2   a copy of the box's disk overlay (what the box wrote)
//   snapshots/<name>/memory.*     a memory snapshot's RAM and device state
// A snapshot is built in a temporary directory whose name starts with '.' (never a valid
// snapshot name, so never listed) and renamed into place: a crash leaves no half snapshot
// that lists, and the next creation sweeps what it left. Names follow BoxLite 0.9: 1..255
// bytes, no leading '.', no '/', '\\' or NUL.
// Also here: CopyDiskFile, the copy every snapshot, restore and clone makes of a disk.
// Thread-safety: a SnapshotStore has no state of its own; callers that change a box's
// snapshots hold the box's lock (src/runtime/box_record.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/snapshot.h"
#include "boxlite/status.h"

namespace boxlite::runtime {

// InvalidArgument (subject snapshot) for a name BoxLite 0.9 refuses.
Status CheckSnapshotName(std::string_view name);

// NotFound and AlreadyExists errors about snapshot `name` of box `box` (subject snapshot).
Status SnapshotNotFound(std::string_view box, std::string_view name);
Status SnapshotExists(std::string_view box, std::string_view name);

// Copies the file open at `src_fd` (from its start, whatever its offset) to a new file at
// `dst` (mode 0600): shares its blocks (FICLONE) where the file system can, else
// copy_file_range over the data extents only, holes kept. `dst` must not exist. On
// failure nothing is left at `dst`.
Status CopyDiskFile(int src_fd, const std::string& dst);
// The same into an open, empty file.
Status CopyDiskFileTo(int src_fd, int dst_fd);

class SnapshotStore {
 public:
  // `dir`: the box's snapshots directory (made on first use). `box_name` for messages.
  SnapshotStore(std::string dir, std::string box_name);

  const std::string& dir() const { return dir_; }
  std::string PathOf(std::string_view name) const;

  // Starts snapshot `name`: checks the name and that it is free, sweeps what an earlier
  // creation left, and returns a new empty temporary directory to fill.
  Result<std::string> Begin(std::string_view name);
  // Writes info.json into `tmp` and renames it into place as `info.name` (never over an
  // existing snapshot: AlreadyExists). Returns the info with its sizes. On failure `tmp`
  // is removed.
  Result<SnapshotInfo> Commit(const std::string& tmp, SnapshotInfo info);
  // Removes a temporary directory Begin made (a creation that failed).
  void Abandon(const std::string& tmp);

  // Every snapshot, oldest first (then by name). Entries that are not snapshots are skipped.
  Result<std::vector<SnapshotInfo>> List() const;
  // nullopt when there is none of that name (an invalid name has none).
  Result<std::optional<SnapshotInfo>> Get(std::string_view name) const;
  // NotFound when there is none. It disappears at once (renamed away), then is deleted.
  Status Remove(std::string_view name);

 private:
  Result<SnapshotInfo> Load(const std::string& name) const;

  std::string dir_;
  std::string box_name_;
};

// The sizes of snapshot files: `disk` the saved disk, `memory` the memory.* files, and
// `total` everything in the directory (bytes allocated, du).
struct SnapshotSizes {
  uint64_t disk = 0;
  uint64_t memory = 0;
  uint64_t total = 0;
};
SnapshotSizes MeasureSnapshot(const std::string& dir);

}  // namespace boxlite::runtime

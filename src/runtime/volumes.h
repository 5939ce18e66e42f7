// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Volumes: directories under <home>/volumes that boxes share through the same 9p path as
// host directories. Layout:
//   volumes/<id>/       the shared directory (what the guest sees)
//   volumes/<id>.json   {"id", "created_unix", "box", "pid", "pid_start_time"}: "box" is the
//                       owning box's id for an anonymous volume (removed with that box),
//                       absent for a named one; "pid" the process that made it
// Ids are 12 Base62 characters, like box ids. Started by root, the directory belongs to
// the system user that runs root's VMs ("boxlite", src/sys/jail.h), because the VM jail
// refuses a read-write share owned by root (src/vmm/vm_jail.cc); otherwise to the caller.
//
// Thread-safety: VolumeStore is stateless beyond its paths; creation is an atomic mkdir
// and removal deletes the record first, so concurrent users never see half a volume.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "boxlite/options.h"
#include "boxlite/result.h"

namespace boxlite::runtime {

// 12 random Base62 characters, like a box id (NewBoxId, src/runtime/exec_env.h).
std::string NewVolumeId();

class VolumeStore {
 public:
  explicit VolumeStore(std::string home);

  // A new empty volume; `owner_box` non-empty makes it that box's anonymous volume.
  Result<VolumeInfo> Create(std::string_view owner_box = {});
  // Every volume, named and anonymous, oldest first. Anonymous volumes left behind by a
  // process that died with its ephemeral box are removed on the way.
  Result<std::vector<VolumeInfo>> List();
  // NotFound ("volume X not found") for an unknown or malformed id.
  Result<VolumeInfo> Get(std::string_view id) const;
  // Deletes the volume and its files (no in-use check: the runtime does that).
  Status Remove(std::string_view id);
  // Deletes the anonymous volumes of a box; missing ones are fine.
  void RemoveAnonymousOf(std::string_view box_id);

  const std::string& dir() const { return dir_; }

 private:
  std::string RecordPath(std::string_view id) const;
  std::string DataPath(std::string_view id) const;
  // `owner_gone`: set when the volume is anonymous and its box can no longer exist.
  Result<VolumeInfo> Load(std::string_view id, std::string* owner_box, bool* owner_gone) const;

  std::string dir_;
  std::string boxes_dir_;
};

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Runtime is the entry point: it owns a state directory ("home") holding the image store
// and persistent boxes, and creates, finds and removes boxes. Several processes may use
// one home at once (file locks). There is no daemon: each Box's VM is a child process of
// the process that started it.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "boxlite/box.h"
#include "boxlite/options.h"
#include "boxlite/result.h"

namespace boxlite {

// Pull progress: called from the pulling thread(s) for every layer.
struct PullEvent {
  enum class Kind { kResolved, kLayerProgress, kLayerDone, kLayerCached, kUnpacking, kDone };
  Kind kind = Kind::kResolved;
  std::string reference;
  std::string digest;  // Layer digest for layer events.
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;
};
using PullCallback = std::function<void(const PullEvent&)>;

class Runtime {
 public:
  static Result<std::shared_ptr<Runtime>> Open(const RuntimeOptions& options);
  virtual ~Runtime() = default;

  virtual const std::string& home_dir() const = 0;

  // Creates a box (not yet started). A `name` already in use is AlreadyExists.
  virtual Result<std::shared_ptr<Box>> Create(const BoxOptions& options) = 0;
  // Finds a box by id, id prefix or name: one created here, or a persistent one on disk.
  virtual Result<std::shared_ptr<Box>> Get(std::string_view id_or_name) = 0;
  virtual Result<std::vector<BoxInfo>> List() = 0;
  // Removes a box; a running one only with `force` (it is killed).
  virtual Status Remove(std::string_view id_or_name, bool force) = 0;
  // The box named options.name if one exists ({box, false}), else a new box ({box,
  // true}); without a name, always a new box. An existing box is adopted only when its
  // capability policy equals the one asked for (FailedPrecondition otherwise).
  virtual Result<std::pair<std::shared_ptr<Box>, bool>> GetOrCreate(const BoxOptions& options) = 0;
  // Stops every box this runtime booted that is not detached, waiting up to
  // `timeout_seconds` per box for a clean stop (nullopt: 10 s; -1: no limit) before
  // killing it. Afterwards every call that would create or start a box fails with
  // FailedPrecondition ("runtime is shut down"). Idempotent.
  virtual Status Shutdown(std::optional<int> timeout_seconds) = 0;

  virtual Result<ImageInfo> PullImage(std::string_view reference, const PullCallback& progress) = 0;
  virtual Result<std::vector<ImageInfo>> ListImages() = 0;
  virtual Status RemoveImage(std::string_view reference) = 0;
  virtual Result<std::vector<ImageInfo>> ImportImage(const std::string& path,
                                                     std::string_view tag) = 0;
  // Imports a .boxlite archive (Box::Export; a plain tar too) as a new stopped box with a
  // new id. The archive is untrusted input: sizes are bounded, checksums verified, and
  // nothing is written outside the new box. `untrusted` also refuses options that reach
  // the host (mounts, allow_host, published ports). `name` empty: the archive's name when
  // free, else none.
  virtual Result<std::shared_ptr<Box>> ImportBox(const std::string& archive_path,
                                                 const std::string& name, bool untrusted) = 0;

  // Volumes (src/runtime/volumes.h): directories under <home>/volumes/<id> that boxes
  // mount by id (VolumeMount::host_path = the id). RemoveVolume refuses a volume a box
  // still mounts (FailedPrecondition) unless `force`.
  virtual Result<VolumeInfo> CreateVolume() = 0;
  virtual Result<std::vector<VolumeInfo>> ListVolumes() = 0;
  virtual Result<VolumeInfo> GetVolume(std::string_view id) = 0;
  virtual Status RemoveVolume(std::string_view id, bool force) = 0;
  // Counters of this Runtime object: boxes created, failed, stopped and running, and the
  // execs of its boxes.
  virtual Result<RuntimeMetrics> Metrics() = 0;

  // Facts for `boxlite info`: accelerator and why, kernel, home, store size.
  virtual Result<std::vector<std::pair<std::string, std::string>>> HostInfo() = 0;
};

}  // namespace boxlite

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// RuntimeImpl implements boxlite::Runtime: the home directory, the image store (opened on
// first use), the accelerator choice (made once, with a one-line warning on TCG), the
// guest assets, and the boxes of this process. Boxes keep their runtime alive.
// Thread-safety: all public methods are thread-safe; mu_ guards the box table.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include "boxlite/runtime.h"
#include "src/image/store.h"
#include "src/runtime/volumes.h"
#include "src/vmm/accel.h"
#include "src/vmm/guest_assets.h"

namespace boxlite::runtime {

class BoxImpl;

// An image ready to boot: its base disk and the config execs inherit.
struct ResolvedImage {
  std::string reference;
  std::string rootfs_path;
  uint64_t rootfs_bytes = 0;
  image::ImageConfig config;
  uint64_t headroom_bytes = 0;  // Free space built into the base (image::kRootfsHeadroom).
};

// ResourceExhausted when a disk of `disk_size_mib` (0: none asked) could never fit in the
// free space of the file system holding `home` (the guest can fill its sparse disk).
Status CheckDiskFits(const std::string& home, int64_t disk_size_mib);

class RuntimeImpl final : public Runtime, public std::enable_shared_from_this<RuntimeImpl> {
 public:
  explicit RuntimeImpl(RuntimeOptions options, std::string home);

  const std::string& home_dir() const override { return home_; }
  Result<std::shared_ptr<Box>> Create(const BoxOptions& options) override;
  Result<std::shared_ptr<Box>> Get(std::string_view id_or_name) override;
  Result<std::vector<BoxInfo>> List() override;
  Status Remove(std::string_view id_or_name, bool force) override;
  Result<std::pair<std::shared_ptr<Box>, bool>> GetOrCreate(const BoxOptions& options) override;
  Status Shutdown(std::optional<int> timeout_seconds) override;
  Result<ImageInfo> PullImage(std::string_view reference, const PullCallback& progress) override;
  Result<std::vector<ImageInfo>> ListImages() override;
  Status RemoveImage(std::string_view reference) override;
  Result<std::vector<ImageInfo>> ImportImage(const std::string& path,
                                             std::string_view tag) override;
  // box_import.cc.
  Result<std::shared_ptr<Box>> ImportBox(const std::string& archive_path, const std::string& name,
                                         bool untrusted) override;
  Result<std::vector<std::pair<std::string, std::string>>> HostInfo() override;
  Result<VolumeInfo> CreateVolume() override;
  Result<std::vector<VolumeInfo>> ListVolumes() override;
  Result<VolumeInfo> GetVolume(std::string_view id) override;
  Status RemoveVolume(std::string_view id, bool force) override;
  VolumeStore& volumes() { return volumes_; }
  Result<RuntimeMetrics> Metrics() override;

  // For boxes: the options as Runtime::Open resolved them (include/boxlite/config.h).
  const RuntimeOptions& options() const { return options_; }
  Result<ResolvedImage> ResolveImage(const BoxOptions& options);
  Result<vmm::GuestAssets> Assets();
  Result<vmm::AccelChoice> Accel();
  std::string TmpDir() const { return home_ + "/tmp"; }
  std::string BoxesDir() const { return home_ + "/boxes"; }
  // Drops a box from this process's table (it was removed), with its anonymous volumes.
  void Forget(const std::string& id);
  // FailedPrecondition once Shutdown() ran: no new box starts.
  Status CheckOpen() const;

  // What Metrics() reports; boxes count into these as things happen.
  struct Counters {
    std::atomic<uint64_t> boxes_created{0};
    std::atomic<uint64_t> boxes_failed{0};
    std::atomic<uint64_t> boxes_stopped{0};
    std::atomic<uint64_t> commands_executed{0};
    std::atomic<uint64_t> exec_errors{0};
  };
  Counters& counters() { return counters_; }
  // The config digest of a stored image ("" when it is not in the store).
  std::string StoredImageDigest(const std::string& reference);

 private:
  Result<image::Store*> Store();
  // The boxes of this process still alive. Requires mu_.
  std::vector<std::shared_ptr<BoxImpl>> LiveBoxesLocked();
  // The image's rootfs; an image whose layers cannot be built is removed again.
  Result<image::RootfsInfo> RootfsOrForget(image::Store* store, const image::LocalImage& local,
                                           image::RootfsFit fit = image::RootfsFit::kHeadroom);
  // Volume ids become their directories, empty host paths new anonymous volumes of box
  // `id` (removed again if creating the box fails).
  Status ResolveVolumes(const std::string& id, BoxOptions* options);
  Result<image::LocalImage> EnsureImage(const std::string& reference, const PullCallback& progress);
  // Whether a box of this home has `name`. Requires mu_ and the home's boxes.lock.
  bool NameTakenLocked(const std::string& name);

  RuntimeOptions options_;
  std::string home_;
  std::mutex mu_;
  std::unique_ptr<image::Store> store_;                    // Guarded by mu_.
  std::optional<Result<vmm::AccelChoice>> accel_;          // Guarded by mu_.
  std::map<std::string, std::weak_ptr<BoxImpl>> boxes_;    // Guarded by mu_.
  Counters counters_;
  VolumeStore volumes_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace boxlite::runtime

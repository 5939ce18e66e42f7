// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Warm-start templates (docs/snapshots.md, "Warm start"). The first box of a tuple of
// inputs that shape its VM before the host's hello (TemplateInputs) leaves a memory
// snapshot taken when its agent is ready and before hello configures the guest; later
// boxes of the same tuple restore it instead of booting. Layout under the home:
//
//   templates/<key>/template.json   format version, key, inputs, file sizes
//   templates/<key>/memory.ram      guest RAM (sparse)
//   templates/<key>/memory.state    QEMU's device state (migration stream)
//   templates/<key>/memory.json     what a restore must match (src/runtime/box_memory.cc)
//   templates/<key>/disk.qcow2      the disk overlay at capture (on the image's base)
//   templates/.tmp-<key>/           a capture in progress (its capture.lock held by the
//                                   capturing process), renamed to <key> when complete
//   templates/digests/<h>           cached sha256 of a kernel or initramfs (FileDigest)
// Locks leave no files: a restore holds template.json shared (a removal takes it
// exclusively, without waiting, and skips a template in use); a capture holds
// .tmp-<key>/capture.lock, so a .tmp-<key> whose lock is free is a killed capture's.
//
// <key> is the sha256 of the inputs and the format version, so any change of input (a
// new kernel, agent, image, size, device) names a new template; the old one ages out
// (LRU, kMaxTemplates per home) or goes with its image (Collect).
//
// Thread-safety: a TemplateStore is stateless beyond its paths; several processes and
// threads may use one home at once (flock(2) locks, atomic renames).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/sys/file_lock.h"

namespace boxlite::runtime {

// The format of a template directory; a template of another version is never used.
constexpr int kTemplateVersion = 1;
// Templates a home keeps: capturing one more removes the least recently used.
constexpr size_t kMaxTemplates = 8;

// Everything that shapes a VM before the host's hello. Two boxes with equal inputs boot
// into the same guest state, so one's snapshot serves the other.
struct TemplateInputs {
  std::string rootfs;          // The image's base file in the store (content-addressed).
  uint64_t rootfs_bytes = 0;
  int64_t disk_size_mib = 0;   // The size the guest's disk device has.
  int cpus = 0;
  int memory_mib = 0;
  std::string kernel_sha256;
  std::string initramfs_sha256;  // The agent is in it.
  std::string qemu;            // The QEMU binary's identity (path, size, mtime).
  std::string accel;           // "kvm" or "tcg".
  uint32_t tsc_khz = 0;        // The TSC frequency the kernel is told.
  bool network = false;        // A network device.
  std::vector<bool> shares_read_only;  // One per 9p share, in order.
  int agent_ports = 0;         // 1 for an ephemeral box, more for a persistent one.
  std::string kernel_args;     // The kernel command line (vmm::KernelCommandLine).
  bool free_page_reporting = false;  // The balloon device (src/vmm/qemu.h).
};

// The template's name: sha256 (hex) over kTemplateVersion and every input.
std::string TemplateKey(const TemplateInputs& inputs);

// A template as template.json describes it.
struct TemplateRecord {
  std::string key;
  std::string dir;             // templates/<key>
  TemplateInputs inputs;
  int64_t created_unix = 0;
  int64_t used_unix = 0;       // Last restore (LRU), from template.json's mtime.
  std::vector<std::pair<std::string, uint64_t>> files;  // Name and size, each checked.
};

class TemplateStore {
 public:
  explicit TemplateStore(std::string home, size_t max_templates = kMaxTemplates);

  const std::string& dir() const { return dir_; }
  std::string PathOf(const std::string& key) const;

  // A template held for a restore: while this lives nobody removes it.
  struct Held {
    TemplateRecord record;
    sys::FileLock lock;
  };
  // The valid template of `key` (files present with their recorded sizes, base image
  // present), held, its use recorded; nullopt when there is none. A damaged one is
  // removed (a later box captures it again).
  Result<std::optional<Held>> Find(const std::string& key);

  // A capture in progress: files go into dir(); Commit publishes them as the template.
  // Dropped without Commit, its directory is removed.
  class Capture {
   public:
    Capture(Capture&&) noexcept;
    Capture& operator=(Capture&&) = delete;
    ~Capture();
    const std::string& dir() const { return tmp_; }
    const std::string& key() const { return key_; }

   private:
    friend class TemplateStore;
    Capture(std::string tmp, std::string key, sys::FileLock lock);
    std::string tmp_;
    std::string key_;
    std::optional<sys::FileLock> lock_;
  };
  // Starts capturing `key`: nullopt when the template exists or another process is
  // capturing it (that box then boots without capturing).
  Result<std::optional<Capture>> BeginCapture(const std::string& key);
  // Writes template.json (the inputs and the sizes of the files in the capture's
  // directory) and renames the directory to templates/<key>. Returns false when another
  // process published the key first (this capture is dropped). Then trims to the bound.
  Result<bool> Commit(Capture capture, const TemplateInputs& inputs);

  // Removes the template unless a box is restoring it (then false: it stays).
  Result<bool> Remove(const std::string& key);
  // Every published template, most recently used first (damaged ones skipped).
  Result<std::vector<TemplateRecord>> List();
  // Removes templates whose base image is gone from the store (an image removed and
  // collected) or for which `keep` says false, and leftovers of killed captures.
  // Returns how many templates went.
  Result<int> Collect(const std::function<bool(const TemplateRecord&)>& keep = nullptr);
  // Removes the least recently used templates beyond the bound.
  Status Trim();

 private:
  // Locks `key`'s template.json (nullopt: no template, or in use when not waiting).
  Result<std::optional<sys::FileLock>> LockRecord(const std::string& key,
                                                  sys::FileLock::Mode mode, bool wait);
  // Removes a capture directory whose capture.lock is free; false when a capture holds it.
  bool RemoveStaleCapture(const std::string& path);
  Result<TemplateRecord> Load(const std::string& key) const;

  std::string home_;
  std::string dir_;
  size_t max_templates_;
};

// The sha256 (hex) of a file, cached under `cache_dir` by the file's identity (device,
// inode, size, mtime, ctime): a kernel or initramfs is hashed once, not on every start.
Result<std::string> FileDigest(const std::string& path, const std::string& cache_dir);

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Disk snapshots of a box, their restore, and clones (docs/snapshots.md).
//
// A box's disk is a qcow2 overlay on its image's ext4 base: a snapshot is a copy of the
// overlay (what the box wrote; blocks shared with FICLONE where the file system can),
// never a qcow2 backing chain. A running box is quiesced for the copy: the agent freezes
// the file system of its disk (the "freeze" request, agent/server_freeze.cc) and the box
// is "paused" until it is thawed; a guest that cannot freeze gives a crash-consistent copy,
// as in BoxLite 0.9. A persistent box keeps its snapshots in its directory
// (src/runtime/snapshot_store.h); an ephemeral one (no directory: its overlay is an
// unlinked file) keeps them as unlinked files this process holds, so they go with the box
// even when the process is killed. Memory snapshots are box_memory.cc's: this file makes
// their directory and calls SaveMemoryLocked / RestoreMemoryLocked.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/exec_env.h"
#include "src/runtime/snapshot_store.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

constexpr char kDiskFile[] = "disk.qcow2";
constexpr char kMemoryState[] = "memory.state";

// How long the guest stays frozen at most: long enough to copy `bytes` at a slow disk's
// pace (FICLONE takes no time at all), within the agent's bound.
int64_t ThawAfterMs(uint64_t bytes) {
  constexpr uint64_t kSlowBytesPerMs = 50 * 1024;  // 50 MB/s.
  return std::clamp<int64_t>(static_cast<int64_t>(10000 + bytes / kSlowBytesPerMs), 10000,
                             protocol::kMaxThawAfterMs);
}

// An unlinked file in `dir` (the home's tmp/, the file system the disks are on).
Result<base::UniqueFd> AnonymousDiskFile(const std::string& dir) {
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(dir, 0700));
  auto fd = sys::Open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd.ok()) return fd;
  std::string path = sys::JoinPath(dir, "snapshot-" + NewBoxId());
  BOXLITE_ASSIGN_OR_RETURN(auto named, sys::Open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  ::unlink(path.c_str());
  return named;
}

uint64_t AllocatedBytes(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

// An ephemeral box's snapshot of that name (BoxImpl::held_snapshots_), or end().
template <typename Held>
auto FindHeld(Held& held, const std::string& name) {
  return std::find_if(held.begin(), held.end(), [&](const auto& h) { return h.info.name == name; });
}

Status EphemeralRestoreRefused(const std::string& box) {
  return Status::FailedPrecondition(
             "box " + box +
                 " removes itself when it stops (auto_remove), so it cannot be stopped to "
                 "restore a disk snapshot",
             "create the box with auto_remove=False to restore its snapshots")
      .WithSubject(StatusSubject::kBox);
}

}  // namespace

// A running box's disk, quiesced for a copy: frozen by the agent, and "paused" in the
// record for other processes. EndQuiesceLocked undoes both.
struct BoxImpl::Quiesced {
  std::shared_ptr<AgentChannel> channel;
  bool frozen = false;
  bool marked = false;
  Clock::time_point deadline;  // When the guest thaws by itself.
};

Result<BoxImpl::Quiesced> BoxImpl::QuiesceLocked(uint64_t disk_bytes) {
  Quiesced q;
  if (persistent() && state_ == State::kRunning && !channel_) {
    // Running in another process: attach to freeze it.
    if (Status attached = StartLocked(); !attached.ok()) {
      BOXLITE_LOG(kDebug, "box %s: cannot reach the guest to freeze its disk (%s)",
                  name_.c_str(), attached.ToString().c_str());
    }
  }
  if (state_ != State::kRunning || !channel_ || !Died().ok()) return q;  // Nothing writes.
  q.channel = channel_;
  if (persistent()) {
    record_.phase = std::string(kPhasePaused);
    q.marked = SaveRecord(dir_, record_).ok();
  }
  protocol::FreezeRequest request;
  request.thaw_after_ms = ThawAfterMs(disk_bytes);
  auto t0 = Clock::now();
  q.deadline = t0 + std::chrono::milliseconds(request.thaw_after_ms);
  auto reply = q.channel->Call("freeze", protocol::ToJson(request),
                               t0 + std::chrono::seconds(30));
  protocol::FreezeResponse response;
  if (reply.ok() && protocol::FromJson(*reply, &response).ok() && response.frozen) {
    q.frozen = true;
  } else {
    BOXLITE_LOG(kDebug, "box %s: the guest did not freeze its disk (%s): the copy is crash-consistent",
                name_.c_str(), reply.ok() ? "it cannot" : reply.error().ToString().c_str());
  }
  return q;
}

void BoxImpl::EndQuiesceLocked(Quiesced& q) {
  if (q.frozen) {
    if (Clock::now() >= q.deadline) {
      BOXLITE_LOG(kDebug, "box %s: the copy outlasted the freeze: it is crash-consistent",
                  name_.c_str());
    }
    auto thawed = q.channel->Call("thaw", protocol::Json::object(), Clock::now() + std::chrono::seconds(30));
    if (!thawed.ok()) {
      BOXLITE_LOG(kWarn, "box %s: thaw failed (%s); the guest thaws by itself shortly",
                  name_.c_str(), thawed.error().ToString().c_str());
    }
    q.frozen = false;
  }
  if (q.marked) {
    if (record_.phase == kPhasePaused) record_.phase.clear();
    (void)SaveRecord(dir_, record_);
    q.marked = false;
  }
}

Result<base::UniqueFd> BoxImpl::OpenDiskLocked() {
  if (persistent()) {
    auto fd = sys::Open(DirPath(kDiskFile), O_RDONLY | O_CLOEXEC);
    if (fd.ok() || errno != ENOENT) return fd;
  } else if (overlay_fd_) {
    return sys::Open(base::StrFormat("/proc/self/fd/%d", overlay_fd_.get()), O_RDONLY | O_CLOEXEC);
  }
  return Status::FailedPrecondition("box " + name_ + " has no disk yet",
                                    "start it once before taking a snapshot or a clone")
      .WithSubject(StatusSubject::kBox);
}

Status BoxImpl::LockForSnapshotsLocked(std::optional<sys::FileLock>* box_lock) {
  BOXLITE_RETURN_IF_ERROR(runtime_->CheckOpen());
  if (persistent() && state_ != State::kRemoved) {
    auto l = sys::FileLock::Acquire(DirPath("lock"));
    if (!l.ok()) return l.error().Wrap("lock box " + name_);
    box_lock->emplace(std::move(l).value());
    RefreshHeldLocked();
  }
  if (state_ == State::kRemoved) {
    return Status::FailedPrecondition("box " + name_ + " was removed", "create a new box")
        .WithSubject(StatusSubject::kBox);
  }
  return Status::OK();
}

Result<SnapshotInfo> BoxImpl::CreateSnapshot(const std::string& name, const SnapshotOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  BOXLITE_RETURN_IF_ERROR(LockForSnapshotsLocked(&box_lock));
  BOXLITE_RETURN_IF_ERROR(CheckSnapshotName(name));
  SnapshotInfo info;
  info.id = NewBoxId();
  info.box_id = id_;
  info.name = name;
  info.created_unix = static_cast<int64_t>(std::time(nullptr));
  info.memory = options.memory;
  if (!persistent()) {
    if (options.memory) {
      return Status::NotSupported("memory snapshots need a box with a directory",
                                  "create the box with auto_remove=False");
    }
    if (FindHeld(held_snapshots_, name) != held_snapshots_.end()) return SnapshotExists(name_, name);
    BOXLITE_ASSIGN_OR_RETURN(auto disk, OpenDiskLocked());
    BOXLITE_ASSIGN_OR_RETURN(auto copy, AnonymousDiskFile(runtime_->TmpDir()));
    struct stat st;
    uint64_t size = ::fstat(disk.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    BOXLITE_ASSIGN_OR_RETURN(Quiesced q, QuiesceLocked(size));
    Status copied = CopyDiskFileTo(disk.get(), copy.get());
    EndQuiesceLocked(q);
    BOXLITE_RETURN_IF_ERROR(copied.Wrap("snapshot box " + name_));
    info.container_disk_bytes = AllocatedBytes(copy.get());
    info.size_bytes = info.container_disk_bytes;
    held_snapshots_.push_back({info, std::move(copy)});
    return info;
  }
  SnapshotStore store(DirPath("snapshots"), name_);
  if (options.memory) {
    if (state_ != State::kRunning) {
      return Status::FailedPrecondition("box " + name_ + " is not running",
                                        "start it: a memory snapshot saves a running box")
          .WithSubject(StatusSubject::kBox);
    }
    BOXLITE_ASSIGN_OR_RETURN(std::string tmp, store.Begin(name));
    Status saved = SaveMemoryLocked(tmp);
    if (!saved.ok()) {
      store.Abandon(tmp);
      return saved.Wrap("snapshot box " + name_);
    }
    return store.Commit(tmp, info);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto disk, OpenDiskLocked());
  BOXLITE_ASSIGN_OR_RETURN(std::string tmp, store.Begin(name));
  struct stat st;
  uint64_t size = ::fstat(disk.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  auto quiesced = QuiesceLocked(size);
  if (!quiesced.ok()) {
    store.Abandon(tmp);
    return quiesced.error();
  }
  Status copied = CopyDiskFile(disk.get(), sys::JoinPath(tmp, kDiskFile));
  EndQuiesceLocked(*quiesced);
  if (!copied.ok()) {
    store.Abandon(tmp);
    return copied.Wrap("snapshot box " + name_);
  }
  return store.Commit(tmp, info);
}

Result<std::vector<SnapshotInfo>> BoxImpl::ListSnapshots() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!persistent()) {
    std::vector<SnapshotInfo> out;
    for (const auto& held : held_snapshots_) out.push_back(held.info);
    return out;  // Already in creation order.
  }
  return SnapshotStore(DirPath("snapshots"), name_).List();
}

Result<std::optional<SnapshotInfo>> BoxImpl::GetSnapshot(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!persistent()) {
    auto it = FindHeld(held_snapshots_, name);
    if (it == held_snapshots_.end()) return std::optional<SnapshotInfo>();
    return std::optional<SnapshotInfo>(it->info);
  }
  return SnapshotStore(DirPath("snapshots"), name_).Get(name);
}

Status BoxImpl::RemoveSnapshot(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  BOXLITE_RETURN_IF_ERROR(LockForSnapshotsLocked(&box_lock));
  if (!persistent()) {
    auto it = FindHeld(held_snapshots_, name);
    if (it == held_snapshots_.end()) return SnapshotNotFound(name_, name);
    held_snapshots_.erase(it);
    return Status::OK();
  }
  return SnapshotStore(DirPath("snapshots"), name_).Remove(name);
}

Status BoxImpl::RestoreSnapshot(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  BOXLITE_RETURN_IF_ERROR(LockForSnapshotsLocked(&box_lock));
  if (!persistent()) {
    if (FindHeld(held_snapshots_, name) == held_snapshots_.end()) return SnapshotNotFound(name_, name);
    return EphemeralRestoreRefused(name_);
  }
  SnapshotStore store(DirPath("snapshots"), name_);
  BOXLITE_ASSIGN_OR_RETURN(auto found, store.Get(name));
  if (!found) return SnapshotNotFound(name_, name);
  std::string dir = store.PathOf(name);
  if (sys::Exists(sys::JoinPath(dir, kMemoryState))) {
    // A memory snapshot brings the box back running: a running box stops first.
    if (state_ == State::kRunning) BOXLITE_RETURN_IF_ERROR(StopLocked());
    return RestoreMemoryLocked(dir);
  }
  std::string failure;
  BoxStatus status = StatusLocked(&failure);
  if (IsActive(status) || status == BoxStatus::kStopping) {
    return Status::FailedPrecondition(
               "box " + name_ + " is " + std::string(StatusName(status)) +
                   ": a disk snapshot is restored on a stopped box",
               "stop it first (boxlite stop)")
        .WithSubject(StatusSubject::kBox);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto saved, sys::Open(sys::JoinPath(dir, kDiskFile), O_RDONLY | O_CLOEXEC));
  // A copy beside the disk, renamed over it: the box has its old disk or the snapshot's.
  std::string incoming = DirPath(".disk.qcow2.restoring");
  ::unlink(incoming.c_str());
  BOXLITE_RETURN_IF_ERROR(CopyDiskFile(saved.get(), incoming).Wrap("restore box " + name_));
  if (::rename(incoming.c_str(), DirPath(kDiskFile).c_str()) != 0) {
    Status s = sys::ErrnoStatus(errno, "restore box %s", name_.c_str());
    ::unlink(incoming.c_str());
    return s;
  }
  return Status::OK();
}

Result<std::shared_ptr<Box>> BoxImpl::Clone(const std::string& name, const CloneOptions&) {
  BOXLITE_RETURN_IF_ERROR(runtime_->CheckOpen());
  BoxOptions options = options_;
  options.name = name;
  // The new box is made first (its name checked, its directory written), without this
  // box's lock; then this box's disk is copied into it.
  BOXLITE_ASSIGN_OR_RETURN(std::shared_ptr<Box> created, runtime_->Create(options));
  auto clone = std::static_pointer_cast<BoxImpl>(created);
  Status copied = CopyDiskInto(*clone);
  if (!copied.ok()) {
    (void)runtime_->Remove(clone->id(), /*force=*/true);
    return copied.Wrap("clone box " + name_);
  }
  return created;
}

Status BoxImpl::CopyDiskInto(BoxImpl& clone) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  BOXLITE_RETURN_IF_ERROR(LockForSnapshotsLocked(&box_lock));
  if (!image_) return Status::OK();  // Never started: the clone is as new as this box.
  BOXLITE_ASSIGN_OR_RETURN(auto disk, OpenDiskLocked());
  std::lock_guard<std::mutex> clone_lock(clone.mu_);  // A new box: nobody else holds it.
  base::UniqueFd copy;
  if (clone.persistent()) {
    // The base is shared: a hard link, as every box of the image has (box_launch.cc).
    std::string base = persistent() && sys::Exists(DirPath("base.ext4")) ? DirPath("base.ext4")
                                                                         : image_->rootfs_path;
    if (::link(base.c_str(), clone.DirPath("base.ext4").c_str()) != 0 && errno != EEXIST) {
      BOXLITE_LOG(kDebug, "clone %s: cannot link the base (%s); it reads the image's",
                  clone.name_.c_str(), std::strerror(errno));
    }
  } else {
    BOXLITE_ASSIGN_OR_RETURN(copy, AnonymousDiskFile(runtime_->TmpDir()));
  }
  struct stat st;
  uint64_t size = ::fstat(disk.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  BOXLITE_ASSIGN_OR_RETURN(Quiesced q, QuiesceLocked(size));
  Status copied = clone.persistent() ? CopyDiskFile(disk.get(), clone.DirPath(kDiskFile))
                                     : CopyDiskFileTo(disk.get(), copy.get());
  EndQuiesceLocked(q);
  BOXLITE_RETURN_IF_ERROR(copied);
  clone.image_ = image_;
  clone.disk_size_mib_ = disk_size_mib_;
  if (!clone.persistent()) {
    clone.seed_disk_ = std::move(copy);
    return Status::OK();
  }
  // The clone's record as after a first start: stopped, its image resolved.
  clone.record_.image_reference = image_->reference;
  clone.record_.rootfs_path = image_->rootfs_path;
  clone.record_.rootfs_bytes = image_->rootfs_bytes;
  clone.record_.image_config = image_->config;
  clone.record_.disk_size_mib = disk_size_mib_;
  BOXLITE_RETURN_IF_ERROR(SaveRecord(clone.dir_, clone.record_));
  clone.state_ = State::kStopped;
  return Status::OK();
}

void BoxImpl::DropHeldDisksLocked() {
  held_snapshots_.clear();
  overlay_fd_.reset();
  seed_disk_.reset();
}

}  // namespace boxlite::runtime

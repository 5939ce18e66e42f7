// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Forks: running copies of a running box sharing its memory copy-on-write
// (docs/snapshots.md, "Forks").
//
// The source's memory is saved once (SaveMemoryLocked into a directory under the home's
// tmp/, removed afterwards), or a named memory snapshot of the box is used (a stopped box
// can be forked from one). Its RAM goes into ONE
// memfd, sealed against writes, shrinking and growing, that every fork's QEMU maps
// privately (share=off): pages nobody writes stay shared, each fork's writes are its own,
// and a compromised QEMU cannot change the pages its siblings read (the seal refuses
// shared writable mappings and writes). Each fork is a new box (new id, name, directory,
// a copy of the saved disk) launched with LaunchLocked(&image): its own clock, entropy,
// hostname and id. A fork's RAM is private, so a memory snapshot of a fork carries its RAM
// in the migration stream (box_memory.cc).
#include <fcntl.h>
#include <unistd.h>

#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/home_tmp.h"
#include "src/runtime/snapshot_store.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/vmm/guest_ram.h"

namespace boxlite::runtime {
namespace {

constexpr int kMaxForks = 64;
constexpr uint64_t kMiB = 1024 * 1024;

// A private directory under tmp/ (a sweep spares it while `window` is held).
Result<std::string> MakeForkDir(const std::string& tmp, const std::string& id) {
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(tmp, 0700));
  std::string dir = sys::JoinPath(tmp, "fork-" + id + "-XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) return sys::ErrnoStatus(errno, "create %s", dir.c_str());
  return dir;
}

}  // namespace

Result<std::optional<sys::FileLock>> BoxImpl::HoldBoxLockLocked() {
  if (!persistent() || state_ == State::kRemoved) return std::optional<sys::FileLock>();
  auto held = sys::FileLock::Acquire(DirPath("lock"));
  if (!held.ok()) return held.error().Wrap("lock box " + name_);
  RefreshHeldLocked();
  return std::optional<sys::FileLock>(std::move(held).value());
}

Result<std::vector<std::shared_ptr<Box>>> BoxImpl::Fork(const ForkOptions& options) {
  BOXLITE_RETURN_IF_ERROR(runtime_->CheckOpen());
  if (options.count < 1 || options.count > kMaxForks) {
    return Status::InvalidArgument(
        base::StrFormat("fork count must be 1..%d, not %d", kMaxForks, options.count));
  }
  if (!options.names.empty() && options.names.size() != static_cast<size_t>(options.count)) {
    return Status::InvalidArgument(
        base::StrFormat("fork got %zu names for %d boxes", options.names.size(), options.count),
        "give one name per box, or none");
  }
  std::string tmp = runtime_->TmpDir();
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(tmp, 0700));
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock window, EnterTmpWindow(tmp));
  // From the live box: a memory snapshot of its own, removed afterwards.
  std::string dir;
  base::ScopeExit remove_dir([&dir, &options] {
    if (options.snapshot.empty() && !dir.empty()) (void)sys::RemoveTree(dir);
  });

  MemoryImage image;
  BoxOptions fork_options;
  std::optional<ResolvedImage> source_image;
  {
    std::lock_guard<std::mutex> lock(mu_);
    BOXLITE_ASSIGN_OR_RETURN(auto box_lock, HoldBoxLockLocked());
    if (!options.snapshot.empty()) {
      // A named memory snapshot of this box (the snapshot store, box_snapshot.cc).
      SnapshotStore store(DirPath("snapshots"), name_);
      std::optional<SnapshotInfo> found;
      if (persistent()) {
        BOXLITE_ASSIGN_OR_RETURN(found, store.Get(options.snapshot));
      }
      if (!found) {
        return Status::NotFound("box " + name_ + " has no snapshot \"" + options.snapshot + "\"",
                                "list them with `boxlite snapshot ls " + name_ + "`")
            .WithSubject(StatusSubject::kBox);
      }
      dir = store.PathOf(options.snapshot);
      if (!sys::Exists(sys::JoinPath(dir, "memory.state"))) {
        return Status::FailedPrecondition(
                   "snapshot \"" + options.snapshot + "\" of box " + name_ + " holds no memory",
                   "take one with memory=True (boxlite snapshot create --memory)")
            .WithSubject(StatusSubject::kBox);
      }
    } else {
      if (state_ != State::kRunning) {
        return Status::FailedPrecondition("box " + name_ + " is not running",
                                          "start it first, or fork from a memory snapshot")
            .WithSubject(StatusSubject::kBox);
      }
      BOXLITE_ASSIGN_OR_RETURN(dir, MakeForkDir(tmp, id_));
      BOXLITE_RETURN_IF_ERROR(SaveMemoryLocked(dir).WithSubject(StatusSubject::kBox));
    }
    fork_options = options_;
    source_image = image_;
  }
  image.dir = dir;
  // Forks publish no ports: the source holds them.
  fork_options.ports.clear();
  fork_options.name.clear();

  // The RAM every fork maps copy-on-write, when the source's RAM was a file of its own.
  base::UniqueFd shared_ram;
  if (sys::Exists(sys::JoinPath(dir, "memory.ram"))) {
    uint64_t bytes = static_cast<uint64_t>(fork_options.memory_mib) * kMiB;
    BOXLITE_ASSIGN_OR_RETURN(shared_ram, vmm::CreateGuestRam(bytes));
    BOXLITE_ASSIGN_OR_RETURN(auto saved, sys::Open(sys::JoinPath(dir, "memory.ram"),
                                                   O_RDONLY | O_CLOEXEC));
    BOXLITE_RETURN_IF_ERROR(vmm::SparseCopy(saved.get(), shared_ram.get(), bytes).status());
    BOXLITE_RETURN_IF_ERROR(vmm::SealGuestRam(shared_ram.get()));
    image.shared_ram_fd = shared_ram.get();
  }

  std::vector<std::shared_ptr<Box>> forks;
  // A failure removes the forks made so far: all or nothing.
  base::ScopeExit undo([&forks] {
    for (auto& box : forks) {
      if (auto impl = std::dynamic_pointer_cast<BoxImpl>(box)) (void)impl->Remove(/*force=*/true);
    }
  });
  for (int i = 0; i < options.count; ++i) {
    BoxOptions one = fork_options;
    if (!options.names.empty()) one.name = options.names[static_cast<size_t>(i)];
    BOXLITE_ASSIGN_OR_RETURN(std::shared_ptr<Box> box, runtime_->Create(one));
    forks.push_back(box);
    auto impl = std::dynamic_pointer_cast<BoxImpl>(box);
    if (!impl) return Status::Internal("a new box is not a BoxImpl");
    std::lock_guard<std::mutex> lock(impl->mu_);
    BOXLITE_ASSIGN_OR_RETURN(auto fork_lock, impl->HoldBoxLockLocked());
    impl->image_ = source_image;
    Status launched = impl->LaunchLocked(&image);
    if (!launched.ok()) {
      runtime_->counters().boxes_failed++;
      return launched.Wrap("start fork " + impl->name_);
    }
  }
  undo.Cancel();
  return forks;
}

}  // namespace boxlite::runtime

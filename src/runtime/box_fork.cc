// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Forks: running copies of a running box sharing its memory copy-on-write
// (docs/snapshots.md, "Forks").
//
// The source's memory is saved once (SaveMemoryLocked into a directory under the home's
// tmp/, removed afterwards), or a named memory snapshot is used. Its RAM goes into ONE
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
  if (!options.snapshot.empty()) {
    // Named snapshots live in the snapshot store (box_snapshot.cc); forking from one needs
    // its directory, which that store resolves.
    return Status::NotSupported("fork from a named memory snapshot is not available yet",
                                "fork the running box instead");
  }
  std::string tmp = runtime_->TmpDir();
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(tmp, 0700));
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock window, EnterTmpWindow(tmp));
  BOXLITE_ASSIGN_OR_RETURN(std::string dir, MakeForkDir(tmp, id_));
  base::ScopeExit remove_dir([&dir] { (void)sys::RemoveTree(dir); });

  MemoryImage image;
  image.dir = dir;
  BoxOptions fork_options;
  std::optional<ResolvedImage> source_image;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<sys::FileLock> box_lock;
    if (persistent() && state_ != State::kRemoved) {
      auto l = sys::FileLock::Acquire(DirPath("lock"));
      if (!l.ok()) return l.error().Wrap("lock box " + name_);
      box_lock.emplace(std::move(l).value());
      RefreshHeldLocked();
    }
    if (state_ != State::kRunning) {
      return Status::FailedPrecondition("box " + name_ + " is not running",
                                        "start it first: a fork copies a running box")
          .WithSubject(StatusSubject::kBox);
    }
    BOXLITE_RETURN_IF_ERROR(SaveMemoryLocked(dir).WithSubject(StatusSubject::kBox));
    fork_options = options_;
    source_image = image_;
  }
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
    std::optional<sys::FileLock> box_lock;
    if (impl->persistent()) {
      auto l = sys::FileLock::Acquire(impl->DirPath("lock"));
      if (!l.ok()) return l.error().Wrap("lock box " + impl->name_);
      box_lock.emplace(std::move(l).value());
    }
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

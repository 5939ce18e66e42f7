// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Exporting a box as a .boxlite archive (src/runtime/box_archive.h; docs/snapshots.md,
// "Export format"). The box's disk (an overlay on the image's base, or an imported
// standalone disk) is flattened by `qemu-img convert` into one standalone qcow2 in a
// private directory under the home's tmp/, hashed, and written with the manifest to a
// temporary file beside `dest`, which is renamed into place: a failed export leaves
// nothing. A running box is quiesced: the guest flushes its file systems (`sync` in the
// box), then the agent freezes them (or, for a guest that cannot, its VM is stopped with
// SIGSTOP) while the disk is read.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <ctime>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/runtime/box_archive.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/home_tmp.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"

namespace boxlite::runtime {
namespace {

// `dest` an existing directory: <dest>/<name>.boxlite; otherwise the file itself, whose
// directory must exist.
Result<std::string> ArchivePath(const std::string& dest, const std::string& name) {
  if (dest.empty()) {
    return Status::InvalidArgument("export needs a destination: a file or an existing directory");
  }
  if (sys::IsDirectory(dest)) return sys::JoinPath(dest, name + ".boxlite");
  std::string parent = sys::Dirname(dest);
  if (!parent.empty() && !sys::IsDirectory(parent)) {
    return Status::NotFound("export destination's directory " + parent + " does not exist",
                            "create it first, or give an existing directory");
  }
  return dest;
}

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A qemu-img source that reads `disk` (a qcow2) through `base` (raw; "" for a standalone
// disk, whose header's backing, if any, is ignored).
std::string ConvertSource(const std::string& disk, const std::string& base) {
  protocol::Json j = {{"driver", "qcow2"}, {"file", {{"driver", "file"}, {"filename", disk}}}};
  if (base.empty()) {
    j["backing"] = nullptr;
  } else {
    j["backing"] = {{"driver", "raw"}, {"file", {{"driver", "file"}, {"filename", base}}}};
  }
  return "json:" + j.dump();
}

}  // namespace

Result<std::string> BoxImpl::Export(const std::string& dest, const ExportOptions&) {
  BOXLITE_ASSIGN_OR_RETURN(std::string path, ArchivePath(dest, name_));
  // The guest flushes what it wrote first (without the box's lock: the exec takes it).
  // Without a `sync` in the image the export is only crash-consistent.
  bool was_running = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (persistent() && state_ != State::kRemoved) RefreshLocked();
    was_running = state_ == State::kRunning;
  }
  if (was_running) {
    // Twice: one sync() issues the device flush (the file system's sync_fs) before it
    // writes the block device's dirty metadata buffers, so without a journal (an
    // ephemeral box's disk is mounted norecovery) those writes may still sit unflushed
    // in QEMU's qcow2 cache; the second sync's flush makes them durable.
    for (int round = 0; round < 2; ++round) {
      ExecOptions sync;
      sync.argv = {"sync"};
      sync.timeout_seconds = 60;
      auto synced = Run(sync);
      if (!synced.ok() || synced->exit_code != 0) {
        BOXLITE_LOG(kWarn, "box %s: the guest could not flush its disk before export (%s)",
                    name_.c_str(),
                    synced.ok() ? "sync failed" : synced.error().ToString().c_str());
        break;
      }
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  BOXLITE_RETURN_IF_ERROR(LockForSnapshotsLocked(&box_lock));
  std::string failure;
  BoxStatus status = StatusLocked(&failure);
  if (status == BoxStatus::kStopping) {
    return Status::FailedPrecondition("box " + name_ + " is stopping", "wait for the stop to end")
        .WithSubject(StatusSubject::kBox);
  }
  // What to read: the overlay (or a standalone disk) and the base it reads through to.
  BOXLITE_ASSIGN_OR_RETURN(base::UniqueFd disk_fd, OpenDiskLocked());
  if (!image_) {
    return Status::FailedPrecondition("box " + name_ + " has no disk yet",
                                      "start it once before exporting it")
        .WithSubject(StatusSubject::kBox);
  }
  std::string disk = base::StrFormat("/proc/%d/fd/%d", ::getpid(), disk_fd.get());
  std::string base;
  if (!record_.standalone_disk) {
    base = persistent() && sys::Exists(DirPath("base.ext4")) ? DirPath("base.ext4")
                                                              : image_->rootfs_path;
  }
  struct stat disk_st {};
  (void)::fstat(disk_fd.get(), &disk_st);

  BOXLITE_ASSIGN_OR_RETURN(TmpWorkDir work, TmpWorkDir::Make(runtime_->TmpDir(), "export"));
  std::string flat = sys::JoinPath(work.path(), kArchiveDiskName);
  {
    // A running box is quiesced while its disk is read: the agent freezes the guest's file
    // system (box_snapshot.cc); a guest that cannot freeze has its VM stopped (SIGSTOP)
    // instead, which gives a crash-consistent copy of what the syncs above flushed.
    BOXLITE_ASSIGN_OR_RETURN(Quiesced q, QuiesceLocked(static_cast<uint64_t>(disk_st.st_size)));
    bool running = state_ == State::kRunning;
    int vm_pid = running && !q.frozen ? (vm_ ? vm_->pid() : record_.pid) : 0;
    bool stopped = vm_pid > 0 && ::kill(vm_pid, SIGSTOP) == 0;
    base::ScopeExit resume([&] {
      if (stopped) ::kill(vm_pid, SIGCONT);
      EndQuiesceLocked(q);
    });
    if (vm_pid > 0 && !stopped) {
      return sys::ErrnoStatus(errno, "pause box %s's VM for export", name_.c_str());
    }
    // -U: QEMU holds the image's lock while it runs.
    auto converted = sys::RunCommand({"qemu-img", "convert", "-U", "-q", "-O", "qcow2",
                                      ConvertSource(disk, base), flat});
    if (!converted.ok()) return converted.error().Wrap("flatten box " + name_ + "'s disk");
  }

  BoxArchiveManifest manifest;
  manifest.box_name = options_.name.empty() ? "" : name_;
  manifest.image_reference = image_->reference;
  manifest.image_config = image_->config;
  manifest.image_digest = runtime_->StoredImageDigest(image_->reference);
  manifest.box_options = options_;
  manifest.exported_at = NowRfc3339();
  {
    BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(flat, O_RDONLY | O_CLOEXEC));
    BOXLITE_ASSIGN_OR_RETURN(Qcow2Facts facts,
                             CheckStandaloneQcow2(fd.get(), static_cast<uint64_t>(kMaxDiskSizeMib) << 20));
    manifest.disk_virtual_bytes = facts.virtual_bytes;
    off_t size = ::lseek(fd.get(), 0, SEEK_END);
    if (size < 0) return sys::ErrnoStatus(errno, "size of %s", flat.c_str());
    manifest.disk_bytes = static_cast<uint64_t>(size);
  }
  BOXLITE_ASSIGN_OR_RETURN(manifest.disk_checksum, FileChecksum(flat));

  // Written beside the destination under a temporary name, then renamed into place.
  std::string partial = sys::JoinPath(sys::Dirname(path), "." + sys::Basename(path) + ".XXXXXX");
  int partial_fd = ::mkstemp(partial.data());
  if (partial_fd < 0) return sys::ErrnoStatus(errno, "create %s", partial.c_str());
  ::close(partial_fd);
  base::ScopeExit drop_partial([&] { ::unlink(partial.c_str()); });
  BOXLITE_RETURN_IF_ERROR(WriteBoxArchive(partial, manifest, flat));
  if (::rename(partial.c_str(), path.c_str()) != 0) {
    return sys::ErrnoStatus(errno, "move the archive to %s", path.c_str());
  }
  drop_partial.Cancel();
  return path;
}

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Importing a .boxlite archive (src/runtime/box_archive.h) as a new box. The archive is
// hostile input: ReadBoxArchive bounds and checks it into a private directory under the
// home's tmp/, then `qemu-img check` (jailed like QEMU: another user, no network, the
// set-id filter) reads the disk as an image, the options are validated as any box's
// (and, untrusted, stripped of what reaches the host), and only then does the disk move
// into a new box directory with its record. On any failure nothing is left.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/runtime/box_archive.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/box_record.h"
#include "src/runtime/exec_env.h"
#include "src/runtime/home_tmp.h"
#include "src/runtime/runtime_impl.h"
#include "src/sys/errno_status.h"
#include "src/sys/file_lock.h"
#include "src/sys/fs.h"
#include "src/sys/jail.h"
#include "src/sys/subprocess.h"

namespace boxlite::runtime {
namespace {

// `qemu-img check` of the open disk, run jailed: a flaw in qemu-img's qcow2 parser meets
// an unprivileged process without network that can make no set-id file.
Status QemuImgCheck(int disk_fd) {
  sys::Jail jail;
  bool root = ::geteuid() == 0;
  std::optional<sys::Identity> who;
  if (root) {
    BOXLITE_ASSIGN_OR_RETURN(who, sys::JailUserIdentity());
    jail.identity = who;
  }
  BOXLITE_ASSIGN_OR_RETURN(jail.seccomp_filter, sys::SetidDenyFilter());
  jail.new_namespaces = true;
  jail.new_network_namespace = true;
  // The jailed user reopens the disk through /proc/self/fd: it may read it (the private
  // directory around it still keeps everyone else out), and only while the check runs.
  if (who && (::fchown(disk_fd, 0, who->gid) != 0 || ::fchmod(disk_fd, 0640) != 0)) {
    return sys::ErrnoStatus(errno, "share the imported disk with the checker");
  }
  base::ScopeExit unshare([&] {
    if (who) {
      (void)::fchmod(disk_fd, 0600);
      (void)::fchown(disk_fd, 0, 0);
    }
  });
  int out = ::memfd_create("qemu-img-check", MFD_CLOEXEC);
  if (out < 0) return sys::ErrnoStatus(errno, "memfd_create");
  base::UniqueFd out_fd(out);
  protocol::Json image = {
      {"driver", "qcow2"},
      {"backing", nullptr},
      {"file", {{"driver", "file"}, {"filename", base::StrFormat("/proc/self/fd/%d", disk_fd)}}}};
  sys::SpawnOptions spawn;
  spawn.argv = {"qemu-img", "check", "-q", "json:" + image.dump()};
  spawn.env = std::vector<std::string>{"PATH=/usr/local/bin:/usr/bin:/bin"};
  spawn.stdout_fd = out;
  spawn.stderr_fd = out;
  spawn.keep_fds = {disk_fd};
  spawn.jail = jail;
  BOXLITE_ASSIGN_OR_RETURN(auto child, sys::Subprocess::Spawn(spawn));
  BOXLITE_ASSIGN_OR_RETURN(int status, child.Wait());
  // 0: clean; 3: only leaked clusters (harmless, space that is never used).
  if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)) {
    return Status::OK();
  }
  ::lseek(out, 0, SEEK_SET);
  auto said = sys::ReadAll(out, 2048);
  std::string text = said.ok() ? std::string(base::Trim(*said)) : "";
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return Status::InvalidArgument("bad box archive: its disk.qcow2 fails `qemu-img check` (" +
                                     sys::DescribeWaitStatus(status) + "): " + text,
                                 "import only archives written by `boxlite export`");
}

// What an untrusted archive may not ask for: anything that reaches the host.
Status CheckUntrusted(const BoxOptions& o) {
  auto refuse = [](const std::string& what) {
    return Status::PermissionDenied("untrusted box archive asks for " + what,
                                    "import it without untrusted=True only if you trust "
                                    "where it came from");
  };
  if (!o.mounts.empty()) return refuse("host mounts (volumes)");
  if (o.allow_host) return refuse("access to the host (allow_host)");
  if (!o.ports.empty()) return refuse("published ports");
  if (!o.rootfs_path.empty()) return refuse("a host path (rootfs_path)");
  return Status::OK();
}

}  // namespace

std::string RuntimeImpl::StoredImageDigest(const std::string& reference) {
  auto store = Store();
  if (!store.ok()) return "";
  auto local = (*store)->Get(reference);
  return local.ok() ? local->config_digest : "";
}

Result<std::shared_ptr<Box>> RuntimeImpl::ImportBox(const std::string& archive_path,
                                                    const std::string& name, bool untrusted) {
  BOXLITE_RETURN_IF_ERROR(CheckOpen());
  if (!name.empty() && !IsValidBoxName(name)) {
    return Status::InvalidArgument("box name \"" + name +
                                   "\" must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 63)");
  }
  BOXLITE_ASSIGN_OR_RETURN(TmpWorkDir work, TmpWorkDir::Make(TmpDir(), "import"));

  BoxArchiveLimits limits;
  auto read = ReadBoxArchive(archive_path, work.path(), limits);
  if (!read.ok()) return read.error().Wrap("import " + archive_path);
  BoxArchiveManifest manifest = std::move(read).value();
  std::string staged = sys::JoinPath(work.path(), kArchiveDiskName);
  {
    BOXLITE_ASSIGN_OR_RETURN(auto disk, sys::Open(staged, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    BOXLITE_RETURN_IF_ERROR(QemuImgCheck(disk.get()).Wrap("import " + archive_path));
  }

  // The options, as any box's: the archive's (detach too), made a kept box: it is
  // imported stopped, and a box removed on stop would be gone before it ran.
  BoxOptions options = manifest.box_options;
  options.name.clear();
  options.auto_remove = false;
  options.auto_delete.reset();
  if (options.image.empty() && options.rootfs_path.empty()) options.image = manifest.image_reference;
  if (untrusted) {
    BOXLITE_RETURN_IF_ERROR(CheckUntrusted(options).Wrap("import " + archive_path));
    options.security = SecurityOptions{};  // The secure defaults.
  }
  if (Status valid = ValidateBoxOptions(options); !valid.ok()) {
    return valid.Wrap("import " + archive_path + ": the archive's box options");
  }
  int64_t disk_mib = static_cast<int64_t>((manifest.disk_virtual_bytes + (1 << 20) - 1) >> 20);
  BOXLITE_RETURN_IF_ERROR(CheckDiskFits(home_, disk_mib).Wrap("import " + archive_path));
  std::string id = NewBoxId();
  BOXLITE_RETURN_IF_ERROR(ResolveVolumes(id, &options));
  base::ScopeExit drop_anonymous([&] { volumes_.RemoveAnonymousOf(id); });

  BOXLITE_ASSIGN_OR_RETURN(auto home_lock, sys::FileLock::Acquire(home_ + "/boxes.lock"));
  std::lock_guard<std::mutex> lock(mu_);
  if (!name.empty()) {
    if (NameTakenLocked(name)) {
      return Status::AlreadyExists("a box named \"" + name + "\" exists",
                                   "choose another name or remove it (boxlite rm)")
          .WithSubject(StatusSubject::kBox);
    }
    options.name = name;
  } else if (IsValidBoxName(manifest.box_name) && !NameTakenLocked(manifest.box_name)) {
    options.name = manifest.box_name;
  }

  BoxRecord record;
  record.id = id;
  record.name = options.name;
  record.created_unix = static_cast<int64_t>(std::time(nullptr));
  record.options = options;
  record.image_reference = manifest.image_reference;
  record.image_config = manifest.image_config;
  record.disk_size_mib = disk_mib;
  record.standalone_disk = true;
  std::string dir = BoxDir(BoxesDir(), id);
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(BoxesDir(), 0700));
  if (::mkdir(dir.c_str(), 0700) != 0) return sys::ErrnoStatus(errno, "create %s", dir.c_str());
  base::ScopeExit drop_dir([&] { (void)sys::RemoveTree(dir); });
  std::string disk = sys::JoinPath(dir, "disk.qcow2");
  if (::rename(staged.c_str(), disk.c_str()) != 0) {
    return sys::ErrnoStatus(errno, "move the imported disk to %s", disk.c_str());
  }
  BOXLITE_RETURN_IF_ERROR(SaveRecord(dir, record));
  auto box = std::make_shared<BoxImpl>(shared_from_this(), std::move(record));
  boxes_[id] = box;
  drop_dir.Cancel();
  drop_anonymous.Cancel();
  counters_.boxes_created++;
  return std::shared_ptr<Box>(box);
}

}  // namespace boxlite::runtime

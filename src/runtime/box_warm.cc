// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Warm start in the launch path (docs/snapshots.md, "Warm start"; the template store is
// src/runtime/templates.h). Before the box's disk is made, ChooseWarmLocked picks one of:
//   - restore: a valid template of the box's inputs exists; it is held (nobody removes it)
//     and the launch starts QEMU from it instead of booting (LaunchLocked's memory image);
//   - capture: warm start is on and no template exists yet; once the agent answers, and
//     before hello configures the guest, CaptureTemplateLocked saves the VM into the
//     template (SaveMemoryLocked), then the boot goes on;
//   - neither: warm start is off for the box, or the box cannot use one: a box with a disk
//     of its own already (a persistent box starting again, a clone, an imported box); a
//     base image that is not the store's; a box with host mounts (memory images carry no
//     9p device: box_memory.cc) boots.
// A failed capture costs nothing but a warning: the box boots as it would have.
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/protocol/messages.h"
#include "src/runtime/box_impl.h"
#include "src/sys/fs.h"
#include "src/vmm/qemu.h"

namespace boxlite::runtime {
namespace {

// The QEMU binary's identity (path, size, mtime): a new QEMU may not read an old one's
// migration stream. The launcher finds a bare name on the standard directories.
std::string QemuIdentity(const std::string& binary) {
  std::vector<std::string> candidates;
  if (binary.find('/') != std::string::npos) {
    candidates.push_back(binary);
  } else {
    for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
      candidates.push_back(sys::JoinPath(dir, binary));
    }
  }
  for (const auto& path : candidates) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      return base::StrFormat("%s:%lld:%lld.%09ld", path.c_str(), static_cast<long long>(st.st_size),
                             static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec);
    }
  }
  return binary;
}

}  // namespace

bool BoxImpl::WarmWantedLocked() const {
  return options_.warm.value_or(runtime_->options().warm.value_or(true));
}

Result<std::optional<TemplateInputs>> BoxImpl::WarmInputsLocked(const vmm::GuestAssets& assets,
                                                                vmm::Accel accel) {
  if (!WarmWantedLocked() || !image_) return std::optional<TemplateInputs>();
  // A persistent box starting again boots its own disk, not the template's.
  if (persistent() && sys::Exists(DirPath("disk.qcow2"))) return std::optional<TemplateInputs>();
  if (!options_.mounts.empty()) return std::optional<TemplateInputs>();
  // An ephemeral clone boots its copied disk (box_snapshot.cc), not the template's.
  if (seed_disk_) return std::optional<TemplateInputs>();
  // Only a base in the store is collected with its image (and so are its templates).
  struct stat st;
  if (::stat(image_->rootfs_path.c_str(), &st) != 0) return std::optional<TemplateInputs>();
  std::string digests = sys::JoinPath(TemplateStore(runtime_->home_dir()).dir(), "digests");
  TemplateInputs in;
  in.rootfs = image_->rootfs_path;
  in.rootfs_bytes = static_cast<uint64_t>(st.st_size);
  in.disk_size_mib = disk_size_mib_;
  in.cpus = options_.cpus;
  in.memory_mib = options_.memory_mib;
  BOXLITE_ASSIGN_OR_RETURN(in.kernel_sha256, FileDigest(assets.kernel, digests));
  BOXLITE_ASSIGN_OR_RETURN(in.initramfs_sha256, FileDigest(assets.initramfs, digests));
  in.qemu = QemuIdentity(vmm::VmConfig().qemu_binary);
  in.accel = std::string(vmm::AccelName(accel));
  in.tsc_khz = vmm::HostTscKhz();
  // The devices, as the launch's steps make them (box_launch.cc).
  in.network = options_.network == "nat" && options_.security.network_enabled;
  for (const auto& m : options_.mounts) in.shares_read_only.push_back(m.read_only);
  in.agent_ports = AgentPorts(options_, persistent());
  // The whole kernel command line, as the launch makes it (box_launch.cc), not only its
  // extra arguments: a template of a guest booted with other arguments is another guest's.
  vmm::VmConfig boot;
  boot.accel = accel;
  boot.cpus = options_.cpus;
  boot.tsc_khz = in.tsc_khz;
  if (!persistent()) boot.extra_kernel_args = protocol::kVolatileDiskKernelArg;
  in.kernel_args = vmm::KernelCommandLine(boot);
  in.free_page_reporting = vmm::VmConfig().free_page_reporting;
  return std::optional<TemplateInputs>(std::move(in));
}

Status BoxImpl::ChooseWarmLocked(const vmm::GuestAssets& assets, vmm::Accel accel,
                                 WarmChoice* choice) {
  auto inputs = WarmInputsLocked(assets, accel);
  if (!inputs.ok()) {
    // Warm start is an optimisation: without it the box boots.
    BOXLITE_LOG(kWarn, "box %s: warm start skipped: %s", name_.c_str(),
                inputs.error().ToString().c_str());
    return Status::OK();
  }
  if (!inputs->has_value()) return Status::OK();
  TemplateStore store(runtime_->home_dir());
  std::string key = TemplateKey(**inputs);
  auto found = store.Find(key);
  if (found.ok() && found->has_value()) {
    choice->restore.emplace(std::move(**found));
    choice->image.dir = choice->restore->record.dir;
    return Status::OK();
  }
  if (!found.ok()) {
    BOXLITE_LOG(kWarn, "box %s: warm start template %s: %s", name_.c_str(), key.c_str(),
                found.error().ToString().c_str());
    return Status::OK();
  }
  auto capture = store.BeginCapture(key);
  if (capture.ok() && capture->has_value()) {
    choice->capture.emplace(std::move(**capture));
    choice->inputs = std::move(**inputs);
  } else if (!capture.ok()) {
    BOXLITE_LOG(kWarn, "box %s: warm start capture: %s", name_.c_str(),
                capture.error().ToString().c_str());
  }
  return Status::OK();
}

void BoxImpl::CaptureTemplateLocked(WarmChoice* choice) {
  if (!choice->capture) return;
  TemplateStore::Capture capture = std::move(*choice->capture);
  choice->capture.reset();
  // The agent answers (it runs its port loop): nothing of this box is in the guest yet.
  auto ready = channel_->Call("ping", protocol::Json::object(),
                              Clock::now() + std::chrono::seconds(runtime_->options().boot_timeout_s));
  Status s = ready.ok() ? SaveMemoryLocked(capture.dir()) : ready.error();
  if (s.ok()) {
    auto published = TemplateStore(runtime_->home_dir()).Commit(std::move(capture), choice->inputs);
    s = published.ok() ? Status::OK() : published.error();
    if (published.ok() && *published) {
      BOXLITE_LOG(kDebug, "box %s: left warm start template %s", name_.c_str(),
                  TemplateKey(choice->inputs).c_str());
    }
  }
  if (!s.ok()) {
    BOXLITE_LOG(kWarn, "box %s: no warm start template left: %s", name_.c_str(),
                s.ToString().c_str());
  }
}

void BoxImpl::DropWarmTemplateLocked(const std::string& key, const Status& why) {
  BOXLITE_LOG(kWarn, "box %s: warm start template %s did not restore (%s): removing it and "
              "booting", name_.c_str(), key.c_str(), why.ToString().c_str());
  // The disk the restore copied is the template's: a boot makes its own.
  if (persistent()) ::unlink(DirPath("disk.qcow2").c_str());
  auto removed = TemplateStore(runtime_->home_dir()).Remove(key);
  if (!removed.ok()) {
    BOXLITE_LOG(kWarn, "box %s: remove template %s: %s", name_.c_str(), key.c_str(),
                removed.error().ToString().c_str());
  }
}

}  // namespace boxlite::runtime

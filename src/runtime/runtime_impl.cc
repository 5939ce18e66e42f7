// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/runtime_impl.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "boxlite/config.h"
#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/image/auth.h"
#include "src/image/reference.h"
#include "src/protocol/capabilities.h"
#include "src/remote/remote_runtime.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/box_record.h"
#include "src/runtime/box_secrets.h"
#include "src/runtime/exec_env.h"
#include "src/runtime/home_tmp.h"
#include "src/runtime/templates.h"
#include "src/sys/errno_status.h"
#include "src/sys/file_lock.h"
#include "src/sys/fs.h"
#include "src/sys/limits.h"

namespace boxlite::runtime {
namespace {

// Images that ship with BoxLite: their archives live in the data directory and are
// imported into the store the first time a box asks for them.
struct BuiltinImage {
  const char* name;     // As users write it.
  const char* archive;  // Relative to the data directory.
};
constexpr BuiltinImage kBuiltinImages[] = {
    {"boxlite/base", "images/base.tar"},
    {"boxlite/desktop", "images/desktop.tar"},
    {"boxlite/browser", "images/browser.tar"},  // BrowserBox's headless Chromium.
};

const BuiltinImage* FindBuiltin(const std::string& reference) {
  auto wanted = image::ParseReference(reference);
  if (!wanted.ok()) return nullptr;
  for (const auto& builtin : kBuiltinImages) {
    auto ref = image::ParseReference(builtin.name);
    if (ref.ok() && ref->String() == wanted->String()) return &builtin;
  }
  return nullptr;
}

ImageInfo ToInfo(const image::LocalImage& img) {
  ImageInfo info;
  info.reference = img.reference;
  info.id = img.config_digest;
  info.manifest_digest = img.manifest_digest;
  info.size_bytes = img.size_bytes;
  info.created_unix = img.created_unix;
  info.cached_at_unix = img.cached_unix;
  info.layer_count = static_cast<int>(img.layer_digests.size());
  if (auto ref = image::ParseReference(img.reference); ref.ok()) {
    info.repository = ref->Name();
    info.tag = ref->tag;
  }
  return info;
}

// Bridges the store's progress interface to the public callback.
class ProgressAdapter final : public image::PullProgress {
 public:
  ProgressAdapter(std::string reference, const PullCallback& cb)
      : reference_(std::move(reference)), cb_(cb) {}
  void OnManifest(const image::LocalImage& image) override {
    if (!cb_) return;
    PullEvent ev;
    ev.kind = PullEvent::Kind::kResolved;
    ev.reference = image.reference;
    ev.total_bytes = image.size_bytes;
    cb_(ev);
  }
  void OnLayerProgress(const std::string& digest, uint64_t done, uint64_t total) override {
    if (!cb_) return;
    PullEvent ev;
    ev.kind = PullEvent::Kind::kLayerProgress;
    ev.reference = reference_;
    ev.digest = digest;
    ev.done_bytes = done;
    ev.total_bytes = total;
    cb_(ev);
  }
  void OnLayerDone(const std::string& digest) override {
    if (!cb_) return;
    PullEvent ev;
    ev.kind = PullEvent::Kind::kLayerDone;
    ev.reference = reference_;
    ev.digest = digest;
    cb_(ev);
  }

 private:
  std::string reference_;
  const PullCallback& cb_;
};

}  // namespace

Result<image::RootfsInfo> RuntimeImpl::RootfsOrForget(image::Store* store,
                                                    const image::LocalImage& local,
                                                    image::RootfsFit fit) {
  auto rootfs = store->Rootfs(local, fit);
  if (!rootfs.ok() && (rootfs.error().IsCorruption() || rootfs.error().IsInvalidArgument() ||
                       rootfs.error().IsResourceExhausted())) {
    // An image whose layers cannot become a file system is unusable: forget it, so a
    // failed pull leaves nothing behind (its blobs go with the next collection).
    (void)store->Remove(local.reference);
  }
  return AboutSubject(std::move(rootfs), StatusSubject::kImage);
}

RuntimeImpl::RuntimeImpl(RuntimeOptions options, std::string home)
    : options_(std::move(options)), home_(std::move(home)), volumes_(home_) {}

Result<image::Store*> RuntimeImpl::Store() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!store_) {
    // Mirrors and insecure registries, from the API and the environment alike, were
    // normalised by ResolveRuntimeOptions.
    image::StoreOptions opts;
    opts.mirrors = options_.registry_mirrors;
    opts.insecure_registries = options_.insecure_registries;
    opts.registries = options_.registries;
    opts.docker_config_path = image::DefaultDockerConfigPath();
    BOXLITE_ASSIGN_OR_RETURN(store_, AboutSubject(image::Store::Open(sys::JoinPath(home_, "images"), opts),
                                                  StatusSubject::kImage));
  }
  return store_.get();
}

Result<vmm::GuestAssets> RuntimeImpl::Assets() { return vmm::LocateGuestAssets(options_.data_dir); }

Result<vmm::AccelChoice> RuntimeImpl::Accel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!accel_) {
    accel_ = vmm::DetectAccel(options_.accel);
    if (accel_->ok() && (*accel_)->accel == vmm::Accel::kTcg &&
        (*accel_)->reason.find("forced") == std::string::npos) {
      BOXLITE_LOG(kWarn, "%s", (*accel_)->reason.c_str());
    }
  }
  return *accel_;
}

Result<image::LocalImage> RuntimeImpl::EnsureImage(const std::string& reference,
                                                   const PullCallback& progress) {
  BOXLITE_ASSIGN_OR_RETURN(image::Store * store, Store());
  // Everything the image store says is about the image (or, from its registry client,
  // about a registry): Status::WithDefaultSubject keeps the more precise one.
  auto local = AboutSubject(store->Get(reference), StatusSubject::kImage);
  if (local.ok()) return local;
  if (!local.error().IsNotFound()) return local.error();
  if (const BuiltinImage* builtin = FindBuiltin(reference)) {
    BOXLITE_ASSIGN_OR_RETURN(auto assets, Assets());
    std::string archive = sys::JoinPath(assets.data_dir, builtin->archive);
    if (!sys::Exists(archive)) {
      return Status::NotFound(std::string("built-in image ") + builtin->name + " is not installed",
                              "run `make demo` (scripts/setup.sh) to build it into " + archive)
          .WithSubject(StatusSubject::kImage);
    }
    BOXLITE_ASSIGN_OR_RETURN(auto imported,
                             AboutSubject(store->Import(archive, builtin->name), StatusSubject::kImage));
    if (imported.empty()) return Status::Corruption("built-in image archive is empty", archive);
    return imported.front();
  }
  ProgressAdapter adapter(reference, progress);
  return AboutSubject(store->Pull(reference, &adapter), StatusSubject::kImage);
}

Result<ResolvedImage> RuntimeImpl::ResolveImage(const BoxOptions& options) {
  BOXLITE_ASSIGN_OR_RETURN(image::Store * store, Store());
  image::LocalImage local;
  if (!options.rootfs_path.empty()) {
    BOXLITE_ASSIGN_OR_RETURN(auto imported, AboutSubject(store->Import(options.rootfs_path, ""),
                                                         StatusSubject::kImage));
    if (imported.empty()) {
      return Status::InvalidArgument("no image in rootfs_path", options.rootfs_path)
          .WithSubject(StatusSubject::kImage);
    }
    local = imported.front();
  } else {
    BOXLITE_ASSIGN_OR_RETURN(local, EnsureImage(options.image, nullptr));
  }
  BOXLITE_ASSIGN_OR_RETURN(image::RootfsInfo rootfs, RootfsOrForget(store, local));
  constexpr uint64_t kMiB = 1 << 20;
  if (options.disk_size_mib > 0 && rootfs.headroom_bytes > 0 &&
      static_cast<uint64_t>(options.disk_size_mib) < (rootfs.size_bytes + kMiB - 1) / kMiB) {
    // A smaller disk than the default base file system: start from the compact base
    // (built once, on demand) and let the agent grow it to the size asked for.
    BOXLITE_ASSIGN_OR_RETURN(rootfs, RootfsOrForget(store, local, image::RootfsFit::kCompact));
  }
  ResolvedImage out;
  out.reference = local.reference;
  out.rootfs_path = rootfs.path;
  out.rootfs_bytes = rootfs.size_bytes;
  out.headroom_bytes = rootfs.headroom_bytes;
  out.config = local.config;
  return out;
}

// The box's disk is a sparse qcow2 overlay beside the home, which the guest can fill: a
// size the file system could never hold is refused before anything is created.
Status CheckDiskFits(const std::string& home, int64_t disk_size_mib) {
  if (disk_size_mib <= 0) return Status::OK();
  struct statvfs fs;
  if (::statvfs(home.c_str(), &fs) != 0) {
    return sys::ErrnoStatus(errno, "check the free space of %s", home.c_str());
  }
  constexpr uint64_t kMiB = 1 << 20;
  uint64_t free_mib = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize / kMiB;
  if (static_cast<uint64_t>(disk_size_mib) > free_mib) {
    return Status::ResourceExhausted(base::StrFormat(
        "disk_size %lld MiB is more than the %llu MiB free in %s; ask for less or free space",
        static_cast<long long>(disk_size_mib), static_cast<unsigned long long>(free_mib),
        home.c_str()));
  }
  return Status::OK();
}

Status RuntimeImpl::CheckOpen() const {
  if (!shut_down_) return Status::OK();
  return Status::FailedPrecondition("runtime is shut down", "open a new runtime");
}

Result<std::shared_ptr<Box>> RuntimeImpl::Create(const BoxOptions& requested) {
  BOXLITE_RETURN_IF_ERROR(CheckOpen());
  BOXLITE_RETURN_IF_ERROR(ValidateBoxOptions(requested));
  BOXLITE_RETURN_IF_ERROR(CheckDiskFits(home_, requested.disk_size_mib));
  std::string id = NewBoxId();
  BoxOptions options = requested;
  AssignSecretPlaceholders(&options.secrets);  // Secrets: src/runtime/box_secrets.h.
  BOXLITE_RETURN_IF_ERROR(ResolveVolumes(id, &options));
  base::ScopeExit drop_anonymous([&] { volumes_.RemoveAnonymousOf(id); });
  auto box = std::make_shared<BoxImpl>(shared_from_this(), id, options);
  // Names are unique across the home: the home lock covers the check and the creation.
  BOXLITE_ASSIGN_OR_RETURN(auto home_lock, sys::FileLock::Acquire(home_ + "/boxes.lock"));
  std::lock_guard<std::mutex> lock(mu_);
  if (!options.name.empty()) {
    if (NameTakenLocked(options.name)) {
      return Status::AlreadyExists("a box named \"" + options.name + "\" exists",
                                   "choose another name or remove it (boxlite rm)")
          .WithSubject(StatusSubject::kBox);
    }
  }
  if (box->persistent()) BOXLITE_RETURN_IF_ERROR(box->CreateOnDisk());
  boxes_[id] = box;
  drop_anonymous.Cancel();
  counters_.boxes_created++;
  return std::shared_ptr<Box>(box);
}

bool RuntimeImpl::NameTakenLocked(const std::string& name) {
  for (auto& [other_id, weak] : boxes_) {
    auto other = weak.lock();
    if (other && other->name() == name) return true;
  }
  for (const auto& record : LoadAllRecords(BoxesDir())) {
    if (record.name == name) return true;
  }
  return false;
}

Result<std::shared_ptr<Box>> RuntimeImpl::Get(std::string_view id_or_name) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<BoxImpl> found;
  int matches = 0;
  for (auto& [id, weak] : boxes_) {
    auto box = weak.lock();
    if (!box) continue;
    if (box->name() == id_or_name || id == id_or_name) return std::shared_ptr<Box>(box);
    if (id_or_name.size() >= 4 && id.starts_with(id_or_name)) {
      found = box;
      ++matches;
    }
  }
  // Persistent boxes of other processes (or earlier runs) live on disk.
  std::optional<BoxRecord> on_disk;
  for (auto& record : LoadAllRecords(BoxesDir())) {
    // A box object of this process that was let go (its entry expired) is found again on
    // disk; a live one was matched above.
    auto known = boxes_.find(record.id);
    if (known != boxes_.end() && !known->second.expired()) continue;
    if (record.name == id_or_name || record.id == id_or_name) {
      on_disk = std::move(record);
      matches = 1;
      found.reset();
      break;
    }
    if (id_or_name.size() >= 4 && record.id.starts_with(id_or_name)) {
      on_disk = record;
      ++matches;
    }
  }
  if (matches == 1 && on_disk) {
    auto box = std::make_shared<BoxImpl>(shared_from_this(), std::move(*on_disk));
    boxes_[box->id()] = box;
    return std::shared_ptr<Box>(box);
  }
  if (matches == 1) return std::shared_ptr<Box>(found);
  if (matches > 1) {
    return Status::InvalidArgument("box id prefix is ambiguous", std::string(id_or_name))
        .WithSubject(StatusSubject::kBox);
  }
  return Status::NotFound("no box named or with id \"" + std::string(id_or_name) + "\"",
                          "`boxlite ls` lists the boxes")
      .WithSubject(StatusSubject::kBox);
}

Result<std::vector<BoxInfo>> RuntimeImpl::List() {
  std::vector<std::shared_ptr<BoxImpl>> boxes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    boxes = LiveBoxesLocked();
    for (auto& record : LoadAllRecords(BoxesDir())) {
      auto known = boxes_.find(record.id);
      if (known != boxes_.end() && !known->second.expired()) continue;  // Listed above.
      boxes.push_back(std::make_shared<BoxImpl>(shared_from_this(), std::move(record)));
    }
  }
  std::vector<BoxInfo> out;
  for (auto& box : boxes) {
    auto info = box->Info();
    if (info.ok()) out.push_back(*info);
  }
  return out;
}

namespace {

// Whether adopting a box created with `existing` for a caller asking for `wanted` would
// change what the box may do. BoxLite 0.9 compares the container capability policy; this
// build also compares allow_host (reaching the host) and the egress allow-list (as given:
// a reordered list counts as different). Capabilities are compared as the
// sets they give (["chown"] and ["CAP_CHOWN"] are the same policy).
bool SamePrivileges(const BoxOptions& existing, const BoxOptions& wanted) {
  auto have = protocol::ComputeCapabilities(existing.capabilities.add, existing.capabilities.drop);
  auto want = protocol::ComputeCapabilities(wanted.capabilities.add, wanted.capabilities.drop);
  if (!have.ok() || !want.ok() || *have != *want) return false;
  return existing.allow_host == wanted.allow_host && existing.allow_net == wanted.allow_net;
}

}  // namespace

Result<std::pair<std::shared_ptr<Box>, bool>> RuntimeImpl::GetOrCreate(const BoxOptions& options) {
  BOXLITE_RETURN_IF_ERROR(CheckOpen());
  BOXLITE_RETURN_IF_ERROR(ValidateBoxOptions(options));
  if (!options.name.empty()) {
    auto existing = Get(options.name);
    if (existing.ok() && (*existing)->name() == options.name) {
      auto box = std::static_pointer_cast<BoxImpl>(*existing);
      if (!SamePrivileges(box->options(), options)) {
        return Status::FailedPrecondition(
            "box \"" + options.name + "\" exists with a different capability policy",
            "give the same options, or remove the box first");
      }
      return std::make_pair(*existing, false);
    }
    if (!existing.ok() && !existing.error().IsNotFound()) return existing.error();
  }
  auto created = Create(options);
  if (!created.ok() && created.error().IsAlreadyExists()) {
    // Another process created it meanwhile: adopt that one.
    auto again = Get(options.name);
    if (again.ok()) return std::make_pair(*again, false);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto box, std::move(created));
  return std::make_pair(box, true);
}

Status RuntimeImpl::Shutdown(std::optional<int> timeout_seconds) {
  shut_down_ = true;
  std::vector<std::shared_ptr<BoxImpl>> boxes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, weak] : boxes_) {
      if (auto box = weak.lock()) boxes.push_back(box);
    }
  }
  std::optional<std::chrono::seconds> limit;
  if (!timeout_seconds) {
    limit = std::chrono::seconds(10);
  } else if (*timeout_seconds >= 0) {
    limit = std::chrono::seconds(*timeout_seconds);
  }
  Status first;
  for (auto& box : boxes) {
    // Detached boxes outlive the runtime; boxes another process booted are that
    // process's to stop (several runtimes may share a home).
    if (box->options().detach || !box->LaunchedHere()) continue;
    Status s = box->StopWithin(limit);
    if (!s.ok() && first.ok()) first = s.Wrap("stop box " + box->name());
  }
  return first;
}

Status RuntimeImpl::Remove(std::string_view id_or_name, bool force) {
  BOXLITE_ASSIGN_OR_RETURN(auto box, Get(id_or_name));
  return std::static_pointer_cast<BoxImpl>(box)->Remove(force);
}

std::vector<std::shared_ptr<BoxImpl>> RuntimeImpl::LiveBoxesLocked() {
  std::vector<std::shared_ptr<BoxImpl>> boxes;
  for (auto& [id, weak] : boxes_) {
    if (auto box = weak.lock()) boxes.push_back(box);
  }
  return boxes;
}

Result<RuntimeMetrics> RuntimeImpl::Metrics() {
  std::vector<std::shared_ptr<BoxImpl>> boxes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    boxes = LiveBoxesLocked();
  }
  RuntimeMetrics m;
  m.boxes_created_total = counters_.boxes_created;
  m.boxes_failed_total = counters_.boxes_failed;
  m.boxes_stopped_total = counters_.boxes_stopped;
  m.total_commands_executed = counters_.commands_executed;
  m.total_exec_errors = counters_.exec_errors;
  for (const auto& box : boxes) m.num_running_boxes += box->RunningHere() ? 1 : 0;
  return m;
}

void RuntimeImpl::Forget(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    boxes_.erase(id);
  }
  volumes_.RemoveAnonymousOf(id);
}

Status RuntimeImpl::ResolveVolumes(const std::string& id, BoxOptions* options) {
  for (auto& m : options->mounts) {
    if (!m.host_path.empty() && m.host_path.find('/') == std::string::npos) {
      if (!LooksLikeVolumeId(m.host_path)) {
        return Status::InvalidArgument(
            "mount source \"" + m.host_path + "\" is neither an absolute path nor a volume id",
            "give a host directory's absolute path, or an id from `boxlite volume create`");
      }
      auto volume = volumes_.Get(m.host_path);
      if (!volume) return volume.error();
      m.host_path = volume->path;
    }
  }
  for (auto& m : options->mounts) {
    if (!m.host_path.empty()) continue;
    auto volume = volumes_.Create(id);
    if (!volume) {
      volumes_.RemoveAnonymousOf(id);
      return volume.error().Wrap("anonymous volume for " + m.guest_path);
    }
    m.host_path = volume->path;
  }
  return Status::OK();
}

Result<VolumeInfo> RuntimeImpl::CreateVolume() { return volumes_.Create(); }

Result<std::vector<VolumeInfo>> RuntimeImpl::ListVolumes() { return volumes_.List(); }

Result<VolumeInfo> RuntimeImpl::GetVolume(std::string_view id) { return volumes_.Get(id); }

Status RuntimeImpl::RemoveVolume(std::string_view id, bool force) {
  BOXLITE_ASSIGN_OR_RETURN(VolumeInfo volume, volumes_.Get(id));
  if (!force) {
    BOXLITE_ASSIGN_OR_RETURN(auto boxes, List());
    for (const auto& box : boxes) {
      for (const auto& m : box.mounts) {
        if (m.host_path != volume.path) continue;
        return Status::FailedPrecondition(
            "volume " + volume.id + " is in use by box " + (box.name.empty() ? box.id : box.name),
            "remove that box first, or force the removal (boxlite volume rm -f)");
      }
    }
  }
  return volumes_.Remove(volume.id);
}

Result<ImageInfo> RuntimeImpl::PullImage(std::string_view reference,
                                         const PullCallback& progress) {
  BOXLITE_ASSIGN_OR_RETURN(image::Store * store, Store());
  image::LocalImage local;
  if (FindBuiltin(std::string(reference)) != nullptr) {
    BOXLITE_ASSIGN_OR_RETURN(local, EnsureImage(std::string(reference), progress));
  } else {
    ProgressAdapter adapter(std::string(reference), progress);
    BOXLITE_ASSIGN_OR_RETURN(local, AboutSubject(store->Pull(reference, &adapter), StatusSubject::kImage));
  }
  if (progress) {
    PullEvent ev;
    ev.kind = PullEvent::Kind::kUnpacking;
    ev.reference = local.reference;
    progress(ev);
  }
  BOXLITE_ASSIGN_OR_RETURN(image::RootfsInfo rootfs, RootfsOrForget(store, local));
  (void)rootfs;
  if (progress) {
    PullEvent ev;
    ev.kind = PullEvent::Kind::kDone;
    ev.reference = local.reference;
    progress(ev);
  }
  return ToInfo(local);
}

Result<std::vector<ImageInfo>> RuntimeImpl::ListImages() {
  BOXLITE_ASSIGN_OR_RETURN(image::Store * store, Store());
  BOXLITE_ASSIGN_OR_RETURN(auto images, AboutSubject(store->List(), StatusSubject::kImage));
  std::vector<ImageInfo> out;
  for (const auto& img : images) out.push_back(ToInfo(img));
  return out;
}

Status RuntimeImpl::RemoveImage(std::string_view reference) {
  BOXLITE_ASSIGN_OR_RETURN(image::Store * store, Store());
  BOXLITE_RETURN_IF_ERROR(AboutSubject(store->Remove(reference), StatusSubject::kImage));
  // Warm-start templates of a base the removal collected go with it (templates.h).
  if (auto collected = TemplateStore(home_).Collect(); !collected.ok()) {
    BOXLITE_LOG(kWarn, "collect warm start templates: %s", collected.error().ToString().c_str());
  }
  return Status::OK();
}

Result<std::vector<ImageInfo>> RuntimeImpl::ImportImage(const std::string& path,
                                                        std::string_view tag) {
  BOXLITE_ASSIGN_OR_RETURN(image::Store * store, Store());
  BOXLITE_ASSIGN_OR_RETURN(auto images, AboutSubject(store->Import(path, tag), StatusSubject::kImage));
  std::vector<ImageInfo> out;
  for (const auto& img : images) out.push_back(ToInfo(img));
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> RuntimeImpl::HostInfo() {
  std::vector<std::pair<std::string, std::string>> out;
  auto accel = Accel();
  out.emplace_back("accelerator", accel.ok() ? std::string(vmm::AccelName(accel->accel))
                                             : "unavailable");
  out.emplace_back("accelerator_reason", accel.ok() ? accel->reason : accel.error().message());
  auto assets = Assets();
  out.emplace_back("kernel", assets.ok() ? assets->kernel : assets.error().message());
  out.emplace_back("initramfs", assets.ok() ? assets->initramfs : "");
  out.emplace_back("data_dir", assets.ok() ? assets->data_dir : "");
  out.emplace_back("home", home_);
  out.emplace_back("store_bytes",
                   std::to_string(sys::DiskUsage(sys::JoinPath(home_, "images"))));
  return out;
}

}  // namespace boxlite::runtime

namespace boxlite {

Result<std::shared_ptr<Runtime>> Runtime::Open(const RuntimeOptions& given) {
  // A server's URL: every call goes there (src/remote); nothing local is opened.
  if (!given.url.empty()) return remote::OpenRemoteRuntime(given);
  // The only place the environment is read: from here on, the resolved options.
  BOXLITE_ASSIGN_OR_RETURN(RuntimeOptions options, ResolveRuntimeOptions(given));
  if (base::LogLevel level; base::ParseLogLevel(options.log_level, &level)) {
    base::SetLogLevel(level);
  }
  std::string home = options.home_dir;
  Status made = sys::MakeDirs(home, 0700);
  if (!made.ok()) return made.Wrap("create the BoxLite home " + home);
  for (const char* sub : {"tmp", "boxes", "images", "volumes"}) {
    BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(sys::JoinPath(home, sub), 0700));
  }
  runtime::SweepStaleTmp(sys::JoinPath(home, "tmp"));  // Files of killed processes.
  // Each running box holds ~7 descriptors here: a soft limit of 1024 would stop this
  // process near 140 boxes (src/sys/limits.h).
  sys::RaiseOpenFileLimit();
  if (::access(home.c_str(), W_OK) != 0) {
    return Status::PermissionDenied("the BoxLite home is not writable", home);
  }
  return std::shared_ptr<Runtime>(
      std::make_shared<runtime::RuntimeImpl>(std::move(options), std::move(home)));
}

}  // namespace boxlite

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Memory snapshots: a box's RAM, device state and disk saved together, and boots from them
// (docs/snapshots.md, "Memory snapshots").
//
// Every VM gets a QMP monitor (an ephemeral box: a socket pair whose end this object keeps;
// a persistent one: qmp.sock in its directory, so another process can snapshot a detached
// box) and its RAM in a memfd (src/vmm/guest_ram.h), found again through
// /proc/<qemu pid>/fd by any process that may read QEMU's descriptors.
//
// Save: `stop` (QEMU flushes the disk), migrate the device state into memory.state with
// x-ignore-shared (the RAM, a shared file, is not in the stream), copy the RAM sparsely
// into memory.ram and the flushed overlay into disk.qcow2, `cont`. A box whose RAM is a
// private mapping (a fork) cannot be copied from its file: its RAM goes in the stream.
// Restore: LaunchLocked(&image) (box_impl.h says what it does).
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/runtime/box_impl.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/sys/unix_socket.h"
#include "src/vmm/guest_ram.h"

namespace boxlite::runtime {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kMemoryFormat = 1;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr size_t kMaxManifestBytes = 64 * 1024;
// A stopped VM's state leaves at memory speed; a full-RAM stream of a large box on a busy
// host may take a while.
constexpr seconds kMigrationLimit{300};
constexpr char kStateFdName[] = "boxlite-state";
// A persistent box's disk while a memory snapshot is being restored over it.
constexpr char kPreRestoreSuffix[] = ".pre-restore";

// Waits until the migration of `what` ("save", "restore") has completed.
Status WaitMigration(vmm::QmpClient& qmp, const char* what) {
  auto deadline = std::chrono::steady_clock::now() + kMigrationLimit;
  for (;;) {
    BOXLITE_ASSIGN_OR_RETURN(nlohmann::json info, qmp.Execute("query-migrate"));
    auto status = info.find("status");
    std::string state = status != info.end() && status->is_string() ? status->get<std::string>() : "";
    if (state == "completed") return Status::OK();
    if (state == "failed" || state == "cancelled") {
      auto desc = info.find("error-desc");
      std::string why = desc != info.end() && desc->is_string() ? desc->get<std::string>() : state;
      if (why.size() > 300) why.resize(300);
      return Status::IoError(base::StrFormat("QEMU could not %s the memory: %s", what, why.c_str()));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      (void)qmp.Execute("migrate_cancel");
      return Status::DeadlineExceeded(
          base::StrFormat("the memory %s did not finish within %llds", what,
                          static_cast<long long>(kMigrationLimit.count())));
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
}

Status SetIgnoreShared(vmm::QmpClient& qmp, bool on) {
  nlohmann::json caps = nlohmann::json::array();
  caps.push_back({{"capability", "x-ignore-shared"}, {"state", on}});
  return qmp.Execute("migrate-set-capabilities", {{"capabilities", caps}}).status();
}

// Copies `from` into a new file `to` (sparse), returning its descriptor open read-write.
Result<uint64_t> CopyFileSparse(int from, const std::string& to) {
  struct stat st;
  if (::fstat(from, &st) != 0) return sys::ErrnoStatus(errno, "stat the source of %s", to.c_str());
  BOXLITE_ASSIGN_OR_RETURN(auto out, sys::Open(to, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  BOXLITE_RETURN_IF_ERROR(vmm::SparseCopy(from, out.get(), static_cast<uint64_t>(st.st_size)).status());
  if (::fsync(out.get()) != 0) return sys::ErrnoStatus(errno, "sync %s", to.c_str());
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

Result<nlohmann::json> BoxImpl::MemoryMatchLocked() {
  BOXLITE_ASSIGN_OR_RETURN(vmm::GuestAssets assets, runtime_->Assets());
  BOXLITE_ASSIGN_OR_RETURN(vmm::AccelChoice accel, runtime_->Accel());
  if (!image_) return Status::FailedPrecondition("box " + name_ + " has no image resolved yet");
  // Digests cached by file identity (templates.h): a restore does not read them again.
  std::string digests = sys::JoinPath(TemplateStore(runtime_->home_dir()).dir(), "digests");
  BOXLITE_ASSIGN_OR_RETURN(std::string kernel, FileDigest(assets.kernel, digests));
  BOXLITE_ASSIGN_OR_RETURN(std::string initramfs, FileDigest(assets.initramfs, digests));
  bool nat = options_.network == "nat" && options_.security.network_enabled;
  return nlohmann::json{
      {"cpus", options_.cpus},
      {"memory_mib", options_.memory_mib},
      {"accel", std::string(vmm::AccelName(accel.accel))},
      {"kernel_sha256", kernel},
      {"initramfs_sha256", initramfs},
      {"agent_ports", AgentPorts(options_, persistent())},
      {"network", nat},
      {"mounts", options_.mounts.size()},
      {"rootfs", image_->rootfs_path},
      {"rootfs_bytes", image_->rootfs_bytes},
      {"free_page_reporting", vmm::VmConfig().free_page_reporting},
  };
}

Result<vmm::QmpClient*> BoxImpl::QmpLocked() {
  if (qmp_) return &*qmp_;
  base::UniqueFd fd;
  if (persistent()) {
    // QEMU serves one monitor client at a time; it may still be setting its socket up.
    Result<base::UniqueFd> sock = Status::Unavailable("not tried");
    for (int attempt = 0; attempt < 50; ++attempt) {
      sock = sys::ConnectUnix(DirPath("qmp.sock"));
      if (sock.ok()) break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (!sock.ok()) {
      return sock.error().Wrap("connect to box " + name_ + "'s VM monitor (a box started by an "
                               "older BoxLite has none: restart it)");
    }
    fd = std::move(sock).value();
  } else {
    if (!qmp_fd_) return Status::FailedPrecondition("box " + name_ + "'s VM has no monitor");
    fd = std::move(qmp_fd_);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto client, vmm::QmpClient::Open(std::move(fd)));
  qmp_.emplace(std::move(client));
  return &*qmp_;
}

Status BoxImpl::SaveMemoryLocked(const std::string& dir) {
  if (state_ != State::kRunning || !channel_) {
    return Status::FailedPrecondition("box " + name_ + " is not running",
                                      "start it first: a memory snapshot needs a running box")
        .WithSubject(StatusSubject::kBox);
  }
  if (!options_.mounts.empty()) {
    // QEMU refuses to migrate a mounted 9p device.
    return Status::FailedPrecondition(
               "box " + name_ + " has mounts: its memory cannot be saved",
               "take a disk snapshot (memory=False), or use a box without mounts")
        .WithSubject(StatusSubject::kBox);
  }
  pid_t pid = vm_ ? vm_->pid() : static_cast<pid_t>(record_.pid);
  if (pid <= 0) return Status::FailedPrecondition("box " + name_ + "'s VM is not known here");
  BOXLITE_ASSIGN_OR_RETURN(nlohmann::json manifest, MemoryMatchLocked());
  // A persistent box's monitor is let go after each use: another process may want it.
  base::ScopeExit let_go([this] {
    if (persistent()) qmp_.reset();
  });
  BOXLITE_ASSIGN_OR_RETURN(vmm::QmpClient * qmp, QmpLocked());
  BOXLITE_RETURN_IF_ERROR(qmp->Execute("stop").status());
  // Whatever happens from here, the box runs on.
  base::ScopeExit resume([qmp, this] {
    Status s = qmp->Execute("cont").status();
    if (!s.ok()) BOXLITE_LOG(kWarn, "box %s: resume after the memory save: %s", name_.c_str(), s.ToString().c_str());
  });
  // A fork maps its RAM privately: the file holds its source's pages, not its own, so
  // its RAM must travel in the stream.
  BOXLITE_ASSIGN_OR_RETURN(nlohmann::json shared,
                           qmp->Execute("qom-get", {{"path", "/objects/ram0"}, {"property", "share"}}));
  bool ram_in_file = shared.is_boolean() && shared.get<bool>();
  BOXLITE_RETURN_IF_ERROR(SetIgnoreShared(*qmp, ram_in_file));
  BOXLITE_RETURN_IF_ERROR(
      qmp->Execute("migrate-set-parameters", {{"max-bandwidth", uint64_t{1} << 40}}).status());
  {
    BOXLITE_ASSIGN_OR_RETURN(auto state, sys::Open(sys::JoinPath(dir, "memory.state"),
                                                   O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    BOXLITE_RETURN_IF_ERROR(qmp->SendFd(kStateFdName, state.get()));
    BOXLITE_RETURN_IF_ERROR(
        qmp->Execute("migrate", {{"uri", std::string("fd:") + kStateFdName}}).status());
    BOXLITE_RETURN_IF_ERROR(WaitMigration(*qmp, "save"));
    if (::fsync(state.get()) != 0) return sys::ErrnoStatus(errno, "sync memory.state");
  }
  uint64_t memory_bytes = static_cast<uint64_t>(options_.memory_mib) * kMiB;
  if (ram_in_file) {
    BOXLITE_ASSIGN_OR_RETURN(auto ram, vmm::OpenGuestRamOf(pid, memory_bytes));
    BOXLITE_RETURN_IF_ERROR(CopyFileSparse(ram.get(), sys::JoinPath(dir, "memory.ram")).status());
  }
  // The disk as the stopped VM left it (QEMU flushed it when it stopped).
  base::UniqueFd disk;
  if (persistent()) {
    BOXLITE_ASSIGN_OR_RETURN(disk, sys::Open(DirPath("disk.qcow2"), O_RDONLY | O_CLOEXEC));
  } else {
    disk.reset(::fcntl(disk_fd_.get(), F_DUPFD_CLOEXEC, 3));  // Read-only.
    if (!disk) return sys::ErrnoStatus(errno, "open box %s's disk", name_.c_str());
  }
  BOXLITE_RETURN_IF_ERROR(CopyFileSparse(disk.get(), sys::JoinPath(dir, "disk.qcow2")).status());
  manifest["format"] = kMemoryFormat;
  manifest["ram"] = ram_in_file ? "file" : "stream";
  manifest["disk_size_mib"] = disk_size_mib_;
  manifest["box_id"] = id_;
  return sys::WriteFileAtomic(sys::JoinPath(dir, "memory.json"), manifest.dump(2) + "\n", 0600);
}

Status BoxImpl::CheckMemoryImageLocked(const MemoryImage& image, MemoryLaunch& m) {
  std::string path = sys::JoinPath(image.dir, "memory.json");
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(path, O_RDONLY | O_CLOEXEC));
  BOXLITE_ASSIGN_OR_RETURN(std::string text, sys::ReadAll(fd.get(), kMaxManifestBytes + 1));
  if (text.size() > kMaxManifestBytes) return Status::Corruption("memory.json is too large", path);
  nlohmann::json saved = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!saved.is_object() || saved.value("format", 0) != kMemoryFormat) {
    return Status::Corruption("not a BoxLite memory snapshot (memory.json)", path);
  }
  BOXLITE_ASSIGN_OR_RETURN(nlohmann::json want, MemoryMatchLocked());
  for (const auto& [key, value] : want.items()) {
    auto it = saved.find(key);
    if (it == saved.end() || *it != value) {
      return Status::FailedPrecondition(
                 base::StrFormat("box %s cannot resume this memory snapshot: its %s is %s, the "
                                 "snapshot's %s",
                                 name_.c_str(), key.c_str(), value.dump().c_str(),
                                 it == saved.end() ? "missing" : it->dump().c_str()),
                 "boot it instead, or give it the settings the snapshot was taken with")
          .WithSubject(StatusSubject::kBox);
    }
  }
  std::string ram = saved.value("ram", "");
  if (ram != "file" && ram != "stream") return Status::Corruption("memory.json: bad \"ram\"", path);
  m.ram_in_file = ram == "file";
  if (image.shared_ram_fd >= 0 && !m.ram_in_file) {
    return Status::InvalidArgument("shared RAM needs a snapshot whose RAM is in memory.ram");
  }
  disk_size_mib_ = saved.value("disk_size_mib", disk_size_mib_);
  return Status::OK();
}

Result<base::UniqueFd> BoxImpl::OpenRestoredDiskLocked(const MemoryImage& image,
                                                       const std::string& path, bool keep) {
  BOXLITE_ASSIGN_OR_RETURN(auto from, sys::Open(sys::JoinPath(image.dir, "disk.qcow2"),
                                                O_RDONLY | O_CLOEXEC));
  std::string tmp = keep ? path + ".restoring" : path;
  auto copied = CopyFileSparse(from.get(), tmp);
  if (!copied.ok()) {
    ::unlink(tmp.c_str());
    return copied.error().Wrap("copy the snapshot's disk");
  }
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(tmp, O_RDWR | O_CLOEXEC));
  if (keep) {
    // The box's own disk is kept aside until the restore is done (RestoreMemoryLocked):
    // a restore that fails gives it back.
    std::string before = path + kPreRestoreSuffix;
    if (sys::Exists(path) && ::rename(path.c_str(), before.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return sys::ErrnoStatus(err, "set %s aside", path.c_str());
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      ::rename(before.c_str(), path.c_str());
      return sys::ErrnoStatus(err, "replace %s", path.c_str());
    }
  } else {
    ::unlink(tmp.c_str());  // Only the descriptor names an ephemeral box's disk.
  }
  return fd;
}

Status BoxImpl::AttachMemoryLocked(vmm::VmConfig& config, MemoryLaunch& m) {
  if (persistent()) {
    BOXLITE_ASSIGN_OR_RETURN(auto listener, sys::ListenUnix(DirPath("qmp.sock"), 1));
    config.qmp_fd = listener.get();
    config.qmp_listening = true;
    m.passed.push_back(std::move(listener));
  } else {
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
      return sys::ErrnoStatus(errno, "socketpair");
    }
    qmp_.reset();
    qmp_fd_.reset(sp[0]);
    config.qmp_fd = sp[1];
    m.passed.emplace_back(sp[1]);
  }
  config.inherit_fds.push_back(config.qmp_fd);
  uint64_t bytes = static_cast<uint64_t>(config.memory_mib) * kMiB;
  base::UniqueFd ram;
  if (m.image && m.image->shared_ram_fd >= 0) {
    ram.reset(::fcntl(m.image->shared_ram_fd, F_DUPFD_CLOEXEC, 3));
    if (!ram) return sys::ErrnoStatus(errno, "dup the shared guest memory");
    struct stat st;
    if (::fstat(ram.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != bytes) {
      return Status::InvalidArgument("the shared guest memory is not the box's memory size");
    }
    config.ram_shared = false;  // Copy-on-write: the sealed file stays as it is.
  } else {
    BOXLITE_ASSIGN_OR_RETURN(ram, vmm::CreateGuestRam(bytes));
    if (m.image && m.ram_in_file) {
      BOXLITE_ASSIGN_OR_RETURN(auto saved, sys::Open(sys::JoinPath(m.image->dir, "memory.ram"),
                                                     O_RDONLY | O_CLOEXEC));
      struct stat st;
      if (::fstat(saved.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != bytes) {
        return Status::Corruption("memory.ram is not the box's memory size", m.image->dir);
      }
      BOXLITE_RETURN_IF_ERROR(vmm::SparseCopy(saved.get(), ram.get(), bytes).status());
    }
    config.ram_shared = true;
  }
  config.ram_fd = ram.get();
  config.inherit_fds.push_back(ram.get());
  m.passed.push_back(std::move(ram));
  config.incoming = m.image != nullptr;
  return Status::OK();
}

Status BoxImpl::ReceiveMemoryLocked(MemoryLaunch& m) {
  base::ScopeExit let_go([this] {
    if (persistent()) qmp_.reset();
  });
  BOXLITE_ASSIGN_OR_RETURN(vmm::QmpClient * qmp, QmpLocked());
  BOXLITE_RETURN_IF_ERROR(SetIgnoreShared(*qmp, m.ram_in_file));
  BOXLITE_ASSIGN_OR_RETURN(auto state, sys::Open(sys::JoinPath(m.image->dir, "memory.state"),
                                                 O_RDONLY | O_CLOEXEC));
  BOXLITE_RETURN_IF_ERROR(qmp->SendFd(kStateFdName, state.get()));
  state.reset();
  BOXLITE_RETURN_IF_ERROR(
      qmp->Execute("migrate-incoming", {{"uri", std::string("fd:") + kStateFdName}}).status());
  BOXLITE_RETURN_IF_ERROR(WaitMigration(*qmp, "restore"));
  return qmp->Execute("cont").status();
}

Status BoxImpl::RefreshGuestLocked() {
  protocol::RefreshRequest refresh;
  refresh.entropy.resize(protocol::kRefreshEntropyBytes);
  if (::getrandom(refresh.entropy.data(), refresh.entropy.size(), 0) !=
      static_cast<ssize_t>(refresh.entropy.size())) {
    return sys::ErrnoStatus(errno, "getrandom");
  }
  refresh.clock_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  refresh.hostname = name_;
  refresh.box_id = id_;
  auto reply = channel_->Call("refresh", protocol::ToJson(refresh), Clock::now() + seconds(30));
  if (!reply.ok()) return reply.error().Wrap("give the restored guest its clock and identity");
  return Status::OK();
}

Status BoxImpl::AdoptMainLocked() {
  main_optional_ = !options_.entrypoint && !options_.cmd;
  ended_main_.reset();
  auto exec = CallAttachMainLocked(channel_);
  if (!exec.ok()) {
    if (exec.error().IsFailedPrecondition()) return Status::OK();  // None runs.
    return exec.error();
  }
  main_ = NewMainSession(std::move(exec).value());
  return Status::OK();
}

Status BoxImpl::RestoreMemoryLocked(const std::string& dir) {
  if (state_ == State::kRunning) {
    return Status::FailedPrecondition("box " + name_ + " is running",
                                      "stop it before restoring a snapshot")
        .WithSubject(StatusSubject::kBox);
  }
  failure_.clear();
  record_.phase.clear();
  record_.failure.clear();
  MemoryImage image;
  image.dir = dir;
  Status launched = LaunchLocked(&image);
  std::string disk = DirPath("disk.qcow2");
  std::string before = disk + kPreRestoreSuffix;
  if (launched.ok()) {
    ::unlink(before.c_str());
  } else if (sys::Exists(before)) {
    ::rename(before.c_str(), disk.c_str());  // The box keeps the disk it had.
  }
  return launched;
}

}  // namespace boxlite::runtime

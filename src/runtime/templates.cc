// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/templates.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

using Json = nlohmann::json;

constexpr char kRecordFile[] = "template.json";
constexpr char kTmpPrefix[] = ".tmp-";
constexpr char kTrashPrefix[] = ".trash-";
constexpr char kNewPrefix[] = ".new-";
constexpr char kCaptureLock[] = "capture.lock";  // Held by the capturing process.
// template.json is ours, but the home may be damaged: bounded.
constexpr size_t kMaxRecordBytes = 64 * 1024;

Json InputsJson(const TemplateInputs& in) {
  return Json{{"rootfs", in.rootfs},
              {"rootfs_bytes", in.rootfs_bytes},
              {"disk_size_mib", in.disk_size_mib},
              {"cpus", in.cpus},
              {"memory_mib", in.memory_mib},
              {"kernel_sha256", in.kernel_sha256},
              {"initramfs_sha256", in.initramfs_sha256},
              {"qemu", in.qemu},
              {"accel", in.accel},
              {"tsc_khz", in.tsc_khz},
              {"network", in.network},
              {"shares_read_only", in.shares_read_only},
              {"agent_ports", in.agent_ports},
              {"kernel_args", in.kernel_args},
              {"free_page_reporting", in.free_page_reporting}};
}

TemplateInputs InputsFrom(const Json& j) {
  TemplateInputs in;
  in.rootfs = j.at("rootfs").get<std::string>();
  in.rootfs_bytes = j.at("rootfs_bytes").get<uint64_t>();
  in.disk_size_mib = j.at("disk_size_mib").get<int64_t>();
  in.cpus = j.at("cpus").get<int>();
  in.memory_mib = j.at("memory_mib").get<int>();
  in.kernel_sha256 = j.at("kernel_sha256").get<std::string>();
  in.initramfs_sha256 = j.at("initramfs_sha256").get<std::string>();
  in.qemu = j.at("qemu").get<std::string>();
  in.accel = j.at("accel").get<std::string>();
  in.tsc_khz = j.at("tsc_khz").get<uint32_t>();
  in.network = j.at("network").get<bool>();
  in.shares_read_only = j.at("shares_read_only").get<std::vector<bool>>();
  in.agent_ports = j.at("agent_ports").get<int>();
  in.kernel_args = j.at("kernel_args").get<std::string>();
  in.free_page_reporting = j.value("free_page_reporting", false);
  return in;
}

bool IsKey(std::string_view name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// A unique name in this process and across processes (pid) for temporary directories.
std::string UniqueSuffix() {
  static std::atomic<uint64_t> counter{0};
  return base::StrFormat("%d-%llu", static_cast<int>(::getpid()),
                         static_cast<unsigned long long>(counter.fetch_add(1)));
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", path.c_str());
  if (!S_ISREG(st.st_mode)) return Status::Corruption("not a regular file", path);
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

std::string TemplateKey(const TemplateInputs& inputs) {
  // nlohmann's objects keep their keys sorted: the dump is canonical.
  Json j{{"version", kTemplateVersion}, {"inputs", InputsJson(inputs)}};
  return base::Sha256Hex(j.dump());
}

TemplateStore::TemplateStore(std::string home, size_t max_templates)
    : home_(std::move(home)),
      dir_(sys::JoinPath(home_, "templates")),
      max_templates_(max_templates) {}

std::string TemplateStore::PathOf(const std::string& key) const {
  return sys::JoinPath(dir_, key);
}

Result<TemplateRecord> TemplateStore::Load(const std::string& key) const {
  std::string dir = PathOf(key);
  std::string path = sys::JoinPath(dir, kRecordFile);
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", path.c_str());
  BOXLITE_ASSIGN_OR_RETURN(std::string text, sys::ReadAll(fd.get(), kMaxRecordBytes + 1));
  if (text.size() > kMaxRecordBytes) return Status::Corruption("template record too large", path);
  TemplateRecord rec;
  try {
    Json j = Json::parse(text);
    if (j.at("version").get<int>() != kTemplateVersion) {
      return Status::Corruption("template of another format version", path);
    }
    rec.key = j.at("key").get<std::string>();
    rec.inputs = InputsFrom(j.at("inputs"));
    rec.created_unix = j.at("created_unix").get<int64_t>();
    for (const auto& [name, size] : j.at("files").items()) {
      rec.files.emplace_back(name, size.get<uint64_t>());
    }
  } catch (const Json::exception& e) {
    return Status::Corruption(std::string("unreadable template record: ") + e.what(), path);
  }
  if (rec.key != key || TemplateKey(rec.inputs) != key) {
    return Status::Corruption("template record does not match its key", path);
  }
  rec.dir = dir;
  rec.used_unix = st.st_mtim.tv_sec;
  return rec;
}

Result<std::optional<sys::FileLock>> TemplateStore::LockRecord(const std::string& key,
                                                               sys::FileLock::Mode mode,
                                                               bool wait) {
  // The lock is template.json's own: it goes with the template, leaving no lock file.
  std::string path = sys::JoinPath(PathOf(key), kRecordFile);
  auto lock = wait ? sys::FileLock::Acquire(path, mode) : sys::FileLock::TryAcquire(path, mode);
  if (!lock.ok()) {
    if (lock.error().IsNotFound() || lock.error().IsFailedPrecondition()) {
      return std::optional<sys::FileLock>();  // Gone, or (TryAcquire) in use.
    }
    return lock.error();
  }
  // Still the published one (not renamed away by a removal while we waited)?
  struct stat held, now;
  if (::fstat(lock->fd(), &held) != 0 || ::stat(path.c_str(), &now) != 0 ||
      held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
    return std::optional<sys::FileLock>();
  }
  return std::optional<sys::FileLock>(std::move(lock).value());
}

Result<std::optional<TemplateStore::Held>> TemplateStore::Find(const std::string& key) {
  if (!IsKey(key)) return Status::InvalidArgument("not a template key", key);
  if (!sys::IsDirectory(PathOf(key))) return std::optional<Held>();
  BOXLITE_ASSIGN_OR_RETURN(auto lock, LockRecord(key, sys::FileLock::Mode::kShared, true));
  if (!lock) return std::optional<Held>();  // Removed meanwhile.
  auto loaded = Load(key);
  Status bad = loaded.ok() ? Status::OK() : loaded.error();
  if (bad.ok()) {
    if (!sys::Exists(loaded->inputs.rootfs)) {
      bad = Status::NotFound("the template's base image is gone", loaded->inputs.rootfs);
    }
    for (const auto& [name, size] : loaded->files) {
      if (!bad.ok()) break;
      auto have = FileSize(sys::JoinPath(loaded->dir, name));
      if (!have.ok()) {
        bad = have.error();
      } else if (*have != size) {
        bad = Status::Corruption(
            base::StrFormat("%s has %llu bytes, not %llu", name.c_str(),
                            static_cast<unsigned long long>(*have),
                            static_cast<unsigned long long>(size)),
            loaded->dir);
      }
    }
  }
  if (!bad.ok()) {
    BOXLITE_LOG(kWarn, "warm start: template %s is not usable (%s); removing it", key.c_str(),
                bad.ToString().c_str());
    lock.reset();
    (void)Remove(key);
    return std::optional<Held>();
  }
  // Its use, for the LRU bound: template.json's mtime.
  std::string record_path = sys::JoinPath(loaded->dir, kRecordFile);
  (void)::utimensat(AT_FDCWD, record_path.c_str(), nullptr, 0);
  loaded->used_unix = ::time(nullptr);
  return std::optional<Held>(Held{std::move(loaded).value(), std::move(*lock)});
}

TemplateStore::Capture::Capture(std::string tmp, std::string key, sys::FileLock lock)
    : tmp_(std::move(tmp)), key_(std::move(key)), lock_(std::move(lock)) {}

TemplateStore::Capture::Capture(Capture&& other) noexcept
    : tmp_(std::move(other.tmp_)), key_(std::move(other.key_)), lock_(std::move(other.lock_)) {
  other.tmp_.clear();
  other.lock_.reset();
}

TemplateStore::Capture::~Capture() {
  if (!tmp_.empty()) (void)sys::RemoveTree(tmp_);
}

Result<std::optional<TemplateStore::Capture>> TemplateStore::BeginCapture(const std::string& key) {
  if (!IsKey(key)) return Status::InvalidArgument("not a template key", key);
  if (sys::IsDirectory(PathOf(key))) return std::optional<Capture>();
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(dir_, 0700));
  // A private directory with its lock held, renamed to .tmp-<key>: whoever renames first
  // captures the key, and a .tmp-<key> whose lock is free was left by a killed process.
  std::string fresh = sys::JoinPath(dir_, kNewPrefix + key + "-" + UniqueSuffix());
  if (::mkdir(fresh.c_str(), 0700) != 0) return sys::ErrnoStatus(errno, "mkdir %s", fresh.c_str());
  auto lock = sys::FileLock::TryAcquire(sys::JoinPath(fresh, kCaptureLock));
  if (!lock.ok()) {
    (void)sys::RemoveTree(fresh);
    return lock.error();
  }
  std::string tmp = sys::JoinPath(dir_, kTmpPrefix + key);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::rename(fresh.c_str(), tmp.c_str()) == 0) {
      if (sys::IsDirectory(PathOf(key))) {  // Published meanwhile: nothing to capture.
        (void)sys::RemoveTree(tmp);
        return std::optional<Capture>();
      }
      return std::optional<Capture>(Capture(tmp, key, std::move(lock).value()));
    }
    if (errno != EEXIST && errno != ENOTEMPTY) {
      Status s = sys::ErrnoStatus(errno, "claim %s", tmp.c_str());
      (void)sys::RemoveTree(fresh);
      return s;
    }
    if (!RemoveStaleCapture(tmp)) break;  // Another process is capturing the key.
  }
  (void)sys::RemoveTree(fresh);
  return std::optional<Capture>();
}

bool TemplateStore::RemoveStaleCapture(const std::string& path) {
  auto lock = sys::FileLock::TryAcquire(sys::JoinPath(path, kCaptureLock));
  if (!lock.ok()) return !sys::IsDirectory(path);  // Held: a live capture (or gone).
  std::string trash =
      sys::JoinPath(dir_, kTrashPrefix + sys::Basename(path) + "-" + UniqueSuffix());
  bool moved = ::rename(path.c_str(), trash.c_str()) == 0;
  lock->Unlock();
  if (moved) (void)sys::RemoveTree(trash);
  return true;
}

Result<bool> TemplateStore::Commit(Capture capture, const TemplateInputs& inputs) {
  if (TemplateKey(inputs) != capture.key()) {
    return Status::Internal("template inputs do not match the capture's key", capture.key());
  }
  Json files = Json::object();
  BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(capture.dir()));
  for (const auto& name : names) {
    if (name == kCaptureLock) continue;
    BOXLITE_ASSIGN_OR_RETURN(uint64_t size, FileSize(sys::JoinPath(capture.dir(), name)));
    files[name] = size;
  }
  Json record{{"version", kTemplateVersion},
              {"key", capture.key()},
              {"inputs", InputsJson(inputs)},
              {"created_unix", static_cast<int64_t>(::time(nullptr))},
              {"files", files}};
  BOXLITE_RETURN_IF_ERROR(
      sys::WriteFileAtomic(sys::JoinPath(capture.dir(), kRecordFile), record.dump(2) + "\n", 0600));
  if (::rename(capture.dir().c_str(), PathOf(capture.key()).c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return false;  // Another process won.
    return sys::ErrnoStatus(errno, "publish template %s", capture.key().c_str());
  }
  capture.tmp_.clear();  // Published: no longer the capture's to remove.
  ::unlink(sys::JoinPath(PathOf(capture.key()), kCaptureLock).c_str());
  // A new template is the moment to drop the stale ones: bases gone, then the LRU bound.
  if (auto collected = Collect(); !collected.ok()) {
    BOXLITE_LOG(kWarn, "warm start: collecting templates: %s", collected.error().ToString().c_str());
  }
  if (Status trimmed = Trim(); !trimmed.ok()) {
    BOXLITE_LOG(kWarn, "warm start: trimming templates: %s", trimmed.ToString().c_str());
  }
  return true;
}

Result<bool> TemplateStore::Remove(const std::string& key) {
  if (!IsKey(key)) return Status::InvalidArgument("not a template key", key);
  std::string trash = sys::JoinPath(dir_, kTrashPrefix + key + "-" + UniqueSuffix());
  if (sys::IsDirectory(PathOf(key)) && !sys::Exists(sys::JoinPath(PathOf(key), kRecordFile))) {
    // Damaged (no record to lock): nobody can be restoring it.
    if (::rename(PathOf(key).c_str(), trash.c_str()) == 0) (void)sys::RemoveTree(trash);
    return true;
  }
  BOXLITE_ASSIGN_OR_RETURN(auto lock, LockRecord(key, sys::FileLock::Mode::kExclusive, false));
  if (!lock) return !sys::IsDirectory(PathOf(key));  // In use (false), or gone already.
  // Out of sight first (one rename), then deleted without the lock.
  if (::rename(PathOf(key).c_str(), trash.c_str()) != 0) {
    if (errno == ENOENT) return true;
    return sys::ErrnoStatus(errno, "remove template %s", key.c_str());
  }
  lock->Unlock();
  BOXLITE_RETURN_IF_ERROR(sys::RemoveTree(trash));
  return true;
}

Result<std::vector<TemplateRecord>> TemplateStore::List() {
  std::vector<TemplateRecord> out;
  if (!sys::IsDirectory(dir_)) return out;
  BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(dir_));
  for (const auto& name : names) {
    if (!IsKey(name)) continue;
    auto rec = Load(name);
    if (rec.ok()) out.push_back(std::move(rec).value());
  }
  std::sort(out.begin(), out.end(), [](const TemplateRecord& a, const TemplateRecord& b) {
    return a.used_unix != b.used_unix ? a.used_unix > b.used_unix : a.key < b.key;
  });
  return out;
}

Result<int> TemplateStore::Collect(const std::function<bool(const TemplateRecord&)>& keep) {
  if (!sys::IsDirectory(dir_)) return 0;
  int removed = 0;
  BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(dir_));
  for (const auto& name : names) {
    std::string path = sys::JoinPath(dir_, name);
    if (name.starts_with(kTrashPrefix)) {
      (void)sys::RemoveTree(path);  // A removal that was killed half-way.
      continue;
    }
    if (name.starts_with(kTmpPrefix) || name.starts_with(kNewPrefix)) {
      (void)RemoveStaleCapture(path);  // Only when its capture is not running.
      continue;
    }
    if (!IsKey(name)) continue;
    auto rec = Load(name);
    bool gone = !rec.ok() || !sys::Exists(rec->inputs.rootfs) || (keep && !keep(*rec));
    if (!gone) continue;
    auto done = Remove(name);
    if (done.ok() && *done) ++removed;
  }
  return removed;
}

Status TemplateStore::Trim() {
  BOXLITE_ASSIGN_OR_RETURN(auto records, List());
  for (size_t i = max_templates_; i < records.size(); ++i) {
    BOXLITE_RETURN_IF_ERROR(Remove(records[i].key).status());
  }
  return Status::OK();
}

Result<std::string> FileDigest(const std::string& path, const std::string& cache_dir) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(path, O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", path.c_str());
  std::string identity = base::StrFormat(
      "%s\n%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", path.c_str(),
      static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino),
      static_cast<long long>(st.st_size), static_cast<long long>(st.st_mtim.tv_sec),
      st.st_mtim.tv_nsec, static_cast<long long>(st.st_ctim.tv_sec), st.st_ctim.tv_nsec);
  static std::mutex mu;
  static std::map<std::string, std::string> known;  // Guarded by mu.
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = known.find(identity); it != known.end()) return it->second;
  }
  std::string cache = sys::JoinPath(cache_dir, base::Sha256Hex(identity));
  std::string digest;
  if (auto cached = sys::ReadFile(cache); cached.ok() && IsKey(*cached)) {
    digest = *cached;
  } else {
    base::Sha256 hasher;
    std::string buf(1 << 20, '\0');
    for (;;) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return sys::ErrnoStatus(errno, "read %s", path.c_str());
      if (n == 0) break;
      hasher.Update(buf.data(), static_cast<size_t>(n));
    }
    digest = hasher.FinishHex();
    if (sys::MakeDirs(cache_dir, 0700).ok()) {
      (void)sys::WriteFileAtomic(cache, digest, 0600, /*durable=*/false);
    }
  }
  std::lock_guard<std::mutex> lock(mu);
  known[identity] = digest;
  return digest;
}

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/snapshot_store.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/runtime/exec_env.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

using Json = nlohmann::json;

constexpr char kInfoFile[] = "info.json";
constexpr char kDiskFile[] = "disk.qcow2";
constexpr char kTmpPrefix[] = ".creating-";
constexpr char kRemovingPrefix[] = ".removing-";
// An info.json is a few hundred bytes; anything much larger is not ours.
constexpr size_t kMaxInfoBytes = 64 * 1024;

Status WithSnapshot(Status s) { return s.WithSubject(StatusSubject::kSnapshot); }

std::string Quoted(std::string_view name) {
  // Names may hold any byte but NUL, '/' and '\\': show them escaped.
  return Json(std::string(name)).dump(-1, ' ', true, Json::error_handler_t::replace);
}

// Copies [offset, offset+len) with copy_file_range (which falls back to a kernel copy).
Status CopyRange(int src, int dst, off_t offset, off_t len) {
  off_t in = offset;
  off_t out = offset;
  while (len > 0) {
    ssize_t n = ::copy_file_range(src, &in, dst, &out, static_cast<size_t>(len), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::ErrnoStatus(errno, "copy the disk");
    }
    if (n == 0) break;  // The source shrank under us.
    len -= n;
  }
  return Status::OK();
}

}  // namespace

Status CheckSnapshotName(std::string_view name) {
  const char* why = nullptr;
  if (name.empty()) {
    why = "it is empty";
  } else if (name.size() > 255) {
    why = "it is longer than 255 bytes";
  } else if (name.front() == '.') {
    why = "it starts with '.'";
  } else if (name.find('/') != std::string_view::npos) {
    why = "it contains '/'";
  } else if (name.find('\\') != std::string_view::npos) {
    why = "it contains '\\'";
  } else if (name.find('\0') != std::string_view::npos) {
    why = "it contains a NUL byte";
  }
  if (why == nullptr) return Status::OK();
  return WithSnapshot(Status::InvalidArgument(
      base::StrFormat("invalid snapshot name %s: %s", Quoted(name).c_str(), why),
      "use 1 to 255 bytes without '/', '\\' or NUL, not starting with '.'"));
}

Status SnapshotNotFound(std::string_view box, std::string_view name) {
  return WithSnapshot(Status::NotFound(base::StrFormat("box %.*s has no snapshot %s",
                                                       static_cast<int>(box.size()), box.data(),
                                                       Quoted(name).c_str()),
                                       "list its snapshots (boxlite snapshot ls BOX)"));
}

Status SnapshotExists(std::string_view box, std::string_view name) {
  return WithSnapshot(Status::AlreadyExists(
      base::StrFormat("box %.*s already has a snapshot %s", static_cast<int>(box.size()),
                      box.data(), Quoted(name).c_str()),
      "choose another name or remove that snapshot first"));
}

Status CopyDiskFileTo(int src_fd, int dst_fd) {
  if (::ioctl(dst_fd, FICLONE, src_fd) == 0) return Status::OK();
  struct stat st;
  if (::fstat(src_fd, &st) != 0) return sys::ErrnoStatus(errno, "stat the disk");
  const off_t size = st.st_size;
  // Only the data extents: a qcow2 file may have holes, which stay holes.
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(src_fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // Nothing but a hole to the end.
      // No SEEK_DATA here: copy everything that is left.
      BOXLITE_RETURN_IF_ERROR(CopyRange(src_fd, dst_fd, pos, size - pos));
      break;
    }
    off_t hole = ::lseek(src_fd, data, SEEK_HOLE);
    if (hole < 0 || hole > size) hole = size;
    BOXLITE_RETURN_IF_ERROR(CopyRange(src_fd, dst_fd, data, hole - data));
    pos = hole;
  }
  if (::ftruncate(dst_fd, size) != 0) return sys::ErrnoStatus(errno, "size the disk copy");
  return Status::OK();
}

Status CopyDiskFile(int src_fd, const std::string& dst) {
  BOXLITE_ASSIGN_OR_RETURN(auto out, sys::Open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  Status s = CopyDiskFileTo(src_fd, out.get());
  if (s.ok() && ::fsync(out.get()) != 0) s = sys::ErrnoStatus(errno, "write %s", dst.c_str());
  if (!s.ok()) ::unlink(dst.c_str());
  return s;
}

SnapshotSizes MeasureSnapshot(const std::string& dir) {
  SnapshotSizes sizes;
  auto names = sys::ListDir(dir);
  if (!names.ok()) return sizes;
  for (const auto& name : *names) {
    uint64_t used = sys::DiskUsage(sys::JoinPath(dir, name));
    sizes.total += used;
    if (name == kDiskFile) sizes.disk = used;
    if (name.starts_with("memory.")) sizes.memory += used;
  }
  return sizes;
}

SnapshotStore::SnapshotStore(std::string dir, std::string box_name)
    : dir_(std::move(dir)), box_name_(std::move(box_name)) {}

std::string SnapshotStore::PathOf(std::string_view name) const {
  return sys::JoinPath(dir_, name);
}

Result<std::string> SnapshotStore::Begin(std::string_view name) {
  BOXLITE_RETURN_IF_ERROR(CheckSnapshotName(name));
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(dir_, 0700));
  // What a creation or removal that died left (the caller holds the box's lock: no other
  // one is under way).
  if (auto names = sys::ListDir(dir_); names.ok()) {
    for (const auto& entry : *names) {
      if (entry.starts_with(kTmpPrefix) || entry.starts_with(kRemovingPrefix)) {
        (void)sys::RemoveTree(sys::JoinPath(dir_, entry));
      }
    }
  }
  struct stat st;
  if (::lstat(PathOf(name).c_str(), &st) == 0) return SnapshotExists(box_name_, name);
  BOXLITE_ASSIGN_OR_RETURN(auto tmp, sys::TempDir::Create(dir_, kTmpPrefix));
  return tmp.Release();
}

Result<SnapshotInfo> SnapshotStore::Commit(const std::string& tmp, SnapshotInfo info) {
  Json j = {{"id", info.id},
            {"box_id", info.box_id},
            {"name", info.name},
            {"created_unix", info.created_unix},
            {"memory", info.memory}};
  Status s = sys::WriteFileAtomic(sys::JoinPath(tmp, kInfoFile),
                                  j.dump(2, ' ', false, Json::error_handler_t::replace), 0600);
  if (s.ok() && ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, PathOf(info.name).c_str(),
                            RENAME_NOREPLACE) != 0) {
    s = errno == EEXIST || errno == ENOTEMPTY
            ? SnapshotExists(box_name_, info.name)
            : sys::ErrnoStatus(errno, "save snapshot %s", Quoted(info.name).c_str());
  }
  if (!s.ok()) {
    Abandon(tmp);
    return s;
  }
  return Load(info.name);
}

void SnapshotStore::Abandon(const std::string& tmp) { (void)sys::RemoveTree(tmp); }

Result<SnapshotInfo> SnapshotStore::Load(const std::string& name) const {
  std::string dir = PathOf(name);
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(sys::JoinPath(dir, kInfoFile), O_RDONLY | O_CLOEXEC));
  BOXLITE_ASSIGN_OR_RETURN(std::string text, sys::ReadAll(fd.get(), kMaxInfoBytes + 1));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto corrupt = [&] {
    return WithSnapshot(Status::Corruption("snapshot " + Quoted(name) + " of box " + box_name_ +
                                           " has an unreadable info.json",
                                           "remove the snapshot"));
  };
  if (text.size() > kMaxInfoBytes || !j.is_object()) return corrupt();
  SnapshotInfo info;
  auto id = j.find("id");
  auto box_id = j.find("box_id");
  auto created = j.find("created_unix");
  auto memory = j.find("memory");
  if (id == j.end() || !id->is_string() || box_id == j.end() || !box_id->is_string() ||
      created == j.end() || !created->is_number_integer() ||
      (memory != j.end() && !memory->is_boolean())) {
    return corrupt();
  }
  info.id = id->get<std::string>();
  info.box_id = box_id->get<std::string>();
  info.name = name;  // The directory's name is the snapshot's name.
  info.created_unix = created->get<int64_t>();
  info.memory = memory != j.end() && memory->get<bool>();
  SnapshotSizes sizes = MeasureSnapshot(dir);
  info.container_disk_bytes = sizes.disk;
  info.size_bytes = sizes.total;
  info.memory_bytes = sizes.memory;
  return info;
}

Result<std::vector<SnapshotInfo>> SnapshotStore::List() const {
  std::vector<SnapshotInfo> out;
  if (!sys::IsDirectory(dir_)) return out;
  BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(dir_));
  for (const auto& name : names) {
    if (!CheckSnapshotName(name).ok()) continue;  // Temporary directories.
    auto info = Load(name);
    if (info.ok()) out.push_back(std::move(info).value());
  }
  std::stable_sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.created_unix != b.created_unix ? a.created_unix < b.created_unix : a.name < b.name;
  });
  return out;
}

Result<std::optional<SnapshotInfo>> SnapshotStore::Get(std::string_view name) const {
  if (!CheckSnapshotName(name).ok()) return std::optional<SnapshotInfo>();
  struct stat st;
  if (::lstat(PathOf(name).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return std::optional<SnapshotInfo>();
  }
  BOXLITE_ASSIGN_OR_RETURN(SnapshotInfo info, Load(std::string(name)));
  return std::optional<SnapshotInfo>(std::move(info));
}

Status SnapshotStore::Remove(std::string_view name) {
  if (!CheckSnapshotName(name).ok()) return SnapshotNotFound(box_name_, name);
  std::string path = PathOf(name);
  std::string away = sys::JoinPath(dir_, kRemovingPrefix + NewBoxId());
  if (::rename(path.c_str(), away.c_str()) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return SnapshotNotFound(box_name_, name);
    return sys::ErrnoStatus(errno, "remove snapshot %s", Quoted(name).c_str());
  }
  return sys::RemoveTree(away);
}

}  // namespace boxlite::runtime

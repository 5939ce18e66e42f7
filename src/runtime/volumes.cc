// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/volumes.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include <nlohmann/json.hpp>

#include "boxlite/config.h"
#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/runtime/box_record.h"
#include "src/runtime/exec_env.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/sys/jail.h"

namespace boxlite::runtime {
namespace {

constexpr size_t kMaxRecordBytes = 64 << 10;

Status NotFoundStatus(std::string_view id) {
  return Status::NotFound("volume " + std::string(id) + " not found",
                          "`boxlite volume ls` lists the volumes");
}

}  // namespace

// Volume ids have the form of box ids (12 Base62 characters, exec_env.h).
std::string NewVolumeId() { return NewBoxId(); }

VolumeStore::VolumeStore(std::string home)
    : dir_(sys::JoinPath(home, "volumes")), boxes_dir_(sys::JoinPath(home, "boxes")) {}

std::string VolumeStore::RecordPath(std::string_view id) const {
  return sys::JoinPath(dir_, std::string(id) + ".json");
}

std::string VolumeStore::DataPath(std::string_view id) const {
  return sys::JoinPath(dir_, std::string(id));
}

Result<VolumeInfo> VolumeStore::Create(std::string_view owner_box) {
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(dir_, 0755).Wrap("create the volumes directory"));
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string id = NewVolumeId();
    std::string path = DataPath(id);
    if (::mkdir(path.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      return sys::ErrnoStatus(errno, "create volume directory %s", path.c_str());
    }
    if (::geteuid() == 0) {
      // A root-owned read-write share is refused by the VM jail: hand the directory to
      // the user that runs root's VMs.
      auto jail = sys::JailUserIdentity();
      if (!jail.ok() || ::chown(path.c_str(), jail->uid, jail->gid) != 0) {
        Status why = jail.ok() ? sys::ErrnoStatus(errno, "chown %s", path.c_str()) : jail.error();
        (void)::rmdir(path.c_str());
        return why.Wrap("create volume " + id);
      }
    }
    VolumeInfo info;
    info.id = id;
    info.created_unix = static_cast<int64_t>(::time(nullptr));
    info.path = path;
    info.size_bytes = sys::DiskUsage(path);
    nlohmann::json record = {{"id", id}, {"created_unix", info.created_unix}};
    if (!owner_box.empty()) {
      record["box"] = std::string(owner_box);
      // The process the box lives in: an ephemeral box ends with it (see Sweep).
      record["pid"] = ::getpid();
      record["pid_start_time"] = ProcessStartTime(::getpid());
    }
    Status saved = sys::WriteFileAtomic(RecordPath(id), record.dump(), 0644);
    if (!saved.ok()) {
      (void)::rmdir(path.c_str());
      return saved.Wrap("create volume " + id);
    }
    return info;
  }
  return Status::Internal("could not pick a free volume id");
}

Result<VolumeInfo> VolumeStore::Load(std::string_view id, std::string* owner_box,
                                     bool* owner_gone) const {
  if (!LooksLikeVolumeId(id)) return NotFoundStatus(id);
  auto text = sys::ReadFile(RecordPath(id));
  if (!text) {
    if (text.error().sys_errno() == ENOENT) return NotFoundStatus(id);
    return text.error().Wrap("read volume " + std::string(id));
  }
  if (text->size() > kMaxRecordBytes) {
    return Status::Corruption("volume " + std::string(id) + ": record too large");
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("created_unix") || !j["created_unix"].is_number_integer()) {
    return Status::Corruption("volume " + std::string(id) + ": damaged record",
                              RecordPath(id));
  }
  VolumeInfo info;
  info.id = std::string(id);
  info.created_unix = j["created_unix"].get<int64_t>();
  info.path = DataPath(id);
  if (!sys::IsDirectory(info.path)) {
    return Status::Corruption("volume " + info.id + ": its directory is missing", info.path);
  }
  info.size_bytes = sys::DiskUsage(info.path);
  if (owner_box != nullptr) {
    auto box = j.find("box");
    *owner_box = box != j.end() && box->is_string() ? box->get<std::string>() : "";
  }
  if (owner_gone != nullptr) {
    // An anonymous volume whose box has no record (it was ephemeral) and whose process
    // is gone: the box ended without removing it (the process was killed).
    auto box = j.find("box");
    auto pid = j.find("pid");
    auto start = j.find("pid_start_time");
    *owner_gone = box != j.end() && box->is_string() && pid != j.end() &&
                  pid->is_number_integer() && start != j.end() &&
                  start->is_number_unsigned() &&
                  !sys::Exists(sys::JoinPath(boxes_dir_, box->get<std::string>())) &&
                  !SameProcessAlive(pid->get<int>(), start->get<uint64_t>());
  }
  return info;
}

Result<VolumeInfo> VolumeStore::Get(std::string_view id) const {
  return Load(id, nullptr, nullptr);
}

Result<std::vector<VolumeInfo>> VolumeStore::List() {
  std::vector<VolumeInfo> out;
  if (!sys::IsDirectory(dir_)) return out;
  BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(dir_));
  for (const auto& name : names) {
    if (!name.ends_with(".json")) continue;
    std::string id = name.substr(0, name.size() - 5);
    if (!LooksLikeVolumeId(id)) continue;
    bool orphan = false;
    auto info = Load(id, nullptr, &orphan);
    if (!info) {
      BOXLITE_LOG(kWarn, "skipping volume %s: %s", id.c_str(), info.error().ToString().c_str());
      continue;
    }
    if (orphan) {
      Status s = Remove(id);
      if (s.ok()) continue;
      BOXLITE_LOG(kWarn, "volume %s: %s", id.c_str(), s.ToString().c_str());
    }
    out.push_back(std::move(*info));
  }
  std::sort(out.begin(), out.end(), [](const VolumeInfo& a, const VolumeInfo& b) {
    return a.created_unix != b.created_unix ? a.created_unix < b.created_unix : a.id < b.id;
  });
  return out;
}

Status VolumeStore::Remove(std::string_view id) {
  if (!LooksLikeVolumeId(id) || !sys::Exists(RecordPath(id))) return NotFoundStatus(id);
  // The record first: a half-removed volume is invisible, never half-listed.
  if (::unlink(RecordPath(id).c_str()) != 0 && errno != ENOENT) {
    return sys::ErrnoStatus(errno, "remove volume %s", std::string(id).c_str());
  }
  return sys::RemoveTree(DataPath(id)).Wrap("remove the files of volume " + std::string(id));
}

void VolumeStore::RemoveAnonymousOf(std::string_view box_id) {
  if (box_id.empty() || !sys::IsDirectory(dir_)) return;
  auto names = sys::ListDir(dir_);
  if (!names) return;
  for (const auto& name : *names) {
    if (!name.ends_with(".json")) continue;
    std::string id = name.substr(0, name.size() - 5);
    std::string owner;
    auto info = Load(id, &owner, nullptr);
    if (!info || owner != box_id) continue;
    Status s = Remove(id);
    if (!s.ok()) BOXLITE_LOG(kWarn, "box %s: %s", std::string(box_id).c_str(), s.ToString().c_str());
  }
}

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/tree_copy.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <unordered_set>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/beneath.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

class Walker {
 public:
  Walker(GuestTreeSource* source, const TreeLimits& limits, const CopyOptions& options)
      : source_(source), limits_(limits), options_(options) {}

  Status Entry(const std::string& guest_path, const protocol::FileInfo& listed, int parent,
               std::string_view name, int depth) {
    if (!sys::IsSafeName(name)) {
      return Status::ProtocolError("the box sent an unsafe file name in " +
                                   sys::PrintableName(sys::Dirname(guest_path)),
                                   sys::PrintableName(name));
    }
    BOXLITE_RETURN_IF_ERROR(Count());
    protocol::FileInfo info = listed;
    if (info.kind == "symlink" && options_.follow_symlinks) {
      auto target = source_->Follow(guest_path);
      if (!target.ok()) return target.error().Wrap("follow the symlink " + Shown(guest_path));
      info = std::move(target).value();
    }
    auto mode = static_cast<uint32_t>(info.mode);
    if (info.kind == "file") return File(guest_path, parent, name);
    if (info.kind == "symlink") {
      return sys::SymlinkBeneath(parent, name, info.target, options_.overwrite)
          .Wrap("copy " + Shown(guest_path));
    }
    if (info.kind != "dir") return Status::OK();  // Devices, fifos, sockets are skipped.
    if (depth > limits_.max_depth) {
      return Status::ResourceExhausted(base::StrFormat(
          "copy %s: deeper than %d directories", Shown(guest_path).c_str(), limits_.max_depth));
    }
    auto dir = sys::MakeDirBeneath(parent, name, options_.overwrite);
    if (!dir.ok()) return dir.error().Wrap("copy " + Shown(guest_path));
    BOXLITE_RETURN_IF_ERROR(Children(guest_path, dir->fd.get(), depth));
    return sys::FinishDir(*dir, mode).Wrap("copy " + Shown(guest_path));
  }

  Status Children(const std::string& guest_path, int dirfd, int depth) {
    std::unordered_set<std::string> seen;
    Status s = Pages(guest_path, dirfd, depth, &seen);
    held_ -= seen.size();
    return s;
  }

 private:
  static std::string Shown(const std::string& guest_path) { return sys::PrintableName(guest_path); }

  Status Count() {
    if (++entries_ > limits_.max_entries) {
      return Status::ResourceExhausted(base::StrFormat(
          "the copy has more than %llu entries",
          static_cast<unsigned long long>(limits_.max_entries)));
    }
    return Status::OK();
  }

  Status File(const std::string& guest_path, int parent, std::string_view name) {
    struct stat st;
    if (!options_.overwrite &&
        ::fstatat(parent, std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      // Said before the transfer; Commit refuses atomically if it appears meanwhile.
      return Status::AlreadyExists("copy " + Shown(guest_path) + ": " +
                                   sys::PrintableName(name) +
                                   " already exists on the host and overwrite is off; it was "
                                   "left as it was");
    }
    auto file = sys::BeneathFile::Create(parent, name);
    if (!file.ok()) return file.error().Wrap("copy " + Shown(guest_path));
    protocol::FileInfo info;
    uint64_t got = 0;
    BOXLITE_RETURN_IF_ERROR(source_->Read(guest_path, &info, [&](std::string_view chunk) {
      got += chunk.size();
      if (got > static_cast<uint64_t>(std::max<int64_t>(info.size, 0))) {
        return Status::ProtocolError("the box sent more than the size of " + Shown(guest_path));
      }
      return file->Write(chunk);
    }));
    if (info.size < 0 || got != static_cast<uint64_t>(info.size)) {
      return Status::IoError(base::StrFormat("%s: got %llu of %lld bytes",
                                             Shown(guest_path).c_str(),
                                             static_cast<unsigned long long>(got),
                                             static_cast<long long>(info.size)));
    }
    return file->Commit(static_cast<uint32_t>(info.mode), info.mtime, options_.overwrite)
        .Wrap("copy " + Shown(guest_path));
  }

  Status Pages(const std::string& guest_path, int dirfd, int depth,
               std::unordered_set<std::string>* seen) {
    int64_t offset = 0;
    while (offset >= 0) {
      BOXLITE_RETURN_IF_ERROR(Count());  // A page costs an entry: empty pages are bounded too.
      auto page = source_->List(guest_path, offset);
      if (!page.ok()) return page.error().Wrap("list " + Shown(guest_path));
      if (page->next_offset >= 0 && page->next_offset <= offset) {
        return Status::ProtocolError("the box's listing of " + Shown(guest_path) +
                                     " does not move forward");
      }
      for (const auto& child : page->entries) {
        if (!sys::IsSafeName(child.path)) {
          return Status::ProtocolError("the box sent an unsafe file name in " + Shown(guest_path),
                                       sys::PrintableName(child.path));
        }
        if (held_ >= limits_.max_held_names) {
          return Status::ResourceExhausted(base::StrFormat(
              "copy %s: more than %llu names in the directories being copied",
              Shown(guest_path).c_str(), static_cast<unsigned long long>(limits_.max_held_names)));
        }
        if (!seen->insert(child.path).second) {
          return Status::ProtocolError("the box listed a name twice in " + Shown(guest_path),
                                       sys::PrintableName(child.path));
        }
        ++held_;
        BOXLITE_RETURN_IF_ERROR(
            Entry(sys::JoinPath(guest_path, child.path), child, dirfd, child.path, depth + 1));
      }
      offset = page->next_offset;
    }
    return Status::OK();
  }

  GuestTreeSource* source_;
  TreeLimits limits_;
  CopyOptions options_;
  uint64_t entries_ = 0;
  uint64_t held_ = 0;
};

}  // namespace

Status CopyTreeOut(GuestTreeSource* source, const std::string& guest_path,
                   const protocol::FileInfo& info, int parent, std::string_view name,
                   const TreeLimits& limits, const CopyOptions& options) {
  Walker walker(source, limits, options);
  return walker.Entry(guest_path, info, parent, name, 0);
}

Status CopyChildrenOut(GuestTreeSource* source, const std::string& guest_path, int dir,
                       const TreeLimits& limits, const CopyOptions& options) {
  Walker walker(source, limits, options);
  return walker.Children(guest_path, dir, 0);
}

}  // namespace boxlite::runtime

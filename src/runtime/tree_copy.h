// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Copy-out's walk: reads a tree from the box page by page (a GuestTreeSource) and writes it
// beneath a host directory fd with src/sys/beneath.h. Everything the source says is
// untrusted: names must be single components, a name seen twice in one directory listing
// (across pages) is refused, paging must move forward, and depth, entries and the names
// held in memory are bounded (TreeLimits), so a guest can neither write outside the
// destination nor make the host allocate without limit. Modes lose setuid/setgid/sticky;
// a directory that already exists on the host keeps its mode.
// Thread-safety: one call at a time per source.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/protocol/messages.h"

namespace boxlite::runtime {

struct GuestListPage {
  std::vector<protocol::FileInfo> entries;  // path: the entry's name in the listed directory.
  int64_t next_offset = -1;                 // -1: no more pages.
};

// Where the tree comes from: the agent's list_dir/get_file (file_transfer.cc) or a test.
class GuestTreeSource {
 public:
  virtual ~GuestTreeSource() = default;
  virtual Result<GuestListPage> List(const std::string& guest_path, int64_t offset) = 0;
  // Streams the file's content to `write`, chunk by chunk; `info` gets the guest's facts
  // about it (size, mode, mtime) before the first chunk.
  virtual Status Read(const std::string& guest_path, protocol::FileInfo* info,
                      const std::function<Status(std::string_view)>& write) = 0;
  // What the symlink at `guest_path` points to, resolved inside the box (kind "file",
  // "dir" or "other"); used with CopyOptions::follow_symlinks.
  virtual Result<protocol::FileInfo> Follow(const std::string& guest_path) {
    return Status::NotSupported("following symlinks in the box", guest_path);
  }
};

// Memory stays bounded: at most max_depth list pages (one frame each, docs/protocol.md) are
// held at once, plus max_held_names names.
struct TreeLimits {
  int max_depth = 128;                // Directories below the top one.
  uint64_t max_entries = 4'000'000;   // Entries and list pages in one copy.
  uint64_t max_held_names = 262'144;  // Names remembered at once for the duplicate check.
};

// Copies the guest entry `info` (at `guest_path`) into the host directory `parent` as
// `name`. Names already on the host: a file or symlink is replaced atomically (a symlink
// itself, never its target); a directory is merged into; a directory where a file comes,
// or a non-directory where a directory comes, is an error (a symlink is replaced).
// Devices, fifos and sockets are skipped. On failure, entries finished so far stay and no
// temporary file is left.
// `options`: with overwrite off, an existing file or symlink (where a file, a symlink or a
// directory comes) is an AlreadyExists error and stays untouched; directories are still
// merged into. With follow_symlinks, a symlink in the box is asked to the box
// (GuestTreeSource::Follow) and what it points to is copied in its place, by the same
// rules (a loop ends at max_depth or max_entries). `recursive` and `include_parent` are
// the caller's (file_transfer.cc).
Status CopyTreeOut(GuestTreeSource* source, const std::string& guest_path,
                   const protocol::FileInfo& info, int parent, std::string_view name,
                   const TreeLimits& limits = TreeLimits(),
                   const CopyOptions& options = CopyOptions());

// Copies the entries of the box's directory `guest_path` into the host directory `dir`
// (CopyOptions::include_parent off), by the rules of CopyTreeOut.
Status CopyChildrenOut(GuestTreeSource* source, const std::string& guest_path, int dir,
                       const TreeLimits& limits = TreeLimits(),
                       const CopyOptions& options = CopyOptions());

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Copies files and directory trees between the host and a running box over the agent
// channel (put_file / get_file / stat / list_dir, docs/protocol.md). Regular files stream
// under the same credit flow control as exec output; symlinks are kept as links. Copied in,
// modes are kept (incl. setuid/setgid/sticky) and files belong to root in the guest.
// Copied out, everything the box sends is untrusted (src/runtime/tree_copy.h): it is written
// beneath the destination's parent directory fd, never through a symlink, modes masked to
// 0777, files belong to the calling user. A file appears atomically either way (a complete
// temporary file is renamed into place).
// Thread-safety: the functions may run concurrently on one channel.
#pragma once

#include <memory>
#include <string>

#include "boxlite/options.h"
#include "boxlite/status.h"
#include "src/runtime/channel.h"

namespace boxlite::runtime {

// Copies `host_path` (file, symlink or directory tree) to `guest_path`. When guest_path
// is an existing directory, the source goes inside it (like cp), or, for a directory with
// options.include_parent off, its contents do. options.follow_symlinks follows the host's
// symlinks (a loop is an error); options.overwrite off makes the agent refuse to replace
// an existing file or symlink (put_file `no_replace`, docs/protocol.md).
Status CopyToGuest(AgentChannel* channel, const std::string& host_path,
                   const std::string& guest_path, const CopyOptions& options = CopyOptions());

// Copies `guest_path` to `host_path`; an existing host directory receives it inside (as
// host_path/basename). The caller's path up to that last name is followed as given; the
// last name and everything below it belong to the box: an existing file or symlink there
// is replaced (a symlink itself, never its target), an existing directory is merged into
// (keeping its own mode), a file/directory mismatch is an error. `options` as in
// CopyTreeOut (tree_copy.h); with include_parent off, a directory's contents go straight
// into an existing host directory.
Status CopyFromGuest(AgentChannel* channel, const std::string& guest_path,
                     const std::string& host_path, const CopyOptions& options = CopyOptions());

}  // namespace boxlite::runtime

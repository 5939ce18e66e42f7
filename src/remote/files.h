// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The tar archives of a remote box's file routes (PUT/GET /boxes/{id}/files): a host
// path packed for copy-in, and a downloaded archive unpacked for copy-out. What comes
// from the server is untrusted: no absolute paths, no "..", nothing written through a
// symlink, only files, directories and symlinks, modes masked to 0777.
#pragma once

#include <string>
#include <utility>

#include "boxlite/options.h"
#include "boxlite/status.h"

namespace boxlite::remote {

// Writes a tar of `host_path` to `tar_path`: a file as the one entry `top`; a
// directory's contents (everything below it when options.recursive) at the archive's
// root (`top` unused). The server unpacks it into the destination directory.
Status PackForCopyIn(const std::string& host_path, const std::string& tar_path,
                     const CopyOptions& options, const std::string& top);

// Where copy-in puts `host_path` for the guest path `guest_path`: {the directory the
// server unpacks into, the file's entry name}. A directory goes into guest_path itself;
// a file becomes guest_path (or guest_path/<its name> when guest_path ends with '/').
std::pair<std::string, std::string> CopyInTarget(const std::string& host_path,
                                                 const std::string& guest_path);

// Unpacks `tar_path` and puts its one top-level entry at `host_path` as `docker cp`
// does: into an existing directory as <dir>/<name> (include_parent), else at the path.
Status UnpackForCopyOut(const std::string& tar_path, const std::string& host_path,
                        const CopyOptions& options);

// A new private directory in $TMPDIR (or /tmp) for archives on their way; its path.
Result<std::string> MakeTempDir();

}  // namespace boxlite::remote

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The tar archives of a remote box's file routes (PUT/GET /boxes/{id}/files): a host
// path packed for copy-in, and a downloaded archive unpacked for copy-out. What comes
// from the server is untrusted: no absolute paths, no "..", nothing written through a
// symlink, only files, directories and symlinks, modes masked to 0777.
#pragma once

#include <string>

#include "boxlite/options.h"
#include "boxlite/status.h"

namespace boxlite::remote {

// Writes a tar of `host_path` to `tar_path` whose one top-level entry is the path's
// base name (a directory with everything below it when options.recursive).
Status PackForCopyIn(const std::string& host_path, const std::string& tar_path,
                     const CopyOptions& options);

// Unpacks `tar_path` and puts its one top-level entry at `host_path` as `docker cp`
// does: into an existing directory as <dir>/<name> (include_parent), else at the path.
Status UnpackForCopyOut(const std::string& tar_path, const std::string& host_path,
                        const CopyOptions& options);

// A new private directory in $TMPDIR (or /tmp) for archives on their way; its path.
Result<std::string> MakeTempDir();

}  // namespace boxlite::remote

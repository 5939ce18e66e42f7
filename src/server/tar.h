// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Tar archives of the files routes (PUT/GET /v1/boxes/{id}/files), with libarchive. An
// uploaded tar is hostile: ExtractTar writes only beneath `dest_dir`, refuses absolute
// names, `..`, names or link targets that leave the tree, entries that would go through a
// symlink, and kinds other than files, directories and links; modes are masked to 0777 and
// owners are not restored. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

#include "boxlite/status.h"

namespace boxlite::server {

// Extracts the plain (uncompressed) tar at `tar_path` beneath the existing, empty directory
// `dest_dir` (a real path without symlinks). At most `max_bytes` of file data in total.
// InvalidArgument naming the first refused entry; what was extracted before it stays in
// dest_dir (the caller discards the directory).
Status ExtractTar(const std::string& tar_path, const std::string& dest_dir, uint64_t max_bytes);

// Writes a tar of everything beneath `src_dir` (entry names relative to it; symlinks as
// links) to `tar_path`.
Status CreateTar(const std::string& src_dir, const std::string& tar_path);

}  // namespace boxlite::server

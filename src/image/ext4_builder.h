// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Ext4Builder writes an ext4 file system image straight from OCI layer tarballs with
// libext2fs: no layer path ever becomes a host path, so it runs unprivileged and a hostile
// layer cannot touch the host. Layers are applied in order with OCI semantics: whiteouts
// (".wh.<name>") and opaque directories (".wh..wh..opq") remove only what lower layers
// brought; owners, modes (setuid/setgid/sticky), xattrs (file capabilities), hardlinks,
// symlinks, device nodes, fifos, sparse files and mtimes are kept. Paths are resolved
// inside the image (".." and symlinks never leave its root).
//
// The image is built at a caller-chosen path (a temporary file the caller renames into
// place once everything verified). On any error the caller deletes that file.
//
// Thread-safety: one Ext4Builder is used by one thread; distinct builders are independent.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite::image {

struct LayerApplyResult {
  std::string diff_id;              // "sha256:<hex>" of the uncompressed tar stream.
  uint64_t uncompressed_bytes = 0;  // Length of the uncompressed tar stream.
  uint64_t entries = 0;             // Tar entries processed.
};

struct Ext4BuildOptions {
  uint64_t size_bytes = 0;   // File system size; must be a multiple of 4096.
  uint64_t inode_count = 0;  // 0: derived from size_bytes.
  std::string label = "boxlite-rootfs";
};

class Ext4Builder {
 public:
  // Creates (truncates) `path` as a sparse file of options.size_bytes and formats it.
  static Result<std::unique_ptr<Ext4Builder>> Create(const std::string& path,
                                                     const Ext4BuildOptions& options);
  virtual ~Ext4Builder() = default;

  // Applies one layer read from `fd` until EOF. The compression (gzip, zstd or none) is
  // detected from the stream. Errors: Corruption for a damaged or hostile archive,
  // ResourceExhausted when the file system is full (the caller may retry larger).
  virtual Result<LayerApplyResult> ApplyLayer(int fd) = 0;

  // Flushes and closes the image. The builder is unusable afterwards.
  virtual Status Finish() = 0;

  // Bytes of the file system in use so far (blocks in use * block size).
  virtual uint64_t UsedBytes() const = 0;
};

}  // namespace boxlite::image

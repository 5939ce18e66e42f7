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
// Path semantics, for hostile layers:
// - Entry names are cleaned lexically; a ".." that would climb above the root, a name
//   component over 255 bytes or a hardlink target outside the root is Corruption.
//   Absolute names are taken relative to the image root.
// - A symlink met in the middle of a path is followed inside the image, like securejoin:
//   absolute targets restart at the image root, ".." stops at the root, more than 40
//   links is Corruption. The last component is never followed: the entry replaces it.
// - Missing parents are created (0755, root-owned); a parent that is a regular file is
//   Corruption. Later duplicates of a name win. Sockets are skipped.
// - Whiteouts are applied when the layer's tar ends, so their position in the tar does
//   not matter; they never remove what their own layer added, nor lost+found.
// - atime and ctime come from pax headers when present, else from mtime.
// Errors name the entry: `entry 'usr/bin/x': hardlink target 'y' does not exist`.
//
// The image is built at a caller-chosen path (a temporary file the caller renames into
// place once everything verified). On any error the caller deletes that file. After a
// failed ApplyLayer() the builder only accepts destruction.
//
// Thread-safety: one Ext4Builder is used by one thread; distinct builders are independent.
// ApplyLayer() runs a decompression thread of its own for the duration of the call.
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
  uint64_t size_bytes = 0;   // File system size; must be a multiple of 4096, >= 8 MiB.
  uint64_t inode_count = 0;  // 0: one inode per 8 KiB of size_bytes.
  std::string label = "boxlite-rootfs";
  // Most uncompressed bytes one layer may stream before ApplyLayer() gives up with
  // ResourceExhausted (decompression bombs); 0: 4 * size_bytes + 1 GiB.
  uint64_t max_layer_stream_bytes = 0;
  // Finish() fsyncs the image, so that a crash after the caller renames it into place
  // cannot leave a torn image behind.
  bool sync_on_finish = true;
};

class Ext4Builder {
 public:
  // Creates (truncates) `path` as a sparse file of options.size_bytes and formats it.
  static Result<std::unique_ptr<Ext4Builder>> Create(const std::string& path,
                                                     const Ext4BuildOptions& options);
  virtual ~Ext4Builder() = default;

  // Applies one layer read from `fd` (not owned; a file, pipe or socket) until EOF. The
  // compression (gzip, zstd or none) is detected from the stream; the diff_id is
  // computed in the same pass. Errors: Corruption for a damaged or hostile archive,
  // ResourceExhausted when the file system (inodes, blocks) or the stream budget runs
  // out (the caller may retry with a larger image), IoError when reading `fd` fails.
  virtual Result<LayerApplyResult> ApplyLayer(int fd) = 0;

  // Writes the directories, flushes and closes the image (fsync unless
  // options.sync_on_finish is false). The builder is unusable afterwards. May fail with
  // ResourceExhausted like ApplyLayer().
  virtual Status Finish() = 0;

  // Bytes of the file system in use so far (blocks in use * block size), counting the
  // blocks the directories will take in Finish(). After Finish(): the final figure.
  virtual uint64_t UsedBytes() const = 0;
};

}  // namespace boxlite::image

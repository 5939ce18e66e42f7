// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The .boxlite archive of an exported box (docs/snapshots.md, "Export format"): a tar,
// zstd-compressed, holding exactly two regular files in this order:
//   manifest.json  what the box is (format version, name, image, options) and the
//                  disk's sha256 checksum and sizes
//   disk.qcow2     the box's whole disk as one standalone qcow2 (no backing file)
// Box::Export writes one (src/runtime/box_export.cc), Runtime::ImportBox reads one
// (src/runtime/box_import.cc). An archive to import is hostile input: the reader bounds
// the number of entries and every size, takes only the two known names as regular files,
// writes nothing by an entry's own name (the disk goes into a file the caller's directory
// names), verifies the checksum as it streams, and reads the qcow2 header itself before
// any qemu-img or QEMU sees the file.
// Thread-safety: plain values and functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "boxlite/options.h"
#include "boxlite/result.h"
#include "src/image/manifest.h"

namespace boxlite::runtime {

// The manifest's "version" this build writes and the newest it reads.
constexpr int kBoxArchiveVersion = 1;
inline constexpr char kArchiveManifestName[] = "manifest.json";
inline constexpr char kArchiveDiskName[] = "disk.qcow2";

struct BoxArchiveManifest {
  int version = kBoxArchiveVersion;
  std::string box_name;            // "" when the box had none.
  std::string image_reference;     // The image the box was created from.
  std::string image_digest;        // Its config digest when known ("" otherwise).
  image::ImageConfig image_config; // env, entrypoint, cmd, working_dir, user.
  BoxOptions box_options;          // As the box record keeps them (src/runtime/box_record.h).
  std::string disk_checksum;       // "sha256:<64 lowercase hex>" of disk.qcow2's bytes.
  uint64_t disk_bytes = 0;         // disk.qcow2's size.
  uint64_t disk_virtual_bytes = 0; // The disk's size as the guest sees it.
  std::string exported_at;         // RFC 3339, UTC.
};

std::string ManifestToJson(const BoxArchiveManifest& manifest);
// InvalidArgument saying what is wrong with the text (not JSON or not UTF-8, too large, a
// field missing or mistyped, a newer format version).
Result<BoxArchiveManifest> ParseManifest(std::string_view text);

// "sha256:<hex>" of a file's bytes, read in chunks.
Result<std::string> FileChecksum(const std::string& path);

// Writes the archive to `dest` (created with mode 0600, replaced if it exists; the caller
// writes to a temporary name and renames): the manifest, then the file at `disk_path`.
Status WriteBoxArchive(const std::string& dest, const BoxArchiveManifest& manifest,
                       const std::string& disk_path);

struct BoxArchiveLimits {
  size_t max_entries = 2;
  uint64_t max_manifest_bytes = 1 << 20;
  uint64_t max_disk_bytes = uint64_t{64} << 30;  // disk.qcow2's bytes (allocated data).
  uint64_t max_virtual_bytes = static_cast<uint64_t>(kMaxDiskSizeMib) << 20;
};

// Reads the archive at `path` into `dir` (an existing private directory the caller made
// and removes on failure): `dir`/disk.qcow2, checked against the manifest's checksum and
// size and by CheckStandaloneQcow2. Returns the manifest. Errors say what is wrong with
// the archive (InvalidArgument, or Corruption for a checksum or a damaged stream).
Result<BoxArchiveManifest> ReadBoxArchive(const std::string& path, const std::string& dir,
                                          const BoxArchiveLimits& limits);

// The facts of a qcow2 image that passed CheckStandaloneQcow2.
struct Qcow2Facts {
  uint32_t version = 0;
  uint64_t virtual_bytes = 0;
};

// Reads the qcow2 header of the open file `fd` with bounded reads and accepts only what
// a box's standalone disk may be: the qcow2 magic, version 2 or 3, no backing file, no
// external data file, no encryption, no internal snapshots, no incompatible feature this
// build does not know, not marked dirty or corrupt, a virtual size up to
// `max_virtual_bytes`. InvalidArgument saying which rule failed.
Result<Qcow2Facts> CheckStandaloneQcow2(int fd, uint64_t max_virtual_bytes);

}  // namespace boxlite::runtime

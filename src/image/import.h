// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Offline import: reads images from
//   - a `docker save` tarball (manifest.json + config + layer tars; the tarball itself may
//     be gzip/zstd/xz compressed), for which an OCI manifest is synthesised;
//   - an OCI image layout directory (oci-layout, index.json, blobs/);
//   - an OCI image layout in a tarball (docker >= 25 `docker save` writes both forms; the
//     OCI index wins because its manifests keep their registry digests).
// Every blob is verified against its digest and size (and uncompressed docker-save layers
// against the config's diff_ids) before the store sees it. Paths named inside an archive
// are only map keys: nothing from an archive becomes a host path.
//
// Thread-safety: ReadImageArchive may run concurrently with itself on distinct targets;
// it keeps no state between calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/image/manifest.h"

namespace boxlite::image {

// Where imported blobs go (the Store implements it).
class ImportTarget {
 public:
  virtual ~ImportTarget() = default;
  // A directory on the store's file system for temporary files.
  virtual std::string TempDir() const = 0;
  virtual bool HasBlob(const std::string& digest, uint64_t size) const = 0;
  // Makes a verified temporary file blob `digest`; the file is consumed.
  virtual Status PublishTemp(const std::string& tmp_path, const std::string& digest) = 0;
  // Stores bytes whose digest the caller computed.
  virtual Status WriteBlob(std::string_view data, const std::string& digest) = 0;
};

struct ImportedImage {
  std::vector<std::string> references;  // Normalized references to record.
  std::string manifest_digest;          // Stored in the target.
};

// Imports every image of the archive or layout at `path` for `platform` (index entries of
// other platforms are skipped). `tag`, when not empty, names the one image instead of the
// archive's own names. Errors: InvalidArgument (unknown format, bad tag, several images
// with a tag), Corruption (digest/size/diff_id mismatch, malformed documents), NotFound
// (missing file, no image for the platform).
Result<std::vector<ImportedImage>> ReadImageArchive(const std::string& path,
                                                    std::string_view tag,
                                                    const Platform& platform,
                                                    ImportTarget* target);

}  // namespace boxlite::image

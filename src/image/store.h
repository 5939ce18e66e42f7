// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Store is the local image store: a content-addressed blob store, an index of references,
// ext4 base images built from the layers, and the operations the runtime and the CLI
// need (pull, get, list, remove, garbage-collect, offline import). On-disk layout under
// `images_dir`:
//
//   index.json                 {"version":1,"images":{"<normalized ref>":{"manifest":..}}}
//   blobs/sha256/<hex>         manifests, configs and layers, verified before publishing
//   rootfs/<chainid-hex>.ext4  base image of a layer chain with kRootfsHeadroom of free
//                              space; .json beside it holds sizes
//   rootfs/<chainid-hex>.compact.ext4  the same without the headroom, built on demand
//   locks/gc.lock              shared by pulls/imports/builds, exclusive for GC
//   locks/index.lock           exclusive while index.json is rewritten
//   locks/<hex>.lock           one download of a blob at a time (across processes)
//   locks/rootfs-<hex>.lock    one build of a rootfs at a time
//   tmp/                       downloads and builds in progress (same file system, so
//                              publishing is an atomic rename after fsync)
//
// Several processes may share one store: blob downloads and rootfs builds happen once,
// the index is rewritten atomically under its lock, and a failed pull leaves published
// blobs verified and the index unchanged (temporary files are removed).
//
// Thread-safety: a Store may be used from several threads at once; all shared state is
// on disk behind flock(2) locks, which exclude threads of one process as well.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/image/ext4_builder.h"
#include "src/image/manifest.h"
#include "src/image/reference.h"
#include "src/image/registry_client.h"

namespace boxlite::image {

struct LocalImage {
  std::string reference;  // Normalized: "docker.io/library/alpine:latest".
  std::string manifest_digest;
  std::string config_digest;
  ImageConfig config;
  std::vector<std::string> layer_digests;  // Compressed blobs, in order.
  std::vector<uint64_t> layer_sizes;       // Compressed sizes, parallel to layer_digests.
  std::vector<std::string> diff_ids;       // Uncompressed digests from the config.
  uint64_t size_bytes = 0;                 // Sum of the compressed layer sizes.
  int64_t created_unix = 0;                // From the config; 0 when unknown.
  int64_t cached_unix = 0;  // When the reference was last pulled or imported here.
};

// Room built into an image's default base file system: 1 GiB free for the box, plus the
// larger journal and inode tables a file system of that size brings. A box whose disk
// is the default (the base's own size) then needs no growing at boot, which costs its
// first command 15-30 ms under emulation. ext4 cannot shrink, so a box that asks for a
// smaller disk gets the compact base (RootfsFit::kCompact) and grows that.
constexpr uint64_t kRootfsHeadroom = (1ull << 30) + (64ull << 20);

enum class RootfsFit { kHeadroom, kCompact };

// What Rootfs() built or found.
struct RootfsInfo {
  std::string path;         // images_dir/rootfs/<chainid-hex>[.compact].ext4; read-only.
  std::string chain_id;     // "sha256:<hex>" of the diff_id chain.
  uint64_t size_bytes = 0;  // File system size.
  uint64_t used_bytes = 0;  // Blocks in use when built.
  // Free space built in on purpose (kRootfsHeadroom, or 0 for compact bases and for
  // bases built before headroom existed).
  uint64_t headroom_bytes = 0;
};

using Ext4BuilderFactory = std::function<Result<std::unique_ptr<Ext4Builder>>(
    const std::string& path, const Ext4BuildOptions& options)>;

struct StoreOptions {
  // Mirror URLs tried in order before docker.io for docker.io images.
  std::vector<std::string> mirrors;
  // host[:port] of registries reached over plain http.
  std::vector<std::string> insecure_registries;
  // Configured registries (validated). Those with `search` resolve unqualified
  // references: see SearchCandidates.
  std::vector<ImageRegistry> registries;
  // docker config.json for credentials; empty: none.
  std::string docker_config_path;
  std::string platform_os = "linux";
  std::string platform_arch = HostPlatform().architecture;
  std::string platform_variant = HostPlatform().variant;
  int max_parallel_downloads = 4;
  // Registry knobs (see RegistryOptions).
  std::chrono::milliseconds connect_timeout{15000};
  std::chrono::milliseconds request_timeout{120000};
  std::chrono::seconds stall_timeout{60};
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{15000};
  // Where docker.io references are fetched from after the mirrors.
  std::string docker_hub_url = "https://registry-1.docker.io";
  // Builds ext4 images; empty means Ext4Builder::Create. Tests inject fakes here.
  Ext4BuilderFactory ext4_builder_factory;
};

// Pull progress. Calls are serialised (never concurrent) but may come from download
// threads; implementations must not call back into the Store.
class PullProgress {
 public:
  virtual ~PullProgress() = default;
  // The manifest and config are known; layer downloads start next.
  virtual void OnManifest(const LocalImage& image) = 0;
  // Bytes of one layer received so far. A layer already in the store reports
  // (size, size) once.
  virtual void OnLayerProgress(const std::string& digest, uint64_t done, uint64_t total) = 0;
  // The layer is verified and in the store.
  virtual void OnLayerDone(const std::string& digest) = 0;
};

class Store {
 public:
  // Opens (creating directories as needed) the store at `images_dir`.
  static Result<std::unique_ptr<Store>> Open(const std::string& images_dir, StoreOptions opts);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Resolves `ref` at its registry (mirrors first for docker.io), picks the configured
  // platform from an index, downloads what the store lacks (layers concurrently) and
  // records the reference. `progress` may be null. Errors: InvalidArgument (bad
  // reference), NotFound ("image X not found in registry Y"), Authentication,
  // Unavailable, Corruption, NotSupported (schema 1, foreign layer types).
  Result<LocalImage> Pull(std::string_view ref, PullProgress* progress);
  // The local image for `ref`; NotFound when it was never pulled or imported. A
  // digest-only reference also matches any local image with that manifest digest.
  Result<LocalImage> Get(std::string_view ref);
  // Get, else Pull (also when the local copy is damaged).
  Result<LocalImage> Ensure(std::string_view ref, PullProgress* progress);
  // The ext4 base image of `image`: built once per chain of diff_ids (layers applied in
  // order, each verified against its diff_id) and cached. Errors: Corruption naming the
  // layer whose content does not match, NotFound when a layer blob is missing.
  // Lifetime: GC deletes the file once no reference needs it. A box that uses it as a
  // backing file should hard-link it into its own directory (same file system) and use
  // the link, so removing the image never pulls the disk from under a box.
  // `fit` picks the variant: kHeadroom (the default, built by pulls) or kCompact.
  Result<RootfsInfo> Rootfs(const LocalImage& image, RootfsFit fit = RootfsFit::kHeadroom);
  // All references, sorted. Damaged entries are skipped with a warning.
  Result<std::vector<LocalImage>> List();
  // Removes the reference (a digest-only reference removes every tag of that manifest),
  // then collects garbage unless another process is pulling (then a later GC will).
  Status Remove(std::string_view ref);
  // Deletes blobs and rootfs files no reference needs, stale temporary files and lock
  // files. Waits for running pulls, imports and builds. Returns the bytes freed.
  Result<uint64_t> GarbageCollect();
  // Imports a `docker save` tarball (optionally compressed), an OCI image layout
  // directory or an OCI layout tarball. Every blob is verified. Images are named from
  // RepoTags / io.containerd.image.name / org.opencontainers.image.ref.name; a bare
  // ref.name "v1" becomes "localhost/<file name>:v1". A non-empty `tag` names the
  // image instead (InvalidArgument when the archive holds several).
  Result<std::vector<LocalImage>> Import(const std::string& path, std::string_view tag);

  // Registry request counters since Open (tests, diagnostics).
  RegistryStats registry_stats() const;
  const std::string& dir() const { return dir_; }

 private:
  Store(std::string dir, StoreOptions opts);

  struct IndexEntry {
    std::string manifest_digest;
    int64_t updated_unix = 0;
  };
  struct Index {
    std::map<std::string, IndexEntry> images;
  };

  std::string BlobPath(std::string_view digest) const;
  std::string LockPath(std::string_view name) const;
  std::string TmpDir() const;
  Result<Index> ReadIndex() const;
  // Read-modify-write of index.json under the index lock.
  Status UpdateIndex(const std::function<Status(Index*)>& fn);
  Result<LocalImage> LoadImage(const std::string& reference, const std::string& manifest_digest);
  // Get and Pull of one fully qualified candidate (see SearchCandidates).
  Result<LocalImage> GetOne(std::string_view ref);
  Result<LocalImage> PullOne(std::string_view ref, PullProgress* progress);
  // Reads a small blob and verifies its digest.
  Result<std::string> ReadBlob(const std::string& digest, size_t max_bytes) const;
  // Publishes bytes as a blob (temp file, fsync, rename).
  Status WriteBlob(std::string_view data, const std::string& digest);
  // Publishes a verified temp file as a blob; the temp file is consumed.
  Status PublishTemp(const std::string& tmp_path, const std::string& digest);
  bool HasBlob(const std::string& digest, uint64_t size) const;
  // Downloads one blob into the store unless present; `cached` tells which happened.
  Status FetchBlob(const Endpoint& endpoint, const std::string& repository,
                   const std::string& digest, uint64_t size,
                   const std::function<void(uint64_t, uint64_t)>& progress,
                   const std::atomic<bool>* cancel, bool* cached);
  Result<LocalImage> PullFrom(const Endpoint& endpoint, const Reference& ref,
                              PullProgress* progress);
  Result<uint64_t> CollectLocked();
  Result<RootfsInfo> BuildRootfs(const LocalImage& image, const std::string& chain_id,
                                 RootfsFit fit);

  std::string dir_;
  StoreOptions opts_;
  Platform platform_;
  std::unique_ptr<RegistryClient> client_;
};

// The references an image name stands for, in the order they are tried. A qualified
// name (its first component is a registry: it holds '.' or ':' or is "localhost") stands
// for itself. An unqualified one ("alpine", "org/app:1") is tried at every registry with
// `search` in configuration order, written as given ("HOST/alpine", "HOST/org/app:1": no
// "library/" is added there), then at docker.io as docker spells it
// ("docker.io/library/alpine"). InvalidArgument when `ref` does not parse.
Result<std::vector<std::string>> SearchCandidates(std::string_view ref,
                                                  const std::vector<ImageRegistry>& registries);

// chain_id(L0) = diff_id(L0); chain_id(L0..n) = sha256(chain_id(L0..n-1) + " " + diff_id(Ln)).
// An image without layers has the chain id of the empty string.
std::string ChainId(const std::vector<std::string>& diff_ids);

}  // namespace boxlite::image

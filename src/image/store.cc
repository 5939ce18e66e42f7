// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Design:
// - Publishing: every blob is written to tmp/, hashed while streaming, fsynced, renamed
//   to blobs/sha256/<hex> and the directory fsynced. A blob path therefore always holds
//   complete, verified content; renaming over an existing identical blob is harmless.
// - Locks, always taken in this order: locks/gc.lock (shared by pull, import and rootfs
//   builds for their whole run; exclusive for GC, so GC never deletes a blob a pull has
//   published but not yet recorded), then a per-blob or per-rootfs lock (one download or
//   build at a time across processes), then locks/index.lock (index.json rewrite).
// - The index is written last, so a failed pull changes nothing a reader can see.
// - Rootfs files are keyed by chain id, so images sharing all layers share one base.
//
// Size: one file on purpose: the lock order and the publish-then-index rule above hold for
// every operation here (pull, import, rootfs build, GC), and reading them together is how
// that order is kept.

#include "src/image/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/image/import.h"
#include "src/image/layer_size.h"
#include "src/sys/errno_status.h"
#include "src/sys/file_lock.h"
#include "src/sys/fs.h"

namespace boxlite::image {
namespace {

using nlohmann::json;

constexpr int kIndexVersion = 1;
constexpr size_t kMaxSmallBlob = 16 << 20;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kBlockGroupBytes = 128 * kMiB;  // 32768 blocks of 4 KiB (Ext4Builder).
constexpr uint64_t kRootfsSlack = 64 * kMiB;
constexpr int kRootfsBuildAttempts = 6;

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// "<chainid-hex>" or "<chainid-hex>.compact": GC keys rootfs files by what precedes the
// first dot, so both variants live and die with their chain.
std::string RootfsStem(const std::string& chain_id, RootfsFit fit) {
  std::string stem(DigestHex(chain_id));
  if (fit == RootfsFit::kCompact) stem += ".compact";
  return stem;
}

Status FsyncPath(const std::string& path, int flags) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(path, flags));
  if (::fsync(fd.get()) != 0) return sys::ErrnoStatus(errno, "fsync %s", path.c_str());
  return Status::OK();
}

Status FsyncDir(const std::string& dir) { return FsyncPath(dir, O_RDONLY | O_DIRECTORY); }

// Bytes that unlinking `path` gives back: none while another hard link remains.
uint64_t AllocatedBytes(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || st.st_nlink > 1) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

Result<std::pair<std::string, base::UniqueFd>> MakeTemp(const std::string& dir,
                                                        const std::string& prefix) {
  std::string tmpl = sys::JoinPath(dir, prefix + "XXXXXX");
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return sys::ErrnoStatus(errno, "create temp file in %s", dir.c_str());
  return std::make_pair(tmpl, base::UniqueFd(fd));
}

// Forwards progress calls one at a time.
class SerializedProgress {
 public:
  explicit SerializedProgress(PullProgress* p) : p_(p) {}
  void Manifest(const LocalImage& image) {
    if (p_ == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    p_->OnManifest(image);
  }
  void Progress(const std::string& digest, uint64_t done, uint64_t total) {
    if (p_ == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    p_->OnLayerProgress(digest, done, total);
  }
  void Done(const std::string& digest) {
    if (p_ == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    p_->OnLayerDone(digest);
  }

 private:
  PullProgress* p_;
  std::mutex mu_;
};

LocalImage MakeLocalImage(const std::string& reference, const std::string& manifest_digest,
                          const ParsedManifest& manifest, ParsedImageConfig config) {
  LocalImage image;
  image.reference = reference;
  image.manifest_digest = manifest_digest;
  image.config_digest = manifest.config.digest;
  image.config = std::move(config.config);
  image.diff_ids = std::move(config.diff_ids);
  image.created_unix = config.created_unix;
  for (const auto& layer : manifest.layers) {
    image.layer_digests.push_back(layer.digest);
    image.layer_sizes.push_back(layer.size);
    image.size_bytes += layer.size;
  }
  return image;
}

}  // namespace

Result<std::vector<std::string>> SearchCandidates(std::string_view ref,
                                                  const std::vector<ImageRegistry>& registries) {
  BOXLITE_ASSIGN_OR_RETURN(Reference parsed, ParseReference(ref));
  std::vector<std::string> out;
  std::string_view first = ref.substr(0, ref.find('/'));
  bool qualified = ref.find('/') != std::string_view::npos &&
                   (first.find_first_of(".:") != std::string_view::npos ||
                    first == "localhost" ||
                    std::any_of(first.begin(), first.end(),
                                [](char c) { return c >= 'A' && c <= 'Z'; }));
  if (!qualified) {
    for (const auto& r : registries) {
      if (!r.search) continue;
      std::string candidate = r.host + "/" + std::string(ref);
      auto normalized = ParseReference(candidate);
      if (normalized) out.push_back(normalized->String());
    }
  }
  out.push_back(parsed.String());
  return out;
}

std::string ChainId(const std::vector<std::string>& diff_ids) {
  if (diff_ids.empty()) return "sha256:" + base::Sha256Hex("");
  std::string chain = diff_ids[0];
  for (size_t i = 1; i < diff_ids.size(); ++i) {
    chain = "sha256:" + base::Sha256Hex(chain + " " + diff_ids[i]);
  }
  return chain;
}

// The store as the import code sees it.
class StoreImportTarget : public ImportTarget {
 public:
  StoreImportTarget(std::string tmp, std::function<bool(const std::string&, uint64_t)> has,
                    std::function<Status(const std::string&, const std::string&)> publish,
                    std::function<Status(std::string_view, const std::string&)> write)
      : tmp_(std::move(tmp)), has_(std::move(has)), publish_(std::move(publish)),
        write_(std::move(write)) {}
  std::string TempDir() const override { return tmp_; }
  bool HasBlob(const std::string& digest, uint64_t size) const override {
    return has_(digest, size);
  }
  Status PublishTemp(const std::string& tmp_path, const std::string& digest) override {
    return publish_(tmp_path, digest);
  }
  Status WriteBlob(std::string_view data, const std::string& digest) override {
    return write_(data, digest);
  }

 private:
  std::string tmp_;
  std::function<bool(const std::string&, uint64_t)> has_;
  std::function<Status(const std::string&, const std::string&)> publish_;
  std::function<Status(std::string_view, const std::string&)> write_;
};

Store::Store(std::string dir, StoreOptions opts) : dir_(std::move(dir)), opts_(std::move(opts)) {
  platform_ = Platform{opts_.platform_os, opts_.platform_arch, opts_.platform_variant};
  RegistryOptions ro;
  ro.insecure_registries = opts_.insecure_registries;
  ro.registries = opts_.registries;
  ro.docker_config_path = opts_.docker_config_path;
  ro.docker_hub_url = opts_.docker_hub_url;
  ro.connect_timeout = opts_.connect_timeout;
  ro.request_timeout = opts_.request_timeout;
  ro.stall_timeout = opts_.stall_timeout;
  ro.max_attempts = opts_.max_attempts;
  ro.initial_backoff = opts_.initial_backoff;
  ro.max_backoff = opts_.max_backoff;
  client_ = std::make_unique<RegistryClient>(std::move(ro));
}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& images_dir, StoreOptions opts) {
  if (images_dir.empty()) return Status::InvalidArgument("image store directory is empty");
  for (const char* sub : {"blobs/sha256", "rootfs", "locks", "tmp"}) {
    BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(sys::JoinPath(images_dir, sub), 0755)
                                .Wrap("open image store"));
  }
  if (opts.max_parallel_downloads < 1) opts.max_parallel_downloads = 1;
  auto store = std::unique_ptr<Store>(new Store(images_dir, std::move(opts)));
  for (const auto& mirror : store->opts_.mirrors) {
    auto endpoint = store->client_->MirrorEndpoint(mirror);
    if (!endpoint) return endpoint.error().Wrap("open image store");
  }
  return store;
}

RegistryStats Store::registry_stats() const { return client_->stats(); }

std::string Store::BlobPath(std::string_view digest) const {
  return sys::JoinPath(dir_, "blobs/sha256/" + std::string(DigestHex(digest)));
}

std::string Store::LockPath(std::string_view name) const {
  return sys::JoinPath(dir_, "locks/" + std::string(name) + ".lock");
}

std::string Store::TmpDir() const { return sys::JoinPath(dir_, "tmp"); }

Result<Store::Index> Store::ReadIndex() const {
  Index index;
  std::string path = sys::JoinPath(dir_, "index.json");
  if (!sys::Exists(path)) return index;
  BOXLITE_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(path));
  json doc = json::parse(text, nullptr, false);
  auto damaged = [&](const std::string& why) {
    return Status::Corruption("image index " + path + " is damaged", why);
  };
  if (!doc.is_object()) return damaged("not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer()) return damaged("no version");
  if (version->get<int64_t>() > kIndexVersion) {
    return Status::NotSupported("image index " + path + " was written by a newer BoxLite");
  }
  auto images = doc.find("images");
  if (images == doc.end() || !images->is_object()) return damaged("no images object");
  for (auto it = images->begin(); it != images->end(); ++it) {
    const json& e = it.value();
    if (!e.is_object() || !e.contains("manifest") || !e["manifest"].is_string()) {
      return damaged("entry \"" + it.key() + "\" has no manifest");
    }
    IndexEntry entry;
    entry.manifest_digest = e["manifest"].get<std::string>();
    if (!ValidateDigest(entry.manifest_digest).ok()) {
      return damaged("entry \"" + it.key() + "\" has a bad digest");
    }
    auto updated = e.find("updated");
    if (updated != e.end() && updated->is_number_integer()) {
      entry.updated_unix = updated->get<int64_t>();
    }
    index.images[it.key()] = std::move(entry);
  }
  return index;
}

Status Store::UpdateIndex(const std::function<Status(Index*)>& fn) {
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock lock, sys::FileLock::Acquire(LockPath("index")));
  BOXLITE_ASSIGN_OR_RETURN(Index index, ReadIndex());
  BOXLITE_RETURN_IF_ERROR(fn(&index));
  json images = json::object();
  for (const auto& [ref, entry] : index.images) {
    images[ref] = {{"manifest", entry.manifest_digest}, {"updated", entry.updated_unix}};
  }
  json doc = {{"version", kIndexVersion}, {"images", images}};
  BOXLITE_RETURN_IF_ERROR(
      sys::WriteFileAtomic(sys::JoinPath(dir_, "index.json"), doc.dump(2) + "\n", 0644, true));
  return FsyncDir(dir_);
}

bool Store::HasBlob(const std::string& digest, uint64_t size) const {
  struct stat st;
  return ::stat(BlobPath(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         static_cast<uint64_t>(st.st_size) == size;
}

Result<std::string> Store::ReadBlob(const std::string& digest, size_t max_bytes) const {
  std::string path = BlobPath(digest);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return sys::ErrnoStatus(errno, "blob %s", digest.c_str());
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::Corruption("blob " + digest, "too large for a manifest or config");
  }
  BOXLITE_ASSIGN_OR_RETURN(std::string data, sys::ReadFile(path));
  std::string got = "sha256:" + base::Sha256Hex(data);
  if (got != digest) {
    return Status::Corruption("blob " + digest + " in the image store is damaged",
                              "its content hashes to " + got + "; pull the image again");
  }
  return data;
}

Status Store::PublishTemp(const std::string& tmp_path, const std::string& digest) {
  BOXLITE_RETURN_IF_ERROR(ValidateDigest(digest));
  BOXLITE_RETURN_IF_ERROR(FsyncPath(tmp_path, O_RDONLY));
  std::string path = BlobPath(digest);
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
    return sys::ErrnoStatus(errno, "publish blob %s", digest.c_str());
  }
  return FsyncDir(sys::Dirname(path));
}

Status Store::WriteBlob(std::string_view data, const std::string& digest) {
  if (HasBlob(digest, data.size())) return Status::OK();
  BOXLITE_ASSIGN_OR_RETURN(auto tmp, MakeTemp(TmpDir(), "blob-"));
  base::ScopeExit cleanup([&] { ::unlink(tmp.first.c_str()); });
  BOXLITE_RETURN_IF_ERROR(sys::WriteAll(tmp.second.get(), data));
  tmp.second.reset();
  BOXLITE_RETURN_IF_ERROR(PublishTemp(tmp.first, digest));
  cleanup.Cancel();
  return Status::OK();
}

Status Store::FetchBlob(const Endpoint& endpoint, const std::string& repository,
                        const std::string& digest, uint64_t size,
                        const std::function<void(uint64_t, uint64_t)>& progress,
                        const std::atomic<bool>* cancel, bool* cached) {
  *cached = true;
  if (HasBlob(digest, size)) return Status::OK();
  // Another process may be downloading the same blob: wait for it instead of racing.
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock lock,
                           sys::FileLock::Acquire(LockPath(std::string(DigestHex(digest)))));
  if (HasBlob(digest, size)) return Status::OK();
  *cached = false;
  BOXLITE_ASSIGN_OR_RETURN(auto tmp, MakeTemp(TmpDir(), "blob-"));
  base::ScopeExit cleanup([&] { ::unlink(tmp.first.c_str()); });
  BOXLITE_RETURN_IF_ERROR(
      client_->GetBlob(endpoint, repository, digest, size, tmp.second.get(), progress, cancel));
  if (::fsync(tmp.second.get()) != 0) return sys::ErrnoStatus(errno, "fsync %s", tmp.first.c_str());
  tmp.second.reset();
  std::string path = BlobPath(digest);
  if (::rename(tmp.first.c_str(), path.c_str()) != 0) {
    return sys::ErrnoStatus(errno, "publish blob %s", digest.c_str());
  }
  cleanup.Cancel();
  return FsyncDir(sys::Dirname(path));
}

Result<LocalImage> Store::LoadImage(const std::string& reference,
                                    const std::string& manifest_digest) {
  auto incomplete = [&](const std::string& why) {
    return Status::Corruption("local image " + reference + " is incomplete",
                              why + "; pull or import it again");
  };
  auto body = ReadBlob(manifest_digest, kMaxSmallBlob);
  if (!body) {
    if (body.error().IsNotFound()) return incomplete("manifest " + manifest_digest + " is missing");
    return body.error();
  }
  auto manifest = ParseManifest(*body, "");
  if (!manifest) return manifest.error().Wrap("local image " + reference);
  if (manifest->kind != ManifestKind::kImage) return incomplete("its manifest is an index");
  auto config_body = ReadBlob(manifest->config.digest, kMaxSmallBlob);
  if (!config_body) {
    if (config_body.error().IsNotFound()) {
      return incomplete("config " + manifest->config.digest + " is missing");
    }
    return config_body.error();
  }
  auto config = ParseImageConfig(*config_body);
  if (!config) return config.error().Wrap("local image " + reference);
  if (config->diff_ids.size() != manifest->layers.size()) {
    return Status::Corruption("local image " + reference,
                              "its config and manifest disagree on the number of layers");
  }
  for (const auto& layer : manifest->layers) {
    if (!HasBlob(layer.digest, layer.size)) return incomplete("layer " + layer.digest + " is missing");
  }
  return MakeLocalImage(reference, manifest_digest, *manifest, std::move(*config));
}

Result<LocalImage> Store::Get(std::string_view ref_text) {
  BOXLITE_ASSIGN_OR_RETURN(auto candidates, SearchCandidates(ref_text, opts_.registries));
  if (candidates.size() > 1) {
    for (const auto& candidate : candidates) {
      auto found = GetOne(candidate);
      if (found || !found.error().IsNotFound()) return found;
    }
  }
  return GetOne(candidates.back());
}

Result<LocalImage> Store::GetOne(std::string_view ref_text) {
  BOXLITE_ASSIGN_OR_RETURN(Reference ref, ParseReference(ref_text));
  BOXLITE_ASSIGN_OR_RETURN(Index index, ReadIndex());
  const std::string key = ref.String();
  auto it = index.images.find(key);
  if (it != index.images.end()) {
    auto image = LoadImage(key, it->second.manifest_digest);
    if (image) image->cached_unix = it->second.updated_unix;
    return image;
  }
  if (!ref.digest.empty()) {
    // "name@sha256:<manifest>" matches a tag of that name pulled earlier.
    for (const auto& [other, entry] : index.images) {
      auto parsed = ParseReference(other);
      if (parsed && parsed->Name() == ref.Name() && entry.manifest_digest == ref.digest) {
        return LoadImage(key, entry.manifest_digest);
      }
    }
  }
  return Status::NotFound("image " + key + " not found locally", "pull it or import it first")
      .WithSubject(StatusSubject::kImage);
}

Result<LocalImage> Store::Ensure(std::string_view ref, PullProgress* progress) {
  auto local = Get(ref);
  if (local) return local;
  if (!local.error().IsNotFound() && !local.error().IsCorruption()) return local.error();
  if (local.error().IsCorruption()) {
    BOXLITE_LOG(kWarn, "%s; pulling again", local.error().message().c_str());
  }
  return Pull(ref, progress);
}

Result<LocalImage> Store::PullFrom(const Endpoint& endpoint, const Reference& ref,
                                   PullProgress* progress) {
  const std::string name = ref.String();
  auto top = client_->GetManifest(endpoint, ref.repository, ref.ManifestReference());
  if (!top) {
    if (top.error().IsNotFound()) {
      return Status::NotFound("image " + name + " not found in registry " + endpoint.display)
          .WithSubject(StatusSubject::kImage);
    }
    return top.error();
  }
  auto parsed = ParseManifest(top->body, top->media_type);
  if (!parsed) return parsed.error().Wrap("manifest of " + name);
  std::string manifest_body = std::move(top->body);
  std::string manifest_digest = top->digest;
  if (parsed->kind == ManifestKind::kIndex) {
    BOXLITE_ASSIGN_OR_RETURN(Descriptor pick, SelectPlatform(*parsed, platform_, "image " + name));
    auto sub = client_->GetManifest(endpoint, ref.repository, pick.digest);
    if (!sub) return sub.error().Wrap("manifest " + pick.digest + " of " + name);
    if (sub->body.size() != pick.size) {
      return Status::Corruption("manifest " + pick.digest + " of " + name,
                                "its size differs from the index entry");
    }
    parsed = ParseManifest(sub->body, sub->media_type);
    if (!parsed) return parsed.error().Wrap("manifest " + pick.digest + " of " + name);
    if (parsed->kind != ManifestKind::kImage) {
      return Status::Corruption("manifest " + pick.digest + " of " + name,
                                "an index inside an index");
    }
    manifest_body = std::move(sub->body);
    manifest_digest = pick.digest;
  }

  bool cached = false;
  BOXLITE_RETURN_IF_ERROR(FetchBlob(endpoint, ref.repository, parsed->config.digest,
                                    parsed->config.size, nullptr, nullptr, &cached)
                              .Wrap("config of " + name));
  BOXLITE_ASSIGN_OR_RETURN(std::string config_body,
                           ReadBlob(parsed->config.digest, kMaxSmallBlob));
  auto config = ParseImageConfig(config_body);
  if (!config) return config.error().Wrap("config of " + name);
  if (config->diff_ids.size() != parsed->layers.size()) {
    return Status::Corruption(
        "image " + name,
        base::StrFormat("its manifest has %zu layers but its config %zu diff_ids",
                        parsed->layers.size(), config->diff_ids.size()));
  }
  const ImageConfig& c = config->config;
  if (!c.architecture.empty() &&
      !PlatformMatches(platform_, Platform{c.os.empty() ? "linux" : c.os, c.architecture,
                                           c.variant})) {
    return Status::NotFound(
        "image " + name + " is for platform " +
            Platform{c.os, c.architecture, c.variant}.String(),
        "this host needs " + platform_.String());
  }
  LocalImage image = MakeLocalImage(name, manifest_digest, *parsed, std::move(*config));

  SerializedProgress sp(progress);
  sp.Manifest(image);
  std::vector<Descriptor> todo;
  std::set<std::string> seen;
  for (const auto& layer : parsed->layers) {
    if (seen.insert(layer.digest).second) todo.push_back(layer);
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> cancel{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    while (!cancel.load()) {
      size_t i = next.fetch_add(1);
      if (i >= todo.size()) return;
      const Descriptor& d = todo[i];
      bool layer_cached = false;
      auto on_bytes = [&](uint64_t done, uint64_t total) { sp.Progress(d.digest, done, total); };
      Status s = FetchBlob(endpoint, ref.repository, d.digest, d.size, on_bytes, &cancel,
                           &layer_cached);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = s.Wrap("layer " + d.digest);
        cancel.store(true);
        return;
      }
      if (layer_cached) sp.Progress(d.digest, d.size, d.size);
      sp.Done(d.digest);
    }
  };
  size_t workers = std::min(todo.size(), static_cast<size_t>(opts_.max_parallel_downloads));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (!first_error.ok()) return first_error;

  BOXLITE_RETURN_IF_ERROR(WriteBlob(manifest_body, manifest_digest));
  image.cached_unix = NowUnix();
  BOXLITE_RETURN_IF_ERROR(UpdateIndex([&](Index* index) {
    index->images[name] = IndexEntry{manifest_digest, image.cached_unix};
    return Status::OK();
  }));
  return image;
}

Result<LocalImage> Store::Pull(std::string_view ref_text, PullProgress* progress) {
  BOXLITE_ASSIGN_OR_RETURN(auto candidates, SearchCandidates(ref_text, opts_.registries));
  if (candidates.size() == 1) return PullOne(candidates[0], progress);
  // Unqualified with search registries: the first that has it wins; any error other
  // than "not there" stops the search (an unreachable registry must not silently turn
  // the name into another registry's image).
  std::vector<std::string> misses;
  for (const auto& candidate : candidates) {
    BOXLITE_LOG(kDebug, "resolving %.*s: trying %s", static_cast<int>(ref_text.size()),
                ref_text.data(), candidate.c_str());
    auto image = PullOne(candidate, progress);
    if (image || !image.error().IsNotFound()) return image;
    misses.push_back(candidate);
  }
  return Status::NotFound("image " + std::string(ref_text) + " not found",
                          "tried " + base::Join(misses, ", "));
}

Result<LocalImage> Store::PullOne(std::string_view ref_text, PullProgress* progress) {
  BOXLITE_ASSIGN_OR_RETURN(Reference ref, ParseReference(ref_text));
  std::vector<Endpoint> endpoints;
  if (ref.IsDockerHub()) {
    for (const auto& mirror : opts_.mirrors) {
      BOXLITE_ASSIGN_OR_RETURN(Endpoint e, client_->MirrorEndpoint(mirror));
      endpoints.push_back(std::move(e));
    }
  }
  endpoints.push_back(client_->EndpointFor(ref.registry));
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock gc_lock,
                           sys::FileLock::Acquire(LockPath("gc"), sys::FileLock::Mode::kShared));
  std::vector<std::string> mirror_errors;
  for (const auto& endpoint : endpoints) {
    auto image = PullFrom(endpoint, ref, progress);
    if (image) return image;
    const Status& err = image.error();
    if (endpoint.is_mirror && !err.IsCancelled()) {
      BOXLITE_LOG(kInfo, "mirror %s failed for %s: %s", endpoint.display.c_str(),
                  ref.String().c_str(), err.ToString().c_str());
      mirror_errors.push_back("mirror " + endpoint.display + ": " + err.message());
      continue;
    }
    std::string message = err.message();
    if (!mirror_errors.empty()) message += " (" + base::Join(mirror_errors, "; ") + ")";
    Status out = Status(err.code(), message, err.sys_errno()).WithSubject(err.subject());
    return err.IsNotFound() ? out : out.Wrap("pull " + ref.String());
  }
  return Status::Internal("pull " + ref.String(), "no endpoint");
}

Result<std::vector<LocalImage>> Store::List() {
  BOXLITE_ASSIGN_OR_RETURN(Index index, ReadIndex());
  std::vector<LocalImage> out;
  for (const auto& [ref, entry] : index.images) {
    auto image = LoadImage(ref, entry.manifest_digest);
    if (image) image->cached_unix = entry.updated_unix;
    if (!image) {
      BOXLITE_LOG(kWarn, "skipping %s: %s", ref.c_str(), image.error().ToString().c_str());
      continue;
    }
    out.push_back(std::move(*image));
  }
  return out;
}

Status Store::Remove(std::string_view ref_text) {
  BOXLITE_ASSIGN_OR_RETURN(auto candidates, SearchCandidates(ref_text, opts_.registries));
  if (candidates.size() > 1) {
    // An unqualified name removes what it resolves to locally (the order of Get).
    for (const auto& candidate : candidates) {
      if (GetOne(candidate).ok()) return Remove(candidate);
    }
  }
  BOXLITE_ASSIGN_OR_RETURN(Reference ref, ParseReference(ref_text));
  const std::string key = ref.String();
  BOXLITE_RETURN_IF_ERROR(UpdateIndex([&](Index* index) {
    if (index->images.erase(key) > 0) return Status::OK();
    size_t removed = 0;
    if (!ref.digest.empty()) {
      for (auto it = index->images.begin(); it != index->images.end();) {
        auto parsed = ParseReference(it->first);
        if (parsed && parsed->Name() == ref.Name() && it->second.manifest_digest == ref.digest) {
          it = index->images.erase(it);
          ++removed;
        } else {
          ++it;
        }
      }
    }
    if (removed == 0) {
      return Status::NotFound("image " + key + " not found locally").WithSubject(StatusSubject::kImage);
    }
    return Status::OK();
  }));
  auto gc_lock = sys::FileLock::TryAcquire(LockPath("gc"), sys::FileLock::Mode::kExclusive);
  if (!gc_lock) {
    BOXLITE_LOG(kInfo, "image store busy; garbage collection postponed");
    return Status::OK();
  }
  auto freed = CollectLocked();
  if (!freed) return freed.error().Wrap("garbage collection after removing " + key);
  return Status::OK();
}

Result<uint64_t> Store::GarbageCollect() {
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock gc_lock,
                           sys::FileLock::Acquire(LockPath("gc"), sys::FileLock::Mode::kExclusive));
  return CollectLocked();
}

Result<uint64_t> Store::CollectLocked() {
  BOXLITE_ASSIGN_OR_RETURN(Index index, ReadIndex());
  std::set<std::string> live_blobs;  // Hex digests.
  std::set<std::string> live_chains;
  for (const auto& [ref, entry] : index.images) {
    live_blobs.insert(std::string(DigestHex(entry.manifest_digest)));
    auto body = ReadBlob(entry.manifest_digest, kMaxSmallBlob);
    if (!body) {
      BOXLITE_LOG(kWarn, "gc: %s: %s", ref.c_str(), body.error().ToString().c_str());
      continue;
    }
    auto manifest = ParseManifest(*body, "");
    if (!manifest || manifest->kind != ManifestKind::kImage) continue;
    live_blobs.insert(std::string(DigestHex(manifest->config.digest)));
    for (const auto& layer : manifest->layers) live_blobs.insert(std::string(DigestHex(layer.digest)));
    auto config_body = ReadBlob(manifest->config.digest, kMaxSmallBlob);
    if (!config_body) continue;
    auto config = ParseImageConfig(*config_body);
    if (config) live_chains.insert(std::string(DigestHex(ChainId(config->diff_ids))));
  }

  uint64_t freed = 0;
  auto remove = [&](const std::string& path) -> Status {
    uint64_t bytes = AllocatedBytes(path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return sys::ErrnoStatus(errno, "gc: remove %s", path.c_str());
    }
    freed += bytes;
    return Status::OK();
  };
  std::string blob_dir = sys::JoinPath(dir_, "blobs/sha256");
  BOXLITE_ASSIGN_OR_RETURN(auto blobs, sys::ListDir(blob_dir));
  for (const auto& name : blobs) {
    if (live_blobs.count(name) == 0) BOXLITE_RETURN_IF_ERROR(remove(sys::JoinPath(blob_dir, name)));
  }
  std::string rootfs_dir = sys::JoinPath(dir_, "rootfs");
  BOXLITE_ASSIGN_OR_RETURN(auto rootfs, sys::ListDir(rootfs_dir));
  for (const auto& name : rootfs) {
    std::string stem = name.substr(0, name.find('.'));
    if (live_chains.count(stem) == 0) BOXLITE_RETURN_IF_ERROR(remove(sys::JoinPath(rootfs_dir, name)));
  }
  // Nobody else runs while we hold gc.lock exclusively: leftovers of crashed pulls and
  // builds go, and so do lock files of things that no longer exist.
  BOXLITE_ASSIGN_OR_RETURN(auto tmp, sys::ListDir(TmpDir()));
  for (const auto& name : tmp) {
    std::string path = sys::JoinPath(TmpDir(), name);
    freed += sys::DiskUsage(path);
    BOXLITE_RETURN_IF_ERROR(sys::RemoveTree(path));
  }
  std::string lock_dir = sys::JoinPath(dir_, "locks");
  BOXLITE_ASSIGN_OR_RETURN(auto locks, sys::ListDir(lock_dir));
  for (const auto& name : locks) {
    if (!name.ends_with(".lock") || name == "gc.lock" || name == "index.lock") continue;
    std::string stem = name.substr(0, name.size() - 5);
    bool live = stem.starts_with("rootfs-") ? live_chains.count(stem.substr(7)) > 0
                                                  : live_blobs.count(stem) > 0;
    if (!live) BOXLITE_RETURN_IF_ERROR(remove(sys::JoinPath(lock_dir, name)));
  }
  BOXLITE_LOG(kInfo, "image gc freed %s", base::HumanBytes(freed).c_str());
  return freed;
}

Result<RootfsInfo> Store::Rootfs(const LocalImage& image, RootfsFit fit) {
  if (image.diff_ids.size() != image.layer_digests.size()) {
    return Status::InvalidArgument("image " + image.reference,
                                   "layer and diff_id counts differ");
  }
  const std::string chain = ChainId(image.diff_ids);
  const std::string stem = RootfsStem(chain, fit);
  const std::string path = sys::JoinPath(dir_, "rootfs/" + stem + ".ext4");
  const std::string info_path = sys::JoinPath(dir_, "rootfs/" + stem + ".json");
  auto cached = [&]() -> std::optional<RootfsInfo> {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    RootfsInfo info{path, chain, static_cast<uint64_t>(st.st_size),
                    static_cast<uint64_t>(st.st_blocks) * 512};
    auto text = sys::ReadFile(info_path);
    if (text) {
      json doc = json::parse(*text, nullptr, false);
      for (auto [key, field] : {std::pair{"size_bytes", &info.size_bytes},
                                std::pair{"used_bytes", &info.used_bytes},
                                std::pair{"headroom_bytes", &info.headroom_bytes}}) {
        if (doc.is_object() && doc.contains(key) && doc[key].is_number_unsigned()) {
          *field = doc[key].get<uint64_t>();
        }
      }
    }
    return info;
  };
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock gc_lock,
                           sys::FileLock::Acquire(LockPath("gc"), sys::FileLock::Mode::kShared));
  if (auto info = cached()) return *info;
  const std::string hex(DigestHex(chain));
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock build_lock, sys::FileLock::Acquire(LockPath("rootfs-" + hex)));
  if (auto info = cached()) return *info;
  auto built = BuildRootfs(image, chain, fit);
  if (!built) return built.error().Wrap("build rootfs of " + image.reference);
  return built;
}

Result<RootfsInfo> Store::BuildRootfs(const LocalImage& image, const std::string& chain_id,
                                      RootfsFit fit) {
  const std::string hex(DigestHex(chain_id));
  const std::string stem = RootfsStem(chain_id, fit);
  // Uncompressed tar bytes plus half again for block rounding, inodes and directories,
  // plus a fixed slack for file system metadata. A short guess only costs a retry.
  uint64_t bytes = 0;
  for (const auto& digest : image.layer_digests) {
    std::string blob = BlobPath(digest);
    if (!sys::Exists(blob)) {
      return Status::NotFound("layer " + digest + " is missing from the image store",
                              "pull the image again");
    }
    bytes += EstimateLayerUncompressedSize(blob);
  }
  Ext4BuildOptions options;
  // A base with headroom is a whole number of block groups (128 MiB with 4 KiB blocks):
  // the file system then fills the file exactly (a short last group would be dropped),
  // so a box whose disk is the base's size finds nothing to grow.
  const uint64_t headroom = fit == RootfsFit::kHeadroom ? kRootfsHeadroom : 0;
  const uint64_t content = bytes + bytes / 2 + kRootfsSlack;
  options.size_bytes = headroom > 0 ? AlignUp(content + headroom, kBlockGroupBytes)
                                    : AlignUp(content, kMiB);
  Ext4BuilderFactory factory = opts_.ext4_builder_factory;
  if (!factory) {
    factory = [](const std::string& p, const Ext4BuildOptions& o) {
      return Ext4Builder::Create(p, o);
    };
  }

  for (int attempt = 1;; ++attempt) {
    BOXLITE_ASSIGN_OR_RETURN(auto tmp, MakeTemp(TmpDir(), "rootfs-" + hex.substr(0, 12) + "-"));
    tmp.second.reset();
    base::ScopeExit cleanup([&] { ::unlink(tmp.first.c_str()); });
    auto build = [&]() -> Result<uint64_t> {
      BOXLITE_ASSIGN_OR_RETURN(std::unique_ptr<Ext4Builder> builder, factory(tmp.first, options));
      for (size_t i = 0; i < image.layer_digests.size(); ++i) {
        const std::string& digest = image.layer_digests[i];
        BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(BlobPath(digest), O_RDONLY));
        auto applied = builder->ApplyLayer(fd.get());
        if (!applied) {
          return applied.error().Wrap(base::StrFormat("layer %zu (%s)", i, digest.c_str()));
        }
        if (applied->diff_id != image.diff_ids[i]) {
          return Status::Corruption(
              base::StrFormat("layer %zu (%s) of %s does not match the image config", i,
                              digest.c_str(), image.reference.c_str()),
              "its content hashes to " + applied->diff_id + ", the config's diff_id is " +
                  image.diff_ids[i]);
        }
      }
      BOXLITE_RETURN_IF_ERROR(builder->Finish());
      return builder->UsedBytes();
    };
    auto used = build();
    if (!used) {
      if (used.error().code() == StatusCode::kResourceExhausted &&
          attempt < kRootfsBuildAttempts) {
        BOXLITE_LOG(kInfo, "rootfs %s: %s with %s; retrying with twice the size", stem.c_str(),
                    used.error().message().c_str(), base::HumanBytes(options.size_bytes).c_str());
        options.size_bytes *= 2;  // The inode count follows the size.
        continue;
      }
      return used.error();
    }
    BOXLITE_RETURN_IF_ERROR(FsyncPath(tmp.first, O_RDONLY));
    RootfsInfo info{sys::JoinPath(dir_, "rootfs/" + stem + ".ext4"), chain_id,
                    options.size_bytes, *used, headroom};
    json doc = {{"chain_id", chain_id},
                {"size_bytes", info.size_bytes},
                {"used_bytes", info.used_bytes},
                {"headroom_bytes", info.headroom_bytes},
                {"diff_ids", image.diff_ids}};
    BOXLITE_RETURN_IF_ERROR(sys::WriteFileAtomic(sys::JoinPath(dir_, "rootfs/" + stem + ".json"),
                                                 doc.dump(2) + "\n", 0644, true));
    if (::rename(tmp.first.c_str(), info.path.c_str()) != 0) {
      return sys::ErrnoStatus(errno, "publish rootfs %s", info.path.c_str());
    }
    cleanup.Cancel();
    BOXLITE_RETURN_IF_ERROR(FsyncDir(sys::Dirname(info.path)));
    BOXLITE_LOG(kInfo, "rootfs %s: %s file system, %s used", stem.c_str(),
                base::HumanBytes(info.size_bytes).c_str(),
                base::HumanBytes(info.used_bytes).c_str());
    return info;
  }
}

Result<std::vector<LocalImage>> Store::Import(const std::string& path, std::string_view tag) {
  BOXLITE_ASSIGN_OR_RETURN(sys::FileLock gc_lock,
                           sys::FileLock::Acquire(LockPath("gc"), sys::FileLock::Mode::kShared));
  StoreImportTarget target(
      TmpDir(), [this](const std::string& d, uint64_t s) { return HasBlob(d, s); },
      [this](const std::string& t, const std::string& d) { return PublishTemp(t, d); },
      [this](std::string_view data, const std::string& d) { return WriteBlob(data, d); });
  auto imported = ReadImageArchive(path, tag, platform_, &target);
  if (!imported) return imported.error().Wrap("import " + path);
  BOXLITE_RETURN_IF_ERROR(UpdateIndex([&](Index* index) {
    for (const auto& image : *imported) {
      for (const auto& ref : image.references) {
        index->images[ref] = IndexEntry{image.manifest_digest, NowUnix()};
      }
    }
    return Status::OK();
  }));
  std::vector<LocalImage> out;
  for (const auto& image : *imported) {
    for (const auto& ref : image.references) {
      BOXLITE_ASSIGN_OR_RETURN(LocalImage local, LoadImage(ref, image.manifest_digest));
      local.cached_unix = NowUnix();
      out.push_back(std::move(local));
    }
  }
  return out;
}

}  // namespace boxlite::image

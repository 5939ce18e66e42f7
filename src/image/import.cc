// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Design: a Source answers "read this small file" and "publish this file as a verified
// blob" for a path inside the archive. A directory source reads files in place (paths
// are checked to stay inside the directory); a tar source streams the tarball once,
// staging every regular file in the store's temp directory while hashing it, so a
// layer is written once and published by rename. The layout logic above the Source is
// the same for tarballs and directories.
//
// Size: just over 600 lines: the two Sources and the layout logic above them are one
// import path, read together.

#include "src/image/import.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/image/reference.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::image {
namespace {

using nlohmann::json;

constexpr size_t kMaxDocumentBytes = 16 << 20;
constexpr int kMaxIndexDepth = 4;

struct BlobRef {
  std::string digest;
  uint64_t size = 0;
};

// Normalises a path named by an archive: no leading "./" or "/", no "." parts. Returns
// empty for paths with ".." (which we never follow).
std::string CleanPath(std::string_view p) {
  std::vector<std::string> parts;
  for (const auto& part : base::Split(p, '/', /*skip_empty=*/true)) {
    if (part == ".") continue;
    if (part == "..") return {};
    parts.push_back(part);
  }
  return base::Join(parts, "/");
}

// Creates a temp file in `dir`; returns its path and fd.
Result<std::pair<std::string, base::UniqueFd>> MakeTemp(const std::string& dir,
                                                        std::string_view prefix) {
  std::string tmpl = sys::JoinPath(dir, std::string(prefix) + "XXXXXX");
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return sys::ErrnoStatus(errno, "create temp file in %s", dir.c_str());
  return std::make_pair(tmpl, base::UniqueFd(fd));
}

class Source {
 public:
  virtual ~Source() = default;
  virtual bool Has(const std::string& path) = 0;
  // A whole small file (at most `max` bytes).
  virtual Result<std::string> Read(const std::string& path, size_t max) = 0;
  // The first `n` bytes (fewer for a shorter file).
  virtual Result<std::string> Prefix(const std::string& path, size_t n) = 0;
  // Publishes the file as a blob. With a non-empty `expected` the content must hash to it.
  virtual Result<BlobRef> Publish(const std::string& path, const std::string& expected,
                                  ImportTarget* target) = 0;
  virtual std::string Describe() const = 0;
};

Status DigestMismatch(const std::string& what, const std::string& expected,
                      const std::string& got) {
  return Status::Corruption(what + " does not match its digest",
                            "expected " + expected + ", content hashes to " + got);
}

class DirSource : public Source {
 public:
  explicit DirSource(std::string root) : root_(std::move(root)) {}

  bool Has(const std::string& path) override {
    auto full = Resolve(path);
    struct stat st;
    return full && ::stat(full->c_str(), &st) == 0 && S_ISREG(st.st_mode);
  }

  Result<std::string> Read(const std::string& path, size_t max) override {
    BOXLITE_ASSIGN_OR_RETURN(std::string full, Resolve(path));
    BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(full, O_RDONLY));
    BOXLITE_ASSIGN_OR_RETURN(std::string data, sys::ReadAll(fd.get(), max + 1));
    if (data.size() > max) {
      return Status::Corruption(path + " in " + root_, "file is unreasonably large");
    }
    return data;
  }

  Result<std::string> Prefix(const std::string& path, size_t n) override {
    BOXLITE_ASSIGN_OR_RETURN(std::string full, Resolve(path));
    BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(full, O_RDONLY));
    return sys::ReadAll(fd.get(), n);
  }

  Result<BlobRef> Publish(const std::string& path, const std::string& expected,
                          ImportTarget* target) override {
    BOXLITE_ASSIGN_OR_RETURN(std::string full, Resolve(path));
    BOXLITE_ASSIGN_OR_RETURN(auto in, sys::Open(full, O_RDONLY));
    struct stat st;
    if (::fstat(in.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", full.c_str());
    if (!expected.empty() && target->HasBlob(expected, static_cast<uint64_t>(st.st_size))) {
      return BlobRef{expected, static_cast<uint64_t>(st.st_size)};
    }
    BOXLITE_ASSIGN_OR_RETURN(auto tmp, MakeTemp(target->TempDir(), "import-"));
    base::ScopeExit cleanup([&] { ::unlink(tmp.first.c_str()); });
    base::Sha256 hasher;
    uint64_t size = 0;
    std::string buf(1 << 20, '\0');
    while (true) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return sys::ErrnoStatus(errno, "read %s", full.c_str());
      }
      if (n == 0) break;
      hasher.Update(buf.data(), static_cast<size_t>(n));
      BOXLITE_RETURN_IF_ERROR(sys::WriteAll(tmp.second.get(), buf.data(), static_cast<size_t>(n)));
      size += static_cast<uint64_t>(n);
    }
    std::string digest = "sha256:" + hasher.FinishHex();
    if (!expected.empty() && digest != expected) return DigestMismatch(path, expected, digest);
    tmp.second.reset();
    BOXLITE_RETURN_IF_ERROR(target->PublishTemp(tmp.first, digest));
    cleanup.Cancel();
    return BlobRef{digest, size};
  }

  std::string Describe() const override { return root_; }

 private:
  Result<std::string> Resolve(const std::string& path) {
    std::string clean = CleanPath(path);
    if (clean.empty()) {
      return Status::Corruption("image layout " + root_, "refers to unsafe path \"" + path + "\"");
    }
    return sys::JoinPath(root_, clean);
  }

  std::string root_;
};

class TarSource : public Source {
 public:
  static Result<std::unique_ptr<TarSource>> Load(const std::string& path,
                                                 const std::string& temp_parent) {
    BOXLITE_ASSIGN_OR_RETURN(sys::TempDir dir, sys::TempDir::Create(temp_parent, "import-"));
    auto src = std::unique_ptr<TarSource>(new TarSource(path, std::move(dir)));
    BOXLITE_RETURN_IF_ERROR(src->Stage());
    return src;
  }

  bool Has(const std::string& path) override { return Find(path) != nullptr; }

  Result<std::string> Read(const std::string& path, size_t max) override {
    const Staged* s = Find(path);
    if (s == nullptr) return Missing(path);
    if (s->size > max) return Status::Corruption(path + " in " + path_, "file is unreasonably large");
    return sys::ReadFile(s->tmp_path);
  }

  Result<std::string> Prefix(const std::string& path, size_t n) override {
    const Staged* s = Find(path);
    if (s == nullptr) return Missing(path);
    BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(s->tmp_path, O_RDONLY));
    return sys::ReadAll(fd.get(), n);
  }

  Result<BlobRef> Publish(const std::string& path, const std::string& expected,
                          ImportTarget* target) override {
    Staged* s = Find(path);
    if (s == nullptr) return Missing(path);
    if (!expected.empty() && s->digest != expected) return DigestMismatch(path, expected, s->digest);
    if (!s->published && !target->HasBlob(s->digest, s->size)) {
      BOXLITE_RETURN_IF_ERROR(target->PublishTemp(s->tmp_path, s->digest));
    }
    s->published = true;
    return BlobRef{s->digest, s->size};
  }

  std::string Describe() const override { return path_; }

 private:
  struct Staged {
    std::string tmp_path;
    std::string digest;
    uint64_t size = 0;
    bool published = false;
  };

  TarSource(std::string path, sys::TempDir dir) : path_(std::move(path)), dir_(std::move(dir)) {}

  Status Missing(const std::string& path) const {
    return Status::Corruption("archive " + path_, "it has no file \"" + path + "\"");
  }

  Staged* Find(const std::string& path) {
    std::string p = CleanPath(path);
    for (int i = 0; i < 16; ++i) {
      auto it = files_.find(p);
      if (it != files_.end()) return &it->second;
      auto alias = aliases_.find(p);
      if (alias == aliases_.end()) return nullptr;
      p = alias->second;
    }
    return nullptr;
  }

  Status Stage() {
    struct archive* a = archive_read_new();
    if (a == nullptr) return Status::Internal("archive_read_new failed");
    base::ScopeExit free_archive([&] { archive_read_free(a); });
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, path_.c_str(), 1 << 16) != ARCHIVE_OK) {
      return ArchiveError(a, "open");
    }
    size_t counter = 0;
    std::string buf;
    while (true) {
      struct archive_entry* entry = nullptr;
      int r = archive_read_next_header(a, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(a, "read");
      const char* raw_name = archive_entry_pathname(entry);
      std::string name = CleanPath(raw_name ? raw_name : "");
      if (name.empty()) continue;
      if (const char* hard = archive_entry_hardlink(entry)) {
        aliases_[name] = CleanPath(hard);
        continue;
      }
      mode_t type = archive_entry_filetype(entry);
      if (type == AE_IFLNK) {
        const char* target = archive_entry_symlink(entry);
        std::string dir = name.find('/') == std::string::npos ? "" : sys::Dirname(name);
        std::string joined = target == nullptr ? "" : (target[0] == '/' ? std::string(target)
                                                      : sys::JoinPath(dir, target));
        aliases_[name] = CleanPath(joined);
        continue;
      }
      if (type != AE_IFREG) continue;
      std::string tmp = sys::JoinPath(dir_.path(), std::to_string(counter++));
      BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
      base::Sha256 hasher;
      uint64_t size = 0;
      while (true) {
        const void* block = nullptr;
        size_t len = 0;
        la_int64_t offset = 0;
        int rr = archive_read_data_block(a, &block, &len, &offset);
        if (rr == ARCHIVE_EOF) break;
        if (rr != ARCHIVE_OK && rr != ARCHIVE_WARN) return ArchiveError(a, "read " + name + " in");
        // Sparse tar entries come with offsets; fill holes with zeros so hashing sees the
        // exact content.
        if (static_cast<uint64_t>(offset) > size) {
          buf.assign(static_cast<size_t>(static_cast<uint64_t>(offset) - size), '\0');
          hasher.Update(buf);
          BOXLITE_RETURN_IF_ERROR(sys::WriteAll(fd.get(), buf));
          size = static_cast<uint64_t>(offset);
        }
        hasher.Update(block, len);
        BOXLITE_RETURN_IF_ERROR(sys::WriteAll(fd.get(), block, len));
        size += len;
      }
      auto& staged = files_[name];
      staged.tmp_path = tmp;
      staged.digest = "sha256:" + hasher.FinishHex();
      staged.size = size;
      aliases_.erase(name);
    }
    if (files_.empty()) {
      return Status::InvalidArgument(path_ + " is not an image archive", "it holds no files");
    }
    return Status::OK();
  }

  Status ArchiveError(struct archive* a, const std::string& what) {
    const char* msg = archive_error_string(a);
    std::string detail = msg ? msg : "unknown error";
    int err = archive_errno(a);
    if (err == ENOENT) return Status::NotFound("cannot " + what + " " + path_, detail);
    if (what == "open" || detail.find("Unrecognized archive format") != std::string::npos) {
      return Status::InvalidArgument("cannot " + what + " " + path_ + " as a tar archive", detail);
    }
    return Status::Corruption("cannot " + what + " archive " + path_, detail);
  }

  std::string path_;
  sys::TempDir dir_;
  std::map<std::string, Staged> files_;
  std::map<std::string, std::string> aliases_;
};

// "localhost/<sanitised file name>" for images an archive does not name.
std::string DefaultRepository(const std::string& path) {
  std::string base = base::ToLower(sys::Basename(path));
  for (const char* ext : {".tar.gz", ".tar.zst", ".tar.xz", ".tgz", ".tar", ".oci"}) {
    if (base.ends_with(ext)) {
      base.resize(base.size() - std::string_view(ext).size());
      break;
    }
  }
  std::string out;
  for (char c : base) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (ok) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.empty()) out = "import";
  return "localhost/" + out;
}

// A name an archive gives: a full reference, or a bare tag (OCI ref.name "v1").
Result<std::string> NameFromArchive(const std::string& name, const std::string& archive_path) {
  bool tag_only = name.find('/') == std::string::npos && name.find(':') == std::string::npos &&
                  name.find('@') == std::string::npos;
  std::string full = tag_only ? DefaultRepository(archive_path) + ":" + name : name;
  auto ref = ParseReference(full);
  if (!ref) return ref.error().Wrap("name in " + archive_path);
  return ref->String();
}

class Importer {
 public:
  Importer(Source* src, std::string path, const Platform& platform, ImportTarget* target)
      : src_(src), path_(std::move(path)), platform_(platform), target_(target) {}

  Result<std::vector<ImportedImage>> Run(std::string_view tag) {
    std::vector<ImportedImage> images;
    if (src_->Has("index.json")) {
      BOXLITE_ASSIGN_OR_RETURN(images, ImportOciLayout(tag));
    } else if (src_->Has("manifest.json")) {
      BOXLITE_ASSIGN_OR_RETURN(images, ImportDockerSave(tag));
    } else {
      return Status::InvalidArgument(
          path_ + " is not an image archive",
          "found neither index.json (OCI image layout) nor manifest.json (docker save)");
    }
    if (images.empty()) return Status::NotFound("no image in " + path_);
    if (!tag.empty()) {
      BOXLITE_ASSIGN_OR_RETURN(Reference ref, ParseReference(tag));
      images[0].references = {ref.String()};
    } else {
      for (auto& image : images) {
        if (!image.references.empty()) continue;
        std::string suffix = images.size() == 1 ? "latest"
                                                : std::string(DigestHex(image.manifest_digest).substr(0, 12));
        image.references = {DefaultRepository(path_) + ":" + suffix};
      }
    }
    return images;
  }

 private:
  static Status CheckTagCount(std::string_view tag, size_t count, const std::string& path) {
    if (!tag.empty() && count > 1) {
      return Status::InvalidArgument(
          base::StrFormat("%s holds %zu images", path.c_str(), count),
          "a name can be given only to an archive with one image");
    }
    return Status::OK();
  }

  static std::string BlobPathOf(const std::string& digest) {
    return "blobs/sha256/" + std::string(DigestHex(digest));
  }

  // Reads a small blob of the layout and verifies digest and size.
  Result<std::string> ReadLayoutBlob(const Descriptor& d) {
    std::string path = BlobPathOf(d.digest);
    auto body = src_->Read(path, kMaxDocumentBytes);
    if (!body) return body.error().Wrap("blob " + d.digest);
    std::string got = "sha256:" + base::Sha256Hex(*body);
    if (got != d.digest) return DigestMismatch(path + " in " + path_, d.digest, got);
    if (body->size() != d.size) {
      return Status::Corruption(path + " in " + path_,
                                base::StrFormat("size %zu, the descriptor says %llu",
                                                body->size(),
                                                static_cast<unsigned long long>(d.size)));
    }
    return body;
  }

  Status PublishLayoutBlob(const Descriptor& d) {
    auto ref = src_->Publish(BlobPathOf(d.digest), d.digest, target_);
    if (!ref) return ref.error().Wrap("blob " + d.digest + " in " + path_);
    if (ref->size != d.size) {
      return Status::Corruption(
          "blob " + d.digest + " in " + path_,
          base::StrFormat("size %llu, the manifest says %llu",
                          static_cast<unsigned long long>(ref->size),
                          static_cast<unsigned long long>(d.size)));
    }
    return Status::OK();
  }

  // Imports the image a descriptor names (following indexes); returns the manifest digest.
  Result<std::string> ImportDescriptor(const Descriptor& d, int depth) {
    if (depth > kMaxIndexDepth) return Status::Corruption(path_, "indexes nested too deeply");
    BOXLITE_ASSIGN_OR_RETURN(std::string body, ReadLayoutBlob(d));
    auto parsed = ParseManifest(body, d.media_type);
    if (!parsed) return parsed.error().Wrap("manifest " + d.digest + " in " + path_);
    if (parsed->kind == ManifestKind::kIndex) {
      BOXLITE_ASSIGN_OR_RETURN(Descriptor pick,
                               SelectPlatform(*parsed, platform_, "index " + d.digest));
      return ImportDescriptor(pick, depth + 1);
    }
    BOXLITE_ASSIGN_OR_RETURN(std::string config_body, ReadLayoutBlob(parsed->config));
    auto config = ParseImageConfig(config_body);
    if (!config) return config.error().Wrap("config " + parsed->config.digest + " in " + path_);
    if (config->diff_ids.size() != parsed->layers.size()) {
      return Status::Corruption(
          "image " + d.digest + " in " + path_,
          base::StrFormat("%zu layers but %zu diff_ids in its config", parsed->layers.size(),
                          config->diff_ids.size()));
    }
    for (const auto& layer : parsed->layers) BOXLITE_RETURN_IF_ERROR(PublishLayoutBlob(layer));
    BOXLITE_RETURN_IF_ERROR(target_->WriteBlob(config_body, parsed->config.digest));
    BOXLITE_RETURN_IF_ERROR(target_->WriteBlob(body, d.digest));
    return d.digest;
  }

  Result<std::vector<ImportedImage>> ImportOciLayout(std::string_view tag) {
    if (src_->Has("oci-layout")) {
      BOXLITE_ASSIGN_OR_RETURN(std::string layout, src_->Read("oci-layout", 1 << 16));
      json doc = json::parse(layout, nullptr, false);
      if (!doc.is_object() || !doc.contains("imageLayoutVersion")) {
        return Status::Corruption(path_, "oci-layout is not {\"imageLayoutVersion\": ...}");
      }
    }
    BOXLITE_ASSIGN_OR_RETURN(std::string index_body, src_->Read("index.json", kMaxDocumentBytes));
    auto index = ParseManifest(index_body, kMediaTypeOciIndex);
    if (!index) return index.error().Wrap("index.json in " + path_);
    if (index->kind != ManifestKind::kIndex) {
      return Status::Corruption("index.json in " + path_, "it is not an image index");
    }
    // Entries for other platforms are skipped; when nothing is left, say what there was.
    std::vector<const Descriptor*> entries;
    for (const auto& d : index->manifests) {
      if (d.platform && !PlatformMatches(platform_, *d.platform)) continue;
      entries.push_back(&d);
    }
    if (entries.empty() && !index->manifests.empty()) {
      auto pick = SelectPlatform(*index, platform_, path_);
      if (!pick) return pick.error();
    }
    BOXLITE_RETURN_IF_ERROR(CheckTagCount(tag, entries.size(), path_));
    // Entries naming the same manifest (two tags) become one image with two names.
    std::vector<ImportedImage> out;
    std::map<std::string, size_t> by_digest;
    for (const Descriptor* d : entries) {
      BOXLITE_ASSIGN_OR_RETURN(std::string digest, ImportDescriptor(*d, 0));
      auto [it, inserted] = by_digest.emplace(d->digest, out.size());
      if (inserted) out.push_back(ImportedImage{{}, digest});
      ImportedImage& image = out[it->second];
      std::string name;
      auto containerd = d->annotations.find("io.containerd.image.name");
      auto ref_name = d->annotations.find("org.opencontainers.image.ref.name");
      if (containerd != d->annotations.end()) {
        name = containerd->second;
      } else if (ref_name != d->annotations.end()) {
        name = ref_name->second;
      }
      if (!name.empty() && tag.empty()) {
        BOXLITE_ASSIGN_OR_RETURN(std::string normalized, NameFromArchive(name, path_));
        image.references.push_back(normalized);
      }
    }
    return out;
  }

  static std::string DockerLayerMediaType(std::string_view magic) {
    if (magic.size() >= 2 && static_cast<unsigned char>(magic[0]) == 0x1f &&
        static_cast<unsigned char>(magic[1]) == 0x8b) {
      return std::string(kMediaTypeOciLayerGzip);
    }
    if (magic.size() >= 4 && magic.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
      return std::string(kMediaTypeOciLayerZstd);
    }
    return std::string(kMediaTypeOciLayer);
  }

  Result<std::vector<ImportedImage>> ImportDockerSave(std::string_view tag) {
    BOXLITE_ASSIGN_OR_RETURN(std::string body, src_->Read("manifest.json", kMaxDocumentBytes));
    json doc = json::parse(body, nullptr, false);
    if (!doc.is_array()) return Status::Corruption("manifest.json in " + path_, "not a JSON list");
    BOXLITE_RETURN_IF_ERROR(CheckTagCount(tag, doc.size(), path_));
    std::vector<ImportedImage> out;
    size_t n = 0;
    for (const auto& item : doc) {
      std::string what = base::StrFormat("manifest.json[%zu] in %s", n++, path_.c_str());
      if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string() ||
          !item.contains("Layers") || !item["Layers"].is_array()) {
        return Status::Corruption(what, "needs \"Config\" and \"Layers\"");
      }
      std::string config_path = item["Config"].get<std::string>();
      BOXLITE_ASSIGN_OR_RETURN(std::string config_body, src_->Read(config_path, kMaxDocumentBytes));
      std::string config_digest = "sha256:" + base::Sha256Hex(config_body);
      // The file is named by its digest ("<hex>.json" or "blobs/sha256/<hex>").
      std::string stem = sys::Basename(config_path);
      if (stem.ends_with(".json")) stem.resize(stem.size() - 5);
      if (ValidateDigest("sha256:" + stem).ok() && "sha256:" + stem != config_digest) {
        return DigestMismatch(config_path + " in " + path_, "sha256:" + stem, config_digest);
      }
      auto config = ParseImageConfig(config_body);
      if (!config) return config.error().Wrap(config_path + " in " + path_);
      const auto& layers = item["Layers"];
      if (layers.size() != config->diff_ids.size()) {
        return Status::Corruption(what, base::StrFormat("%zu layers but %zu diff_ids in the config",
                                                        layers.size(), config->diff_ids.size()));
      }
      json manifest = {{"schemaVersion", 2},
                       {"mediaType", kMediaTypeOciManifest},
                       {"config",
                        {{"mediaType", kMediaTypeOciConfig},
                         {"digest", config_digest},
                         {"size", config_body.size()}}},
                       {"layers", json::array()}};
      for (size_t i = 0; i < layers.size(); ++i) {
        if (!layers[i].is_string()) return Status::Corruption(what, "a layer path is not a string");
        std::string layer_path = layers[i].get<std::string>();
        BOXLITE_ASSIGN_OR_RETURN(std::string magic, src_->Prefix(layer_path, 4));
        std::string media = DockerLayerMediaType(magic);
        // An uncompressed layer is its own diff: check it against the config now.
        std::string expected = media == kMediaTypeOciLayer ? config->diff_ids[i] : std::string();
        auto blob = src_->Publish(layer_path, expected, target_);
        if (!blob) {
          return blob.error().Wrap(base::StrFormat("layer %zu (%s) in %s", i, layer_path.c_str(),
                                                   path_.c_str()));
        }
        manifest["layers"].push_back(
            {{"mediaType", media}, {"digest", blob->digest}, {"size", blob->size}});
      }
      BOXLITE_RETURN_IF_ERROR(target_->WriteBlob(config_body, config_digest));
      std::string manifest_body = manifest.dump();
      std::string manifest_digest = "sha256:" + base::Sha256Hex(manifest_body);
      BOXLITE_RETURN_IF_ERROR(target_->WriteBlob(manifest_body, manifest_digest));
      ImportedImage image{{}, manifest_digest};
      auto tags = item.find("RepoTags");
      if (tag.empty() && tags != item.end() && tags->is_array()) {
        for (const auto& t : *tags) {
          if (!t.is_string()) continue;
          BOXLITE_ASSIGN_OR_RETURN(std::string normalized,
                                   NameFromArchive(t.get<std::string>(), path_));
          image.references.push_back(normalized);
        }
      }
      out.push_back(std::move(image));
    }
    return out;
  }

  Source* src_;
  std::string path_;
  Platform platform_;
  ImportTarget* target_;
};

}  // namespace

Result<std::vector<ImportedImage>> ReadImageArchive(const std::string& path,
                                                    std::string_view tag,
                                                    const Platform& platform,
                                                    ImportTarget* target) {
  if (!tag.empty()) {
    auto ref = ParseReference(tag);
    if (!ref) return ref.error();
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return sys::ErrnoStatus(errno, "import %s", path.c_str());
  std::unique_ptr<Source> src;
  if (S_ISDIR(st.st_mode)) {
    src = std::make_unique<DirSource>(path);
  } else {
    BOXLITE_ASSIGN_OR_RETURN(src, TarSource::Load(path, target->TempDir()));
  }
  Importer importer(src.get(), path, platform, target);
  return importer.Run(tag);
}

}  // namespace boxlite::image

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/image/image_test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include <nlohmann/json.hpp>

#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/sys/fs.h"

namespace boxlite::image::testing {
namespace {

using nlohmann::json;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "image_test_util: %s\n", what.c_str());
  std::abort();
}

la_ssize_t AppendToString(struct archive*, void* user, const void* buf, size_t len) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

// Writes entries with a callback that feeds each one.
std::string WriteArchive(Compression compression,
                         const std::function<void(struct archive*)>& fill) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (compression == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (compression == Compression::kZstd) archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  if (archive_write_open(a, &out, nullptr, AppendToString, nullptr) != ARCHIVE_OK) {
    Die(std::string("archive_write_open: ") + archive_error_string(a));
  }
  fill(a);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

void AddEntry(struct archive* a, const TarEntry& e) {
  struct archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, e.path.c_str());
  archive_entry_set_mtime(entry, 1700000000, 0);
  archive_entry_set_uid(entry, 0);
  archive_entry_set_gid(entry, 0);
  switch (e.type) {
    case TarEntry::Type::kFile:
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_perm(entry, static_cast<mode_t>(e.mode));
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
      break;
    case TarEntry::Type::kDir:
      archive_entry_set_filetype(entry, AE_IFDIR);
      archive_entry_set_perm(entry, 0755);
      break;
    case TarEntry::Type::kSymlink:
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_perm(entry, 0777);
      archive_entry_set_symlink(entry, e.content.c_str());
      break;
  }
  if (archive_write_header(a, entry) != ARCHIVE_OK) {
    Die(std::string("archive_write_header: ") + archive_error_string(a));
  }
  if (e.type == TarEntry::Type::kFile && !e.content.empty()) {
    archive_write_data(a, e.content.data(), e.content.size());
  }
  archive_entry_free(entry);
}

}  // namespace

std::string MakeTar(const std::vector<TarEntry>& entries, Compression compression) {
  return WriteArchive(compression, [&](struct archive* a) {
    for (const auto& e : entries) AddEntry(a, e);
  });
}

std::string Sha256Digest(const std::string& data) { return "sha256:" + base::Sha256Hex(data); }

TestImage MakeTestImage(const TestImageOptions& o) {
  TestImage image;
  json diff_ids = json::array();
  for (size_t i = 0; i < o.layers.size(); ++i) {
    std::string plain = MakeTar(o.layers[i], Compression::kNone);
    TestLayer layer;
    layer.diff_id = Sha256Digest(plain);
    switch (o.compression) {
      case Compression::kNone:
        layer.blob = plain;
        layer.media_type = "application/vnd.oci.image.layer.v1.tar";
        break;
      case Compression::kGzip:
        layer.blob = MakeTar(o.layers[i], Compression::kGzip);
        layer.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
        break;
      case Compression::kZstd:
        layer.blob = MakeTar(o.layers[i], Compression::kZstd);
        layer.media_type = "application/vnd.oci.image.layer.v1.tar+zstd";
        break;
    }
    layer.digest = Sha256Digest(layer.blob);
    auto override_it = o.diff_id_override.find(i);
    diff_ids.push_back(override_it != o.diff_id_override.end() ? override_it->second
                                                               : layer.diff_id);
    image.layers.push_back(std::move(layer));
  }
  json ports = json::object();
  for (const auto& p : o.exposed_ports) ports[p] = json::object();
  json config = {
      {"created", o.created},
      {"architecture", o.architecture},
      {"os", o.os},
      {"config",
       {{"Env", o.env},
        {"Entrypoint", o.entrypoint},
        {"Cmd", o.cmd},
        {"WorkingDir", o.working_dir},
        {"User", o.user},
        {"Labels", o.labels},
        {"ExposedPorts", ports}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
  };
  image.config = config.dump();
  image.config_digest = Sha256Digest(image.config);
  json layers = json::array();
  for (const auto& l : image.layers) {
    layers.push_back({{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.blob.size()}});
  }
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", image.config_digest},
                     {"size", image.config.size()}}},
                   {"layers", layers}};
  image.manifest = manifest.dump();
  image.manifest_digest = Sha256Digest(image.manifest);
  return image;
}

void WriteFile(const std::string& path, const std::string& data) {
  if (!sys::MakeDirs(sys::Dirname(path)).ok()) Die("mkdir " + sys::Dirname(path));
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) Die("open " + path);
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) Die("write " + path);
  std::fclose(f);
}

std::string ReadFileOrDie(const std::string& path) {
  auto data = sys::ReadFile(path);
  if (!data) Die(data.error().ToString());
  return *data;
}

std::vector<std::string> ListDirOrEmpty(const std::string& dir) {
  auto names = sys::ListDir(dir);
  return names ? *names : std::vector<std::string>();
}

void WriteOciLayout(const std::string& dir,
                    const std::vector<std::pair<TestImage, std::string>>& images) {
  WriteFile(sys::JoinPath(dir, "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
  json manifests = json::array();
  auto put = [&](const std::string& digest, const std::string& data) {
    WriteFile(sys::JoinPath(dir, "blobs/sha256/" + digest.substr(7)), data);
  };
  for (const auto& [image, name] : images) {
    for (const auto& l : image.layers) put(l.digest, l.blob);
    put(image.config_digest, image.config);
    put(image.manifest_digest, image.manifest);
    json entry = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                  {"digest", image.manifest_digest},
                  {"size", image.manifest.size()}};
    if (!name.empty()) entry["annotations"] = {{"org.opencontainers.image.ref.name", name}};
    manifests.push_back(entry);
  }
  json index = {{"schemaVersion", 2}, {"manifests", manifests}};
  WriteFile(sys::JoinPath(dir, "index.json"), index.dump());
}

std::string MakeDockerSave(
    const std::vector<std::pair<TestImage, std::vector<std::string>>>& images,
    Compression compression) {
  std::vector<TarEntry> entries;
  json manifest = json::array();
  int n = 0;
  for (const auto& [image, tags] : images) {
    std::string config_name = image.config_digest.substr(7) + ".json";
    entries.push_back({config_name, image.config});
    json layers = json::array();
    for (const auto& l : image.layers) {
      std::string dir = base::StrFormat("layer%d", n++);
      entries.push_back({dir, "", TarEntry::Type::kDir});
      entries.push_back({dir + "/layer.tar", l.blob});
      layers.push_back(dir + "/layer.tar");
    }
    manifest.push_back({{"Config", config_name}, {"RepoTags", tags}, {"Layers", layers}});
  }
  entries.push_back({"manifest.json", manifest.dump()});
  return MakeTar(entries, compression);
}

std::string TarDirectory(const std::string& dir) {
  std::vector<TarEntry> entries;
  std::function<void(const std::string&)> walk = [&](const std::string& rel) {
    std::string full = rel.empty() ? dir : sys::JoinPath(dir, rel);
    for (const auto& name : ListDirOrEmpty(full)) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      std::string child_full = sys::JoinPath(dir, child);
      if (sys::IsDirectory(child_full)) {
        entries.push_back({child, "", TarEntry::Type::kDir});
        walk(child);
      } else {
        entries.push_back({child, ReadFileOrDie(child_full)});
      }
    }
  };
  walk("");
  return MakeTar(entries, Compression::kNone);
}

namespace {

class FakeBuilder : public Ext4Builder {
 public:
  FakeBuilder(std::string path) : path_(std::move(path)) {}

  Result<LayerApplyResult> ApplyLayer(int fd) override {
    struct archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
      archive_read_free(a);
      return Status::Corruption("fake builder: cannot open layer");
    }
    struct archive_entry* entry = nullptr;
    base::Sha256 hasher;
    LayerApplyResult out;
    if (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
      char buf[65536];
      while (true) {
        la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
        if (n < 0) {
          archive_read_free(a);
          return Status::Corruption("fake builder: bad layer");
        }
        if (n == 0) break;
        hasher.Update(buf, static_cast<size_t>(n));
        out.uncompressed_bytes += static_cast<uint64_t>(n);
      }
    }
    archive_read_free(a);
    out.diff_id = "sha256:" + hasher.FinishHex();
    applied_.push_back(out.diff_id);
    used_ += out.uncompressed_bytes;
    return out;
  }

  Status Finish() override {
    return sys::WriteFileAtomic(path_, base::Join(applied_, "\n") + "\n", 0644, false);
  }

  uint64_t UsedBytes() const override { return used_ + 4096; }

 private:
  std::string path_;
  std::vector<std::string> applied_;
  uint64_t used_ = 0;
};

}  // namespace

Result<std::unique_ptr<Ext4Builder>> CreateFakeBuilder(const FakeBuilderConfig& config,
                                                       const std::string& path,
                                                       const Ext4BuildOptions& options) {
  if (config.creates != nullptr) config.creates->fetch_add(1);
  if (config.sizes != nullptr) config.sizes->push_back(options.size_bytes);
  if (!config.log_path.empty()) {
    int fd = ::open(config.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      std::string line = std::to_string(::getpid()) + " " + path + "\n";
      (void)!::write(fd, line.data(), line.size());
      ::close(fd);
    }
  }
  if (options.size_bytes == 0 || options.size_bytes % 4096 != 0) {
    return Status::InvalidArgument("fake builder: size not a multiple of 4096");
  }
  WriteFile(path, "");
  if (options.size_bytes < config.min_size) {
    struct Full : Ext4Builder {
      Result<LayerApplyResult> ApplyLayer(int) override {
        return Status::ResourceExhausted("fake builder: file system full");
      }
      Status Finish() override { return Status::OK(); }
      uint64_t UsedBytes() const override { return 0; }
    };
    return std::unique_ptr<Ext4Builder>(std::make_unique<Full>());
  }
  return std::unique_ptr<Ext4Builder>(std::make_unique<FakeBuilder>(path));
}

}  // namespace boxlite::image::testing

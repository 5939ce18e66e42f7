// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Test helpers for the image module: tarballs written with libarchive, small OCI images
// (layers, config, manifest) built in memory, OCI layouts and docker-save archives on
// disk, and a fake Ext4Builder. Test-only; not thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "src/image/ext4_builder.h"

namespace boxlite::image::testing {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink };
  std::string path;
  std::string content;  // File data, or the symlink target.
  Type type = Type::kFile;
  int mode = 0644;
};

enum class Compression { kNone, kGzip, kZstd };

// A tar stream of `entries`, optionally compressed.
std::string MakeTar(const std::vector<TarEntry>& entries, Compression compression);

std::string Sha256Digest(const std::string& data);

struct TestLayer {
  std::string blob;  // As stored (maybe compressed).
  std::string digest;
  std::string diff_id;
  std::string media_type;
};

struct TestImage {
  std::vector<TestLayer> layers;
  std::string config;  // JSON.
  std::string config_digest;
  std::string manifest;  // JSON (OCI image manifest).
  std::string manifest_digest;
};

struct TestImageOptions {
  std::vector<std::vector<TarEntry>> layers;  // One entry list per layer.
  Compression compression = Compression::kGzip;
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "GREETING=hello"};
  std::vector<std::string> entrypoint = {"/bin/sh", "-c"};
  std::vector<std::string> cmd = {"echo hi"};
  std::string working_dir = "/srv";
  std::string user = "1000:1000";
  std::map<std::string, std::string> labels = {{"org.example.k", "v"}};
  std::vector<std::string> exposed_ports = {"8080/tcp"};
  std::string architecture = "amd64";
  std::string os = "linux";
  std::string created = "2024-05-06T07:08:09Z";
  // Replaces the config's diff_id of layer i (to build inconsistent images).
  std::map<size_t, std::string> diff_id_override;
};

TestImage MakeTestImage(const TestImageOptions& options);

// Writes an OCI image layout at `dir`: oci-layout, blobs/, and index.json with one entry
// per image (annotated with org.opencontainers.image.ref.name when the name is not empty).
void WriteOciLayout(const std::string& dir,
                    const std::vector<std::pair<TestImage, std::string>>& images);

// A `docker save` tarball (manifest.json with RepoTags, <hex>.json configs,
// <n>/layer.tar) of images whose layers are uncompressed.
std::string MakeDockerSave(const std::vector<std::pair<TestImage, std::vector<std::string>>>& images,
                           Compression compression);

// Tars up a directory tree (for OCI layout tarballs).
std::string TarDirectory(const std::string& dir);

void WriteFile(const std::string& path, const std::string& data);
std::string ReadFileOrDie(const std::string& path);
// Names of the files in a directory (empty when missing).
std::vector<std::string> ListDirOrEmpty(const std::string& dir);

// A fake Ext4Builder: decompresses each layer with libarchive, reports its sha256 as the
// diff_id, and writes a text file listing the applied diff_ids at `path`. It fails with
// ResourceExhausted when size_bytes is below `min_size`. Every Create is appended as a
// line to `log_path` (O_APPEND, so several processes may share it).
struct FakeBuilderConfig {
  uint64_t min_size = 0;
  std::string log_path;
  std::atomic<int>* creates = nullptr;
  std::vector<uint64_t>* sizes = nullptr;  // size_bytes of each Create.
};
Result<std::unique_ptr<Ext4Builder>> CreateFakeBuilder(const FakeBuilderConfig& config,
                                                       const std::string& path,
                                                       const Ext4BuildOptions& options);

}  // namespace boxlite::image::testing

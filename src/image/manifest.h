// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// OCI and Docker image documents: image manifests (OCI v1, Docker v2 schema 2), indexes
// (OCI index, Docker manifest list) with platform selection, and the image config. Docker
// schema 1 manifests are refused. All input is untrusted registry or archive data: every
// field is type-checked and errors are Status values, never exceptions.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"

namespace boxlite::image {

inline constexpr std::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaTypeDockerSchema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kMediaTypeDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaTypeDockerConfig =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kMediaTypeDockerLayer =
    "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kMediaTypeDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";

// The Accept header of a manifest request: all four media types we understand.
std::string ManifestAcceptHeader();

struct Platform {
  std::string os;            // "linux".
  std::string architecture;  // GOARCH spelling: "amd64", "arm64", "arm".
  std::string variant;       // "v8", "v7"; often empty.

  // "linux/arm64/v8" or "linux/amd64".
  std::string String() const;
};

// The platform this process runs on (from uname; GOARCH names).
Platform HostPlatform();
// Parses "os/arch[/variant]". InvalidArgument otherwise.
Result<Platform> ParsePlatform(std::string_view s);

struct Descriptor {
  std::string media_type;
  std::string digest;  // Validated "sha256:<hex>".
  uint64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

enum class ManifestKind { kImage, kIndex };

// An image manifest or an index, whichever the document was.
struct ParsedManifest {
  ManifestKind kind = ManifestKind::kImage;
  std::string media_type;  // The effective media type.
  // kImage:
  Descriptor config;
  std::vector<Descriptor> layers;
  // kIndex:
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

// Parses a manifest document. `content_type` is the HTTP Content-Type (parameters are
// ignored) or empty; the document's own "mediaType" wins when present, and a document
// without either is classified by shape ("manifests" vs "layers"). Errors:
// NotSupported for Docker schema 1 ("... schema 1 ... re-push it with a current docker"),
// NotSupported also for artifacts (a non-image config) and layer media types we cannot
// unpack; Corruption for malformed or inconsistent documents.
Result<ParsedManifest> ParseManifest(std::string_view body, std::string_view content_type);

// True when `candidate` can run on `want` (os and architecture equal; variants follow
// containerd's matcher: arm64 "" == "v8", arm v7 runs v6 and v5, amd64 "" == "v1").
bool PlatformMatches(const Platform& want, const Platform& candidate);

// Picks the best entry of an index for `want`: an exact variant match first, then a
// compatible one. NotFound lists the platforms the index offers:
// "no manifest for platform linux/amd64 in <what>; available: linux/arm64/v8, linux/s390x".
Result<Descriptor> SelectPlatform(const ParsedManifest& index, const Platform& want,
                                  std::string_view what);

// The image configuration a box honours.
struct ImageConfig {
  std::vector<std::string> env;  // "KEY=value".
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // "80/tcp", sorted.
  std::vector<std::string> volumes;        // Sorted.
  std::string stop_signal;
  std::string os;
  std::string architecture;
  std::string variant;
};

struct ParsedImageConfig {
  ImageConfig config;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, validated digests.
  int64_t created_unix = 0;           // 0 when absent or unparsable.
};

// Parses an OCI / Docker image config. Corruption for malformed documents, a rootfs type
// other than "layers", or bad diff_ids.
Result<ParsedImageConfig> ParseImageConfig(std::string_view body);

// Parses RFC 3339 ("2024-01-02T03:04:05.123456789Z", "+02:00" offsets) to Unix seconds.
std::optional<int64_t> ParseRfc3339(std::string_view s);

// The layer compression a media type announces.
enum class LayerCompression { kNone, kGzip, kZstd };
// nullopt for media types that are not (supported) layer tarballs.
std::optional<LayerCompression> LayerCompressionOf(std::string_view media_type);

}  // namespace boxlite::image

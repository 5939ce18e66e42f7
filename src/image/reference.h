// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Image references ("alpine", "ghcr.io/org/app:1.2", "127.0.0.1:5000/x@sha256:...")
// parsed and normalised the way docker does it:
//   - the first path component is a registry host when it contains '.' or ':', is
//     "localhost", or has an uppercase letter; otherwise the registry is docker.io;
//   - "index.docker.io" is spelled "docker.io"; docker.io names without a '/' gain
//     "library/";
//   - without tag and digest the tag is "latest"; with a digest alone there is no tag;
//     "repo:tag@digest" keeps both and is pulled by the digest.
// The grammar is distribution's reference grammar; only sha256 digests are accepted.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <string>
#include <string_view>

#include "boxlite/result.h"

namespace boxlite::image {

inline constexpr std::string_view kDockerHubDomain = "docker.io";

struct Reference {
  std::string registry;    // "docker.io", "ghcr.io", "127.0.0.1:5000", "localhost".
  std::string repository;  // "library/alpine".
  std::string tag;         // "latest"; empty when only a digest was given.
  std::string digest;      // "sha256:<64 hex>" or empty.

  // The normalized form: "docker.io/library/alpine:latest", "host/r@sha256:..",
  // "host/r:t@sha256:..".
  std::string String() const;
  // registry/repository, without tag or digest.
  std::string Name() const;
  // What a registry's /manifests/<x> endpoint takes: the digest when set, else the tag.
  std::string ManifestReference() const { return digest.empty() ? tag : digest; }
  bool IsDockerHub() const { return registry == kDockerHubDomain; }

  bool operator==(const Reference&) const = default;
};

// Parses and normalises `ref`. InvalidArgument names the reference and what is wrong
// ("invalid image reference \"Alpine\": repository name must be lowercase").
Result<Reference> ParseReference(std::string_view ref);

// Checks "sha256:<64 lowercase hex>". InvalidArgument otherwise ("what" names the field in
// the message, e.g. "layer digest").
Status ValidateDigest(std::string_view digest, std::string_view what = "digest");

// The hex part of a validated sha256 digest.
inline std::string_view DigestHex(std::string_view digest) { return digest.substr(7); }

}  // namespace boxlite::image

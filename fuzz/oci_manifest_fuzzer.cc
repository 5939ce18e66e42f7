// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Fuzzes the parsers of registry documents: manifests and indexes (under each content
// type), image configs, platform selection, WWW-Authenticate headers, token responses and
// docker config.json credentials. The first byte picks the parser; the rest is the input.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "src/image/auth.h"
#include "src/image/manifest.h"
#include "src/image/reference.h"

namespace {

using namespace boxlite::image;  // NOLINT: a fuzzer entry point, not a header.

constexpr std::string_view kContentTypes[] = {
    "", "application/json", kMediaTypeOciManifest, kMediaTypeOciIndex,
    kMediaTypeDockerManifest, kMediaTypeDockerManifestList, kMediaTypeDockerSchema1Signed};

void FuzzManifest(std::string_view body, std::string_view content_type) {
  auto m = ParseManifest(body, content_type);
  if (!m.ok()) return;
  if (m->kind == ManifestKind::kIndex) {
    for (const Platform& p : {Platform{"linux", "amd64", ""}, Platform{"linux", "arm64", "v8"},
                              Platform{"linux", "arm", "v7"}}) {
      auto d = SelectPlatform(*m, p, "fuzz");
      if (d.ok() && (!d->platform || !PlatformMatches(p, *d->platform))) __builtin_trap();
    }
  } else {
    for (const auto& layer : m->layers) {
      if (!LayerCompressionOf(layer.media_type)) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  uint8_t selector = data[0];
  switch (selector % 6) {
    case 0:
      FuzzManifest(input, kContentTypes[(selector / 6) % std::size(kContentTypes)]);
      break;
    case 1: {
      auto c = ParseImageConfig(input);
      if (!c.ok()) break;
      for (const auto& d : c->diff_ids) {
        if (!ValidateDigest(d).ok()) __builtin_trap();
      }
      break;
    }
    case 2: {
      auto challenges = ParseWwwAuthenticate(input);
      if (challenges.ok() && challenges->empty()) __builtin_trap();
      break;
    }
    case 3: {
      auto token = ParseTokenResponse(input);
      if (token.ok() && token->token.empty()) __builtin_trap();
      break;
    }
    case 4: {
      auto creds = CredentialsFromDockerConfig(input, "docker.io");
      (void)creds;
      auto other = CredentialsFromDockerConfig(input, "127.0.0.1:5000");
      (void)other;
      break;
    }
    case 5: {
      auto decoded = Base64Decode(input);
      if (decoded && Base64Decode(Base64Encode(*decoded)) != decoded) __builtin_trap();
      (void)ParseRfc3339(input);
      break;
    }
  }
  return 0;
}

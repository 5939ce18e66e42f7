// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/image/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace boxlite::image {
namespace {

using nlohmann::json;

std::string D(char c) { return "sha256:" + std::string(64, c); }

json ImageManifest(std::string_view media_type, std::string_view config_type,
                   std::string_view layer_type) {
  json m = {{"schemaVersion", 2},
            {"config", {{"mediaType", config_type}, {"digest", D('c')}, {"size", 100}}},
            {"layers",
             {{{"mediaType", layer_type}, {"digest", D('1')}, {"size", 10}},
              {{"mediaType", layer_type}, {"digest", D('2')}, {"size", 20}}}}};
  if (!media_type.empty()) m["mediaType"] = media_type;
  return m;
}

json Entry(char digest, const std::string& os, const std::string& arch,
           const std::string& variant = "") {
  json p = {{"os", os}, {"architecture", arch}};
  if (!variant.empty()) p["variant"] = variant;
  return {{"mediaType", kMediaTypeOciManifest}, {"digest", D(digest)}, {"size", 500},
          {"platform", p}};
}

json Index(std::string_view media_type, std::vector<json> entries) {
  json i = {{"schemaVersion", 2}, {"manifests", entries}};
  if (!media_type.empty()) i["mediaType"] = media_type;
  return i;
}

TEST(ManifestTest, AcceptHeaderNamesAllFourTypes) {
  std::string accept = ManifestAcceptHeader();
  for (auto t : {kMediaTypeOciManifest, kMediaTypeOciIndex, kMediaTypeDockerManifest,
                 kMediaTypeDockerManifestList}) {
    EXPECT_NE(accept.find(t), std::string::npos) << t;
  }
}

TEST(ManifestTest, OciImageManifest) {
  auto m = ParseManifest(
      ImageManifest(kMediaTypeOciManifest, kMediaTypeOciConfig, kMediaTypeOciLayerGzip).dump(),
      "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->kind, ManifestKind::kImage);
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->config.digest, D('c'));
  EXPECT_EQ(m->config.size, 100u);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].digest, D('2'));
  EXPECT_EQ(m->layers[1].size, 20u);
}

TEST(ManifestTest, DockerV2ManifestFromContentTypeWithParameters) {
  // No mediaType in the body: the Content-Type decides.
  auto m = ParseManifest(ImageManifest("", kMediaTypeDockerConfig, kMediaTypeDockerLayerGzip).dump(),
                         "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->kind, ManifestKind::kImage);
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
}

TEST(ManifestTest, DocumentMediaTypeWinsOverGenericContentType) {
  auto m = ParseManifest(Index(kMediaTypeDockerManifestList, {Entry('a', "linux", "amd64")}).dump(),
                         "application/json");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->kind, ManifestKind::kIndex);
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifestList);
}

TEST(ManifestTest, OciIndexAndShapeDetection) {
  auto idx = ParseManifest(Index("", {Entry('a', "linux", "amd64"), Entry('b', "linux", "arm64", "v8")}).dump(), "");
  ASSERT_TRUE(idx.ok()) << idx.error().ToString();
  EXPECT_EQ(idx->kind, ManifestKind::kIndex);
  EXPECT_EQ(idx->media_type, kMediaTypeOciIndex);
  ASSERT_EQ(idx->manifests.size(), 2u);
  ASSERT_TRUE(idx->manifests[1].platform.has_value());
  EXPECT_EQ(idx->manifests[1].platform->String(), "linux/arm64/v8");

  auto img = ParseManifest(ImageManifest("", kMediaTypeOciConfig, kMediaTypeOciLayer).dump(), "");
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  EXPECT_EQ(img->kind, ManifestKind::kImage);
}

TEST(ManifestTest, Schema1IsRefusedClearly) {
  json s1 = {{"schemaVersion", 1}, {"name", "x"}, {"tag", "latest"}, {"fsLayers", json::array()}};
  for (const char* ctype : {"", "application/json"}) {
    auto m = ParseManifest(s1.dump(), ctype);
    ASSERT_FALSE(m.ok());
    EXPECT_TRUE(m.error().IsNotSupported()) << m.error().ToString();
    EXPECT_NE(m.error().message().find("schema 1"), std::string::npos);
  }
  for (auto ctype : {kMediaTypeDockerSchema1, kMediaTypeDockerSchema1Signed}) {
    auto m = ParseManifest("{}", ctype);
    ASSERT_FALSE(m.ok());
    EXPECT_TRUE(m.error().IsNotSupported());
    EXPECT_NE(m.error().message().find("re-push"), std::string::npos) << m.error().message();
  }
}

TEST(ManifestTest, MalformedDocumentsAreCorruption) {
  std::vector<std::string> bad = {
      "not json",
      "[]",
      R"({"schemaVersion":3,"layers":[],"config":{}})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})",
      json({{"schemaVersion", 2},
            {"config", {{"mediaType", kMediaTypeOciConfig}, {"digest", "sha256:zz"}, {"size", 1}}},
            {"layers", json::array()}})
          .dump(),
      json({{"schemaVersion", 2},
            {"config", {{"mediaType", kMediaTypeOciConfig}, {"digest", D('c')}, {"size", -1}}},
            {"layers", json::array()}})
          .dump(),
      json({{"schemaVersion", 2},
            {"config", {{"mediaType", kMediaTypeOciConfig}, {"digest", D('c')}, {"size", 1}}},
            {"layers", "nope"}})
          .dump(),
      R"({"schemaVersion":2,"manifests":[{"digest":5}]})",
      R"({"schemaVersion":2})",
  };
  for (const auto& body : bad) {
    auto m = ParseManifest(body, "");
    EXPECT_FALSE(m.ok()) << body;
    if (!m.ok()) {
      EXPECT_TRUE(m.error().IsCorruption()) << body << " -> " << m.error().ToString();
    }
  }
}

TEST(ManifestTest, UnsupportedTypesAreNotSupported) {
  auto artifact = ParseManifest(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"})", "");
  ASSERT_FALSE(artifact.ok());
  EXPECT_TRUE(artifact.error().IsNotSupported());
  auto helm = ParseManifest(
      ImageManifest(kMediaTypeOciManifest, "application/vnd.cncf.helm.config.v1+json",
                    kMediaTypeOciLayerGzip)
          .dump(),
      "");
  ASSERT_FALSE(helm.ok());
  EXPECT_NE(helm.error().message().find("not a container image"), std::string::npos);
  auto foreign = ParseManifest(
      ImageManifest(kMediaTypeDockerManifest, kMediaTypeDockerConfig,
                    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
          .dump(),
      "");
  ASSERT_FALSE(foreign.ok());
  EXPECT_TRUE(foreign.error().IsNotSupported());
  EXPECT_NE(foreign.error().message().find(D('1')), std::string::npos);
}

TEST(PlatformTest, SelectsHostAndRespectsVariant) {
  auto idx = ParseManifest(Index(kMediaTypeOciIndex,
                                 {Entry('e', "unknown", "unknown"), Entry('6', "linux", "arm", "v6"),
                                  Entry('7', "linux", "arm", "v7"), Entry('8', "linux", "arm64", "v8"),
                                  Entry('a', "linux", "amd64"), Entry('f', "windows", "amd64")})
                               .dump(),
                           "");
  ASSERT_TRUE(idx.ok()) << idx.error().ToString();
  auto pick = [&](Platform p) {
    auto d = SelectPlatform(*idx, p, "test");
    return d.ok() ? d->digest : d.error().message();
  };
  EXPECT_EQ(pick({"linux", "amd64", ""}), D('a'));
  EXPECT_EQ(pick({"windows", "amd64", ""}), D('f'));
  EXPECT_EQ(pick({"linux", "arm64", ""}), D('8'));  // "" means v8 for arm64.
  EXPECT_EQ(pick({"linux", "arm", "v7"}), D('7'));  // Exact beats compatible v6.
  EXPECT_EQ(pick({"linux", "arm", "v6"}), D('6'));
  EXPECT_EQ(pick({"linux", "x86_64", ""}), D('a'));  // uname spelling.
}

TEST(PlatformTest, NoMatchListsAvailablePlatforms) {
  auto idx = ParseManifest(
      Index(kMediaTypeDockerManifestList, {Entry('8', "linux", "arm64", "v8"),
                                           Entry('5', "linux", "s390x"),
                                           Entry('e', "unknown", "unknown")})
          .dump(),
      "");
  ASSERT_TRUE(idx.ok());
  auto d = SelectPlatform(*idx, Platform{"linux", "amd64", ""}, "image docker.io/library/x:1");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.error().IsNotFound());
  EXPECT_EQ(d.error().message(),
            "no image for platform linux/amd64 in image docker.io/library/x:1: available: "
            "linux/arm64/v8, linux/s390x");
}

TEST(PlatformTest, ArmV7HostDoesNotRunArm64AndAmd64LevelsNest) {
  EXPECT_FALSE(PlatformMatches({"linux", "arm", "v7"}, {"linux", "arm64", "v8"}));
  EXPECT_FALSE(PlatformMatches({"linux", "arm", "v6"}, {"linux", "arm", "v7"}));
  EXPECT_TRUE(PlatformMatches({"linux", "amd64", "v3"}, {"linux", "amd64", "v2"}));
  EXPECT_FALSE(PlatformMatches({"linux", "amd64", ""}, {"linux", "amd64", "v3"}));
  EXPECT_TRUE(PlatformMatches({"linux", "amd64", ""}, {"linux", "amd64", "v1"}));
}

TEST(PlatformTest, ParseAndHost) {
  auto p = ParsePlatform("Linux/AArch64/V8");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->String(), "linux/arm64/v8");
  EXPECT_FALSE(ParsePlatform("linux").ok());
  EXPECT_FALSE(ParsePlatform("linux/").ok());
  Platform host = HostPlatform();
  EXPECT_EQ(host.os, "linux");
  EXPECT_FALSE(host.architecture.empty());
}

TEST(ImageConfigTest, HonoursRuntimeFields) {
  json cfg = {
      {"created", "2024-01-02T03:04:05.123456789Z"},
      {"architecture", "amd64"},
      {"os", "linux"},
      {"config",
       {{"Env", {"PATH=/usr/bin", "A=b=c"}},
        {"Entrypoint", {"/entry"}},
        {"Cmd", {"run", "--x"}},
        {"WorkingDir", "/app"},
        {"User", "nobody"},
        {"Labels", {{"a", "1"}, {"b", "2"}}},
        {"ExposedPorts", {{"443/tcp", json::object()}, {"53/udp", json::object()}}},
        {"Volumes", {{"/data", json::object()}}},
        {"StopSignal", "SIGTERM"}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {D('1'), D('2')}}}}};
  auto c = ParseImageConfig(cfg.dump());
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->config.env, (std::vector<std::string>{"PATH=/usr/bin", "A=b=c"}));
  EXPECT_EQ(c->config.entrypoint, (std::vector<std::string>{"/entry"}));
  EXPECT_EQ(c->config.cmd, (std::vector<std::string>{"run", "--x"}));
  EXPECT_EQ(c->config.working_dir, "/app");
  EXPECT_EQ(c->config.user, "nobody");
  EXPECT_EQ(c->config.labels.at("b"), "2");
  EXPECT_EQ(c->config.exposed_ports, (std::vector<std::string>{"443/tcp", "53/udp"}));
  EXPECT_EQ(c->config.volumes, (std::vector<std::string>{"/data"}));
  EXPECT_EQ(c->config.stop_signal, "SIGTERM");
  EXPECT_EQ(c->config.architecture, "amd64");
  EXPECT_EQ(c->diff_ids, (std::vector<std::string>{D('1'), D('2')}));
  EXPECT_EQ(c->created_unix, 1704164645);
}

TEST(ImageConfigTest, NullFieldsAndMissingConfigAreEmpty) {
  auto c = ParseImageConfig(
      R"({"config":{"Cmd":null,"Entrypoint":null,"Env":null},"rootfs":{"type":"layers","diff_ids":[]}})");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_TRUE(c->config.cmd.empty());
  EXPECT_TRUE(c->config.entrypoint.empty());
  EXPECT_EQ(c->created_unix, 0);
  auto bare = ParseImageConfig(R"({"rootfs":{"type":"layers","diff_ids":[]}})");
  ASSERT_TRUE(bare.ok());
}

TEST(ImageConfigTest, BadConfigsAreCorruption) {
  for (const char* bad :
       {"{}", "[]", R"({"rootfs":{"type":"zfs","diff_ids":[]}})",
        R"({"rootfs":{"type":"layers","diff_ids":["sha256:bad"]}})",
        R"({"config":{"Env":[1]},"rootfs":{"type":"layers","diff_ids":[]}})",
        R"({"config":{"Labels":{"a":1}},"rootfs":{"type":"layers","diff_ids":[]}})",
        R"({"config":"x","rootfs":{"type":"layers","diff_ids":[]}})"}) {
    auto c = ParseImageConfig(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_TRUE(c.error().IsCorruption()) << bad;
    }
  }
}

TEST(Rfc3339Test, Parses) {
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z").value_or(-1), 0);
  EXPECT_EQ(ParseRfc3339("2000-03-01T00:00:00Z").value_or(-1), 951868800);
  EXPECT_EQ(ParseRfc3339("2024-01-02T05:04:05+02:00").value_or(-1), 1704164645);
  EXPECT_EQ(ParseRfc3339("2024-01-01T23:04:05-04:00").value_or(-1), 1704164645);
  EXPECT_FALSE(ParseRfc3339("2024-01-02").has_value());
  EXPECT_FALSE(ParseRfc3339("2024-13-02T00:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2024-01-02T00:00:00").has_value());
  EXPECT_FALSE(ParseRfc3339("2024-01-02T00:00:00Zjunk").has_value());
}

TEST(LayerCompressionTest, KnownTypes) {
  EXPECT_EQ(LayerCompressionOf(kMediaTypeDockerLayerGzip), LayerCompression::kGzip);
  EXPECT_EQ(LayerCompressionOf(kMediaTypeOciLayerZstd), LayerCompression::kZstd);
  EXPECT_EQ(LayerCompressionOf(kMediaTypeOciLayer), LayerCompression::kNone);
  EXPECT_FALSE(LayerCompressionOf("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"));
}

}  // namespace
}  // namespace boxlite::image

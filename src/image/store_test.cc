// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Store tests that need no network: images come from OCI layouts and docker-save
// archives generated here; rootfs builds use a fake Ext4Builder, and the real one in
// StoreTest.RealExt4Builder.
//
// Size: one file because every case shares the layout and archive generators; each TEST is
// independent and can be run alone with --gtest_filter.
#include "src/image/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "src/base/strings.h"
#include "src/image/image_test_util.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"

#if defined(__SANITIZE_THREAD__)
#define BOXLITE_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BOXLITE_TEST_TSAN 1
#endif
#endif
#ifdef BOXLITE_TEST_TSAN
// The multi-process tests fork a threaded process and start threads in the children,
// which TSan refuses by default; the children run only our own code.
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }
#endif

namespace boxlite::image {
namespace {

using testing::Compression;
using testing::MakeTestImage;
using testing::ReadFileOrDie;
using testing::TarEntry;
using testing::TestImage;
using testing::TestImageOptions;
using testing::WriteFile;

TestImageOptions TwoLayers(const std::string& tag, Compression c = Compression::kGzip) {
  TestImageOptions o;
  o.compression = c;
  o.layers = {
      {{"bin", "", TarEntry::Type::kDir}, {"bin/tool", "#!/bin/sh\necho base\n", TarEntry::Type::kFile, 0755}},
      {{"etc", "", TarEntry::Type::kDir}, {"etc/release", "release " + tag + "\n"}},
  };
  return o;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = sys::TempDir::Create("/tmp", "store-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = std::make_unique<sys::TempDir>(std::move(*dir));
    images_dir_ = tmp_->path() + "/images";
    fake_.creates = &creates_;
    fake_.sizes = &sizes_;
    OpenStore();
  }

  void OpenStore() {
    StoreOptions opts;
    opts.platform_os = "linux";
    opts.platform_arch = "amd64";
    opts.platform_variant = "";
    opts.docker_config_path = "";
    testing::FakeBuilderConfig* fake = &fake_;
    opts.ext4_builder_factory = [fake](const std::string& path, const Ext4BuildOptions& o) {
      return testing::CreateFakeBuilder(*fake, path, o);
    };
    auto store = Store::Open(images_dir_, std::move(opts));
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_ = std::move(*store);
  }

  std::string Path(const std::string& rel) const { return tmp_->path() + "/" + rel; }
  std::string BlobPath(const std::string& digest) const {
    return images_dir_ + "/blobs/sha256/" + digest.substr(7);
  }
  std::vector<std::string> Blobs() const {
    return testing::ListDirOrEmpty(images_dir_ + "/blobs/sha256");
  }
  std::vector<std::string> TmpFiles() const { return testing::ListDirOrEmpty(images_dir_ + "/tmp"); }
  std::string IndexText() const {
    auto text = sys::ReadFile(images_dir_ + "/index.json");
    return text ? *text : std::string();
  }

  // Writes an OCI layout with `image` named `name` and imports it.
  Result<std::vector<LocalImage>> ImportLayout(const TestImage& image, const std::string& name,
                                               const std::string& dir_name,
                                               std::string_view tag = {}) {
    std::string dir = Path(dir_name);
    testing::WriteOciLayout(dir, {{image, name}});
    return store_->Import(dir, tag);
  }

  std::unique_ptr<sys::TempDir> tmp_;
  std::string images_dir_;
  std::unique_ptr<Store> store_;
  std::atomic<int> creates_{0};
  std::vector<uint64_t> sizes_;
  testing::FakeBuilderConfig fake_;
};

void ExpectConfigHonoured(const LocalImage& img) {
  EXPECT_EQ(img.config.env, (std::vector<std::string>{"PATH=/usr/bin:/bin", "GREETING=hello"}));
  EXPECT_EQ(img.config.entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(img.config.cmd, (std::vector<std::string>{"echo hi"}));
  EXPECT_EQ(img.config.working_dir, "/srv");
  EXPECT_EQ(img.config.user, "1000:1000");
  EXPECT_EQ(img.config.labels.at("org.example.k"), "v");
  EXPECT_EQ(img.config.exposed_ports, (std::vector<std::string>{"8080/tcp"}));
  EXPECT_EQ(img.config.os, "linux");
  EXPECT_EQ(img.config.architecture, "amd64");
}

TEST_F(StoreTest, OpenCreatesLayoutAndEmptyStoreLists) {
  for (const char* sub : {"blobs/sha256", "rootfs", "locks", "tmp"}) {
    EXPECT_TRUE(sys::IsDirectory(images_dir_ + "/" + sub)) << sub;
  }
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  auto get = store_->Get("alpine");
  ASSERT_FALSE(get.ok());
  EXPECT_TRUE(get.error().IsNotFound());
  EXPECT_EQ(get.error().message(),
            "image docker.io/library/alpine:latest not found locally: pull it or import it first");
  EXPECT_TRUE(store_->Get("Bad Ref").error().IsInvalidArgument());
}

TEST_F(StoreTest, ImportsOciLayoutDirectoryAndVerifiesEverything) {
  TestImage image = MakeTestImage(TwoLayers("1"));
  auto imported = ImportLayout(image, "v1", "my-app");
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  ASSERT_EQ(imported->size(), 1u);
  const LocalImage& img = (*imported)[0];
  // A bare ref.name is a tag of a localhost repository named after the directory.
  EXPECT_EQ(img.reference, "localhost/my-app:v1");
  EXPECT_EQ(img.manifest_digest, image.manifest_digest);
  EXPECT_EQ(img.config_digest, image.config_digest);
  ASSERT_EQ(img.layer_digests.size(), 2u);
  EXPECT_EQ(img.layer_digests[0], image.layers[0].digest);
  EXPECT_EQ(img.diff_ids[1], image.layers[1].diff_id);
  EXPECT_EQ(img.size_bytes, image.layers[0].blob.size() + image.layers[1].blob.size());
  EXPECT_EQ(img.created_unix, 1714979289);
  ExpectConfigHonoured(img);
  // Blobs are stored by digest with their exact content.
  EXPECT_EQ(ReadFileOrDie(BlobPath(image.layers[1].digest)), image.layers[1].blob);
  EXPECT_EQ(ReadFileOrDie(BlobPath(image.manifest_digest)), image.manifest);
  EXPECT_EQ(ReadFileOrDie(BlobPath(image.config_digest)), image.config);
  EXPECT_EQ(Blobs().size(), 4u);
  EXPECT_TRUE(TmpFiles().empty());

  auto got = store_->Get("localhost/my-app:v1");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->manifest_digest, image.manifest_digest);
  // By digest as well.
  auto by_digest = store_->Get("localhost/my-app@" + image.manifest_digest);
  ASSERT_TRUE(by_digest.ok()) << by_digest.error().ToString();
  EXPECT_EQ(by_digest->reference, "localhost/my-app@" + image.manifest_digest);

  // index.json maps the normalized reference to the manifest digest.
  auto index = nlohmann::json::parse(IndexText());
  EXPECT_EQ(index["version"], 1);
  EXPECT_EQ(index["images"]["localhost/my-app:v1"]["manifest"], image.manifest_digest);
}

TEST_F(StoreTest, ImportWithTagNamesTheImage) {
  TestImage image = MakeTestImage(TwoLayers("1", Compression::kZstd));
  auto imported = ImportLayout(image, "v1", "layout", "registry.example.com/team/app:2.0");
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].reference, "registry.example.com/team/app:2.0");
  EXPECT_FALSE(store_->Get("localhost/layout:v1").ok());
  auto bad = ImportLayout(image, "v1", "layout2", "Bad:Tag");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().IsInvalidArgument());
}

TEST_F(StoreTest, ImportsOciLayoutTarballWithFullNames) {
  TestImage a = MakeTestImage(TwoLayers("a"));
  TestImage b = MakeTestImage(TwoLayers("b"));
  std::string dir = Path("layout");
  testing::WriteOciLayout(dir, {{a, "docker.io/library/app:a"}, {b, "ghcr.io/x/app:b"}});
  std::string tar_path = Path("layout.tar");
  WriteFile(tar_path, testing::TarDirectory(dir));
  auto imported = store_->Import(tar_path, "");
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  ASSERT_EQ(imported->size(), 2u);
  auto got_a = store_->Get("app:a");
  ASSERT_TRUE(got_a.ok()) << got_a.error().ToString();
  EXPECT_EQ(got_a->manifest_digest, a.manifest_digest);
  auto got_b = store_->Get("ghcr.io/x/app:b");
  ASSERT_TRUE(got_b.ok());
  EXPECT_EQ(got_b->manifest_digest, b.manifest_digest);
  // The shared first layer is stored once: 2 manifests, 2 configs, 3 distinct layers.
  EXPECT_EQ(Blobs().size(), 7u);
  EXPECT_TRUE(TmpFiles().empty());
  // A name cannot be given to two images.
  auto tagged = store_->Import(tar_path, "one:name");
  ASSERT_FALSE(tagged.ok());
  EXPECT_TRUE(tagged.error().IsInvalidArgument());
  EXPECT_NE(tagged.error().message().find("holds 2 images"), std::string::npos);
}

TEST_F(StoreTest, ImportsDockerSaveTarballGzipped) {
  TestImage image = MakeTestImage(TwoLayers("1", Compression::kNone));
  std::string path = Path("saved.tar.gz");
  WriteFile(path, testing::MakeDockerSave({{image, {"myapp:1.0", "127.0.0.1:5000/x/myapp:latest"}}},
                                          Compression::kGzip));
  auto imported = store_->Import(path, "");
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  ASSERT_EQ(imported->size(), 2u);
  std::set<std::string> refs;
  for (const auto& img : *imported) refs.insert(img.reference);
  EXPECT_EQ(refs, (std::set<std::string>{"docker.io/library/myapp:1.0",
                                         "127.0.0.1:5000/x/myapp:latest"}));
  auto img = store_->Get("myapp:1.0");
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  ExpectConfigHonoured(*img);
  // docker save keeps the config; the manifest is synthesised (OCI) around it.
  EXPECT_EQ(img->config_digest, image.config_digest);
  EXPECT_EQ(img->layer_digests[0], image.layers[0].digest);  // Uncompressed: digest == diff_id.
  EXPECT_EQ(img->diff_ids, (std::vector<std::string>{image.layers[0].diff_id, image.layers[1].diff_id}));
  auto manifest = nlohmann::json::parse(ReadFileOrDie(BlobPath(img->manifest_digest)));
  EXPECT_EQ(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(manifest["layers"][1]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
  EXPECT_TRUE(TmpFiles().empty());
}

TEST_F(StoreTest, ImportsDockerSaveWithoutTagsUnderFileName) {
  TestImage image = MakeTestImage(TwoLayers("1", Compression::kNone));
  std::string path = Path("Backup_2024.tar");
  WriteFile(path, testing::MakeDockerSave({{image, {}}}, Compression::kNone));
  auto imported = store_->Import(path, "");
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].reference, "localhost/backup-2024:latest");
}

TEST_F(StoreTest, DockerSaveLayerNotMatchingDiffIdIsRejectedAndNothingRecorded) {
  TestImageOptions o = TwoLayers("1", Compression::kNone);
  o.diff_id_override[1] = "sha256:" + std::string(64, 'e');
  TestImage image = MakeTestImage(o);
  std::string path = Path("bad.tar");
  WriteFile(path, testing::MakeDockerSave({{image, {"bad:1"}}}, Compression::kNone));
  auto imported = store_->Import(path, "");
  ASSERT_FALSE(imported.ok());
  EXPECT_TRUE(imported.error().IsCorruption()) << imported.error().ToString();
  EXPECT_NE(imported.error().message().find("layer 1 (layer1/layer.tar)"), std::string::npos)
      << imported.error().message();
  EXPECT_NE(imported.error().message().find("does not match its digest"), std::string::npos);
  EXPECT_FALSE(sys::Exists(BlobPath(image.layers[1].digest)));
  EXPECT_TRUE(TmpFiles().empty());
  EXPECT_EQ(IndexText(), "");
  EXPECT_FALSE(store_->Get("bad:1").ok());
}

TEST_F(StoreTest, CorruptBlobInLayoutIsRejectedAndLeavesNothingBehind) {
  // First a good image, so index.json exists and must stay byte-identical.
  ASSERT_TRUE(ImportLayout(MakeTestImage(TwoLayers("good")), "v1", "good").ok());
  const std::string index_before = IndexText();
  const auto blobs_before = Blobs();

  TestImage image = MakeTestImage(TwoLayers("bad"));
  std::string dir = Path("bad");
  testing::WriteOciLayout(dir, {{image, "v1"}});
  std::string layer_file = dir + "/blobs/sha256/" + image.layers[1].digest.substr(7);
  std::string data = ReadFileOrDie(layer_file);
  data[data.size() / 2] ^= 0x55;
  WriteFile(layer_file, data);

  auto imported = store_->Import(dir, "");
  ASSERT_FALSE(imported.ok());
  EXPECT_TRUE(imported.error().IsCorruption()) << imported.error().ToString();
  EXPECT_NE(imported.error().message().find(image.layers[1].digest), std::string::npos);
  EXPECT_NE(imported.error().message().find("does not match its digest"), std::string::npos);
  EXPECT_FALSE(sys::Exists(BlobPath(image.layers[1].digest)));
  EXPECT_TRUE(TmpFiles().empty());
  EXPECT_EQ(IndexText(), index_before);
  EXPECT_FALSE(store_->Get("localhost/bad:v1").ok());
  // Blobs verified before the failure may stay (complete and correct); GC removes them.
  auto freed = store_->GarbageCollect();
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(Blobs(), blobs_before);
}

TEST_F(StoreTest, RejectsNonArchivesAndWrongPlatforms) {
  std::string junk = Path("junk.bin");
  WriteFile(junk, std::string(10000, 'x'));
  auto r = store_->Import(junk, "");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().IsInvalidArgument()) << r.error().ToString();
  auto missing = store_->Import(Path("nope"), "");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.error().IsNotFound());
  std::string empty_dir = Path("empty");
  ASSERT_TRUE(sys::MakeDirs(empty_dir).ok());
  auto empty = store_->Import(empty_dir, "");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("neither index.json"), std::string::npos);

  // A layout whose only entry is for arm64.
  TestImageOptions o = TwoLayers("arm");
  o.architecture = "arm64";
  TestImage image = MakeTestImage(o);
  std::string dir = Path("armlayout");
  testing::WriteOciLayout(dir, {{image, "v1"}});
  auto index = nlohmann::json::parse(ReadFileOrDie(dir + "/index.json"));
  index["manifests"][0]["platform"] = {{"os", "linux"}, {"architecture", "arm64"}};
  WriteFile(dir + "/index.json", index.dump());
  auto arm = store_->Import(dir, "");
  ASSERT_FALSE(arm.ok());
  EXPECT_TRUE(arm.error().IsNotFound());
  EXPECT_NE(arm.error().message().find("available: linux/arm64"), std::string::npos)
      << arm.error().message();
}

TEST_F(StoreTest, ImportPicksTheHostPlatformFromANestedIndex) {
  TestImage amd = MakeTestImage(TwoLayers("amd"));
  TestImageOptions arm_options = TwoLayers("arm");
  arm_options.architecture = "arm64";
  TestImage arm = MakeTestImage(arm_options);
  std::string dir = Path("multi");
  testing::WriteOciLayout(dir, {{amd, ""}, {arm, ""}});
  nlohmann::json list = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests",
       {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", arm.manifest_digest},
         {"size", arm.manifest.size()},
         {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}},
        {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", amd.manifest_digest},
         {"size", amd.manifest.size()},
         {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
  std::string body = list.dump();
  std::string digest = testing::Sha256Digest(body);
  WriteFile(dir + "/blobs/sha256/" + digest.substr(7), body);
  nlohmann::json index = {
      {"schemaVersion", 2},
      {"manifests",
       {{{"mediaType", "application/vnd.oci.image.index.v1+json"},
         {"digest", digest},
         {"size", body.size()},
         {"annotations", {{"io.containerd.image.name", "docker.io/library/multi:1"},
                          {"org.opencontainers.image.ref.name", "1"}}}}}}};
  WriteFile(dir + "/index.json", index.dump());
  auto imported = store_->Import(dir, "");
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].reference, "docker.io/library/multi:1");
  EXPECT_EQ((*imported)[0].manifest_digest, amd.manifest_digest);
  EXPECT_EQ((*imported)[0].config.architecture, "amd64");
  EXPECT_FALSE(sys::Exists(BlobPath(arm.layers[1].digest)));
}

TEST_F(StoreTest, RemoveUntagsAndCollectsGarbage) {
  TestImage a = MakeTestImage(TwoLayers("a"));
  TestImage b = MakeTestImage(TwoLayers("b"));
  ASSERT_TRUE(ImportLayout(a, "docker.io/library/app:a", "la").ok());
  ASSERT_TRUE(ImportLayout(b, "docker.io/library/app:b", "lb").ok());
  ASSERT_TRUE(ImportLayout(a, "docker.io/library/app:a2", "la2").ok());  // Second tag.
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].reference, "docker.io/library/app:a");
  auto rootfs_a = store_->Rootfs((*list)[0]);
  ASSERT_TRUE(rootfs_a.ok()) << rootfs_a.error().ToString();
  auto rootfs_b = store_->Rootfs((*list)[2]);
  ASSERT_TRUE(rootfs_b.ok());

  // Removing one of two tags frees nothing.
  ASSERT_TRUE(store_->Remove("app:a").ok());
  EXPECT_TRUE(sys::Exists(BlobPath(a.manifest_digest)));
  EXPECT_TRUE(sys::Exists(rootfs_a->path));
  EXPECT_EQ(store_->Remove("app:a").code(), StatusCode::kNotFound);

  // Removing b deletes its unique blobs and rootfs but keeps the shared layer.
  ASSERT_TRUE(store_->Remove("app:b").ok());
  EXPECT_FALSE(sys::Exists(BlobPath(b.manifest_digest)));
  EXPECT_FALSE(sys::Exists(BlobPath(b.config_digest)));
  EXPECT_FALSE(sys::Exists(BlobPath(b.layers[1].digest)));
  EXPECT_TRUE(sys::Exists(BlobPath(b.layers[0].digest)));  // == a.layers[0]
  EXPECT_FALSE(sys::Exists(rootfs_b->path));
  EXPECT_TRUE(sys::Exists(rootfs_a->path));

  // A hard link held elsewhere (a box's backing file) survives GC of the image.
  std::string box_link = Path("box-base.ext4");
  ASSERT_EQ(::link(rootfs_a->path.c_str(), box_link.c_str()), 0);
  const std::string base_content = ReadFileOrDie(box_link);

  // Unreferenced leftovers (a crashed download, a stray blob) are collected too.
  WriteFile(images_dir_ + "/tmp/blob-crashed", std::string(5000, 'x'));
  WriteFile(BlobPath("sha256:" + std::string(64, '0')), std::string(9000, 'y'));
  auto freed = store_->GarbageCollect();
  ASSERT_TRUE(freed.ok()) << freed.error().ToString();
  EXPECT_GE(*freed, 9000u + 5000u);
  EXPECT_TRUE(TmpFiles().empty());
  EXPECT_EQ(Blobs().size(), 4u);  // a: manifest, config, two layers.

  // Removing by digest drops every tag of that manifest.
  ASSERT_TRUE(store_->Remove("app@" + a.manifest_digest).ok());
  EXPECT_TRUE(Blobs().empty());
  EXPECT_TRUE(testing::ListDirOrEmpty(images_dir_ + "/rootfs").empty());
  EXPECT_EQ(ReadFileOrDie(box_link), base_content);
  auto empty = store_->List();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(StoreTest, DamagedBlobIsCorruptionAndListSkipsIt) {
  TestImage image = MakeTestImage(TwoLayers("1"));
  ASSERT_TRUE(ImportLayout(image, "v1", "dmg").ok());
  WriteFile(BlobPath(image.config_digest), "{}");
  auto got = store_->Get("localhost/dmg:v1");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().IsCorruption());
  EXPECT_NE(got.error().message().find("damaged"), std::string::npos);
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  ::unlink(BlobPath(image.layers[0].digest).c_str());
  WriteFile(BlobPath(image.config_digest), image.config);
  auto incomplete = store_->Get("localhost/dmg:v1");
  ASSERT_FALSE(incomplete.ok());
  EXPECT_NE(incomplete.error().message().find("layer " + image.layers[0].digest + " is missing"),
            std::string::npos)
      << incomplete.error().message();
}

TEST_F(StoreTest, RootfsIsBuiltOnceVerifiedAndCachedByChainId) {
  TestImage image = MakeTestImage(TwoLayers("1"));
  auto imported = ImportLayout(image, "v1", "r");
  ASSERT_TRUE(imported.ok());
  const LocalImage& img = (*imported)[0];
  auto info = store_->Rootfs(img);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  std::string chain = ChainId(img.diff_ids);
  EXPECT_EQ(info->chain_id, chain);
  EXPECT_EQ(info->path, images_dir_ + "/rootfs/" + chain.substr(7) + ".ext4");
  // The fake writes the applied diff_ids in order.
  EXPECT_EQ(ReadFileOrDie(info->path), img.diff_ids[0] + "\n" + img.diff_ids[1] + "\n");
  EXPECT_GT(info->used_bytes, 0u);
  EXPECT_EQ(info->size_bytes % 4096, 0u);
  EXPECT_EQ(creates_.load(), 1);
  EXPECT_TRUE(TmpFiles().empty());

  // Cached: no second build, same sizes (from the sidecar).
  auto again = store_->Rootfs(img);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(creates_.load(), 1);
  EXPECT_EQ(again->used_bytes, info->used_bytes);
  EXPECT_EQ(again->size_bytes, info->size_bytes);

  // The same layers under another name share the rootfs.
  auto other = ImportLayout(image, "docker.io/library/other:1", "r2");
  ASSERT_TRUE(other.ok());
  auto shared = store_->Rootfs((*other)[0]);
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(shared->path, info->path);
  EXPECT_EQ(creates_.load(), 1);
}

TEST_F(StoreTest, RootfsHasHeadroomAndACompactVariantOnDemand) {
  TestImage image = MakeTestImage(TwoLayers("1"));
  auto imported = ImportLayout(image, "v1", "hc");
  ASSERT_TRUE(imported.ok());
  const LocalImage& img = (*imported)[0];
  std::string hex = ChainId(img.diff_ids).substr(7);

  // The default base: free space built in, whole block groups, the headroom recorded.
  auto roomy = store_->Rootfs(img);
  ASSERT_TRUE(roomy.ok()) << roomy.error().ToString();
  EXPECT_EQ(roomy->headroom_bytes, kRootfsHeadroom);
  EXPECT_GE(roomy->size_bytes, kRootfsHeadroom);
  EXPECT_EQ(roomy->size_bytes % (128ull << 20), 0u);
  EXPECT_EQ(creates_.load(), 1);

  // The compact base is another file, built only when asked for, without headroom.
  auto compact = store_->Rootfs(img, RootfsFit::kCompact);
  ASSERT_TRUE(compact.ok()) << compact.error().ToString();
  EXPECT_EQ(compact->path, images_dir_ + "/rootfs/" + hex + ".compact.ext4");
  EXPECT_EQ(compact->headroom_bytes, 0u);
  EXPECT_LT(compact->size_bytes + kRootfsHeadroom, roomy->size_bytes + (128ull << 20));
  EXPECT_EQ(creates_.load(), 2);
  auto again = store_->Rootfs(img, RootfsFit::kCompact);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size_bytes, compact->size_bytes);
  EXPECT_EQ(creates_.load(), 2);
  auto roomy_again = store_->Rootfs(img);
  ASSERT_TRUE(roomy_again.ok());
  EXPECT_EQ(roomy_again->headroom_bytes, kRootfsHeadroom);  // From the sidecar.
  EXPECT_EQ(creates_.load(), 2);

  // Both variants go with their chain.
  ASSERT_TRUE(store_->Remove(img.reference).ok());
  auto freed = store_->GarbageCollect();
  ASSERT_TRUE(freed.ok()) << freed.error().ToString();
  EXPECT_TRUE(testing::ListDirOrEmpty(images_dir_ + "/rootfs").empty());
}

TEST_F(StoreTest, ChainIdFollowsTheSpec) {
  std::string a = "sha256:" + std::string(64, 'a');
  std::string b = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(ChainId({a}), a);
  EXPECT_EQ(ChainId({a, b}), testing::Sha256Digest(a + " " + b));
  EXPECT_EQ(ChainId({}), testing::Sha256Digest(""));
}

TEST_F(StoreTest, RootfsDiffIdMismatchIsCorruptionNamingTheLayer) {
  TestImageOptions o = TwoLayers("1");
  o.diff_id_override[1] = "sha256:" + std::string(64, 'd');
  TestImage image = MakeTestImage(o);
  auto imported = ImportLayout(image, "v1", "mm");  // Compressed layers are checked at build.
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  auto info = store_->Rootfs((*imported)[0]);
  ASSERT_FALSE(info.ok());
  EXPECT_TRUE(info.error().IsCorruption());
  EXPECT_NE(info.error().message().find("layer 1 (" + image.layers[1].digest + ")"),
            std::string::npos)
      << info.error().message();
  EXPECT_NE(info.error().message().find("its content hashes to " + image.layers[1].diff_id),
            std::string::npos);
  EXPECT_TRUE(testing::ListDirOrEmpty(images_dir_ + "/rootfs").empty());
  EXPECT_TRUE(TmpFiles().empty());
}

TEST_F(StoreTest, RootfsFullFileSystemRetriesWithDoubleSize) {
  TestImage image = MakeTestImage(TwoLayers("1"));
  auto imported = ImportLayout(image, "v1", "full");
  ASSERT_TRUE(imported.ok());
  // The first size for this tiny image is the slack plus the headroom, rounded up to
  // whole block groups; demand more than that, so the build has to retry.
  fake_.min_size = 2 * kRootfsHeadroom;
  auto info = store_->Rootfs((*imported)[0]);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  ASSERT_GE(sizes_.size(), 2u);
  for (size_t i = 1; i < sizes_.size(); ++i) EXPECT_EQ(sizes_[i], 2 * sizes_[i - 1]);
  EXPECT_GE(info->size_bytes, fake_.min_size);
  EXPECT_EQ(info->size_bytes, sizes_.back());
  EXPECT_TRUE(TmpFiles().empty());

  // Too full even after retries: ResourceExhausted, nothing published.
  fake_.min_size = 1ull << 50;
  TestImage other = MakeTestImage(TwoLayers("2"));
  auto imported2 = ImportLayout(other, "v2", "full2");
  ASSERT_TRUE(imported2.ok());
  auto full = store_->Rootfs((*imported2)[0]);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(testing::ListDirOrEmpty(images_dir_ + "/rootfs").size(), 2u);  // Only the first.
  EXPECT_TRUE(TmpFiles().empty());
}

TEST_F(StoreTest, RealExt4Builder) {
  // The default factory (Ext4Builder::Create): the store's rootfs is a real ext4 image
  // that debugfs reads the layers' files back from.
  StoreOptions opts;
  opts.platform_arch = "amd64";
  auto store = Store::Open(images_dir_, std::move(opts));
  ASSERT_TRUE(store.ok());
  TestImage image = MakeTestImage(TwoLayers("real"));
  std::string dir = Path("real");
  testing::WriteOciLayout(dir, {{image, "v1"}});
  auto imported = (*store)->Import(dir, "");
  ASSERT_TRUE(imported.ok()) << imported.error().ToString();
  auto info = (*store)->Rootfs((*imported)[0]);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  auto out = sys::RunCommand({"debugfs", "-R", "cat /etc/release", info->path});
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_NE(out->find("release real"), std::string::npos) << *out;
  EXPECT_GT(info->used_bytes, 0u);
  EXPECT_LE(info->used_bytes, info->size_bytes);
}

// Two processes import the same archive and build the same rootfs at the same time while a
// third collects garbage: the store stays consistent and the rootfs is built exactly once.
TEST_F(StoreTest, TwoProcessesShareOneStore) {
  TestImage image = MakeTestImage(TwoLayers("fork"));
  std::string dir = Path("forklayout");
  testing::WriteOciLayout(dir, {{image, "docker.io/library/forked:1"}});
  std::string tar_path = Path("fork.tar");
  WriteFile(tar_path, testing::TarDirectory(dir));
  std::string log = Path("builds.log");
  std::string go = Path("go");

  std::vector<pid_t> children;
  for (int i = 0; i < 3; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: wait for the start signal so both run at once, then work and exit.
      while (!sys::Exists(go)) ::usleep(1000);
      StoreOptions opts;
      opts.platform_arch = "amd64";
      testing::FakeBuilderConfig fake;
      fake.log_path = log;
      opts.ext4_builder_factory = [fake](const std::string& p, const Ext4BuildOptions& o) {
        return testing::CreateFakeBuilder(fake, p, o);
      };
      auto run = [&]() -> int {
        for (int round = 0; round < 5; ++round) {
          auto store = Store::Open(images_dir_, opts);
          if (!store.ok()) return 10;
          if (i == 2) {
            // The third process only collects garbage while the others work.
            auto freed = (*store)->GarbageCollect();
            if (!freed.ok()) return 13;
            continue;
          }
          auto imported = (*store)->Import(i == 0 ? dir : tar_path, "");
          if (!imported.ok()) {
            std::fprintf(stderr, "child %d: %s\n", i, imported.error().ToString().c_str());
            return 11;
          }
          auto info = (*store)->Rootfs((*imported)[0]);
          if (!info.ok()) {
            std::fprintf(stderr, "child %d: %s\n", i, info.error().ToString().c_str());
            return 12;
          }
        }
        return 0;
      };
      ::_exit(run());
    }
    children.push_back(pid);
  }
  WriteFile(go, "");
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto lines = base::Split(ReadFileOrDie(log), '\n', /*skip_empty=*/true);
  EXPECT_EQ(lines.size(), 1u) << "rootfs built more than once";
  auto img = store_->Get("forked:1");
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  EXPECT_EQ(img->manifest_digest, image.manifest_digest);
  for (const auto& l : image.layers) EXPECT_EQ(ReadFileOrDie(BlobPath(l.digest)), l.blob);
  EXPECT_TRUE(TmpFiles().empty());
  EXPECT_EQ(Blobs().size(), 4u);
}

TEST(StoreOpenTest, BadMirrorIsInvalidArgument) {
  auto dir = sys::TempDir::Create("/tmp", "store-open-");
  ASSERT_TRUE(dir.ok());
  StoreOptions o;
  o.mirrors = {"ftp://mirror"};
  auto store = Store::Open(dir->path(), o);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(store.error().IsInvalidArgument());
  EXPECT_NE(store.error().message().find("ftp://mirror"), std::string::npos);
}

}  // namespace
}  // namespace boxlite::image

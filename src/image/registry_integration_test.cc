// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Integration tests of the registry client and the store against Debian's docker-registry
// on 127.0.0.1 (ctest label "integration"). Images are built with umoci and pushed with
// skopeo; faults (5xx, 429, dropped and cut connections, corruption, redirects to another
// origin, a Bearer token service) come from testdata/fault_proxy.py in front of the
// registry. Needs docker-registry, skopeo, umoci, htpasswd (apache2-utils) and python3.
// Nothing leaves 127.0.0.1: docker.io is pointed at a closed local port.
//
// Size: one file because every case shares the registry, proxy and image fixtures above;
// each TEST is independent and can be run alone with --gtest_filter.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/image/auth.h"
#include "src/image/image_test_util.h"
#include "src/image/store.h"
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

using nlohmann::json;
using testing::ReadFileOrDie;
using testing::WriteFile;

constexpr auto kStartupTimeout = std::chrono::seconds(60);

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::abort();
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool PortAccepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// Waits (generously; this is readiness, not a timing assertion) for `ready()`.
template <typename F>
bool WaitFor(F ready) {
  auto deadline = std::chrono::steady_clock::now() + kStartupTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Runs a tool; stdout is returned, stderr goes to `log_path`.
Result<std::string> RunTool(const std::vector<std::string>& argv, const std::string& log_path) {
  auto out_dir = sys::TempDir::Create("/tmp", "tool-out-");
  if (!out_dir) return out_dir.error();
  std::string out_path = out_dir->path() + "/stdout";
  auto out = sys::Open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  auto err = sys::Open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!out || !err) return Status::IoError("open tool output");
  sys::SpawnOptions o;
  o.argv = argv;
  o.stdout_fd = out->get();
  o.stderr_fd = err->get();
  auto child = sys::Subprocess::Spawn(o);
  if (!child) return child.error();
  auto status = child->Wait();
  if (!status) return status.error();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return Status::IoError(argv[0] + " failed (" + sys::DescribeWaitStatus(*status) + ")",
                           "see " + log_path);
  }
  return sys::ReadFile(out_path);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

// A docker-registry process with its own storage directory.
struct Registry {
  uint16_t port = 0;
  std::optional<sys::Subprocess> proc;
  std::string host() const { return "127.0.0.1:" + std::to_string(port); }
};

Result<std::unique_ptr<Registry>> StartRegistry(const std::string& dir,
                                                const std::string& htpasswd) {
  auto reg = std::make_unique<Registry>();
  reg->port = FreePort();
  std::string config = base::StrFormat(
      "version: 0.1\n"
      "log:\n  level: info\n  accesslog:\n    disabled: false\n"
      "storage:\n  filesystem:\n    rootdirectory: %s/data\n"
      "http:\n  addr: 127.0.0.1:%u\n  secret: boxlite-test\n",
      dir.c_str(), reg->port);
  if (!htpasswd.empty()) {
    config += base::StrFormat("auth:\n  htpasswd:\n    realm: boxlite-test\n    path: %s\n",
                              htpasswd.c_str());
  }
  WriteFile(dir + "/config.yml", config);
  auto log = sys::Open(dir + "/registry.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!log) return log.error();
  sys::SpawnOptions o;
  o.argv = {"docker-registry", "serve", dir + "/config.yml"};
  o.stdout_fd = log->get();
  o.stderr_fd = log->get();
  auto proc = sys::Subprocess::Spawn(o);
  if (!proc) return proc.error();
  reg->proc = std::move(*proc);
  uint16_t port = reg->port;
  if (!WaitFor([&] { return PortAccepts(port); })) {
    return Status::Unavailable("docker-registry did not start", "see " + dir + "/registry.log");
  }
  return reg;
}

// The fault proxy; see testdata/fault_proxy.py for the flags.
struct Proxy {
  uint16_t port = 0;
  uint16_t redirect_port = 0;
  std::string log_path;
  std::optional<sys::Subprocess> proc;
  std::string host() const { return "127.0.0.1:" + std::to_string(port); }

  std::vector<json> Log() const {
    std::vector<json> out;
    auto text = sys::ReadFile(log_path);
    if (!text) return out;
    for (const auto& line : base::Split(*text, '\n', /*skip_empty=*/true)) {
      out.push_back(json::parse(line));
    }
    return out;
  }
};

Result<std::unique_ptr<Proxy>> StartProxy(const std::string& dir, const std::string& upstream,
                                          const std::vector<std::string>& flags) {
  static int counter = 0;
  std::string base = dir + "/proxy" + std::to_string(counter++);
  auto proxy = std::make_unique<Proxy>();
  proxy->log_path = base + ".log";
  std::string ready = base + ".ready";
  sys::SpawnOptions o;
  o.argv = {"python3", BOXLITE_FAULT_PROXY, "--upstream", upstream, "--log", proxy->log_path,
            "--ready-file", ready};
  for (const auto& f : flags) o.argv.push_back(f);
  auto err = sys::Open(base + ".stderr", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!err) return err.error();
  o.stderr_fd = err->get();
  auto proc = sys::Subprocess::Spawn(o);
  if (!proc) return proc.error();
  proxy->proc = std::move(*proc);
  if (!WaitFor([&] { return sys::Exists(ready); })) {
    return Status::Unavailable("fault proxy did not start", "see " + base + ".stderr");
  }
  json ports = json::parse(ReadFileOrDie(ready));
  proxy->port = ports["port"].get<uint16_t>();
  proxy->redirect_port = ports["redirect_port"].get<uint16_t>();
  return proxy;
}

// Everything the tests share: two registries and the pushed images.
struct Env {
  std::unique_ptr<sys::TempDir> dir;
  std::unique_ptr<Registry> anon;
  std::unique_ptr<Registry> auth;  // htpasswd: alice / secret.
  std::string img_manifest;        // Raw manifest of test/img:1 as the registry serves it.
  std::string arm_manifest_digest;
  std::string amd_manifest_digest;
  std::string big_file;  // /data/big in the image.
  uint16_t closed_port = 0;
};

Env* g_env = nullptr;

class RegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto env = std::make_unique<Env>();
    auto dir = sys::TempDir::Create("/tmp", "registry-test-");
    ASSERT_TRUE(dir.ok());
    env->dir = std::make_unique<sys::TempDir>(std::move(*dir));
    const std::string root = env->dir->path();
    const std::string tools_log = root + "/tools.log";
    auto run = [&](const std::vector<std::string>& argv) {
      auto out = RunTool(argv, tools_log);
      EXPECT_TRUE(out.ok()) << base::Join(argv, " ") << ": " << out.error().ToString() << "\n"
                            << sys::ReadFile(tools_log).value_or("");
      return out.value_or("");
    };

    // An OCI layout with a two-layer amd64 image, its arm64 twin and an index of both.
    const std::string oci = root + "/oci";
    env->big_file = RandomBytes(600 << 10, 42);
    // Two layers from two unpack/repack rounds (umoci 0.4.7's `insert` writes tar
    // streams without the end-of-archive padding).
    run({"umoci", "init", "--layout", oci});
    run({"umoci", "new", "--image", oci + ":t"});
    run({"umoci", "unpack", "--rootless", "--image", oci + ":t", root + "/bundle1"});
    WriteFile(root + "/bundle1/rootfs/etc/hello.txt", "hello from boxlite\n");
    run({"umoci", "repack", "--image", oci + ":t", root + "/bundle1"});
    run({"umoci", "unpack", "--rootless", "--image", oci + ":t", root + "/bundle2"});
    WriteFile(root + "/bundle2/rootfs/data/big", env->big_file);
    run({"umoci", "repack", "--image", oci + ":t", root + "/bundle2"});
    run({"umoci", "config", "--image", oci + ":t", "--config.env", "FOO=bar",
         "--config.workingdir", "/app", "--config.entrypoint", "/bin/sh", "--config.cmd", "-c",
         "--config.cmd", "echo hi", "--config.exposedports", "8080/tcp", "--config.label",
         "k=v", "--config.user", "1000", "--architecture", "amd64", "--os", "linux"});
    run({"umoci", "config", "--image", oci + ":t", "--architecture", "arm64", "--tag", "arm"});
    json index = json::parse(ReadFileOrDie(oci + "/index.json"));
    json amd, arm;
    for (const auto& m : index["manifests"]) {
      std::string name = m["annotations"]["org.opencontainers.image.ref.name"];
      if (name == "t") amd = m;
      if (name == "arm") arm = m;
    }
    ASSERT_FALSE(amd.is_null());
    ASSERT_FALSE(arm.is_null());
    env->amd_manifest_digest = amd["digest"];
    env->arm_manifest_digest = arm["digest"];
    json list = {{"schemaVersion", 2},
                 {"mediaType", "application/vnd.oci.image.index.v1+json"},
                 {"manifests",
                  {{{"mediaType", amd["mediaType"]}, {"digest", amd["digest"]}, {"size", amd["size"]},
                    {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}},
                   {{"mediaType", arm["mediaType"]}, {"digest", arm["digest"]}, {"size", arm["size"]},
                    {"platform", {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}}}}}}};
    std::string list_body = list.dump();
    std::string list_digest = testing::Sha256Digest(list_body);
    WriteFile(oci + "/blobs/sha256/" + list_digest.substr(7), list_body);
    index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                  {"digest", list_digest},
                                  {"size", list_body.size()},
                                  {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}});
    WriteFile(oci + "/index.json", index.dump());

    auto anon = StartRegistry(root + "/anon", "");
    ASSERT_TRUE(anon.ok()) << anon.error().ToString();
    env->anon = std::move(*anon);
    std::string htpasswd = run({"htpasswd", "-Bbn", "alice", "secret"});
    WriteFile(root + "/htpasswd", htpasswd);
    auto auth = StartRegistry(root + "/auth", root + "/htpasswd");
    ASSERT_TRUE(auth.ok()) << auth.error().ToString();
    env->auth = std::move(*auth);

    auto push = [&](const std::string& src, const std::string& dest,
                    std::vector<std::string> extra) {
      std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy", "--quiet",
                                       "--dest-tls-verify=false"};
      for (auto& e : extra) argv.push_back(e);
      argv.push_back("oci:" + oci + ":" + src);
      argv.push_back("docker://" + dest);
      run(argv);
    };
    const std::string a = env->anon->host();
    push("t", a + "/test/img:1", {});
    push("t", a + "/test/v2s2:1", {"--format", "v2s2"});
    push("multi", a + "/test/multi:1", {"--all"});
    push("t", a + "/library/mirrored:1", {});
    push("t", env->auth->host() + "/private/img:1", {"--dest-creds", "alice:secret"});
    env->img_manifest = run({"skopeo", "--insecure-policy", "inspect", "--raw",
                             "--tls-verify=false", "docker://" + a + "/test/img:1"});
    env->closed_port = FreePort();
    g_env = env.release();
  }

  static void TearDownTestSuite() {
    delete g_env;
    g_env = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_env, nullptr) << "suite setup failed";
    auto dir = sys::TempDir::Create("/tmp", "registry-case-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<sys::TempDir>(std::move(*dir));
  }

  std::string Dir() const { return dir_->path(); }
  std::string ImagesDir() const { return Dir() + "/images"; }
  std::string Closed() const { return "http://127.0.0.1:" + std::to_string(g_env->closed_port); }

  StoreOptions Options() const {
    StoreOptions o;
    o.platform_os = "linux";
    o.platform_arch = "amd64";
    o.platform_variant = "";
    o.insecure_registries = {g_env->anon->host(), g_env->auth->host()};
    o.docker_config_path = "";
    o.docker_hub_url = Closed();
    o.connect_timeout = std::chrono::seconds(10);
    o.request_timeout = std::chrono::seconds(60);
    o.stall_timeout = std::chrono::seconds(30);
    o.max_attempts = 4;
    o.initial_backoff = std::chrono::milliseconds(10);
    o.max_backoff = std::chrono::milliseconds(200);
    return o;
  }

  std::unique_ptr<Store> OpenStore(StoreOptions o) {
    auto store = Store::Open(ImagesDir(), std::move(o));
    EXPECT_TRUE(store.ok()) << store.error().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string WriteDockerConfig(const std::string& host, const std::string& user,
                                const std::string& password, bool base64_form) {
    json entry = base64_form ? json{{"auth", Base64Encode(user + ":" + password)}}
                             : json{{"username", user}, {"password", password}};
    json config = {{"auths", {{host, entry}}}};
    std::string path = Dir() + "/docker-config.json";
    WriteFile(path, config.dump());
    return path;
  }

  // Checks a pulled test/img:1 against what the registry serves.
  void ExpectImageMatchesRegistry(const LocalImage& img) {
    json manifest = json::parse(g_env->img_manifest);
    EXPECT_EQ(img.manifest_digest, testing::Sha256Digest(g_env->img_manifest));
    EXPECT_EQ(img.config_digest, manifest["config"]["digest"]);
    ASSERT_EQ(img.layer_digests.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(img.layer_digests[i], manifest["layers"][i]["digest"]);
      EXPECT_EQ(img.layer_sizes[i], manifest["layers"][i]["size"].get<uint64_t>());
      std::string blob = ReadFileOrDie(ImagesDir() + "/blobs/sha256/" + img.layer_digests[i].substr(7));
      EXPECT_EQ(testing::Sha256Digest(blob), img.layer_digests[i]);
    }
    EXPECT_EQ(img.config.env, (std::vector<std::string>{"FOO=bar"}));
    EXPECT_EQ(img.config.working_dir, "/app");
    EXPECT_EQ(img.config.entrypoint, (std::vector<std::string>{"/bin/sh"}));
    EXPECT_EQ(img.config.cmd, (std::vector<std::string>{"-c", "echo hi"}));
    EXPECT_EQ(img.config.exposed_ports, (std::vector<std::string>{"8080/tcp"}));
    EXPECT_EQ(img.config.labels.at("k"), "v");
    EXPECT_EQ(img.config.user, "1000");
    EXPECT_EQ(img.config.architecture, "amd64");
    EXPECT_GT(img.created_unix, 0);
  }

  void ExpectNothingHalfWritten() {
    EXPECT_TRUE(testing::ListDirOrEmpty(ImagesDir() + "/tmp").empty());
    for (const auto& name : testing::ListDirOrEmpty(ImagesDir() + "/blobs/sha256")) {
      std::string data = ReadFileOrDie(ImagesDir() + "/blobs/sha256/" + name);
      EXPECT_EQ(base::Sha256Hex(data), name) << "blob with wrong content";
    }
  }

  std::unique_ptr<sys::TempDir> dir_;
};

class RecordingProgress : public PullProgress {
 public:
  void OnManifest(const LocalImage& image) override {
    ++manifests;
    layers = image.layer_digests;
  }
  void OnLayerProgress(const std::string& digest, uint64_t bytes, uint64_t total) override {
    last[digest] = {bytes, total};
  }
  void OnLayerDone(const std::string& digest) override { done.insert(digest); }

  int manifests = 0;
  std::vector<std::string> layers;
  std::map<std::string, std::pair<uint64_t, uint64_t>> last;
  std::set<std::string> done;
};

TEST_F(RegistryTest, PullsVerifiesHonoursConfigAndSecondPullDownloadsNothing) {
  auto store = OpenStore(Options());
  ASSERT_NE(store, nullptr);
  RecordingProgress progress;
  std::string ref = g_env->anon->host() + "/test/img:1";
  auto img = store->Pull(ref, &progress);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  EXPECT_EQ(img->reference, ref);
  ExpectImageMatchesRegistry(*img);
  EXPECT_EQ(progress.manifests, 1);
  EXPECT_EQ(progress.layers, img->layer_digests);
  for (size_t i = 0; i < img->layer_digests.size(); ++i) {
    const std::string& d = img->layer_digests[i];
    EXPECT_EQ(progress.done.count(d), 1u) << d;
    EXPECT_EQ(progress.last[d], std::make_pair(img->layer_sizes[i], img->layer_sizes[i]));
  }
  RegistryStats first = store->registry_stats();
  EXPECT_EQ(first.blob_requests, 3u);  // Config and two layers.

  auto again = store->Pull(ref, nullptr);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  RegistryStats second = store->registry_stats();
  EXPECT_EQ(second.blob_requests, first.blob_requests) << "second pull downloaded blobs";
  EXPECT_GT(second.manifest_requests, first.manifest_requests);
  EXPECT_EQ(again->manifest_digest, img->manifest_digest);
  ExpectNothingHalfWritten();

  // Ensure and Get stay local.
  ASSERT_TRUE(store->Ensure(ref, nullptr).ok());
  EXPECT_EQ(store->registry_stats().manifest_requests, second.manifest_requests);

  // The rootfs holds the layers' files.
  auto rootfs = store->Rootfs(*img);
  ASSERT_TRUE(rootfs.ok()) << rootfs.error().ToString();
  auto hello = sys::RunCommand({"debugfs", "-R", "cat /etc/hello.txt", rootfs->path});
  ASSERT_TRUE(hello.ok()) << hello.error().ToString();
  EXPECT_NE(hello->find("hello from boxlite"), std::string::npos);
  auto big = sys::RunCommand({"debugfs", "-R", "stat /data/big", rootfs->path});
  ASSERT_TRUE(big.ok());
  EXPECT_NE(big->find("Size: " + std::to_string(g_env->big_file.size())), std::string::npos) << *big;
  EXPECT_GE(rootfs->used_bytes, g_env->big_file.size());
}

TEST_F(RegistryTest, LoopbackRegistryFallsBackToPlainHttp) {
  StoreOptions o = Options();
  o.insecure_registries.clear();
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  auto img = store->Pull(g_env->anon->host() + "/test/img:1", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  ExpectImageMatchesRegistry(*img);
}

TEST_F(RegistryTest, DockerSchema2ManifestPulls) {
  auto store = OpenStore(Options());
  ASSERT_NE(store, nullptr);
  auto img = store->Pull(g_env->anon->host() + "/test/v2s2:1", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  json manifest = json::parse(
      ReadFileOrDie(ImagesDir() + "/blobs/sha256/" + img->manifest_digest.substr(7)));
  EXPECT_EQ(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(img->config.env, (std::vector<std::string>{"FOO=bar"}));
  ASSERT_EQ(img->layer_digests.size(), 2u);
}

TEST_F(RegistryTest, IndexSelectsThePlatform) {
  std::string ref = g_env->anon->host() + "/test/multi:1";
  {
    auto store = OpenStore(Options());
    ASSERT_NE(store, nullptr);
    auto img = store->Pull(ref, nullptr);
    ASSERT_TRUE(img.ok()) << img.error().ToString();
    EXPECT_EQ(img->manifest_digest, g_env->amd_manifest_digest);
    EXPECT_EQ(img->config.architecture, "amd64");
  }
  {
    StoreOptions o = Options();
    o.platform_arch = "arm64";
    auto store = OpenStore(o);
    ASSERT_NE(store, nullptr);
    auto img = store->Pull(ref, nullptr);
    ASSERT_TRUE(img.ok()) << img.error().ToString();
    EXPECT_EQ(img->manifest_digest, g_env->arm_manifest_digest);
    EXPECT_EQ(img->config.architecture, "arm64");
    // A single-platform image of the wrong architecture is refused.
    auto wrong = store->Pull(g_env->anon->host() + "/test/img:1", nullptr);
    ASSERT_FALSE(wrong.ok());
    EXPECT_TRUE(wrong.error().IsNotFound());
    EXPECT_NE(wrong.error().message().find("is for platform linux/amd64"), std::string::npos)
        << wrong.error().message();
  }
  {
    StoreOptions o = Options();
    o.platform_arch = "s390x";
    auto store = OpenStore(o);
    ASSERT_NE(store, nullptr);
    auto img = store->Pull(ref, nullptr);
    ASSERT_FALSE(img.ok());
    EXPECT_TRUE(img.error().IsNotFound());
    EXPECT_NE(img.error().message().find("no image for platform linux/s390x"), std::string::npos);
    EXPECT_NE(img.error().message().find("available: linux/amd64, linux/arm64/v8"),
              std::string::npos)
        << img.error().message();
    ExpectNothingHalfWritten();
  }
}

TEST_F(RegistryTest, MissingImageIsNotFound) {
  auto store = OpenStore(Options());
  ASSERT_NE(store, nullptr);
  const std::string host = g_env->anon->host();
  auto tag = store->Pull(host + "/test/img:nope", nullptr);
  ASSERT_FALSE(tag.ok());
  EXPECT_TRUE(tag.error().IsNotFound());
  EXPECT_EQ(tag.error().message(),
            "image " + host + "/test/img:nope not found in registry " + host);
  auto repo = store->Pull(host + "/no/such/repo", nullptr);
  ASSERT_FALSE(repo.ok());
  EXPECT_TRUE(repo.error().IsNotFound());
  EXPECT_NE(repo.error().message().find("no/such/repo:latest not found"), std::string::npos);
  auto digest = store->Pull(host + "/test/img@sha256:" + std::string(64, '0'), nullptr);
  ASSERT_FALSE(digest.ok());
  EXPECT_TRUE(digest.error().IsNotFound());
  EXPECT_FALSE(sys::Exists(ImagesDir() + "/index.json"));
}

TEST_F(RegistryTest, ConnectionRefusedIsUnavailableNamingTheHost) {
  StoreOptions o = Options();
  std::string host = "127.0.0.1:" + std::to_string(g_env->closed_port);
  o.insecure_registries.push_back(host);
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  auto img = store->Pull(host + "/x:1", nullptr);
  ASSERT_FALSE(img.ok());
  EXPECT_TRUE(img.error().IsUnavailable()) << img.error().ToString();
  EXPECT_NE(img.error().message().find("cannot connect to registry " + host), std::string::npos)
      << img.error().message();
}

TEST_F(RegistryTest, BasicAuthUsesDockerConfig) {
  const std::string host = g_env->auth->host();
  const std::string ref = host + "/private/img:1";
  {
    auto store = OpenStore(Options());
    ASSERT_NE(store, nullptr);
    auto img = store->Pull(ref, nullptr);
    ASSERT_FALSE(img.ok());
    EXPECT_EQ(img.error().code(), StatusCode::kAuthentication) << img.error().ToString();
    EXPECT_NE(img.error().message().find("requires a user name and password"), std::string::npos)
        << img.error().message();
    EXPECT_NE(img.error().message().find("docker login " + host), std::string::npos);
  }
  {
    StoreOptions o = Options();
    o.docker_config_path = WriteDockerConfig(host, "alice", "wrong", true);
    auto store = OpenStore(o);
    ASSERT_NE(store, nullptr);
    auto img = store->Pull(ref, nullptr);
    ASSERT_FALSE(img.ok());
    EXPECT_EQ(img.error().code(), StatusCode::kAuthentication) << img.error().ToString();
    EXPECT_NE(img.error().message().find("docker login"), std::string::npos);
  }
  for (bool base64_form : {true, false}) {
    StoreOptions o = Options();
    o.docker_config_path = WriteDockerConfig(host, "alice", "secret", base64_form);
    auto store = OpenStore(o);
    ASSERT_NE(store, nullptr);
    auto img = store->Pull(ref, nullptr);
    ASSERT_TRUE(img.ok()) << img.error().ToString();
    EXPECT_EQ(img->manifest_digest, testing::Sha256Digest(g_env->img_manifest));
  }
}

TEST_F(RegistryTest, BearerTokenFlowWithCredentialsAndCachedToken) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(),
                          {"--bearer", "--token-user", "alice", "--token-password", "secret"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  const std::string host = (*proxy)->host();
  StoreOptions o = Options();
  o.insecure_registries.push_back(host);
  {
    auto store = OpenStore(o);
    auto img = store->Pull(host + "/test/img:1", nullptr);
    ASSERT_FALSE(img.ok());
    EXPECT_EQ(img.error().code(), StatusCode::kAuthentication) << img.error().ToString();
    EXPECT_NE(img.error().message().find("refused anonymous access"), std::string::npos)
        << img.error().message();
  }
  o.docker_config_path = WriteDockerConfig(host, "alice", "secret", true);
  auto store = OpenStore(o);
  auto img = store->Pull(host + "/test/img:1", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  EXPECT_EQ(img->manifest_digest, testing::Sha256Digest(g_env->img_manifest));
  int granted = 0;
  int blobs = 0;
  for (const auto& r : (*proxy)->Log()) {
    if (r["path"] == "/token" && r["status"] == 200) {
      ++granted;
      // The scope came from the challenge; its quoted value held a comma.
      EXPECT_EQ(r["scope"], json::array({"repository:test/img:pull,push"}));
      EXPECT_EQ(r["service"], json::array({"boxlite-test"}));
      EXPECT_TRUE(r["auth"].get<std::string>().starts_with("Basic "));
    }
    if (r["blob"] == true && r["status"] == 200) {
      ++blobs;
      EXPECT_TRUE(r["auth"].get<std::string>().starts_with("Bearer tok-"));
    }
  }
  EXPECT_EQ(granted, 1) << "the token is cached per scope";
  EXPECT_EQ(blobs, 3);
}

TEST_F(RegistryTest, RedirectedBlobsAreFetchedWithoutAuthorization) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {"--bearer", "--redirect"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  auto store = OpenStore(o);
  auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  ExpectImageMatchesRegistry(*img);
  int redirected = 0;
  int redirects_sent = 0;
  for (const auto& r : (*proxy)->Log()) {
    if (r["port"] == "redirect") {
      ++redirected;
      EXPECT_EQ(r["auth"], "") << "Authorization leaked to another origin: " << r.dump();
    } else if (r["status"] == 307) {
      ++redirects_sent;
      EXPECT_TRUE(r["auth"].get<std::string>().starts_with("Bearer "));
    }
  }
  EXPECT_EQ(redirects_sent, 3);
  EXPECT_EQ(redirected, 3);
}

TEST_F(RegistryTest, ServerErrorsAndRateLimitsAreRetried) {
  for (const char* status : {"500", "503", "429"}) {
    auto proxy = StartProxy(Dir(), g_env->anon->host(),
                            {"--fail-status", status, "--fail-count", "2"});
    ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
    StoreOptions o = Options();
    o.insecure_registries.push_back((*proxy)->host());
    auto store = OpenStore(o);
    auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
    ASSERT_TRUE(img.ok()) << status << ": " << img.error().ToString();
    ExpectImageMatchesRegistry(*img);
    EXPECT_EQ(store->registry_stats().retries, 6u) << status;
    ASSERT_TRUE(sys::RemoveTree(ImagesDir()).ok());
  }
}

TEST_F(RegistryTest, GivesUpAfterMaxAttemptsWithTheLastError) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {"--fail-status", "502", "--fail-count", "100"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  o.max_attempts = 3;
  auto store = OpenStore(o);
  auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
  ASSERT_FALSE(img.ok());
  EXPECT_TRUE(img.error().IsUnavailable());
  EXPECT_NE(img.error().message().find("giving up after 3 attempts"), std::string::npos)
      << img.error().message();
  EXPECT_NE(img.error().message().find("answered HTTP 502"), std::string::npos);
  ExpectNothingHalfWritten();
  EXPECT_FALSE(sys::Exists(ImagesDir() + "/index.json"));
}

TEST_F(RegistryTest, DroppedConnectionsAreRetried) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {"--drop-count", "1"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  auto store = OpenStore(o);
  auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  ExpectImageMatchesRegistry(*img);
  // libcurl itself retries a request whose reused connection dies before any byte, so
  // count the drops the proxy made rather than our retries.
  std::set<std::string> dropped;
  for (const auto& r : (*proxy)->Log()) {
    if (r["status"] == "dropped") dropped.insert(r["path"].get<std::string>());
  }
  EXPECT_EQ(dropped.size(), 3u);
}

TEST_F(RegistryTest, BlobCutMidTransferIsResumedWithRange) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {"--cut-count", "1"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  auto store = OpenStore(o);
  auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  ExpectImageMatchesRegistry(*img);
  // Every blob was cut once and then fetched from where it broke off.
  std::map<std::string, std::vector<json>> by_path;
  for (const auto& r : (*proxy)->Log()) {
    if (r["blob"] == true) by_path[r["path"]].push_back(r);
  }
  EXPECT_EQ(by_path.size(), 3u);
  for (const auto& [path, reqs] : by_path) {
    ASSERT_EQ(reqs.size(), 2u) << path;
    EXPECT_EQ(reqs[0]["status"], "cut");
    EXPECT_EQ(reqs[0]["range"], "");
    EXPECT_TRUE(reqs[1]["range"].get<std::string>().starts_with("bytes="))
        << reqs[1].dump();
    EXPECT_EQ(reqs[1]["status"], 206);
  }
  ExpectNothingHalfWritten();
}

TEST_F(RegistryTest, BlobCutWhereRangeIsIgnoredRestarts) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {"--cut-count", "1", "--ignore-range"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  auto store = OpenStore(o);
  auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  ExpectImageMatchesRegistry(*img);
  ExpectNothingHalfWritten();
}

TEST_F(RegistryTest, FailedPullLeavesNothingHalfWritten) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {"--cut-count", "-1", "--ignore-range"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  o.max_attempts = 2;
  auto store = OpenStore(o);
  auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
  ASSERT_FALSE(img.ok());
  EXPECT_TRUE(img.error().IsUnavailable()) << img.error().ToString();
  EXPECT_NE(img.error().message().find((*proxy)->host()), std::string::npos) << img.error().message();
  ExpectNothingHalfWritten();
  EXPECT_TRUE(testing::ListDirOrEmpty(ImagesDir() + "/blobs/sha256").empty());
  EXPECT_FALSE(sys::Exists(ImagesDir() + "/index.json"));
  EXPECT_TRUE(store->Get((*proxy)->host() + "/test/img:1").error().IsNotFound());
}

TEST_F(RegistryTest, CorruptBlobIsRejected) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {"--corrupt"});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  auto store = OpenStore(o);
  auto img = store->Pull((*proxy)->host() + "/test/img:1", nullptr);
  ASSERT_FALSE(img.ok());
  EXPECT_TRUE(img.error().IsCorruption()) << img.error().ToString();
  EXPECT_NE(img.error().message().find("failed verification"), std::string::npos);
  ExpectNothingHalfWritten();
  EXPECT_TRUE(testing::ListDirOrEmpty(ImagesDir() + "/blobs/sha256").empty());
}

TEST_F(RegistryTest, MirrorsAreTriedFirstThenDockerHub) {
  const std::string reg = "http://" + g_env->anon->host();
  {
    StoreOptions o = Options();
    o.mirrors = {Closed(), reg};
    auto store = OpenStore(o);
    auto img = store->Pull("mirrored:1", nullptr);
    ASSERT_TRUE(img.ok()) << img.error().ToString();
    EXPECT_EQ(img->reference, "docker.io/library/mirrored:1");
    ExpectImageMatchesRegistry(*img);
    ASSERT_TRUE(store->Get("docker.io/library/mirrored:1").ok());
  }
  ASSERT_TRUE(sys::RemoveTree(ImagesDir()).ok());
  {
    StoreOptions o = Options();
    o.mirrors = {Closed()};
    o.docker_hub_url = reg;  // Stands in for registry-1.docker.io.
    auto store = OpenStore(o);
    auto img = store->Pull("mirrored:1", nullptr);
    ASSERT_TRUE(img.ok()) << img.error().ToString();
  }
  {
    StoreOptions o = Options();
    o.mirrors = {Closed()};
    auto store = OpenStore(o);
    auto img = store->Pull("library/other:1", nullptr);
    ASSERT_FALSE(img.ok());
    EXPECT_TRUE(img.error().IsUnavailable()) << img.error().ToString();
    EXPECT_NE(img.error().message().find("mirror 127.0.0.1:" + std::to_string(g_env->closed_port)),
              std::string::npos)
        << img.error().message();
  }
  {
    // Mirrors are for docker.io only.
    StoreOptions o = Options();
    o.mirrors = {reg};
    auto store = OpenStore(o);
    auto img = store->Pull("127.0.0.1:" + std::to_string(g_env->closed_port) + "/test/img:1",
                           nullptr);
    ASSERT_FALSE(img.ok());
    EXPECT_TRUE(img.error().IsUnavailable());
  }
}

// Two processes pull the same image into one store at the same time: every blob crosses
// the wire once.
TEST_F(RegistryTest, TwoProcessesDownloadEachBlobOnce) {
  auto proxy = StartProxy(Dir(), g_env->anon->host(), {});
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  StoreOptions o = Options();
  o.insecure_registries.push_back((*proxy)->host());
  const std::string ref = (*proxy)->host() + "/test/img:1";
  const std::string go = Dir() + "/go";
  std::vector<pid_t> children;
  for (int i = 0; i < 2; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      while (!sys::Exists(go)) ::usleep(1000);
      auto store = Store::Open(ImagesDir(), o);
      if (!store.ok()) ::_exit(10);
      auto img = (*store)->Pull(ref, nullptr);
      if (!img.ok()) {
        std::fprintf(stderr, "child %d: %s\n", i, img.error().ToString().c_str());
        ::_exit(11);
      }
      ::_exit(0);
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
  std::map<std::string, int> gets;
  int manifests = 0;
  for (const auto& r : (*proxy)->Log()) {
    if (r["blob"] == true) ++gets[r["path"]];
    if (r["path"].get<std::string>().find("/manifests/") != std::string::npos) ++manifests;
  }
  EXPECT_EQ(gets.size(), 3u);
  for (const auto& [path, n] : gets) EXPECT_EQ(n, 1) << path;
  EXPECT_EQ(manifests, 2);
  auto store = OpenStore(o);
  auto img = store->Get(ref);
  ASSERT_TRUE(img.ok()) << img.error().ToString();
  ExpectImageMatchesRegistry(*img);
  ExpectNothingHalfWritten();
}

}  // namespace
}  // namespace boxlite::image

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "boxlite/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "src/image/store.h"

namespace boxlite {
namespace {

ImageRegistry Reg(std::string host) {
  ImageRegistry r;
  r.host = std::move(host);
  return r;
}

TEST(ImageRegistryTest, AcceptsHostAndPortForms) {
  for (const char* host : {"ghcr.io", "127.0.0.1:5000", "localhost", "my-reg.example.com:443",
                           "[::1]:5000", "[fe80::1]"}) {
    auto r = ValidateImageRegistry(Reg(host));
    ASSERT_TRUE(r.ok()) << host << ": " << r.error().ToString();
    EXPECT_EQ(r->host, host);
    EXPECT_EQ(r->transport, "https");
  }
}

TEST(ImageRegistryTest, RefusesUrlsPathsAndBadPorts) {
  struct Case {
    const char* host;
    const char* says;
  };
  for (const Case& c : {Case{"", "empty"}, Case{"https://ghcr.io", "URL"},
                        Case{"ghcr.io/org", "path"}, Case{"ghcr.io:0", "port"},
                        Case{"ghcr.io:70000", "port"}, Case{"ghcr.io:", "port"},
                        Case{"ghcr.io:x", "port"}, Case{"gh cr.io", "character"},
                        Case{"a:1:2", "host[:port]"}, Case{"[::1", "unclosed"},
                        Case{":5000", "no name"}}) {
    auto r = ValidateImageRegistry(Reg(c.host));
    ASSERT_FALSE(r.ok()) << c.host;
    EXPECT_TRUE(r.error().IsInvalidArgument());
    EXPECT_NE(r.error().ToString().find(c.says), std::string::npos)
        << c.host << ": " << r.error().ToString();
  }
}

TEST(ImageRegistryTest, TransportAndCredentialRules) {
  ImageRegistry r = Reg("h:1");
  r.transport = "";
  EXPECT_EQ(ValidateImageRegistry(r)->transport, "https");
  r.transport = "http";
  EXPECT_EQ(ValidateImageRegistry(r)->transport, "http");
  r.transport = "ftp";
  EXPECT_NE(ValidateImageRegistry(r).error().message().find("transport \"ftp\""),
            std::string::npos);
  r.transport = "https";
  r.username = "u";
  EXPECT_NE(ValidateImageRegistry(r).error().message().find("together"), std::string::npos);
  r.username = "";
  r.password = "p";
  EXPECT_FALSE(ValidateImageRegistry(r).ok());
  r.username = "u";
  EXPECT_TRUE(ValidateImageRegistry(r).ok());
  r.password = "p\nInjected: yes";
  EXPECT_FALSE(ValidateImageRegistry(r).ok());
  r.password = "p";
  r.username = "a:b";
  EXPECT_FALSE(ValidateImageRegistry(r).ok());
}

TEST(RuntimeConfigTest, ParsesEveryField) {
  auto c = ParseRuntimeConfig(R"({
    "home_dir": "/srv/boxlite",
    "image_registries": [
      {"host": "a.example:5000", "transport": "http", "search": true},
      {"host": "b.example", "skip_verify": true,
       "auth": {"type": "basic", "username": "u", "password": "p"}},
      {"host": "c.example", "auth": {"type": "bearer", "token": "t0k"}},
      {"host": "d.example", "auth": {"type": "anonymous"}}
    ]})");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->home_dir, "/srv/boxlite");
  ASSERT_EQ(c->registries.size(), 4u);
  EXPECT_EQ(c->registries[0].transport, "http");
  EXPECT_TRUE(c->registries[0].search);
  EXPECT_FALSE(c->registries[0].skip_verify);
  EXPECT_TRUE(c->registries[1].skip_verify);
  EXPECT_EQ(c->registries[1].username, "u");
  EXPECT_EQ(c->registries[1].password, "p");
  EXPECT_EQ(c->registries[1].transport, "https");
  EXPECT_EQ(c->registries[2].bearer_token, "t0k");
  EXPECT_TRUE(c->registries[3].username.empty());
  EXPECT_TRUE(ParseRuntimeConfig("{}").ok());
}

TEST(RuntimeConfigTest, ErrorsNameThePath) {
  struct Case {
    const char* json;
    const char* says;
  };
  for (const Case& c : {
           Case{"not json", "not valid JSON"},
           Case{"[]", "object"},
           Case{R"({"home": "/x"})", "unknown key \"home\""},
           Case{R"({"home_dir": 3})", "home_dir must be a string"},
           Case{R"({"image_registries": {}})", "image_registries must be a list"},
           Case{R"({"image_registries": [{"transport": "http"}]})", "image_registries[0].host"},
           Case{R"({"image_registries": [{"host": "x", "protocol": "http"}]})",
                "unknown key \"protocol\""},
           Case{R"({"image_registries": [{"host": "x"}, {"host": "https://y"}]})",
                "image_registries[1]"},
           Case{R"({"image_registries": [{"host": "x", "search": "yes"}]})",
                "image_registries[0].search must be true or false"},
           Case{R"({"image_registries": [{"host": "x", "auth": {"type": "oauth"}}]})",
                "auth.type \"oauth\""},
           Case{R"({"image_registries": [{"host": "x", "auth": {"type": "basic", "username": "u"}}]})",
                "needs username and password"},
           Case{R"({"image_registries": [{"host": "x", "auth": {"type": "bearer"}}]})",
                "needs a token"},
           Case{R"({"image_registries": [{"host": "x", "auth": {"type": "bearer", "token": "t", "username": "u"}}]})",
                "unknown key \"username\""},
       }) {
    auto r = ParseRuntimeConfig(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_TRUE(r.error().IsInvalidArgument());
    EXPECT_NE(r.error().ToString().find(c.says), std::string::npos)
        << c.json << " -> " << r.error().ToString();
  }
  std::string huge = "{\"home_dir\": \"" + std::string(kMaxConfigBytes, 'a') + "\"}";
  EXPECT_NE(ParseRuntimeConfig(huge).error().message().find("larger"), std::string::npos);
}

TEST(RuntimeConfigTest, LoadNamesTheFile) {
  auto missing = LoadRuntimeConfig("/nonexistent/boxlite.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().ToString().find("/nonexistent/boxlite.json"), std::string::npos);
  char path[] = "/tmp/boxlite-config-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << R"({"image_registries": [{"host": "r.example", "search": true}]})";
  auto ok = LoadRuntimeConfig(path);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->registries.at(0).host, "r.example");
  std::ofstream(path) << "{";
  auto bad = LoadRuntimeConfig(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().ToString().find(path), std::string::npos);
  ::unlink(path);
}

TEST(RegistryFlagTest, IsASearchedHttpsRegistry) {
  auto r = ParseRegistryFlag("127.0.0.1:5000");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->search);
  EXPECT_EQ(r->transport, "https");
  auto bad = ParseRegistryFlag("http://127.0.0.1:5000");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().ToString().find("--registry"), std::string::npos);
}

TEST(VolumeSpecTest, HostGuestModeAndAnonymous) {
  auto m = ParseVolumeSpec("/data:/mnt/data:ro");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->host_path, "/data");
  EXPECT_EQ(m->guest_path, "/mnt/data");
  EXPECT_TRUE(m->read_only);
  auto anon = ParseVolumeSpec("/cache");
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->host_path, "");
  EXPECT_EQ(anon->guest_path, "/cache");
  EXPECT_FALSE(anon->read_only);
  auto anon_ro = ParseVolumeSpec("/cache:ro");
  ASSERT_TRUE(anon_ro.ok());
  EXPECT_EQ(anon_ro->host_path, "");
  EXPECT_TRUE(anon_ro->read_only);
  auto id = ParseVolumeSpec("Ab3dEf6hIj9k:/v");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->host_path, "Ab3dEf6hIj9k");
  auto rel = ParseVolumeSpec("sub/dir:/v:rw");
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->host_path[0], '/');
  EXPECT_EQ(rel->host_path.substr(rel->host_path.size() - 8), "/sub/dir");
}

TEST(VolumeSpecTest, BadInput) {
  for (const char* spec : {"", "relative", "/a:/b:rx", "/a:b", ":/b", "/a:/b:ro:x", "/",
                           "/a:/"}) {
    auto m = ParseVolumeSpec(spec);
    EXPECT_FALSE(m.ok()) << spec;
    if (!m.ok()) {
      EXPECT_TRUE(m.error().IsInvalidArgument());
    }
  }
}

TEST(VolumeIdTest, Form) {
  EXPECT_TRUE(LooksLikeVolumeId("0123456789aZ"));
  EXPECT_FALSE(LooksLikeVolumeId("0123456789a"));
  EXPECT_FALSE(LooksLikeVolumeId("0123456789a-"));
  EXPECT_FALSE(LooksLikeVolumeId("0123456789abc"));
}

TEST(SearchCandidatesTest, UnqualifiedNamesTrySearchRegistriesInOrderThenDockerHub) {
  std::vector<ImageRegistry> regs(3);
  regs[0].host = "one.example:5000";
  regs[0].search = true;
  regs[1].host = "nosearch.example";
  regs[2].host = "two.example";
  regs[2].search = true;
  auto c = image::SearchCandidates("alpine", regs);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, (std::vector<std::string>{"one.example:5000/alpine:latest",
                                          "two.example/alpine:latest",
                                          "docker.io/library/alpine:latest"}));
  auto org = image::SearchCandidates("org/app:1", regs);
  EXPECT_EQ(org->front(), "one.example:5000/org/app:1");
  EXPECT_EQ(org->back(), "docker.io/org/app:1");
  for (const char* qualified : {"ghcr.io/x/y", "localhost/x", "127.0.0.1:5000/x"}) {
    auto q = image::SearchCandidates(qualified, regs);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->size(), 1u) << qualified;
  }
  EXPECT_EQ(image::SearchCandidates("alpine", {})->size(), 1u);
  EXPECT_FALSE(image::SearchCandidates("Bad Name", regs).ok());
}

}  // namespace
}  // namespace boxlite

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "src/sys/fs.h"

namespace boxlite::remote {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-cred-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sub/credentials.toml";
  }
  void TearDown() override { (void)sys::RemoveTree(dir_); }
  std::string dir_, path_;
};

TEST_F(CredentialsTest, ParsesProfilesAndIgnoresUnknownKeys) {
  auto p = ParseCredentials(R"(
[default]
url = "http://127.0.0.1:8100"
api_key = "k1"
auth_method = "api-key"
expires_at = 12

[prod]
url = "https://boxes.example.com"
path_prefix = "team/a"
)", "f");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ(p->size(), 2u);
  EXPECT_EQ(p->at("default").url, "http://127.0.0.1:8100");
  EXPECT_EQ(p->at("default").api_key, "k1");
  EXPECT_EQ(p->at("prod").path_prefix, "team/a");
  EXPECT_EQ(p->at("prod").api_key, "");
}

TEST_F(CredentialsTest, BadTomlIsOneClearError) {
  auto p = ParseCredentials("[default\nurl = ", "/x/credentials.toml");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.error().IsInvalidArgument());
  EXPECT_NE(p.error().message().find("/x/credentials.toml"), std::string::npos);
}

TEST_F(CredentialsTest, SaveIsPrivateKeepsOtherProfilesAndRemoves) {
  EXPECT_TRUE(LoadCredentials(path_).value().empty());  // No file: no profiles.
  ASSERT_TRUE(SaveProfile(path_, "default", {"http://a:1", "key\"with\\quote", "", "api-key"}).ok());
  ASSERT_TRUE(SaveProfile(path_, "other", {"http://b:2", "k2", "p", "api-key"}).ok());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto p = LoadCredentials(path_).value();
  EXPECT_EQ(p.at("default").api_key, "key\"with\\quote");
  EXPECT_EQ(p.at("other").path_prefix, "p");
  // Replacing one keeps the other; a key the file had beyond ours survives a save.
  std::string text = sys::ReadFile(path_).value();
  ASSERT_TRUE(sys::WriteFileAtomic(path_, text + "\n[other2]\nurl = \"http://c\"\n", 0600).ok());
  ASSERT_TRUE(SaveProfile(path_, "default", {"http://a:9", "new", "", "api-key"}).ok());
  p = LoadCredentials(path_).value();
  EXPECT_EQ(p.at("default").url, "http://a:9");
  EXPECT_EQ(p.at("other").api_key, "k2");
  EXPECT_EQ(p.at("other2").url, "http://c");
  ASSERT_TRUE(RemoveProfile(path_, "default").ok());
  EXPECT_TRUE(RemoveProfile(path_, "default").IsNotFound());
  EXPECT_EQ(LoadCredentials(path_).value().count("default"), 0u);
  // No temporary file is left beside it.
  EXPECT_EQ(sys::ListDir(dir_ + "/sub").value().size(), 1u);
}

TEST_F(CredentialsTest, PrecedenceIsPerAxis) {
  Profiles profiles = {{"default", {"http://profile:1", "pkey", "pprefix", "api-key"}},
                       {"prod", {"https://prod", "prodkey", "", "api-key"}}};
  std::map<std::string, std::string> env;
  auto getenv = [&](const char* n) -> std::optional<std::string> {
    auto it = env.find(n);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  // Nothing given: all from the default profile.
  auto s = ResolveRemoteSettings(std::nullopt, std::nullopt, std::nullopt, profiles, getenv);
  EXPECT_EQ(s.url, "http://profile:1");
  EXPECT_EQ(s.url_source, "profile");
  EXPECT_EQ(s.path_prefix, "pprefix");
  EXPECT_EQ(s.bearer_token, "pkey");
  // Env beats the profile, axis by axis; the flag beats env.
  env["BOXLITE_REST_URL"] = "http://env:2";
  s = ResolveRemoteSettings(std::nullopt, std::nullopt, std::nullopt, profiles, getenv);
  EXPECT_EQ(s.url, "http://env:2");
  EXPECT_EQ(s.path_prefix, "pprefix");
  EXPECT_EQ(s.bearer_token, "pkey");
  env["BOXLITE_API_KEY"] = "envkey";
  env["BOXLITE_REST_PATH_PREFIX"] = "eprefix";
  s = ResolveRemoteSettings(std::string("http://flag:3"), std::nullopt, std::nullopt, profiles, getenv);
  EXPECT_EQ(s.url, "http://flag:3");
  EXPECT_EQ(s.url_source, "flag");
  EXPECT_EQ(s.path_prefix, "eprefix");
  EXPECT_EQ(s.bearer_token, "envkey");
  EXPECT_EQ(s.key_source, "env");
  s = ResolveRemoteSettings(std::nullopt, std::string(""), std::nullopt, profiles, getenv);
  EXPECT_EQ(s.path_prefix, "");  // An explicit empty flag clears it.
  // The profile from the flag, else BOXLITE_PROFILE.
  env.clear();
  env["BOXLITE_PROFILE"] = "prod";
  s = ResolveRemoteSettings(std::nullopt, std::nullopt, std::nullopt, profiles, getenv);
  EXPECT_EQ(s.url, "https://prod");
  EXPECT_EQ(s.bearer_token, "prodkey");
  s = ResolveRemoteSettings(std::nullopt, std::nullopt, std::string("missing"), profiles, getenv);
  EXPECT_EQ(s.url, "");
  EXPECT_EQ(s.url_source, "");
}

TEST_F(CredentialsTest, MasksKeys) {
  EXPECT_EQ(MaskKey("abcdefghijklmnop"), "abcd...mnop");
  EXPECT_EQ(MaskKey("short"), "*****");
}

}  // namespace
}  // namespace boxlite::remote

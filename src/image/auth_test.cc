// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/image/auth.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "src/image/image_test_util.h"
#include "src/sys/fs.h"

namespace boxlite::image {
namespace {

TEST(WwwAuthenticateTest, BearerWithCommasInQuotedScope) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",)"
      R"(scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].scheme, "bearer");
  EXPECT_EQ((*c)[0].Param("realm"), "https://auth.example.com/token");
  EXPECT_EQ((*c)[0].Param("service"), "registry.example.com");
  EXPECT_EQ((*c)[0].Param("scope"), "repository:a/b:pull,push");
}

TEST(WwwAuthenticateTest, EscapedQuotesSpacesAndCaseInsensitiveNames) {
  auto c = ParseWwwAuthenticate(
      R"(BEARER  Realm = "https://h/t?x=1" , Error="insufficient_scope", )"
      R"(error_description="say \"hi\", then \\ leave")");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].scheme, "bearer");
  EXPECT_EQ((*c)[0].Param("realm"), "https://h/t?x=1");
  EXPECT_EQ((*c)[0].Param("error"), "insufficient_scope");
  EXPECT_EQ((*c)[0].Param("error_description"), R"(say "hi", then \ leave)");
}

TEST(WwwAuthenticateTest, SeveralChallengesAndUnquotedTokens) {
  auto c = ParseWwwAuthenticate(
      R"(Negotiate, Basic realm="basic-realm", Bearer realm=https://t/x,service=reg)");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ((*c)[0].scheme, "negotiate");
  EXPECT_TRUE((*c)[0].params.empty());
  EXPECT_EQ((*c)[1].scheme, "basic");
  EXPECT_EQ((*c)[1].Param("realm"), "basic-realm");
  EXPECT_EQ((*c)[2].scheme, "bearer");
  EXPECT_EQ((*c)[2].Param("realm"), "https://t/x");
  EXPECT_EQ((*c)[2].Param("service"), "reg");
}

TEST(WwwAuthenticateTest, Token68) {
  auto c = ParseWwwAuthenticate("Custom YWxhZGRpbjpvcGVuc2VzYW1l==");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].Param("token68"), "YWxhZGRpbjpvcGVuc2VzYW1l==");
}

TEST(WwwAuthenticateTest, MalformedIsProtocolError) {
  for (const char* bad : {"", "   ", R"(Bearer realm="unterminated)", R"(realm="x")",
                          R"(Bearer realm="a" junk)", "Bearer @"}) {
    auto c = ParseWwwAuthenticate(bad);
    EXPECT_FALSE(c.ok()) << "accepted: " << bad;
    if (!c.ok()) {
      EXPECT_TRUE(c.error().IsProtocolError()) << c.error().ToString();
    }
  }
}

TEST(Base64Test, RoundTripsAndRejectsJunk) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "user:pa:ss",
                                                    std::string("\0\xff\x10", 3)}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.has_value()) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64Encode("alice:secret"), "YWxpY2U6c2VjcmV0");
  EXPECT_FALSE(Base64Decode("YW*j").has_value());
  EXPECT_FALSE(Base64Decode("Y").has_value());
}

TEST(DockerConfigTest, AuthFieldAndUsernamePassword) {
  const std::string config = R"({
    "auths": {
      "https://index.docker.io/v1/": {"auth": "aHVidXNlcjpodWI6cGFzcw=="},
      "127.0.0.1:5000": {"username": "alice", "password": "secret"},
      "https://ghcr.io": {"auth": "Z2g6dG9r"},
      "empty.example.com": {}
    },
    "credsStore": "desktop"
  })";
  auto hub = CredentialsFromDockerConfig(config, "docker.io");
  ASSERT_TRUE(hub.ok()) << hub.error().ToString();
  ASSERT_TRUE(hub->has_value());
  EXPECT_EQ((*hub)->username, "hubuser");
  EXPECT_EQ((*hub)->password, "hub:pass");  // Only the first ':' splits.

  auto local = CredentialsFromDockerConfig(config, "127.0.0.1:5000");
  ASSERT_TRUE(local.ok() && local->has_value());
  EXPECT_EQ((*local)->username, "alice");
  EXPECT_EQ((*local)->password, "secret");

  auto ghcr = CredentialsFromDockerConfig(config, "ghcr.io");
  ASSERT_TRUE(ghcr.ok() && ghcr->has_value());
  EXPECT_EQ((*ghcr)->username, "gh");
  EXPECT_EQ((*ghcr)->password, "tok");

  auto none = CredentialsFromDockerConfig(config, "quay.io");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto empty = CredentialsFromDockerConfig(config, "empty.example.com");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  // Another port is another registry.
  auto other_port = CredentialsFromDockerConfig(config, "127.0.0.1:5001");
  ASSERT_TRUE(other_port.ok());
  EXPECT_FALSE(other_port->has_value());
}

TEST(DockerConfigTest, ExactKeyWinsOverUrlForm) {
  const std::string config = R"({"auths": {
      "https://reg.example.com/v2/": {"username": "url", "password": "1"},
      "reg.example.com": {"username": "exact", "password": "2"}}})";
  auto c = CredentialsFromDockerConfig(config, "reg.example.com");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "exact");
}

TEST(DockerConfigTest, MalformedIsInvalidArgument) {
  auto bad_json = CredentialsFromDockerConfig("{not json", "docker.io");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_TRUE(bad_json.error().IsInvalidArgument());
  auto bad_auth = CredentialsFromDockerConfig(R"({"auths":{"docker.io":{"auth":"!!"}}})",
                                              "docker.io");
  ASSERT_FALSE(bad_auth.ok());
  EXPECT_NE(bad_auth.error().message().find("not valid base64"), std::string::npos);
  auto no_colon = CredentialsFromDockerConfig(
      R"({"auths":{"docker.io":{"auth":")" + Base64Encode("nocolon") + R"("}}})", "docker.io");
  ASSERT_FALSE(no_colon.ok());
  EXPECT_NE(no_colon.error().message().find("user:password"), std::string::npos);
  auto no_auths = CredentialsFromDockerConfig("{}", "docker.io");
  ASSERT_TRUE(no_auths.ok());
  EXPECT_FALSE(no_auths->has_value());
}

TEST(DockerConfigTest, LoadsFileAndPathFromEnvironment) {
  auto dir = sys::TempDir::Create("/tmp", "auth-test-");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->path() + "/config.json";
  testing::WriteFile(path, R"({"auths":{"r.example":{"auth":")" + Base64Encode("u:p") + R"("}}})");
  auto c = LoadDockerCredentials(path, "r.example");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "u");
  auto missing = LoadDockerCredentials(dir->path() + "/nope.json", "r.example");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  ::setenv("DOCKER_CONFIG", dir->path().c_str(), 1);
  EXPECT_EQ(DefaultDockerConfigPath(), path);
  ::unsetenv("DOCKER_CONFIG");
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(DefaultDockerConfigPath(), "/home/someone/.docker/config.json");
}

TEST(TokenResponseTest, TokenOrAccessTokenAndExpiry) {
  auto t = ParseTokenResponse(R"({"token":"abc","expires_in":300})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "abc");
  EXPECT_EQ(t->expires_in.count(), 300);
  auto a = ParseTokenResponse(R"({"access_token":"xyz"})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->token, "xyz");
  EXPECT_EQ(a->expires_in.count(), 60);  // The protocol's default.
  auto none = ParseTokenResponse(R"({"token":""})");
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(none.error().IsProtocolError());
  EXPECT_FALSE(ParseTokenResponse("[]").ok());
}

TEST(AuthCacheTest, ScopedBearerAndRegistryWideBasic) {
  AuthCache cache;
  EXPECT_FALSE(cache.Get("https://r:443", "repository:a:pull").has_value());
  cache.Put("https://r:443", "repository:a:pull", "Bearer A", std::chrono::seconds(300));
  EXPECT_EQ(cache.Get("https://r:443", "repository:a:pull").value_or(""), "Bearer A");
  EXPECT_FALSE(cache.Get("https://r:443", "repository:b:pull").has_value());
  EXPECT_FALSE(cache.Get("https://other:443", "repository:a:pull").has_value());
  cache.Put("https://r:443", "", "Basic B", std::chrono::seconds(0));
  EXPECT_EQ(cache.Get("https://r:443", "repository:b:pull").value_or(""), "Basic B");
  cache.Erase("https://r:443", "repository:a:pull");
  EXPECT_EQ(cache.Get("https://r:443", "repository:a:pull").value_or(""), "Basic B");
}

}  // namespace
}  // namespace boxlite::image

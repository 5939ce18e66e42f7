// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/endpoint.h"

#include <gtest/gtest.h>

namespace boxlite::remote {
namespace {

TEST(EndpointTest, ParsesSchemesPortsAndPaths) {
  auto a = ParseEndpoint("http://127.0.0.1:8100");
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "8100");
  EXPECT_EQ(a->base_path, "");
  EXPECT_EQ(a->HostHeader(), "127.0.0.1:8100");

  auto b = ParseEndpoint("https://boxes.example.com/api/");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->port, "443");
  EXPECT_EQ(b->base_path, "/api");
  EXPECT_EQ(b->HostHeader(), "boxes.example.com");
  EXPECT_EQ(b->ToString(), "https://boxes.example.com/api");

  auto c = ParseEndpoint("http://[::1]:9000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->HostHeader(), "[::1]:9000");
}

TEST(EndpointTest, RejectsWhatIsNotAServerUrl) {
  for (const char* bad : {"", "ftp://host", "localhost:8100", "http://user:pw@host", "http://host/?q=1",
                          "http://host/#f", "http://"}) {
    auto r = ParseEndpoint(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_TRUE(r.error().IsInvalidArgument()) << bad;
      EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
    }
  }
}

TEST(EndpointTest, BoxRoutesTakeThePrefixGlobalOnesDoNot) {
  Endpoint ep = ParseEndpoint("https://h/api").value();
  EXPECT_EQ(RouteTarget(ep, "", "/boxes"), "/api/v1/boxes");
  EXPECT_EQ(RouteTarget(ep, "tenant/a", "/boxes/x"), "/api/v1/tenant/a/boxes/x");
  Endpoint local = ParseEndpoint("http://127.0.0.1:8100").value();
  EXPECT_EQ(RouteTarget(local, "", "/me"), "/v1/me");
}

TEST(EndpointTest, PrefixesAreNormalizedAndChecked) {
  EXPECT_EQ(NormalizePathPrefix("").value(), "");
  EXPECT_EQ(NormalizePathPrefix("/").value(), "");
  EXPECT_EQ(NormalizePathPrefix("/org-1/proj_2/").value(), "org-1/proj_2");
  for (const char* bad : {"a//b", "../x", "a/./b", "a b", "a?b", "a%2fb"}) {
    EXPECT_FALSE(NormalizePathPrefix(bad).ok()) << bad;
  }
}

TEST(EndpointTest, EscapesComponents) {
  EXPECT_EQ(EscapeComponent("/root/a b&c"), "%2Froot%2Fa%20b%26c");
  EXPECT_EQ(EscapeComponent("box-1_x.y~"), "box-1_x.y~");
}

}  // namespace
}  // namespace boxlite::remote

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/image/reference.h"

#include <gtest/gtest.h>

#include <string>

namespace boxlite::image {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

struct NormCase {
  const char* input;
  const char* registry;
  const char* repository;
  const char* tag;
  std::string digest;
  std::string normalized;
};

class ReferenceTest : public ::testing::TestWithParam<NormCase> {};

TEST_P(ReferenceTest, NormalizesLikeDocker) {
  const NormCase& c = GetParam();
  auto ref = ParseReference(c.input);
  ASSERT_TRUE(ref.ok()) << c.input << ": " << ref.error().ToString();
  EXPECT_EQ(ref->registry, c.registry);
  EXPECT_EQ(ref->repository, c.repository);
  EXPECT_EQ(ref->tag, c.tag);
  EXPECT_EQ(ref->digest, c.digest);
  EXPECT_EQ(ref->String(), c.normalized);
  // Normalisation is idempotent.
  auto again = ParseReference(ref->String());
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(*again, *ref);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReferenceTest,
    ::testing::Values(
        NormCase{"alpine", "docker.io", "library/alpine", "latest", "",
                 "docker.io/library/alpine:latest"},
        NormCase{"alpine:3.19", "docker.io", "library/alpine", "3.19", "",
                 "docker.io/library/alpine:3.19"},
        NormCase{"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest"},
        NormCase{"docker.io/alpine", "docker.io", "library/alpine", "latest", "",
                 "docker.io/library/alpine:latest"},
        NormCase{"index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", "",
                 "docker.io/library/busybox:1"},
        NormCase{"localhost/x", "localhost", "x", "latest", "", "localhost/x:latest"},
        NormCase{"localhost:5000/a/b:v2", "localhost:5000", "a/b", "v2", "",
                 "localhost:5000/a/b:v2"},
        NormCase{"ghcr.io/org/sub/img:Tag_1.0-x", "ghcr.io", "org/sub/img", "Tag_1.0-x", "",
                 "ghcr.io/org/sub/img:Tag_1.0-x"},
        NormCase{"my-registry.example.com/a__b/c.d-e", "my-registry.example.com", "a__b/c.d-e",
                 "latest", "", "my-registry.example.com/a__b/c.d-e:latest"},
        NormCase{"[::1]:5000/img:1", "[::1]:5000", "img", "1", "", "[::1]:5000/img:1"},
        NormCase{"Registry/img", "Registry", "img", "latest", "", "Registry/img:latest"}));

TEST(ReferenceDigestTest, DigestOnlyHasNoTag) {
  auto ref = ParseReference("127.0.0.1:5000/repo@" + kDigest);
  ASSERT_TRUE(ref.ok()) << ref.error().ToString();
  EXPECT_EQ(ref->registry, "127.0.0.1:5000");
  EXPECT_EQ(ref->repository, "repo");
  EXPECT_EQ(ref->tag, "");
  EXPECT_EQ(ref->digest, kDigest);
  EXPECT_EQ(ref->ManifestReference(), kDigest);
  EXPECT_EQ(ref->String(), "127.0.0.1:5000/repo@" + kDigest);
}

TEST(ReferenceDigestTest, TagAndDigestKeepsBothAndPullsByDigest) {
  auto ref = ParseReference("repo:tag@" + kDigest);
  ASSERT_TRUE(ref.ok()) << ref.error().ToString();
  EXPECT_EQ(ref->tag, "tag");
  EXPECT_EQ(ref->digest, kDigest);
  EXPECT_EQ(ref->ManifestReference(), kDigest);
  EXPECT_EQ(ref->String(), "docker.io/library/repo:tag@" + kDigest);
}

struct BadCase {
  std::string input;
  std::string expect;  // A substring of the message.
};

class BadReferenceTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadReferenceTest, IsInvalidArgumentNamingTheProblem) {
  const BadCase& c = GetParam();
  auto ref = ParseReference(c.input);
  ASSERT_FALSE(ref.ok()) << c.input << " parsed as " << ref->String();
  EXPECT_TRUE(ref.error().IsInvalidArgument()) << ref.error().ToString();
  EXPECT_NE(ref.error().message().find(c.expect), std::string::npos)
      << "message: " << ref.error().message();
  // The message quotes the reference (control bytes escaped).
  EXPECT_NE(ref.error().message().find("invalid image reference \""), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadReferenceTest,
    ::testing::Values(
        BadCase{"", "it is empty"},
        BadCase{"Alpine", "must be lowercase"},
        BadCase{"docker.io/User/app", "must be lowercase"},
        BadCase{"alpine:", "empty tag"},
        BadCase{"alpine:-x", "tag must start"},
        BadCase{"alpine:a/b", "port \"a\" is not a number"},
        BadCase{"alpine:t!", "invalid character '!' in tag"},
        BadCase{"alpine:" + std::string(129, 'a'), "limit is 128"},
        BadCase{"alpine@", "empty digest"},
        BadCase{"alpine@sha256:abc", "64 hex digits, got 3"},
        BadCase{"alpine@sha256:" + std::string(64, 'A'), "lowercase hex"},
        BadCase{"alpine@sha256:" + std::string(63, 'a') + "g", "invalid character 'g'"},
        BadCase{"alpine@sha512:" + std::string(128, 'a'), "unsupported digest algorithm"},
        BadCase{"alpine@md5", "digest must look like"},
        BadCase{"a//b", "empty path component"},
        BadCase{"a/b/", "empty path component"},
        BadCase{"/a", "empty path component"},
        BadCase{"a..b", "invalid separator"},
        BadCase{"-a", "must start and end"},
        BadCase{"a_", "must start and end"},
        BadCase{"a b", "whitespace"},
        BadCase{"a\x01", "byte 0x01"},
        BadCase{"host:port/x", "not a number"},
        BadCase{"ho_st.com/x", "invalid character '_' in registry host"},
        BadCase{"-host.com/x", "must not start or end with '-'"},
        BadCase{"localhost:5000/", "missing repository name"},
        BadCase{"[::1]:5000", "needs a repository"},
        BadCase{"a/" + std::string(260, 'b'), "longer than 255"}));

TEST(ValidateDigestTest, AcceptsSha256AndNamesTheField) {
  EXPECT_TRUE(ValidateDigest(kDigest).ok());
  Status s = ValidateDigest("sha256:xyz", "layer digest");
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("invalid layer digest \"sha256:xyz\""), std::string::npos)
      << s.message();
  EXPECT_EQ(DigestHex(kDigest), std::string(64, 'a'));
}

}  // namespace
}  // namespace boxlite::image

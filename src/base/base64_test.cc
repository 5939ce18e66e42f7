// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/base/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace boxlite::base {
namespace {

TEST(Base64Test, EncodesWithPadding) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("alice:secret"), "YWxpY2U6c2VjcmV0");
  EXPECT_EQ(Base64Encode(std::string("\x00\xff\xfe", 3)), "AP/+");
}

TEST(Base64Test, DecodesPaddedAndUnpadded) {
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_EQ(Base64Decode("Zg=="), "f");
  EXPECT_EQ(Base64Decode("Zg"), "f");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode("Zm8"), "fo");
  EXPECT_EQ(Base64Decode("Zm9v"), "foo");
  EXPECT_EQ(Base64Decode("Zm9vYg"), "foob");
  EXPECT_EQ(Base64Decode("AP/+"), std::string("\x00\xff\xfe", 3));
  // A padding byte of value zero is data, not padding.
  EXPECT_EQ(Base64Decode("AA=="), std::string(1, '\0'));
  EXPECT_EQ(Base64Decode("AAA="), std::string(2, '\0'));
}

TEST(Base64Test, RejectsWhatNoEncodingProduces) {
  EXPECT_FALSE(Base64Decode("Y"));         // 4n+1 characters.
  EXPECT_FALSE(Base64Decode("Zm9vY"));
  EXPECT_FALSE(Base64Decode("YW*j"));      // Outside the alphabet.
  EXPECT_FALSE(Base64Decode("Zm 9v"));     // Whitespace.
  EXPECT_FALSE(Base64Decode(" Zm9v"));
  EXPECT_FALSE(Base64Decode("Zm9v\n"));
  EXPECT_FALSE(Base64Decode("Zg==Zg=="));  // Padding inside.
  EXPECT_FALSE(Base64Decode("Zm9v-_"));    // The URL-safe alphabet is another one.
}

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  std::string data;
  for (int i = 0; i < 300; ++i) {
    data += static_cast<char>(i * 37 + 11);
    auto back = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(back) << i;
    EXPECT_EQ(*back, data) << i;
  }
}

TEST(Base64Test, LargeInputsCrossChunks) {
  // Past the 3 MiB chunk the OpenSSL calls work in, at a length that needs padding.
  std::string big((3 << 20) + 4, 'x');
  big[3 << 20] = '\x01';
  std::string text = Base64Encode(big);
  EXPECT_EQ(text.size(), (big.size() + 2) / 3 * 4);
  EXPECT_EQ(text.substr(0, 8), "eHh4eHh4");
  auto back = Base64Decode(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, big);
}

}  // namespace
}  // namespace boxlite::base

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-desktopd's PNG encoder without a display: its output is a valid PNG (chunk CRCs,
// zlib stream with a correct Adler-32) whose pixels are the frame's, and an unchanged band
// is reused while a changed one is compressed again.

#include "guest/desktopd/png.h"

#include <gtest/gtest.h>

#include <cstring>

namespace boxlite::desktopd {
namespace {

uint32_t Get32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

// A 32-bit BGRX frame (the usual Xvfb layout) with a row stride wider than the row.
struct TestScreen {
  TestScreen(int w, int h) : width(w), height(h), stride(static_cast<size_t>(w) * 4 + 8),
                             pixels(stride * static_cast<size_t>(h)) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) Set(x, y, static_cast<uint8_t>(x * 7), static_cast<uint8_t>(y * 3),
                                      static_cast<uint8_t>(x ^ y));
    }
  }
  void Set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    unsigned char* p = &pixels[static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 4];
    p[0] = b;
    p[1] = g;
    p[2] = r;
    p[3] = 0;
  }
  Frame frame() const {
    Frame f;
    f.width = width;
    f.height = height;
    f.stride = stride;
    f.data = pixels.data();
    f.row_to_rgb = [this](int y, unsigned char* rgb) {
      const unsigned char* p = &pixels[static_cast<size_t>(y) * stride];
      for (int x = 0; x < width; ++x, p += 4, rgb += 3) {
        rgb[0] = p[2];
        rgb[1] = p[1];
        rgb[2] = p[0];
      }
    };
    return f;
  }
  // The PNG's expected filtered scanlines (filter byte 0, then RGB).
  std::string Scanlines() const {
    std::string out;
    for (int y = 0; y < height; ++y) {
      out += '\0';
      const unsigned char* p = &pixels[static_cast<size_t>(y) * stride];
      for (int x = 0; x < width; ++x, p += 4) {
        out += static_cast<char>(p[2]);
        out += static_cast<char>(p[1]);
        out += static_cast<char>(p[0]);
      }
    }
    return out;
  }

  int width;
  int height;
  size_t stride;
  std::vector<unsigned char> pixels;
};

// Checks the PNG's structure and CRCs and returns its inflated image data.
std::string Decode(const std::string& png, int want_w, int want_h) {
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  size_t at = 8;
  std::string idat;
  std::vector<std::string> types;
  while (at + 12 <= png.size()) {
    uint32_t len = Get32(png, at);
    std::string type = png.substr(at + 4, 4);
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    EXPECT_EQ(Get32(png, at + 8 + len), crc) << type;
    if (type == "IHDR") {
      EXPECT_EQ(Get32(png, at + 8), static_cast<uint32_t>(want_w));
      EXPECT_EQ(Get32(png, at + 12), static_cast<uint32_t>(want_h));
    }
    if (type == "IDAT") idat += png.substr(at + 8, len);
    types.push_back(type);
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  // uncompress() checks the zlib header and the Adler-32 the encoder combined.
  std::string raw(static_cast<size_t>(want_h) * (1 + static_cast<size_t>(want_w) * 3), '\0');
  uLongf raw_len = raw.size();
  int rc = uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_len,
                      reinterpret_cast<const Bytef*>(idat.data()), idat.size());
  EXPECT_EQ(rc, Z_OK);
  raw.resize(raw_len);
  return raw;
}

TEST(DesktopdPngTest, EncodesTheFramesPixels) {
  // 37 rows: two whole bands and a short one.
  TestScreen screen(29, 37);
  PngEncoder enc;
  std::string png;
  std::string error;
  ASSERT_TRUE(enc.Encode(screen.frame(), 1, &png, &error)) << error;
  EXPECT_EQ(enc.bands_deflated(), 3u);
  EXPECT_EQ(Decode(png, 29, 37), screen.Scanlines());
}

TEST(DesktopdPngTest, ReusesUnchangedBandsAndRecompressesChangedOnes) {
  TestScreen screen(40, 48);
  PngEncoder enc;
  std::string error;
  std::string first;
  ASSERT_TRUE(enc.Encode(screen.frame(), 6, &first, &error)) << error;
  EXPECT_EQ(enc.bands_deflated(), 3u);

  std::string same;
  ASSERT_TRUE(enc.Encode(screen.frame(), 6, &same, &error)) << error;
  EXPECT_EQ(enc.bands_deflated(), 0u);
  EXPECT_EQ(same, first);

  screen.Set(5, PngEncoder::kBandRows + 3, 255, 0, 0);  // The middle band only.
  std::string changed;
  ASSERT_TRUE(enc.Encode(screen.frame(), 6, &changed, &error)) << error;
  EXPECT_EQ(enc.bands_deflated(), 1u);
  EXPECT_EQ(Decode(changed, 40, 48), screen.Scanlines());

  // Another level starts over: every band is compressed with it.
  std::string other_level;
  ASSERT_TRUE(enc.Encode(screen.frame(), 0, &other_level, &error)) << error;
  EXPECT_EQ(enc.bands_deflated(), 3u);
  EXPECT_EQ(Decode(other_level, 40, 48), screen.Scanlines());
}

TEST(DesktopdPngTest, ANewScreenSizeStartsOver) {
  PngEncoder enc;
  std::string error;
  TestScreen small(8, 8);
  std::string png;
  ASSERT_TRUE(enc.Encode(small.frame(), 1, &png, &error));
  TestScreen big(64, 20);
  std::string png2;
  ASSERT_TRUE(enc.Encode(big.frame(), 1, &png2, &error));
  EXPECT_EQ(enc.bands_deflated(), 2u);
  EXPECT_EQ(Decode(png2, 64, 20), big.Scanlines());
}

}  // namespace
}  // namespace boxlite::desktopd

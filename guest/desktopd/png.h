// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-desktopd's PNG encoder, apart from X: it encodes a Frame (rows of pixels in
// the server's format plus a function that converts one row to RGB), so it is tested
// in-process (png_test.cc) by decoding its output with zlib.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace boxlite::desktopd {

// One screen's pixels as the X server gave them.
struct Frame {
  int width = 0;
  int height = 0;
  size_t stride = 0;                 // Bytes per row in `data`.
  const unsigned char* data = nullptr;
  // Writes row `y` as width * 3 bytes of 8-bit RGB to `rgb`.
  std::function<void(int y, unsigned char* rgb)> row_to_rgb;
};

// Encodes screenshots as PNG (8-bit RGB, filter None) with zlib, in bands of kBandRows
// rows. Each band is deflated on its own (the compressor is reset between bands, and each
// band ends on a byte boundary), so the deflated bytes of a band whose pixels did not
// change since the previous screenshot are reused as they are: a screenshot of a mostly
// unchanged screen compresses only what changed. The zlib stream's Adler-32 is combined
// from the bands' checksums.
//
// Not thread-safe; one encoder per connection.
class PngEncoder {
 public:
  static constexpr int kBandRows = 16;

  PngEncoder() = default;
  ~PngEncoder();
  PngEncoder(const PngEncoder&) = delete;
  PngEncoder& operator=(const PngEncoder&) = delete;

  // Appends the PNG of `frame` to `*out`; false with `*error` set if zlib fails.
  bool Encode(const Frame& frame, int level, std::string* out, std::string* error);

  // How many bands the last Encode compressed (the others were reused).
  size_t bands_deflated() const { return bands_deflated_; }

 private:
  struct Band {
    bool valid = false;
    std::string deflated;  // Raw deflate blocks, ending on a byte boundary (not final).
    uLong adler = 0;       // Adler-32 of the band's filtered bytes.
    z_off_t length = 0;    // Their count.
  };

  bool Deflate(const std::vector<unsigned char>& in, std::string* out, std::string* error);

  int width_ = 0;
  int height_ = 0;
  size_t stride_ = 0;
  int level_ = -1;
  std::vector<unsigned char> previous_;  // The last frame's pixels, as the server gave them.
  std::vector<Band> bands_;
  z_stream zs_{};
  bool zinit_ = false;
  size_t bands_deflated_ = 0;
};

}  // namespace boxlite::desktopd

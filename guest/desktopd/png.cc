// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "guest/desktopd/png.h"

#include <algorithm>
#include <cstring>

namespace boxlite::desktopd {
namespace {

void Put32(std::string* s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) *s += static_cast<char>((v >> shift) & 0xFF);
}

void Chunk(std::string* out, const char* type, const std::string& body) {
  Put32(out, static_cast<uint32_t>(body.size()));
  size_t start = out->size();
  out->append(type, 4);
  out->append(body);
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(out->data() + start),
                    static_cast<uInt>(body.size() + 4));
  Put32(out, static_cast<uint32_t>(crc));
}

}  // namespace

PngEncoder::~PngEncoder() {
  if (zinit_) deflateEnd(&zs_);
}

bool PngEncoder::Encode(const Frame& frame, int level, std::string* out, std::string* error) {
  const int w = frame.width;
  const int h = frame.height;
  const size_t stride = frame.stride;
  const size_t frame_bytes = stride * static_cast<size_t>(h);
  if (w != width_ || h != height_ || stride != stride_ || level != level_) {
    width_ = w;
    height_ = h;
    stride_ = stride;
    level_ = level;
    previous_.assign(frame_bytes, 0);
    bands_.assign(static_cast<size_t>((h + kBandRows - 1) / kBandRows), Band{});
    if (zinit_) deflateEnd(&zs_);
    zs_ = z_stream{};
    zinit_ = deflateInit2(&zs_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    if (!zinit_) {
      *error = "deflateInit2 failed";
      return false;
    }
  }
  const unsigned char* data = frame.data;
  std::vector<unsigned char> raw;
  uLong adler = adler32(0L, Z_NULL, 0);
  std::string idat = {'\x78', '\x01'};  // zlib header: deflate, 32 KiB window.
  bands_deflated_ = 0;
  for (size_t b = 0; b < bands_.size(); ++b) {
    const int y0 = static_cast<int>(b) * kBandRows;
    const int rows = std::min(kBandRows, h - y0);
    const size_t offset = static_cast<size_t>(y0) * stride;
    const size_t bytes = static_cast<size_t>(rows) * stride;
    Band& band = bands_[b];
    if (!band.valid || std::memcmp(previous_.data() + offset, data + offset, bytes) != 0) {
      raw.resize(static_cast<size_t>(rows) * (1 + static_cast<size_t>(w) * 3));
      unsigned char* dst = raw.data();
      for (int y = y0; y < y0 + rows; ++y) {
        *dst++ = 0;  // Filter type None.
        frame.row_to_rgb(y, dst);
        dst += static_cast<size_t>(w) * 3;
      }
      if (!Deflate(raw, &band.deflated, error)) return false;
      band.adler = adler32(adler32(0L, Z_NULL, 0), raw.data(), static_cast<uInt>(raw.size()));
      band.length = static_cast<z_off_t>(raw.size());
      band.valid = true;
      std::memcpy(previous_.data() + offset, data + offset, bytes);
      ++bands_deflated_;
    }
    idat += band.deflated;
    adler = adler32_combine(adler, band.adler, band.length);
  }
  idat += std::string("\x03\x00", 2);  // The final block: empty, fixed Huffman codes.
  for (int shift = 24; shift >= 0; shift -= 8) {
    idat += static_cast<char>((adler >> shift) & 0xFF);
  }
  out->append("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  Put32(&ihdr, static_cast<uint32_t>(w));
  Put32(&ihdr, static_cast<uint32_t>(h));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no interlace.
  Chunk(out, "IHDR", ihdr);
  Chunk(out, "IDAT", idat);
  Chunk(out, "IEND", "");
  return true;
}

// Deflates `in` from a fresh state into `*out`, ending with a sync flush.
bool PngEncoder::Deflate(const std::vector<unsigned char>& in, std::string* out,
                         std::string* error) {
  if (deflateReset(&zs_) != Z_OK) {
    *error = "deflateReset failed";
    return false;
  }
  out->resize(deflateBound(&zs_, static_cast<uLong>(in.size())) + 16);
  zs_.next_in = const_cast<Bytef*>(in.data());
  zs_.avail_in = static_cast<uInt>(in.size());
  zs_.next_out = reinterpret_cast<Bytef*>(out->data());
  zs_.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&zs_, Z_SYNC_FLUSH);
  if (rc != Z_OK || zs_.avail_in != 0 || zs_.avail_out == 0) {
    *error = "deflate failed";
    return false;
  }
  out->resize(out->size() - zs_.avail_out);
  return true;
}

}  // namespace boxlite::desktopd

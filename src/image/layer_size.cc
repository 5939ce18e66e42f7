// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/image/layer_size.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "src/base/unique_fd.h"

namespace boxlite::image {

namespace {

constexpr uint64_t kFallbackRatio = 5;
// A gzip "wrap-around" reading that implies more than this ratio is taken for a
// multi-member stream instead.
constexpr uint64_t kMaxPlausibleGzipRatio = 10;
constexpr uint32_t kZstdMagic = 0xFD2FB528u;
constexpr uint32_t kZstdSkippableMask = 0xFFFFFFF0u;
constexpr uint32_t kZstdSkippableMagic = 0x184D2A50u;

bool ReadAt(int fd, uint64_t offset, void* buf, size_t len) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

uint64_t LoadLe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

bool IsTarHeader(const uint8_t* h) {
  bool all_zero = true;
  for (int i = 0; i < 512; ++i) all_zero = all_zero && h[i] == 0;
  if (all_zero) return true;
  if (std::memcmp(h + 257, "ustar", 5) == 0) return true;
  // Pre-POSIX tar: only the header checksum identifies it.
  uint64_t sum = 0;
  for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
  uint64_t stored = 0;
  bool digits = false;
  for (int i = 148; i < 156; ++i) {
    if (h[i] >= '0' && h[i] <= '7') {
      stored = stored * 8 + static_cast<uint64_t>(h[i] - '0');
      digits = true;
    } else if (digits) {
      break;
    }
  }
  return digits && stored == sum;
}

uint64_t GzipEstimate(int fd, uint64_t file_size) {
  uint8_t trailer[4];
  if (file_size < 18 || !ReadAt(fd, file_size - 4, trailer, 4)) {
    return file_size * kFallbackRatio;
  }
  const uint64_t isize = LoadLe(trailer, 4);
  const uint64_t wrap = uint64_t{1} << 32;
  uint64_t estimate = isize;
  while (estimate < file_size) estimate += wrap;
  if (isize < file_size && estimate / file_size > kMaxPlausibleGzipRatio) {
    // More likely several members, of which we only see the last.
    return file_size * kFallbackRatio;
  }
  return estimate;
}

// Walks the zstd frames; nullopt when a frame has no content size or the stream is
// malformed.
std::optional<uint64_t> ZstdContentSize(int fd, uint64_t file_size) {
  uint64_t pos = 0;
  uint64_t total = 0;
  while (pos < file_size) {
    uint8_t head[18];
    size_t head_len = static_cast<size_t>(std::min<uint64_t>(sizeof(head), file_size - pos));
    if (head_len < 8 || !ReadAt(fd, pos, head, head_len)) return std::nullopt;
    uint32_t magic = static_cast<uint32_t>(LoadLe(head, 4));
    if ((magic & kZstdSkippableMask) == kZstdSkippableMagic) {
      pos += 8 + LoadLe(head + 4, 4);
      continue;
    }
    if (magic != kZstdMagic) return std::nullopt;
    uint8_t fhd = head[4];
    unsigned fcs_flag = fhd >> 6;
    bool single_segment = (fhd >> 5) & 1;
    bool checksum = (fhd >> 2) & 1;
    unsigned dict_flag = fhd & 3;
    static const unsigned kDictBytes[4] = {0, 1, 2, 4};
    static const unsigned kFcsBytes[4] = {0, 2, 4, 8};
    unsigned fcs_bytes = fcs_flag == 0 ? (single_segment ? 1 : 0) : kFcsBytes[fcs_flag];
    if (fcs_bytes == 0) return std::nullopt;
    size_t at = 5 + (single_segment ? 0 : 1) + kDictBytes[dict_flag];
    if (at + fcs_bytes > head_len) return std::nullopt;
    uint64_t fcs = LoadLe(head + at, fcs_bytes);
    if (fcs_bytes == 2) fcs += 256;
    total += fcs;
    pos += at + fcs_bytes;
    for (;;) {
      uint8_t bh[3];
      if (pos + 3 > file_size || !ReadAt(fd, pos, bh, 3)) return std::nullopt;
      uint32_t header = static_cast<uint32_t>(LoadLe(bh, 3));
      bool last = header & 1;
      unsigned type = (header >> 1) & 3;
      uint64_t size = header >> 3;
      if (type == 3) return std::nullopt;
      pos += 3 + (type == 1 ? 1 : size);
      if (last) break;
    }
    if (checksum) pos += 4;
  }
  if (pos != file_size) return std::nullopt;
  return total;
}

}  // namespace

uint64_t EstimateLayerUncompressedSize(const std::string& blob_path) {
  base::UniqueFd fd(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return 0;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return 0;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint8_t head[512] = {};
  size_t head_len = static_cast<size_t>(std::min<uint64_t>(sizeof(head), size));
  if (head_len > 0 && !ReadAt(fd.get(), 0, head, head_len)) return 0;
  if (head_len >= 2 && head[0] == 0x1f && head[1] == 0x8b) return GzipEstimate(fd.get(), size);
  if (head_len >= 4 && LoadLe(head, 4) == kZstdMagic) {
    std::optional<uint64_t> content = ZstdContentSize(fd.get(), size);
    return content ? std::max(*content, uint64_t{0}) : size * kFallbackRatio;
  }
  if (head_len == sizeof(head) && IsTarHeader(head)) return size;
  return size * kFallbackRatio;
}

}  // namespace boxlite::image

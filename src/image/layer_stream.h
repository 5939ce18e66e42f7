// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// LayerStream reads one OCI layer blob from a file descriptor in a single pass: it detects
// the compression from the first bytes (gzip, zstd, or none), decompresses, hashes the
// uncompressed stream with SHA-256 (the layer's diff_id) and hands the uncompressed bytes
// to a libarchive tar reader. No temporary files; memory is bounded by a few 1 MiB
// buffers plus the decompressor's window (zstd windows are capped at 128 MiB).
//
// Decompression runs on a producer thread that also hashes, so it overlaps with the
// caller's work on the tar entries; the tar reader runs on the caller's thread and pulls
// the producer's buffers through a read callback. gzip is decoded with zlib, which checks
// every member's CRC-32 and length (libarchive's gzip filter does not) and accepts
// concatenated members; trailing zero padding is ignored, other trailing bytes are
// Corruption. zstd is decoded with libzstd (frame checksums are verified when present;
// concatenated and skippable frames are accepted). The tar reader has no decompression
// filters of its own, so nested compression is not unpacked and no external program is
// ever run.
//
// Thread-safety: a LayerStream is used by one thread; it owns one internal producer
// thread, which it stops and joins on destruction (also when the fd is a pipe that never
// delivers more data: the producer polls it and checks for cancellation).
#pragma once

#include <archive.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/base/sha256.h"

namespace boxlite::image {

class LayerStream {
 public:
  enum class Compression { kNone, kGzip, kZstd };
  // The decompressor interface (defined in the .cc file).
  class Decoder;

  // Starts reading `fd` (not owned; must stay open while the stream lives). When the
  // uncompressed stream grows past `max_uncompressed_bytes` reading stops with
  // ResourceExhausted (a decompression bomb must not keep a core busy for hours).
  // Fails with Corruption when the start of the stream is not a tar archive after
  // decompression.
  static Result<std::unique_ptr<LayerStream>> Open(int fd, uint64_t max_uncompressed_bytes);
  ~LayerStream();
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  // The tar reader. Valid until destruction.
  struct archive* tar() const { return inner_; }

  // The status for a failed call on tar(): the decompressor's error (Corruption), the
  // size limit (ResourceExhausted) or a read error when one of those was the cause, else
  // Corruption with the tar reader's message; `context` says what was being read.
  Status TarError(std::string_view context) const;

  // Reads the rest of the stream (what follows the tar end marker), so that the digest
  // covers every uncompressed byte. Call once, after tar() reported the end.
  Status Drain();

  // "sha256:<hex>" of the uncompressed stream; valid after Drain() succeeded.
  const std::string& diff_id() const { return diff_id_; }
  // Length of the uncompressed stream; valid after Drain() succeeded.
  uint64_t uncompressed_bytes() const { return bytes_; }
  Compression compression() const { return compression_; }

 private:
  struct Buffer {
    std::unique_ptr<uint8_t[]> data;
    size_t size = 0;
  };

  LayerStream() = default;
  // Reads from fd_ into the input buffer; false at EOF. Producer thread only.
  Status FillInput(bool* at_eof);
  // Inner reader's read callback (caller's thread).
  static la_ssize_t ReadUncompressed(struct archive* inner, void* self, const void** buffer);
  // The producer thread: decompress, hash, queue.
  void Produce();
  Status ProduceOne(Buffer* out, bool* at_end);
  // Next block of uncompressed bytes; 0 at the end, -1 on error (then stream_error_).
  la_ssize_t NextBlock(const void** buffer);

  int fd_ = -1;
  bool fd_pollable_ = false;
  uint64_t max_bytes_ = 0;
  Compression compression_ = Compression::kNone;
  std::atomic<bool> cancelled_{false};
  struct archive* inner_ = nullptr;

  // Producer thread only (and the opening thread before the producer starts).
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<uint8_t[]> input_;
  size_t input_pos_ = 0;
  size_t input_len_ = 0;
  bool input_eof_ = false;
  base::Sha256 sha_;
  uint64_t bytes_ = 0;  // Read by the caller after the producer is joined.

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Buffer> ready_;   // Guarded by mu_.
  std::vector<Buffer> spare_;  // Guarded by mu_.
  bool producer_done_ = false;  // Guarded by mu_.
  bool stop_ = false;           // Guarded by mu_.
  Status producer_status_;      // Guarded by mu_; set before producer_done_.
  std::thread producer_;

  // Caller's thread only.
  Buffer current_;
  Status stream_error_;
  std::string diff_id_;
};

}  // namespace boxlite::image

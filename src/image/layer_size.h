// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A cheap guess of a layer's uncompressed size, used to size the ext4 image before the
// layers are written (the caller grows the image and retries on ResourceExhausted, so a
// guess that is too small costs time, never correctness). Only headers and trailers are
// read; nothing is decompressed.
//
// Thread-safety: pure function of the file's content.
#pragma once

#include <cstdint>
#include <string>

namespace boxlite::image {

// Estimates the uncompressed size of the layer blob at `blob_path`:
// - gzip: the ISIZE trailer (the size mod 2^32 of the last member), lifted by multiples of
//   2^32 until it is at least the compressed size, and never below the compressed size.
//   A multi-member gzip reports only its last member; the caller's retry covers that.
// - zstd: the sum of the frames' content sizes when every frame declares one (frame
//   headers are walked block header by block header; no data is decoded).
// - an uncompressed tar: the file size.
// - anything else, or a zstd frame without a content size: 5x the file size.
// Returns 0 when the file cannot be read.
uint64_t EstimateLayerUncompressedSize(const std::string& blob_path);

}  // namespace boxlite::image

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Feeds arbitrary bytes, in arbitrary pieces, to the frame decoder and the parsers of every
// payload kind, as a hostile guest could. Nothing may crash, hang or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/protocol/frame.h"
#include "src/protocol/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace boxlite::protocol;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  FrameDecoder decoder;
  // The first byte picks the read size, so the corpus also explores split frames.
  size_t chunk = size > 0 ? (static_cast<size_t>(data[0]) % 64) + 1 : 1;
  for (size_t off = 0; off < input.size(); off += chunk) {
    decoder.Feed(input.substr(off, chunk));
    while (true) {
      auto frame = decoder.Next();
      if (!frame.ok() || !frame->has_value()) break;
      const Frame& f = **frame;
      switch (f.kind) {
        case FrameKind::kData:
          (void)ParseData(f.payload);
          break;
        case FrameKind::kClose:
          (void)ParseClose(f.payload);
          break;
        case FrameKind::kCredit:
          (void)ParseCredit(f.payload);
          break;
        default: {
          auto j = ParseObject(f.payload);
          if (j.ok()) {
            ExecRequest exec;
            (void)FromJson(*j, &exec);
            HelloRequest hello;
            (void)FromJson(*j, &hello);
            FileInfo info;
            (void)FromJson(*j, &info);
            (void)DecodeResponse(f.payload);
          }
          break;
        }
      }
    }
    if (!decoder.Next().ok()) break;
  }
  return 0;
}

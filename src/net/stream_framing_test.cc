// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/stream_framing.h"

#include <gtest/gtest.h>

#include <cstring>

namespace boxlite::net {
namespace {

void Feed(FrameReader* r, const std::string& bytes) {
  auto tail = r->WritableTail(bytes.size());
  std::memcpy(tail.data(), bytes.data(), bytes.size());
  r->Commit(bytes.size());
}

std::string Str(std::span<const uint8_t> s) { return std::string(s.begin(), s.end()); }

TEST(StreamFramingTest, RoundTripsFrames) {
  std::string wire;
  std::string a = "first frame";
  std::string b(1514, 'x');
  AppendFramed({reinterpret_cast<const uint8_t*>(a.data()), a.size()}, &wire);
  AppendFramed({reinterpret_cast<const uint8_t*>(b.data()), b.size()}, &wire);
  EXPECT_EQ(wire.substr(0, 4), std::string("\0\0\0\x0b", 4));
  FrameReader r;
  Feed(&r, wire);
  auto f1 = r.Next();
  ASSERT_TRUE(f1.ok() && f1->has_value());
  EXPECT_EQ(Str(**f1), a);
  auto f2 = r.Next();
  ASSERT_TRUE(f2.ok() && f2->has_value());
  EXPECT_EQ(Str(**f2), b);
  auto f3 = r.Next();
  ASSERT_TRUE(f3.ok());
  EXPECT_FALSE(f3->has_value());
}

TEST(StreamFramingTest, FrameSplitAcrossEveryByte) {
  std::string wire;
  std::string payload = "split me";
  AppendFramed({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, &wire);
  AppendFramed({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, &wire);
  FrameReader r;
  int frames = 0;
  for (char c : wire) {
    Feed(&r, std::string(1, c));
    while (true) {
      auto f = r.Next();
      ASSERT_TRUE(f.ok());
      if (!f->has_value()) break;
      EXPECT_EQ(Str(**f), payload);
      ++frames;
    }
  }
  EXPECT_EQ(frames, 2);
}

TEST(StreamFramingTest, ZeroAndOversizedLengthsAreProtocolErrors) {
  FrameReader zero;
  Feed(&zero, std::string("\0\0\0\0", 4));
  EXPECT_TRUE(zero.Next().error().IsProtocolError());
  FrameReader big;
  Feed(&big, std::string("\0\x02\0\x01", 4));  // 131073 > kMaxStreamFrame.
  EXPECT_TRUE(big.Next().error().IsProtocolError());
}

}  // namespace
}  // namespace boxlite::net

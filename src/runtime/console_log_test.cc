// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The console log cap: a guest writing its console without end leaves a log of at most
// kConsoleMaxBytes holding the early boot and the latest output.
#include "src/runtime/console_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "src/base/strings.h"

namespace boxlite::runtime {
namespace {

// Numbered lines, so any part of the output says where it came from.
std::string Lines(int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) out += base::StrFormat("console line %08d\n", i);
  return out;
}

base::UniqueFd TempFile() {
  char path[] = "/tmp/boxlite-console-test-XXXXXX";
  int fd = ::mkstemp(path);
  ::unlink(path);
  return base::UniqueFd(fd);
}

std::string ReadAll(int fd) {
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  std::string buf(static_cast<size_t>(st.st_size), '\0');
  EXPECT_EQ(::pread(fd, buf.data(), buf.size(), 0), st.st_size);
  return buf;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
}

TEST(ConsoleLogTest, SmallOutputIsKeptWhole) {
  auto log = TempFile();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::string text = Lines(0, 100);
  WriteAll(p[1], text);
  ::close(p[1]);
  EXPECT_EQ(CopyConsole(p[0], log.get()), 0);
  ::close(p[0]);
  EXPECT_EQ(ReadAll(log.get()), text);
}

TEST(ConsoleLogTest, EndlessOutputKeepsTheHeadAndTheLatestUnderTheCap) {
  auto log = TempFile();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::string text = Lines(0, 400000);  // ~8 MiB.
  std::thread writer([&] {
    WriteAll(p[1], text);
    ::close(p[1]);
  });
  EXPECT_EQ(CopyConsole(p[0], log.get()), 0);
  writer.join();
  ::close(p[0]);
  std::string kept = ReadAll(log.get());
  EXPECT_LE(static_cast<int64_t>(kept.size()), kConsoleMaxBytes);
  EXPECT_EQ(kept.substr(0, kConsoleHeadBytes), text.substr(0, kConsoleHeadBytes));
  EXPECT_NE(kept.find("console output dropped"), std::string::npos);
  std::string tail = text.substr(text.size() - 100000);
  EXPECT_EQ(kept.substr(kept.size() - tail.size()), tail);
}

TEST(ConsoleLogTest, AnEarlierBootStaysAndTheCapHolds) {
  auto log = TempFile();
  std::string before = Lines(0, 80000);  // ~1.6 MiB from an earlier VM: over the cap.
  WriteAll(log.get(), before);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::string text = Lines(80000, 80010);
  WriteAll(p[1], text);
  ::close(p[1]);
  EXPECT_EQ(CopyConsole(p[0], log.get()), 0);
  ::close(p[0]);
  std::string kept = ReadAll(log.get());
  EXPECT_LE(static_cast<int64_t>(kept.size()), kConsoleMaxBytes);
  EXPECT_EQ(kept.substr(0, 100), before.substr(0, 100));
  EXPECT_EQ(kept.substr(kept.size() - text.size()), text);
}

TEST(ConsoleLogTest, TheWriterProcessEndsWithItsLastWriter) {
  auto log = TempFile();
  auto pipe = StartConsoleWriter(log.get());
  ASSERT_TRUE(pipe.ok()) << pipe.error().ToString();
  EXPECT_FALSE(WaitConsoleWriter(log.get(), std::chrono::milliseconds(0)));
  std::string text = Lines(0, 200000);  // ~4 MiB.
  WriteAll(pipe->get(), text);
  pipe->reset();
  // The lock goes with the process: once it is free, the writer is gone.
  ASSERT_TRUE(WaitConsoleWriter(log.get(), std::chrono::seconds(30)));
  std::string kept = ReadAll(log.get());
  EXPECT_LE(static_cast<int64_t>(kept.size()), kConsoleMaxBytes);
  EXPECT_EQ(kept.substr(kept.size() - 1000), text.substr(text.size() - 1000));
}

}  // namespace
}  // namespace boxlite::runtime

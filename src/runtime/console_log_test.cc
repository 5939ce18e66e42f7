// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The console log cap: a guest writing its console without end leaves a log of at most
// kConsoleMaxBytes holding the early boot and the latest output.
#include "src/runtime/console_log.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
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
  auto pipe = StartConsoleWriter(log.get(), "");
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

// The fields of /proc/<pid>/status ("Uid" -> "0\t0\t0\t0"); empty once it is gone.
std::map<std::string, std::string> ProcStatus(pid_t pid) {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    fields[line.substr(0, colon)] = start == std::string::npos ? "" : line.substr(start);
  }
  return fields;
}

// The process whose stdin is the pipe `write_end` writes into: the console writer.
pid_t FindReaderOf(int write_end) {
  struct stat st;
  if (::fstat(write_end, &st) != 0) return -1;
  std::string want = "pipe:[" + std::to_string(st.st_ino) + "]";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    char target[64];
    std::string fd0 = "/proc/" + name + "/fd/0";
    ssize_t n = ::readlink(fd0.c_str(), target, sizeof(target) - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == want) return std::stoi(name);
  }
  return -1;
}

// Starts a writer (the program, or the forked fallback when `fallback`), waits until it
// has confined itself, checks its credentials and filter in /proc, then that it still
// copies the console into the log.
void CheckWriterIsConfined(bool fallback) {
  // A path that is not there makes StartConsoleWriter copy in its forked child.
  const char* helper =
      fallback ? "/nonexistent/boxlite-console" : BOXLITE_CONSOLE_HELPER_UNDER_TEST;
  EXPECT_EQ(FindConsoleHelper(helper), fallback ? "" : helper);
  auto log = TempFile();
  auto pipe = StartConsoleWriter(log.get(), helper);
  ASSERT_TRUE(pipe.ok()) << pipe.error().ToString();
  // The writer confines itself right after it starts; seccomp is its last step.
  std::map<std::string, std::string> status;
  for (int i = 0; i < 3000; ++i) {
    pid_t pid = FindReaderOf(pipe->get());
    if (pid > 0) status = ProcStatus(pid);
    if (status["Seccomp"] == "2") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(status["Name"], kConsoleHelperName);
  EXPECT_EQ(status["NoNewPrivs"], "1");
  EXPECT_EQ(status["Seccomp"], "2");
  EXPECT_EQ(status["CapEff"], "0000000000000000");
  EXPECT_EQ(status["CapPrm"], "0000000000000000");
  EXPECT_EQ(status["CapInh"], "0000000000000000");
  EXPECT_EQ(status["CapAmb"], "0000000000000000");
  if (::geteuid() == 0) {
    EXPECT_EQ(status["CapBnd"], "0000000000000000");
    // Real, effective, saved and filesystem uid, and the same for the gid: none is root's.
    for (const char* field : {"Uid", "Gid"}) {
      auto ids = base::Split(status[field], '\t', true);
      EXPECT_EQ(ids.size(), 4u) << field << ": " << status[field];
      for (const auto& id : ids) EXPECT_NE(id, "0") << field << ": " << status[field];
    }
    EXPECT_EQ(status["Groups"], "");
  }
  std::string text = Lines(0, 100000);  // ~2 MiB: a compaction runs under the filter too.
  WriteAll(pipe->get(), text);
  pipe->reset();
  ASSERT_TRUE(WaitConsoleWriter(log.get(), std::chrono::seconds(30)));
  std::string kept = ReadAll(log.get());
  EXPECT_LE(static_cast<int64_t>(kept.size()), kConsoleMaxBytes);
  EXPECT_EQ(kept.substr(0, 1000), text.substr(0, 1000));
  EXPECT_NE(kept.find("console output dropped"), std::string::npos);
  EXPECT_EQ(kept.substr(kept.size() - 1000), text.substr(text.size() - 1000));
  EXPECT_EQ(kept.find("not logged"), std::string::npos);
}

TEST(ConsoleLogTest, TheWriterProgramRunsConfined) { CheckWriterIsConfined(false); }

TEST(ConsoleLogTest, TheForkedFallbackWriterRunsConfined) { CheckWriterIsConfined(true); }

// The writer's filter lets the copy through and refuses anything else: a process under it
// cannot open a file, start a program or make a socket.
TEST(ConsoleLogTest, TheWritersFilterRefusesWhatTheCopyDoesNotNeed) {
  auto confinement = PrepareWriterConfinement();
  ASSERT_TRUE(confinement.ok()) << confinement.error().ToString();
  ASSERT_FALSE(confinement->seccomp.empty());
  auto log = TempFile();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct sock_fprog prog = {
        static_cast<unsigned short>(confinement->seccomp.size() / sizeof(sock_filter)),
        reinterpret_cast<sock_filter*>(confinement->seccomp.data())};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(10);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) ::_exit(11);
    if (::pwrite(log.get(), "ok", 2, 0) != 2) ::_exit(12);
    if (::open("/etc/hostname", O_RDONLY) >= 0 || errno != EPERM) ::_exit(13);
    if (::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 || errno != EPERM) ::_exit(14);
    if (::dup(log.get()) >= 0 || errno != EPERM) ::_exit(15);
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execve("/bin/true", argv, argv + 1);
    ::_exit(errno == EPERM ? 0 : 16);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(ReadAll(log.get()), "ok");
}

TEST(ConsoleLogTest, ANoteSaysWhyTheConsoleIsNotLogged) {
  auto log = TempFile();
  WriteAll(log.get(), "boot");
  NoteConsoleNotLogged(log.get(), "the console writer could not set no_new_privs", 1);
  EXPECT_EQ(ReadAll(log.get()),
            "boot\n[boxlite: console output is not logged: the console writer could not set "
            "no_new_privs (errno 1)]\n");
}

}  // namespace
}  // namespace boxlite::runtime

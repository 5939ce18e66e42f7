// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// VM benchmarks. Each prints one JSON line (docs/design.md §7) comparing BoxLite against a
// floor measured in the same run on the same machine:
//   cold_start_s        create -> first exec done    vs  bare QEMU boot to a trivial init
//   bare_boot_first_exec_s  that bare boot, then the image's own `true` run once from the
//                       mounted disk (a reference, not the floor)  vs  the bare boot
//   warm_start_s        the same from a template     vs  cold_start_s of this run
//   exec_rtt_ms         `true` round trip (median)   vs  raw virtio-serial echo (median)
//                       (the floor's static `true`; exec_rtt_image_true_ms: the image's)
//   exec_rtt_p99_ms     same, 99th percentile        vs  raw echo p99
//   stdout_mb_per_s     64 MiB of stdout, from its first byte as the floors are timed
//                                                    vs  raw port stream (higher is better)
//   stdout_vs_pipe_floor  the same                   vs  the writer's pipe spliced to the port
//                       (value_from_exec_start: the same streams from StartExec to Wait)
//   stdout_dd_mb_per_s  the same from `dd if=/dev/zero` vs  raw port stream
//   idle_rss_mib        QEMU RSS of an idle box      vs  QEMU RSS of the idle floor VM
//   snapshot_create_s   memory snapshot of a 1 GiB box   vs  `cp --reflink=never` of its RAM
//   restore_s           restore of that snapshot         vs  the same copy
//   fork_private_mib    Private_* memory of one fork's QEMU  vs  a cold box's QEMU RSS
//   rss_after_burst_mib QEMU RSS after the guest used and freed 600 MiB  vs  its idle RSS
//   idle_boxes          256 MiB boxes alive at once, all answering  vs  the boot target
//   idle_box_pss_mib    PSS per idle box (QEMU and helpers)  vs  a bare idle QEMU's PSS
//   idle_cpu_pct_per_box CPU of an idle box (QEMU and helpers)  vs  a bare idle QEMU's
// (the last four: `--only density`; docs/benchmarks.md, "Density")
// `--only stream-ab --ab-data-dir DIR --runs N` compares two agents' stdout instead: N
// back-to-back pairs of the same stream from a box of each data dir (BenchStdoutAb).
// The floor VM boots the same kernel with the same devices (virtio-blk disk, the
// boxlite.agent port) and bench/guest_floor.c as /init. Progress goes to stderr.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "boxlite/boxlite.h"
#include "boxlite/config.h"
#include "src/base/strings.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"
#include "src/vmm/guest_assets.h"
#include "src/vmm/guest_ram.h"
#include "src/vmm/qemu.h"

namespace {

using boxlite::Status;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string g_accel = "tcg";
std::string g_home;  // The private BOXLITE_HOME, removed on every exit.

// One JSON line (docs/design.md §7), plus `extra` fields when given.
void PrintLine(const char* metric, double value, const char* floor_name, double floor,
               double ratio, double target, size_t runs, const nlohmann::ordered_json& extra) {
  // Three decimals for ratios, six significant digits for figures, as before.
  auto sig = [](double v) { return std::stod(boxlite::base::StrFormat("%.6g", v)); };
  nlohmann::ordered_json line = {
      {"metric", metric},           {"value", sig(value)},
      {"floor_name", floor_name},   {"floor", sig(floor)},
      {"ratio", std::round(ratio * 1000) / 1000},
      {"target_ratio", std::round(target * 100) / 100},
      {"runs", runs},               {"accel", g_accel},
      {"host", std::to_string(std::thread::hardware_concurrency()) + " cpu"}};
  for (const auto& [key, v] : extra.items()) {
    line[key] = v.is_number_float() ? nlohmann::ordered_json(sig(v.get<double>())) : v;
  }
  std::puts(line.dump().c_str());
  std::fflush(stdout);
}

void Emit(const char* metric, double value, const char* floor_name, double floor,
          bool higher_is_better, double target, int runs) {
  PrintLine(metric, value, floor_name, floor, higher_is_better ? floor / value : value / floor,
            target, static_cast<size_t>(runs), nlohmann::ordered_json::object());
}

// Emit, with the spread of both sides: the quartiles of the samples behind the value and
// the floor, and the median (and quartiles) of the ratios of samples taken one right
// after the other (the two sides interleaved, so a stall of the host hits both alike).
// `more` adds fields to the line.
void EmitSpread(const char* metric, const std::vector<double>& values, const char* floor_name,
                const std::vector<double>& floors, bool higher_is_better, double target,
                const nlohmann::ordered_json& more = nlohmann::ordered_json::object()) {
  double value = Median(values);
  double floor = Median(floors);
  std::vector<double> paired;
  for (size_t i = 0; i < std::min(values.size(), floors.size()); ++i) {
    paired.push_back(higher_is_better ? floors[i] / values[i] : values[i] / floors[i]);
  }
  auto r3 = [](double v) { return std::round(v * 1000) / 1000; };
  nlohmann::ordered_json extra = {
      {"value_p25", Percentile(values, 0.25)}, {"value_p75", Percentile(values, 0.75)},
      {"floor_p25", Percentile(floors, 0.25)}, {"floor_p75", Percentile(floors, 0.75)},
      {"paired_ratio", r3(Median(paired))},    {"paired_ratio_p25", r3(Percentile(paired, 0.25))},
      {"paired_ratio_p75", r3(Percentile(paired, 0.75))}};
  extra.update(more);
  PrintLine(metric, value, floor_name, floor, higher_is_better ? floor / value : value / floor,
            target, values.size(), extra);
}

[[noreturn]] void Die(const Status& s, const char* what) {
  std::fprintf(stderr, "bench: %s: %s\n", what, s.ToString().c_str());
  if (!g_home.empty()) (void)boxlite::sys::RemoveTree(g_home);
  std::exit(1);
}

template <typename T>
T Must(boxlite::Result<T> r, const char* what) {
  if (!r.ok()) Die(r.error(), what);
  return std::move(r).value();
}

// A floor VM: the same kernel and devices as a box, bench/guest_floor.c as init.
class FloorVm {
 public:
  FloorVm(const boxlite::vmm::GuestAssets& assets, const std::string& initramfs,
          const std::string& disk, const std::string& mode, boxlite::vmm::Accel accel,
          int memory_mib = 1024, const std::string& disk_backing = "") {
    int sp[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
    host_.reset(sp[0]);
    boxlite::base::UniqueFd guest(sp[1]);
    boxlite::vmm::VmConfig c;
    c.accel = accel;
    c.memory_mib = memory_mib;
    c.kernel = assets.kernel;
    c.initramfs = initramfs;
    c.tsc_khz = boxlite::vmm::HostTscKhz();
    c.extra_kernel_args = "floor=" + mode;
    c.disk = disk;
    c.disk_backing = disk_backing;  // The raw base under `disk` (only first_exec reads it).
    c.console_log = "/dev/null";
    c.agent_fds = {guest.get()};
    c.inherit_fds = {guest.get()};
    // The floor is a bare QEMU, started as a user would start it by hand: no jail (a box's
    // QEMU pays for its jail, and that cost is part of what the figures measure).
    boxlite::sys::SpawnOptions spawn;
    spawn.argv = Must(boxlite::vmm::BuildQemuArgv(c), "the floor VM's command line");
    spawn.keep_fds = c.inherit_fds;
    spawn.new_process_group = true;
    spawn.stderr_fd = 2;  // QEMU's own complaints, with the bench's progress.
    start_ = Clock::now();
    vm_.emplace(Must(boxlite::sys::Subprocess::Spawn(spawn), "launch the floor VM"));
  }

  int fd() const { return host_.get(); }
  int pid() const { return vm_->pid(); }
  Clock::time_point started() const { return start_; }

  // Reads exactly n bytes.
  void ReadExactly(char* buf, size_t n) {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::read(host_.get(), buf + got, n - got);
      if (r <= 0) Die(Status::IoError("floor VM closed its port"), "read");
      got += static_cast<size_t>(r);
    }
  }

 private:
  boxlite::base::UniqueFd host_;
  std::optional<boxlite::sys::Subprocess> vm_;
  Clock::time_point start_;
};

// One round trip of `program` (a `true`) through BoxLite's exec, in milliseconds. With
// `split`: the part until StartExec returned (the request, the agent's start of the
// process, the response) and the part in Wait (the process running, its exit event).
double ExecRoundTrip(boxlite::Box& box, const std::string& program,
                     std::pair<double, double>* split = nullptr) {
  boxlite::ExecOptions t;
  t.argv = {program};
  auto t0 = Clock::now();
  auto exec = Must(box.StartExec(t), "exec true");
  auto started = Clock::now();
  (void)Must(exec->Wait(), "wait true");
  auto t1 = Clock::now();
  if (split) *split = {Seconds(started - t0) * 1000, Seconds(t1 - started) * 1000};
  return Seconds(t1 - t0) * 1000;
}

// What merely starting a process costs the guest: the floor VM (mode "spawn") answers a
// byte by fork + exec + wait of a trivial process, then sends the byte back (milliseconds).
double SpawnRoundTrip(FloorVm& vm) {
  char c = 's';
  auto t0 = Clock::now();
  if (::write(vm.fd(), &c, 1) != 1) Die(Status::IoError("write"), "spawn");
  vm.ReadExactly(&c, 1);
  return Seconds(Clock::now() - t0) * 1000;
}

// The floor's own static `true` (bench/guest_floor.c), copied into the box: the exec figures
// start the very program the spawn floor starts, so they differ only by BoxLite's path.
constexpr char kFloorTrue[] = "/boxlite-bench/true";

// Round trips of the floor's `true`, of the image's own (boxlite/base: Debian's
// dynamically linked busybox; for what a user's command costs on top: the dynamic loader,
// and under TCG the translation of code that address-space randomization places anew in
// every process), and of the spawn floor, interleaved: exec, spawn, exec, spawn... with
// the floor VM running beside the box, so the host's noise falls on both sides alike.
// spawn[i] was taken right after floor_true[i]; image_spawn[i] right after image_true[i].
struct ExecTimes {
  std::vector<double> floor_true;
  std::vector<double> start_part;  // floor_true's time until StartExec returned,
  std::vector<double> wait_part;   // and in Wait.
  std::vector<double> spawn;
  std::vector<double> image_true;
  std::vector<double> image_spawn;
};

ExecTimes MeasureExecs(boxlite::Box& box, const boxlite::vmm::GuestAssets& assets,
                       const std::string& initramfs, const std::string& disk,
                       boxlite::vmm::Accel accel, int runs) {
  if (Status s = box.CopyIn(BOXLITE_FLOOR_BINARY, kFloorTrue); !s.ok()) Die(s, "copy true in");
  FloorVm vm(assets, initramfs, disk, "spawn", accel);
  ExecTimes t;
  for (int i = 0; i < runs + 10; ++i) {  // The first 10 rounds warm both sides up.
    std::pair<double, double> split;
    double exec = ExecRoundTrip(box, kFloorTrue, &split);
    double spawn = SpawnRoundTrip(vm);
    if (i >= 10) {
      t.floor_true.push_back(exec);
      t.start_part.push_back(split.first);
      t.wait_part.push_back(split.second);
      t.spawn.push_back(spawn);
    }
  }
  // The image's `true` takes ~10x longer: a fifth as many rounds (at least 20), after all
  // of the static ones. Under TCG each of its runs translates the dynamic loader, libc and
  // busybox anew at the addresses randomization gives them, and that code stays in the
  // box's QEMU: static rounds run after image rounds were measured 5-10% slower against
  // the same floor, whose VM never runs such programs.
  const int image_runs = runs >= 100 ? runs / 5 : runs;
  for (int i = 0; i < image_runs + 2; ++i) {  // Two rounds to warm up.
    double image = ExecRoundTrip(box, "true");
    double image_spawn = SpawnRoundTrip(vm);
    if (i >= 2) {
      t.image_true.push_back(image);
      t.image_spawn.push_back(image_spawn);
    }
  }
  std::fprintf(stderr, "exec: static true %.2f ms (p25 %.2f, p75 %.2f; until started %.2f, "
               "waiting %.2f), spawn floor %.2f ms (p25 %.2f, p75 %.2f), image true %.1f ms\n",
               Median(t.floor_true), Percentile(t.floor_true, 0.25),
               Percentile(t.floor_true, 0.75), Median(t.start_part), Median(t.wait_part),
               Median(t.spawn), Percentile(t.spawn, 0.25), Percentile(t.spawn, 0.75),
               Median(t.image_true));
  return t;
}

// Both exec figures against what merely starting a process costs this guest.
void EmitAgainstSpawn(const ExecTimes& t) {
  EmitSpread("exec_rtt_vs_spawn_ms", t.floor_true, "guest_spawn_rtt_ms", t.spawn, false, 1.25);
  EmitSpread("exec_rtt_image_true_ms", t.image_true, "guest_spawn_rtt_ms", t.image_spawn, false,
             1.25);
}

// A floor VM streaming `bytes` to the port in `mode` ("stream": straight from the
// writer; "pipe": the writer's pipe spliced to the port), in MB/s from the first byte.
double FloorStreamMbps(const boxlite::vmm::GuestAssets& assets, const std::string& initramfs,
                       const std::string& disk, boxlite::vmm::Accel accel, const char* mode,
                       uint64_t bytes) {
  FloorVm vm(assets, initramfs, disk,
             boxlite::base::StrFormat("%s floor_bytes=%llu", mode,
                                      static_cast<unsigned long long>(bytes + 1)),
             accel);
  char first;
  vm.ReadExactly(&first, 1);  // The stream starts once booted: time from its first byte.
  auto f0 = Clock::now();
  std::vector<char> buf(1 << 20);
  uint64_t left = bytes;
  while (left > 0) {
    ssize_t r = ::read(vm.fd(), buf.data(), std::min<uint64_t>(left, buf.size()));
    if (r <= 0) Die(Status::IoError("floor stream ended"), "throughput");
    left -= static_cast<uint64_t>(r);
  }
  return static_cast<double>(bytes) / 1e6 / Seconds(Clock::now() - f0);
}

// The floor's writer, copied into a box for the stdout figures.
void CopyInWriter(boxlite::Box& box) {
  if (Status s = box.CopyIn(BOXLITE_FLOOR_BINARY, "/boxlite-bench-write"); !s.ok()) {
    Die(s, "copy the writer in");
  }
}

// One stream of `bytes` from `command`'s stdout, in MB/s: `from_first_byte` times what
// follows the first chunk until the last byte, as the floors are timed (from their first
// byte); `from_exec_start` times the whole exec, from StartExec to the end of Wait, so it
// also holds the exec's start and its exit (~7% of a 64 MiB stream of the floor's writer here).
struct StreamRate {
  double from_first_byte = 0;
  double from_exec_start = 0;
};

StreamRate StdoutMbps(boxlite::Box& box, std::vector<std::string> command, uint64_t bytes) {
  boxlite::ExecOptions h;
  h.argv = std::move(command);
  auto t0 = Clock::now();
  auto exec = Must(box.StartExec(h), "exec writer");
  uint64_t got = 0;
  uint64_t first = 0;
  Clock::time_point t_first, t_last;
  while (true) {
    auto chunk = Must(exec->Read(1), "read stdout");
    if (chunk.empty()) break;
    t_last = Clock::now();
    if (got == 0) {
      t_first = t_last;
      first = chunk.size();
    }
    got += chunk.size();
  }
  (void)exec->Wait();
  double secs = Seconds(Clock::now() - t0);
  if (got != bytes || got == first) Die(Status::Internal("short stdout"), "throughput");
  return {static_cast<double>(got - first) / 1e6 / Seconds(t_last - t_first),
          static_cast<double>(got) / 1e6 / secs};
}

std::vector<std::string> WriterCommand(uint64_t bytes) {
  return {"/boxlite-bench-write", "write", std::to_string(bytes)};
}

// stdout_mb_per_s and its floors. The box runs the floor's own writer loop (guest_floor
// `write N`, copied in), so the figures differ only by the path between the writer and the
// host: against the bare port (virtio_serial_stream_mb_per_s) that is the stdout pipe, the
// agent, framing and credits, and the host library; against the same writer's pipe
// spliced to the bare port (guest_pipe_stream_mb_per_s, stdout_vs_pipe_floor) it is
// BoxLite's own share alone, since any process's stdout is a pipe. `dd if=/dev/zero` is
// reported beside it, as a common real writer. The four are interleaved, run by run.
void BenchStdout(boxlite::Box& box, const boxlite::vmm::GuestAssets& assets,
                 const std::string& initramfs, const std::string& disk,
                 boxlite::vmm::Accel accel) {
  const uint64_t kBytes = 64ull << 20;
  CopyInWriter(box);
  auto stdout_mbps = [&](std::vector<std::string> command) {
    return StdoutMbps(box, std::move(command), kBytes);
  };
  std::vector<double> box_mbps, box_whole_mbps, dd_mbps, port_mbps, pipe_mbps;
  const int kStreamRuns = 9;
  for (int i = 0; i < kStreamRuns; ++i) {
    StreamRate box_rate = stdout_mbps(WriterCommand(kBytes));
    box_mbps.push_back(box_rate.from_first_byte);
    box_whole_mbps.push_back(box_rate.from_exec_start);
    pipe_mbps.push_back(FloorStreamMbps(assets, initramfs, disk, accel, "pipe", kBytes));
    dd_mbps.push_back(stdout_mbps({"dd", "if=/dev/zero", "bs=1048576",
                                   "count=" + std::to_string(kBytes >> 20)})
                          .from_first_byte);
    port_mbps.push_back(FloorStreamMbps(assets, initramfs, disk, accel, "stream", kBytes));
    std::fprintf(stderr,
                 "throughput %d/%d: box %.0f MB/s (%.0f from the exec's start; dd %.0f), "
                 "floors: pipe %.0f MB/s, port %.0f MB/s\n",
                 i + 1, kStreamRuns, box_mbps.back(), box_whole_mbps.back(), dd_mbps.back(),
                 pipe_mbps.back(), port_mbps.back());
  }
  EmitSpread("stdout_mb_per_s", box_mbps, "virtio_serial_stream_mb_per_s", port_mbps, true, 1.43);
  // The same streams timed from the exec's start (StreamRate), beside the figure.
  std::vector<double> whole_paired;
  for (size_t i = 0; i < box_whole_mbps.size(); ++i) {
    whole_paired.push_back(pipe_mbps[i] / box_whole_mbps[i]);
  }
  EmitSpread("stdout_vs_pipe_floor", box_mbps, "guest_pipe_stream_mb_per_s", pipe_mbps, true,
             1.25,
             {{"value_from_exec_start", Median(box_whole_mbps)},
              {"paired_ratio_from_exec_start", std::round(Median(whole_paired) * 1000) / 1000}});
  EmitSpread("stdout_dd_mb_per_s", dd_mbps, "virtio_serial_stream_mb_per_s", port_mbps, true,
             1.43);
}

// Two agents' stdout, alternated run by run: the box of `a` (this tree's data dir) and the
// box of `b` (another data dir, e.g. with another initramfs), 64 MiB of the floor's writer
// each time, no floors. On a host shared with other work a floor's own swings hide a
// difference of a few percent between two agents; back-to-back pairs of the same stream
// do not. Prints each pair and the median of b's time over a's (below 1: b is faster).
void BenchStdoutAb(boxlite::Box& a, boxlite::Box& b, int runs) {
  const uint64_t kBytes = 64ull << 20;
  CopyInWriter(a);
  CopyInWriter(b);
  std::vector<double> a_mbps, b_mbps, paired;
  for (int i = 0; i < runs; ++i) {
    a_mbps.push_back(StdoutMbps(a, WriterCommand(kBytes), kBytes).from_exec_start);
    b_mbps.push_back(StdoutMbps(b, WriterCommand(kBytes), kBytes).from_exec_start);
    paired.push_back(a_mbps.back() / b_mbps.back());
    std::fprintf(stderr, "stdout a/b %d/%d: a %.0f MB/s, b %.0f MB/s\n", i + 1, runs,
                 a_mbps.back(), b_mbps.back());
  }
  nlohmann::ordered_json line = {
      {"metric", "stdout_ab"},
      {"a_mb_per_s", Median(a_mbps)},
      {"b_mb_per_s", Median(b_mbps)},
      {"b_time_over_a", std::round(Median(paired) * 1000) / 1000},
      {"b_time_over_a_p25", std::round(Percentile(paired, 0.25) * 1000) / 1000},
      {"b_time_over_a_p75", std::round(Percentile(paired, 0.75) * 1000) / 1000},
      {"runs", runs}};
  std::printf("%s\n", line.dump().c_str());
}

// Private_Clean + Private_Dirty of a process (/proc/<pid>/smaps_rollup), in bytes.
uint64_t PrivateBytes(int pid) {
  auto rollup = boxlite::sys::ReadFile(boxlite::base::StrFormat("/proc/%d/smaps_rollup", pid));
  if (!rollup.ok()) return 0;
  uint64_t total = 0;
  for (const auto& line : boxlite::base::Split(*rollup, '\n')) {
    if (line.starts_with("Private_Clean:") || line.starts_with("Private_Dirty:")) {
      total += std::strtoull(line.c_str() + line.find(':') + 1, nullptr, 10) * 1024;
    }
  }
  return total;
}

uint64_t RssBytes(int pid) {
  auto status = boxlite::sys::ReadFile(boxlite::base::StrFormat("/proc/%d/status", pid));
  if (!status.ok()) return 0;
  for (const auto& line : boxlite::base::Split(*status, '\n')) {
    if (line.starts_with("VmRSS:")) {
      return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;  // "VmRSS:\t 123 kB".
    }
  }
  return 0;
}

// --- Density (docs/benchmarks.md, "Density") ---

// A "<field> <n> kB" line of a /proc file (smaps_rollup's "Pss:", meminfo's
// "MemAvailable:"), in bytes; 0 when missing.
uint64_t KibField(const std::string& path, const char* field) {
  auto text = boxlite::sys::ReadFile(path);
  if (!text.ok()) return 0;
  for (const auto& line : boxlite::base::Split(*text, '\n')) {
    if (line.starts_with(field)) {
      return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10) * 1024;
    }
  }
  return 0;
}

// Every process below `root` (QEMU, the network and console helpers, jail wrappers).
std::vector<int> Descendants(int root) {
  std::vector<std::pair<int, int>> parent_of;  // (pid, ppid)
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      int pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      auto stat = boxlite::sys::ReadFile(boxlite::base::StrFormat("/proc/%d/stat", pid));
      if (!stat.ok()) continue;
      size_t close = stat->rfind(')');  // The command name may hold anything.
      if (close == std::string::npos || close + 4 > stat->size()) continue;
      parent_of.emplace_back(pid, std::atoi(stat->c_str() + close + 4));
    }
    ::closedir(d);
  }
  std::vector<int> out;
  std::vector<int> frontier = {root};
  while (!frontier.empty()) {
    int p = frontier.back();
    frontier.pop_back();
    for (const auto& [pid, ppid] : parent_of) {
      if (ppid == p) {
        out.push_back(pid);
        frontier.push_back(pid);
      }
    }
  }
  return out;
}

// utime + stime of processes, in seconds.
double CpuSeconds(const std::vector<int>& pids) {
  double ticks = 0;
  for (int pid : pids) {
    auto stat = boxlite::sys::ReadFile(boxlite::base::StrFormat("/proc/%d/stat", pid));
    if (!stat.ok()) continue;
    size_t close = stat->rfind(')');
    if (close == std::string::npos) continue;
    auto fields = boxlite::base::Split(stat->substr(close + 2), ' ');
    // After the name: state(0) ... utime(11) stime(12).
    if (fields.size() > 12) ticks += std::atof(fields[11].c_str()) + std::atof(fields[12].c_str());
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// rss_after_burst_mib: a 1 GiB box fills and frees 600 MiB; free page reporting (the
// balloon device, src/vmm/qemu.cc) gives the pages back to the host.
void BenchBurst(boxlite::Runtime& rt, const boxlite::BoxOptions& bo) {
  auto box = Must(rt.Create(bo), "create");
  if (Status s = box->Start(); !s.ok()) Die(s, "start");
  int pid = Must(box->Info(), "info").pid;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  double idle = static_cast<double>(RssBytes(pid)) / (1 << 20);
  boxlite::ExecOptions burst;
  burst.argv = {"dd", "if=/dev/zero", "of=/dev/null", "bs=600M", "count=1"};
  (void)Must(box->Run(burst), "burst");
  double peak = static_cast<double>(RssBytes(pid)) / (1 << 20);
  // "A few seconds later": reporting waits ~2 s after a free, then goes in batches;
  // sample until the RSS stops falling (3 samples in a row), at most 30 s.
  double now = peak;
  int steady = 0;
  for (int i = 0; i < 30 && steady < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    double next = static_cast<double>(RssBytes(pid)) / (1 << 20);
    steady = next >= now - 1 ? steady + 1 : 0;
    now = next;
  }
  std::fprintf(stderr, "burst: idle %.0f MiB, after the burst %.0f MiB, settled %.0f MiB\n",
               idle, peak, now);
  Emit("rss_after_burst_mib", now, "idle_rss_before_burst_mib", idle, false, 1.2, 1);
  (void)box->Stop();
}

// idle_boxes, idle_box_pss_mib, idle_cpu_pct_per_box: `target` idle 256 MiB boxes (warm
// start; every other one with the NAT network) at once, each answering an exec.
void BenchDensity(boxlite::Runtime& rt, const boxlite::BoxOptions& bo,
                  const boxlite::vmm::GuestAssets& assets, const std::string& floor_initramfs,
                  const std::string& floor_disk, boxlite::vmm::Accel accel, int target) {
  boxlite::BoxOptions small = bo;
  small.memory_mib = 256;
  small.warm = true;
  std::vector<std::shared_ptr<boxlite::Box>> boxes;
  auto t0 = Clock::now();
  for (int i = 0; i < target; ++i) {
    boxlite::BoxOptions o = small;
    o.network = i % 2 == 1 ? "nat" : "none";
    auto box = rt.Create(o);
    Status s = box.ok() ? (*box)->Start() : box.error();
    if (!s.ok()) {
      std::fprintf(stderr, "density: box %d did not start: %s\n", i + 1, s.ToString().c_str());
      break;
    }
    boxes.push_back(*box);
    if ((i + 1) % 10 == 0) {
      std::fprintf(stderr, "density: %d boxes up (%.0fs)\n", i + 1, Seconds(Clock::now() - t0));
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(5));  // Let the last boots settle.
  int answering = 0;
  boxlite::ExecOptions t;
  t.argv = {"true"};
  for (auto& box : boxes) {
    auto r = box->Run(t);
    if (r.ok() && r->exit_code == 0) ++answering;
  }
  // The floor: bare QEMUs of the same memory, idle, as many as fit a small sample.
  int floors = std::min(8, std::max(1, target));
  std::vector<std::unique_ptr<FloorVm>> bare;
  for (int i = 0; i < floors; ++i) {
    // One overlay each: QEMU locks its disk.
    std::string disk = boxlite::base::StrFormat("%s.%d", floor_disk.c_str(), i);
    Must(boxlite::sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                                   "-b", floor_disk, disk}),
         "floor overlay");
    bare.push_back(std::make_unique<FloorVm>(assets, floor_initramfs, disk, "boot", accel, 256));
    char c;
    bare.back()->ReadExactly(&c, 1);
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  std::vector<int> bare_pids;
  for (auto& vm : bare) bare_pids.push_back(vm->pid());
  std::vector<int> box_pids;
  for (int pid : Descendants(static_cast<int>(::getpid()))) {
    if (std::find(bare_pids.begin(), bare_pids.end(), pid) == bare_pids.end()) {
      box_pids.push_back(pid);
    }
  }
  const double kWindow = 10;
  double box_cpu0 = CpuSeconds(box_pids);
  double bare_cpu0 = CpuSeconds(bare_pids);
  std::this_thread::sleep_for(std::chrono::duration<double>(kWindow));
  double box_cpu = CpuSeconds(box_pids) - box_cpu0;
  double bare_cpu = CpuSeconds(bare_pids) - bare_cpu0;
  double box_pss = 0;
  for (int pid : box_pids) box_pss += static_cast<double>(KibField(boxlite::base::StrFormat("/proc/%d/smaps_rollup", pid), "Pss:"));
  double bare_pss = 0;
  for (int pid : bare_pids) bare_pss += static_cast<double>(KibField(boxlite::base::StrFormat("/proc/%d/smaps_rollup", pid), "Pss:"));
  int n = std::max<int>(1, static_cast<int>(boxes.size()));
  std::fprintf(stderr, "density: %d boxes, %d answering, %zu host processes\n",
               static_cast<int>(boxes.size()), answering, box_pids.size());
  Emit("idle_boxes", answering, "boxes_asked", target, true, 1.0, 1);
  Emit("idle_box_pss_mib", box_pss / n / (1 << 20), "bare_qemu_idle_pss_mib",
       bare_pss / floors / (1 << 20), false, 1.1, 1);
  Emit("idle_cpu_pct_per_box", 100 * box_cpu / kWindow / n, "bare_qemu_idle_cpu_pct",
       100 * bare_cpu / kWindow / floors, false, 1.1, 1);
  bare.clear();
  for (auto& box : boxes) (void)box->Stop();
}

// How many idle 256 MiB boxes to ask for: as many as the memory available now holds at
// 160 MiB each (an idle box's PSS is ~50 MiB: room for each to triple), at most `cap`.
int DensityTarget(int cap) {
  double avail = static_cast<double>(KibField("/proc/meminfo", "MemAvailable:"));
  int fit = static_cast<int>(avail / (160.0 * (1 << 20)));
  return std::max(1, std::min(cap, fit));
}

// Memory snapshots and forks of a 1 GiB box (docs/snapshots.md): snapshot_create_s,
// restore_s and fork_private_mib.
void BenchMemory(boxlite::Runtime& rt, const boxlite::BoxOptions& bo, const std::string& home) {
  boxlite::BoxOptions kept = bo;
  kept.auto_remove = false;  // Memory snapshots live in the box's directory.
  auto source = Must(rt.Create(kept), "create");
  if (Status s = source->Start(); !s.ok()) Die(s, "start");
  boxlite::ExecOptions touch;
  // Touch memory as a working box would (a 256 MiB tmpfs file), so copies have pages.
  touch.argv = {"sh", "-c", "head -c 268435456 /dev/urandom > /dev/shm/fill"};
  (void)Must(source->Run(touch), "fill memory");
  int pid = Must(source->Info(), "info").pid;
  // The floor: a plain copy of the box's RAM file.
  std::string ram_copy = home + "/ram.copy";
  auto ram = Must(boxlite::vmm::OpenGuestRamOf(pid, uint64_t{1024} << 20), "find guest RAM");
  std::vector<double> copies;
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    Must(boxlite::sys::RunCommand({"cp", "--reflink=never",
                                   boxlite::base::StrFormat("/proc/%d/fd/%d", static_cast<int>(::getpid()), ram.get()),
                                   ram_copy}),
         "copy the RAM");
    copies.push_back(Seconds(Clock::now() - t0));
    ::unlink(ram_copy.c_str());
  }
  std::vector<double> saves, restores;
  boxlite::SnapshotOptions memory;
  memory.memory = true;
  for (int i = 0; i < 3; ++i) {
    std::string name = boxlite::base::StrFormat("bench-%d", i);
    auto t0 = Clock::now();
    auto snap = source->CreateSnapshot(name, memory);
    if (!snap.ok()) {
      std::fprintf(stderr, "memory snapshots unavailable: %s\n", snap.error().ToString().c_str());
      break;
    }
    saves.push_back(Seconds(Clock::now() - t0));
    (void)source->Stop();
    t0 = Clock::now();
    if (Status s = source->RestoreSnapshot(name); !s.ok()) Die(s, "restore");
    restores.push_back(Seconds(Clock::now() - t0));
    (void)source->RemoveSnapshot(name);
  }
  if (!saves.empty()) {
    Emit("snapshot_create_s", Median(saves), "cp_ram_file_s", Median(copies), false, 1.0,
         static_cast<int>(saves.size()));
    Emit("restore_s", Median(restores), "cp_ram_file_s", Median(copies), false, 1.0,
         static_cast<int>(restores.size()));
  }
  boxlite::ForkOptions one;
  auto forks = Must(source->Fork(one), "fork");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int fork_pid = Must(forks[0]->Info(), "fork info").pid;
  double private_mib = static_cast<double>(PrivateBytes(fork_pid)) / (1 << 20);
  auto cold = Must(rt.Create(bo), "create");
  if (Status s = cold->Start(); !s.ok()) Die(s, "start");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  double cold_mib =
      static_cast<double>(RssBytes(Must(cold->Info(), "info").pid)) / (1 << 20);
  Emit("fork_private_mib", private_mib, "cold_box_rss_mib", cold_mib, false, 0.2, 1);
  (void)cold->Stop();
  (void)forks[0]->Stop();
  (void)rt.Remove(source->id(), /*force=*/true);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 10;
  int rtt_runs = 300;
  std::string image = "boxlite/base";
  // "memory": only the memory snapshot and fork figures; "exec": only the exec round trips;
  // "start": only cold and warm start; "density": only the density figures; "stream":
  // only the stdout throughputs.
  std::string only;
  int density_cap = 100;  // At most this many idle boxes (--density-boxes).
  // "stream-ab": the second agent's data dir (BenchStdoutAb), --runs pairs.
  std::string ab_data_dir;
  // Every argument is checked: a mistyped one stops the bench before it boots anything.
  static constexpr char kUsage[] =
      "usage: boxlite_bench [--only memory|density|stream|stream-ab|exec|start] [--runs N]\n"
      "                     [--rtt-runs N] [--image REF] [--density-boxes N]\n"
      "                     [--ab-data-dir DIR]   (with --only stream-ab)\n"
      "Prints one JSON line per figure (docs/benchmarks.md); without --only, all of them.\n";
  auto usage_error = [](const std::string& what) {
    std::fprintf(stderr, "bench: %s\n%s", what.c_str(), kUsage);
    std::exit(2);
  };
  auto count = [&](const std::string& flag, const char* text) {
    char* end = nullptr;
    long v = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 1 || v > 100000) {
      usage_error(flag + " takes a whole number from 1 to 100000, not '" + text + "'");
    }
    return static_cast<int>(v);
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    bool known = a == "--runs" || a == "--rtt-runs" || a == "--image" || a == "--only" ||
                 a == "--density-boxes" || a == "--ab-data-dir";
    if (!known) usage_error("unknown argument '" + a + "'");
    if (i + 1 >= argc) usage_error(a + " needs a value");
    const char* v = argv[++i];
    if (a == "--runs") runs = count(a, v);
    if (a == "--rtt-runs") rtt_runs = count(a, v);
    if (a == "--image") image = v;
    if (a == "--only") only = v;
    if (a == "--density-boxes") density_cap = count(a, v);
    if (a == "--ab-data-dir") ab_data_dir = v;
  }
  if (!only.empty() && only != "memory" && only != "density" && only != "stream" &&
      only != "stream-ab" && only != "exec" && only != "start") {
    usage_error("unknown --only '" + only + "'");
  }
  auto settings = Must(boxlite::ResolveRuntimeOptions({}), "configuration");
  auto assets = Must(boxlite::vmm::LocateGuestAssets(settings.data_dir), "guest assets");
  auto accel = Must(boxlite::vmm::DetectAccel(settings.accel), "accelerator");
  g_accel = std::string(boxlite::vmm::AccelName(accel.accel));
  std::string floor_initramfs = BOXLITE_FLOOR_INITRAMFS;

  auto home = Must(boxlite::sys::TempDir::Create("/tmp", "boxlite-bench."), "temp home");
  g_home = home.path();
  boxlite::RuntimeOptions ro;
  ro.home_dir = home.path();
  auto rt = Must(boxlite::Runtime::Open(ro), "open runtime");
  boxlite::BoxOptions bo;
  bo.image = image;
  bo.memory_mib = 1024;
  // The floor VM has a disk and the agent port but no NIC: compare like with like. The
  // default NAT network is measured separately below (cold_start_nat_s).
  bo.network = "none";
  // Cold starts boot; warm starts (warm_start_s below) restore a template.
  bo.warm = false;

  if (only == "memory") {
    BenchMemory(*rt, bo, home.path());
    (void)boxlite::sys::RemoveTree(g_home);
    return 0;
  }
  // Warm the image store and page cache so neither side pays first-touch costs.
  std::string base_disk;
  {
    auto box = Must(rt->Create(bo), "create");
    if (Status s = box->Start(); !s.ok()) Die(s, "start");
    (void)box->Stop();
    auto files = boxlite::sys::ListDir(home.path() + "/images/rootfs");
    for (const auto& f : files.value_or(std::vector<std::string>{})) {
      if (f.ends_with(".ext4")) base_disk = home.path() + "/images/rootfs/" + f;
    }
  }
  // The floor VM gets the same base disk, read through a throwaway overlay.
  std::string floor_disk = home.path() + "/floor.qcow2";
  Must(boxlite::sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                 base_disk, floor_disk}),
       "floor overlay");
  if (only == "density") {
    BenchBurst(*rt, bo);
    BenchDensity(*rt, bo, assets, floor_initramfs, floor_disk, accel.accel,
                 DensityTarget(density_cap));
    (void)boxlite::sys::RemoveTree(g_home);
    return 0;
  }

  if (only == "stream") {
    // The stdout figures alone.
    auto box = Must(rt->Create(bo), "create");
    if (Status s = box->Start(); !s.ok()) Die(s, "start");
    BenchStdout(*box, assets, floor_initramfs, floor_disk, accel.accel);
    (void)box->Stop();
    (void)boxlite::sys::RemoveTree(g_home);
    return 0;
  }
  if (only == "stream-ab") {
    if (ab_data_dir.empty()) {
      Die(Status::InvalidArgument("--only stream-ab needs --ab-data-dir DIR"), "options");
    }
    boxlite::RuntimeOptions rob = ro;
    rob.home_dir = home.path() + "/b";
    rob.data_dir = ab_data_dir;
    auto rt_b = Must(boxlite::Runtime::Open(rob), "open the second runtime");
    auto a = Must(rt->Create(bo), "create");
    if (Status s = a->Start(); !s.ok()) Die(s, "start");
    auto b = Must(rt_b->Create(bo), "create in the second runtime");
    if (Status s = b->Start(); !s.ok()) Die(s, "start in the second runtime");
    BenchStdoutAb(*a, *b, runs);
    (void)a->Stop();
    (void)b->Stop();
    (void)boxlite::sys::RemoveTree(g_home);
    return 0;
  }
  if (only == "exec") {
    // The exec round trip alone against its spawn floor (a quick figure while profiling).
    auto box = Must(rt->Create(bo), "create");
    if (Status s = box->Start(); !s.ok()) Die(s, "start");
    EmitAgainstSpawn(
        MeasureExecs(*box, assets, floor_initramfs, floor_disk, accel.accel, rtt_runs));
    (void)box->Stop();
    (void)boxlite::sys::RemoveTree(g_home);
    return 0;
  }
  // --- cold start ---
  std::vector<double> box_times;
  std::vector<double> floor_times;
  std::vector<double> first_exec_times;
  for (int i = 0; i < runs; ++i) {
    {
      FloorVm vm(assets, floor_initramfs, floor_disk, "boot", accel.accel);
      char c;
      vm.ReadExactly(&c, 1);
      floor_times.push_back(Seconds(Clock::now() - vm.started()));
    }
    {
      // A reference beside the floor, not the goal's floor: the same bare boot, then the
      // disk mounted and the image's own dynamic `true` run once (guest_floor.c
      // first_exec), on a fresh overlay as a box gets. Under TCG that first run is
      // translated at its randomized addresses, which no runtime avoids.
      std::string disk = home.path() + "/first-exec.qcow2";
      (void)boxlite::sys::RemoveTree(disk);
      Must(boxlite::sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                                     "-b", base_disk, disk}),
           "first exec overlay");
      FloorVm vm(assets, floor_initramfs, disk, "first_exec", accel.accel, 1024, base_disk);
      char c[2];
      vm.ReadExactly(c, 2);
      if (c[1] != 'X') Die(Status::Internal("the image's true failed in the floor VM"), "first exec");
      first_exec_times.push_back(Seconds(Clock::now() - vm.started()));
    }
    auto t0 = Clock::now();
    auto box = Must(rt->Create(bo), "create");
    if (Status s = box->Start(); !s.ok()) Die(s, "start");
    boxlite::ExecOptions eo;
    eo.argv = {"true"};
    auto r = Must(box->Run(eo), "run true");
    box_times.push_back(Seconds(Clock::now() - t0));
    if (r.exit_code != 0) Die(Status::Internal("true failed"), "cold start");
    (void)box->Stop();
    std::fprintf(stderr, "cold start %d/%d: box %.3fs floor %.3fs floor+first exec %.3fs\n",
                 i + 1, runs, box_times.back(), floor_times.back(), first_exec_times.back());
  }
  Emit("cold_start_s", Median(box_times), "bare_qemu_boot_s", Median(floor_times), false, 1.15,
       runs);
  // The reference against the floor (what the image's first run adds to a bare boot),
  // with the cold start against the reference: BoxLite's own share of the gap.
  PrintLine("bare_boot_first_exec_s", Median(first_exec_times), "bare_qemu_boot_s",
            Median(floor_times), Median(first_exec_times) / Median(floor_times), 1.15,
            static_cast<size_t>(runs),
            {{"cold_start_s", Median(box_times)},
             {"cold_start_vs_first_exec",
              std::round(Median(box_times) / Median(first_exec_times) * 1000) / 1000}});
  {
    // --- warm start: create -> first exec done from a template (docs/snapshots.md), the
    // floor being this run's cold start. The first box leaves the template (untimed).
    boxlite::BoxOptions warm = bo;
    warm.warm = true;
    {
      auto box = Must(rt->Create(warm), "create");
      if (Status s = box->Start(); !s.ok()) Die(s, "start");
      (void)box->Stop();
    }
    std::vector<double> warm_times;
    int warm_boxes = 0;
    for (int i = 0; i < runs; ++i) {
      auto t0 = Clock::now();
      auto box = Must(rt->Create(warm), "create");
      if (Status s = box->Start(); !s.ok()) Die(s, "start");
      double started = Seconds(Clock::now() - t0);
      boxlite::ExecOptions eo;
      eo.argv = {"true"};
      auto r = Must(box->Run(eo), "run true");
      warm_times.push_back(Seconds(Clock::now() - t0));
      if (r.exit_code != 0) Die(Status::Internal("true failed"), "warm start");
      warm_boxes += Must(box->Info(), "info").warm_start ? 1 : 0;
      auto m = Must(box->Metrics(), "metrics");
      (void)box->Stop();
      std::fprintf(stderr,
                   "warm start %d/%d: box %.3fs (started %.3fs, create %.3fs: files %lldms config %lldms spawn "
                   "%lldms; restore to hello answered %.3fs)\n",
                   i + 1, runs, warm_times.back(), started, m.create_seconds,
                   static_cast<long long>(m.stage_filesystem_setup_ms.value_or(0)),
                   static_cast<long long>(m.stage_box_config_ms.value_or(0)),
                   static_cast<long long>(m.stage_box_spawn_ms.value_or(0)), m.boot_seconds);
    }
    if (warm_boxes != runs) {
      Die(Status::Internal(std::to_string(runs - warm_boxes) + " boxes did not start warm"),
          "warm start");
    }
    Emit("warm_start_s", Median(warm_times), "cold_start_s", Median(box_times), false, 0.03, runs);
  }
  if (only == "start") {
    (void)boxlite::sys::RemoveTree(g_home);
    return 0;
  }
  {
    boxlite::BoxOptions nat = bo;
    nat.network = "nat";
    std::vector<double> nat_times;
    for (int i = 0; i < std::max(3, runs / 2); ++i) {
      auto t0 = Clock::now();
      auto box = Must(rt->Create(nat), "create");
      if (Status s = box->Start(); !s.ok()) Die(s, "start");
      boxlite::ExecOptions eo;
      eo.argv = {"true"};
      (void)Must(box->Run(eo), "run true");
      nat_times.push_back(Seconds(Clock::now() - t0));
      (void)box->Stop();
    }
    Emit("cold_start_nat_s", Median(nat_times), "bare_qemu_boot_s", Median(floor_times), false,
         1.15, static_cast<int>(nat_times.size()));
  }

  // --- exec round trip and idle memory, one box ---
  auto box = Must(rt->Create(bo), "create");
  if (Status s = box->Start(); !s.ok()) Die(s, "start");
  ExecTimes times = MeasureExecs(*box, assets, floor_initramfs, floor_disk, accel.accel, rtt_runs);
  const std::vector<double>& rtts = times.floor_true;
  std::vector<double> echo;
  {
    FloorVm vm(assets, floor_initramfs, floor_disk, "echo", accel.accel);
    char buf[64];
    std::memset(buf, 'e', sizeof(buf));
    // The first round trip also waits for the boot.
    for (int i = 0; i < rtt_runs + 10; ++i) {
      auto t0 = Clock::now();
      if (::write(vm.fd(), buf, sizeof(buf)) != sizeof(buf)) Die(Status::IoError("write"), "echo");
      vm.ReadExactly(buf, sizeof(buf));
      if (i >= 10) echo.push_back(Seconds(Clock::now() - t0) * 1000);
    }
  }
  Emit("exec_rtt_ms", Median(rtts), "virtio_serial_echo_rtt_ms", Median(echo), false, 3.0,
       rtt_runs);
  // The same round trip against what merely starting a process costs this guest (fork +
  // exec + wait in a trivial init, one byte over the port): BoxLite's own share.
  EmitAgainstSpawn(times);
  Emit("exec_rtt_p99_ms", Percentile(rtts, 0.99), "virtio_serial_echo_rtt_p99_ms",
       Percentile(echo, 0.99), false, 3.0, rtt_runs);

  BenchStdout(*box, assets, floor_initramfs, floor_disk, accel.accel);

  // --- idle memory ---
  {
    auto fresh = Must(rt->Create(bo), "create");
    if (Status s = fresh->Start(); !s.ok()) Die(s, "start");
    FloorVm vm(assets, floor_initramfs, floor_disk, "boot", accel.accel);
    char c;
    vm.ReadExactly(&c, 1);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    int pid = Must(fresh->Info(), "info").pid;
    double box_mib = static_cast<double>(RssBytes(pid)) / (1 << 20);
    double floor_mib = static_cast<double>(RssBytes(vm.pid())) / (1 << 20);
    Emit("idle_rss_mib", box_mib, "bare_qemu_idle_rss_mib", floor_mib, false, 1.1, 1);
    (void)fresh->Stop();
  }
  BenchMemory(*rt, bo, home.path());
  (void)box->Stop();
  BenchBurst(*rt, bo);
  BenchDensity(*rt, bo, assets, floor_initramfs, floor_disk, accel.accel,
               DensityTarget(density_cap));
  return 0;
}

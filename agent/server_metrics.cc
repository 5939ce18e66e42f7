// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's metrics request: memory, CPU ticks, network and TCP counters, process
// counts and uptime of the box, read from /proc (agent/server.h; the design is in
// agent/server.cc).
#include "agent/server.h"
#include "agent/server_internal.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "src/base/strings.h"
#include "src/sys/fs.h"

namespace boxlite::agent {

Status Server::DoMetrics(protocol::Json* reply) {
  protocol::GuestMetrics m;
  auto meminfo = sys::ReadFile("/proc/meminfo");
  int64_t total = 0;
  int64_t available = 0;
  if (meminfo.ok()) {
    for (const auto& line : base::Split(*meminfo, '\n')) {
      if (line.starts_with("MemTotal:")) total = std::atoll(line.c_str() + 9) * 1024;
      if (line.starts_with("MemAvailable:")) available = std::atoll(line.c_str() + 13) * 1024;
    }
  }
  m.mem_total = std::clamp<int64_t>(total, 0, protocol::kMaxGuestCount);
  m.mem_available = std::clamp<int64_t>(available, 0, m.mem_total);
  auto stat = sys::ReadFile("/proc/stat");
  if (stat.ok()) {
    // "cpu  user nice system idle iowait irq softirq ..." in USER_HZ ticks.
    auto fields = base::Split(base::Split(*stat, '\n')[0], ' ', true);
    int64_t busy = 0;
    int64_t idle = 0;
    for (size_t i = 1; i < fields.size(); ++i) {
      int64_t v = std::atoll(fields[i].c_str());
      if (i == 4 || i == 5) {
        idle += v;
      } else {
        busy += v;
      }
    }
    m.cpu_busy_ticks = std::clamp<int64_t>(busy, 0, protocol::kMaxGuestCount);
    m.cpu_idle_ticks = std::clamp<int64_t>(idle, 0, protocol::kMaxGuestCount);
    m.ticks_per_second = static_cast<int64_t>(::sysconf(_SC_CLK_TCK));
  }
  int64_t procs = 0;
  auto pids = sys::ListDir("/proc");
  if (pids.ok()) {
    for (const auto& p : *pids) {
      if (!p.empty() && std::isdigit(static_cast<unsigned char>(p[0]))) ++procs;
    }
  }
  m.processes = procs;
  // Network: eth0's byte counters and the TCP totals, when the box has a network.
  auto counter = [](const char* name) -> int64_t {
    auto text = sys::ReadFile(std::string("/sys/class/net/eth0/statistics/") + name);
    if (!text.ok()) return -1;
    return static_cast<int64_t>(std::min<uint64_t>(base::ParseUint(base::Trim(*text)).value_or(0),
                                                   protocol::kMaxGuestCount));
  };
  int64_t rx = counter("rx_bytes");
  int64_t tx = counter("tx_bytes");
  if (rx >= 0 && tx >= 0) {
    m.net_rx_bytes = rx;
    m.net_tx_bytes = tx;
    // /proc/net/snmp: a "Tcp:" line of names, then one of values.
    auto snmp = sys::ReadFile("/proc/net/snmp");
    std::vector<std::string> names;
    int64_t opens = 0;
    int64_t errors = 0;
    for (const auto& line : base::Split(snmp.value_or(std::string()), '\n')) {
      if (!line.starts_with("Tcp:")) continue;
      auto fields = base::Split(line, ' ', true);
      if (names.empty()) {
        names = fields;
        continue;
      }
      for (size_t i = 1; i < fields.size() && i < names.size(); ++i) {
        int64_t v = static_cast<int64_t>(base::ParseUint(fields[i]).value_or(0));
        if (names[i] == "ActiveOpens" || names[i] == "PassiveOpens") opens += v;
        if (names[i] == "AttemptFails" || names[i] == "EstabResets" || names[i] == "InErrs") {
          errors += v;
        }
      }
    }
    m.tcp_opens = std::clamp<int64_t>(opens, 0, protocol::kMaxGuestCount);
    m.tcp_errors = std::clamp<int64_t>(errors, 0, protocol::kMaxGuestCount);
  }
  int64_t running = 0;
  for (auto& [key, exec] : execs_) running += exec->is_file ? 0 : 1;
  m.execs_running = running;
  struct timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  m.uptime_ms = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  *reply = protocol::ToJson(m);
  return Status::OK();
}

}  // namespace boxlite::agent

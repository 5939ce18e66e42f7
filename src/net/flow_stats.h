// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The counters boxlite-net keeps for the host (BoxMetrics::network_refused_flows), kept
// apart from the policy that decides: the policy says refuse, this counts it. They live
// in a small file the launcher hands over (--stats-fd, helper_options.h) with this fixed
// layout, which src/vmm/net_helper.cc (ReadNetStats) reads with pread:
//
//   bytes 0..7   "BLNSTAT1"
//   bytes 8..15  refused flows: guest packets answered with a TCP reset or an ICMP
//                unreachable, a u64 in host byte order
//
// The helper maps the file shared and counts with relaxed atomic adds, so counting costs
// no system call and works under its seccomp filter. Thread-safety: one writer thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "boxlite/result.h"

namespace boxlite::net {

inline constexpr char kNetStatsMagic[8] = {'B', 'L', 'N', 'S', 'T', 'A', 'T', '1'};
inline constexpr size_t kNetStatsSize = 16;

class FlowStats {
 public:
  FlowStats() = default;  // Counts nothing (no --stats-fd).
  FlowStats(const FlowStats&) = delete;
  FlowStats& operator=(const FlowStats&) = delete;
  FlowStats(FlowStats&& other) noexcept;
  FlowStats& operator=(FlowStats&& other) noexcept;
  ~FlowStats();

  // Sizes the file of `fd` and maps it (the descriptor is closed; the mapping stays).
  static Result<FlowStats> Map(int fd);

  void CountRefused() {
    if (refused_ != nullptr) refused_->fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t refused() const { return refused_ ? refused_->load(std::memory_order_relaxed) : 0; }

 private:
  void* map_ = nullptr;
  std::atomic<uint64_t>* refused_ = nullptr;
};

}  // namespace boxlite::net

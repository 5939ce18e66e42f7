// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/flow_stats.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "src/base/unique_fd.h"
#include "src/sys/errno_status.h"

namespace boxlite::net {

static_assert(std::atomic<uint64_t>::is_always_lock_free, "the counter is shared memory");

FlowStats::FlowStats(FlowStats&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)), refused_(std::exchange(other.refused_, nullptr)) {}

FlowStats& FlowStats::operator=(FlowStats&& other) noexcept {
  if (this != &other) {
    if (map_ != nullptr) ::munmap(map_, kNetStatsSize);
    map_ = std::exchange(other.map_, nullptr);
    refused_ = std::exchange(other.refused_, nullptr);
  }
  return *this;
}

FlowStats::~FlowStats() {
  if (map_ != nullptr) ::munmap(map_, kNetStatsSize);
}

Result<FlowStats> FlowStats::Map(int fd) {
  base::UniqueFd owned(fd);
  if (::ftruncate(fd, kNetStatsSize) != 0) return sys::ErrnoStatus(errno, "size --stats-fd %d", fd);
  void* map = ::mmap(nullptr, kNetStatsSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return sys::ErrnoStatus(errno, "map --stats-fd %d", fd);
  std::memcpy(map, kNetStatsMagic, sizeof(kNetStatsMagic));
  FlowStats stats;
  stats.map_ = map;
  stats.refused_ = new (static_cast<char*>(map) + 8) std::atomic<uint64_t>(0);
  return stats;
}

}  // namespace boxlite::net

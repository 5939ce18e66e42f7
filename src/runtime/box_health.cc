// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// BoxImpl's health checks (BoxOptions::health_check): a thread per running box pings the
// agent every interval and records the answers (src/runtime/health.h); a persistent box
// keeps its last status in its directory so other processes can read it.
#include <ctime>
#include <thread>

#include "src/runtime/box_impl.h"
#include "src/runtime/health.h"

namespace boxlite::runtime {


void BoxImpl::StartHealthLocked() {
  StopHealthLocked();
  if (!options_.health_check.enabled || !channel_) return;
  health_ = std::make_shared<HealthProbe>();
  health_->status.state = "starting";
  if (persistent()) {
    health_->dir = dir_;
    if (launched_here_) {
      (void)SaveHealth(dir_, health_->status);  // A new boot starts over.
    } else if (auto saved = LoadHealth(dir_)) {
      health_->status = *saved;  // Attached to a running box: carry on from its last word.
    }
  }
  health_->thread = std::thread(&BoxImpl::ProbeLoop, health_, channel_, options_.health_check);
}

void BoxImpl::QuietHealthLocked() {
  if (!health_) return;
  std::lock_guard<std::mutex> hl(health_->mu);
  health_->stop = true;
}

void BoxImpl::StopHealthLocked() {
  if (!health_) return;
  QuietHealthLocked();
  health_->cv.notify_all();
  // A probe in flight ends at its timeout, or at once when the channel was closed.
  if (health_->thread.joinable()) health_->thread.join();
}

void BoxImpl::ProbeLoop(std::shared_ptr<HealthProbe> probe, std::shared_ptr<AgentChannel> channel,
                        HealthCheckOptions options) {
  const auto started = Clock::now();
  const auto interval = std::chrono::seconds(options.interval_s);
  const auto grace = std::chrono::seconds(options.start_period_s);
  while (true) {
    {
      std::unique_lock<std::mutex> hl(probe->mu);
      if (probe->cv.wait_for(hl, interval, [&] { return probe->stop; })) return;
    }
    auto sent = Clock::now();
    auto reply = channel->Call("ping", protocol::Json::object(),
                               sent + std::chrono::seconds(options.timeout_s));
    std::lock_guard<std::mutex> hl(probe->mu);
    if (probe->stop) return;
    RecordProbe(&probe->status, reply.ok(), sent - started < grace, options.retries,
                static_cast<int64_t>(std::time(nullptr)));
    // Other processes read the box's health from its directory (box_record.h).
    if (!probe->dir.empty()) (void)SaveHealth(probe->dir, probe->status);
  }
}

}  // namespace boxlite::runtime

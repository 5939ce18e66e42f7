// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// ValidateAdvancedOptions (include/boxlite/options.h): the checks of a box's security
// options, capabilities and health check; and the health check's state machine
// (src/runtime/health.h).
#include <cstdint>
#include <limits>

#include "boxlite/options.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/protocol/capabilities.h"
#include "src/runtime/health.h"

namespace boxlite {
namespace {

// Limits travel to the guest as JSON integers (int64).
constexpr uint64_t kMaxLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Health check periods: at most a day.
constexpr int kMaxHealthSeconds = 86400;

Status CheckLimit(const char* name, const std::optional<uint64_t>& value, uint64_t max,
                  const char* unit) {
  if (!value) return Status::OK();
  if (*value == 0 || *value > max) {
    return Status::InvalidArgument(base::StrFormat(
        "security.%s must be between 1 and %llu %s, or None for no limit, not %llu", name,
        static_cast<unsigned long long>(max), unit, static_cast<unsigned long long>(*value)));
  }
  return Status::OK();
}

Status CheckSeconds(const char* name, int value, int min) {
  if (value < min || value > kMaxHealthSeconds) {
    return Status::InvalidArgument(base::StrFormat(
        "health_check.%s must be between %d and %d seconds, not %d", name, min,
        kMaxHealthSeconds, value));
  }
  return Status::OK();
}

}  // namespace

Status ValidateAdvancedOptions(const BoxOptions& o) {
  const SecurityOptions& s = o.security;
  BOXLITE_RETURN_IF_ERROR(CheckLimit("max_open_files", s.max_open_files, kMaxOpenFilesLimit, "files"));
  BOXLITE_RETURN_IF_ERROR(CheckLimit("max_file_size", s.max_file_size, kMaxLimit, "bytes"));
  BOXLITE_RETURN_IF_ERROR(CheckLimit("max_processes", s.max_processes, kMaxLimit, "processes"));
  BOXLITE_RETURN_IF_ERROR(CheckLimit("max_memory", s.max_memory, kMaxLimit, "bytes"));
  BOXLITE_RETURN_IF_ERROR(CheckLimit("max_cpu_time", s.max_cpu_time, kMaxLimit, "seconds"));
  if (!s.network_enabled) {
    if (!o.ports.empty()) {
      return Status::InvalidArgument(
          "published ports need the network, and security.network_enabled is False",
          "remove the ports or enable the network");
    }
    if (o.allow_host) {
      return Status::InvalidArgument(
          "allow_host needs the network, and security.network_enabled is False");
    }
    if (!o.allow_net.empty()) {
      return Status::InvalidArgument(
          "allow_net needs the network, and security.network_enabled is False");
    }
  }
  auto caps = protocol::ComputeCapabilities(o.capabilities.add, o.capabilities.drop);
  if (!caps.ok()) return caps.error();
  const HealthCheckOptions& h = o.health_check;
  if (h.enabled) {
    BOXLITE_RETURN_IF_ERROR(CheckSeconds("interval", h.interval_s, 1));
    BOXLITE_RETURN_IF_ERROR(CheckSeconds("timeout", h.timeout_s, 1));
    BOXLITE_RETURN_IF_ERROR(CheckSeconds("start_period", h.start_period_s, 0));
    if (h.retries < 1 || h.retries > 1000) {
      return Status::InvalidArgument(
          base::StrFormat("health_check.retries must be between 1 and 1000, not %d", h.retries));
    }
  }
  return Status::OK();
}

namespace runtime {

void RecordProbe(HealthStatus* status, bool answered, bool in_start_period, int retries,
                 int64_t now_unix) {
  status->last_check_unix = now_unix;
  if (answered) {
    status->failures = 0;
    status->state = "healthy";
  } else if (!in_start_period) {
    status->failures++;
    if (status->failures >= retries) status->state = "unhealthy";
  }
}

}  // namespace runtime
}  // namespace boxlite

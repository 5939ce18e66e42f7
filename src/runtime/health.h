// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The health check's state machine (HealthCheckOptions, docs/metrics.md): what one probe
// of the guest agent does to a box's HealthStatus. A pure function, thread-safe.
#pragma once

#include <cstdint>

#include "boxlite/options.h"

namespace boxlite::runtime {

// Records a probe that ended at `now_unix`: an answer makes the box healthy and clears
// the failures; a failure outside the start period counts, and `retries` of them in a
// row make it unhealthy; a failure within the start period changes nothing but the time.
void RecordProbe(HealthStatus* status, bool answered, bool in_start_period, int retries,
                 int64_t now_unix);

}  // namespace boxlite::runtime

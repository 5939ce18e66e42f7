// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The Python side of BoxOptions.security, .capabilities and .health_check: the nested
// dicts of the create options (keys are the C++ field names, include/boxlite/options.h)
// into the core structs, and the health, metrics and runtime metrics of the core into
// dicts for python/boxlite/results.py. Types only: every rule is the core's
// (ValidateAdvancedOptions). Needs the GIL.
#pragma once

#include <nanobind/nanobind.h>

#include "boxlite/options.h"

namespace boxlite::python {

// Reads the "security", "capabilities" and "health_check" entries of `options` (each a
// dict or None) into `out`. A mistyped value is a StatusError (InvalidArgument) naming it.
void AdvancedFromDict(const nanobind::dict& options, BoxOptions* out);

nanobind::dict HealthDict(const HealthStatus& health);
// Box metrics: our fields and BoxLite 0.9's (optional ones None when unknown).
nanobind::dict MetricsDict(const BoxMetrics& m);
nanobind::dict RuntimeMetricsDict(const RuntimeMetrics& m);

}  // namespace boxlite::python

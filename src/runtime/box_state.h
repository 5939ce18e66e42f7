// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// How a persistent box's status (include/boxlite/box_state.h) is derived from facts any
// process can read: its record (box_record.h: the lifecycle mark, the VM process it
// names), whether that process still runs, and whether the main command's exit was seen.
// Plain values and pure functions; thread-safe.
#pragma once

#include <string_view>

#include "boxlite/box_state.h"

namespace boxlite::runtime {

using boxlite::BoxStatus;

// The record's lifecycle marks (BoxRecord::phase).
inline constexpr std::string_view kPhaseStopping = "stopping";  // A stop is in progress.
inline constexpr std::string_view kPhaseFailed = "failed";      // Set with BoxRecord::failure.
// The VM is quiesced (its disk frozen) while a snapshot or clone copies its disk.
inline constexpr std::string_view kPhasePaused = "paused";

// What a status is derived from.
struct StatusFacts {
  bool ever_started = false;  // The box's image was resolved by a first start.
  bool vm_recorded = false;   // The record names a VM process (no stop has cleared it).
  bool vm_alive = false;      // That process still runs.
  std::string_view phase;     // The record's lifecycle mark: "", kPhaseStopping, kPhasePaused or kPhaseFailed.
  bool main_exited = false;   // The main command's exit was seen (it stops the box).
};

// A live VM is running, stopping while a stop is in progress, or paused while a snapshot
// quiesces it. A VM that is gone
// without a stop (the record still names it) and without its main command's exit has
// failed, as has a box marked failed; otherwise a box that ever started is stopped, one
// that never did is configured.
BoxStatus DeriveStatus(const StatusFacts& facts);

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A box's status (BoxInfo::state) and the lifecycle calls each status allows, as BoxLite
// 0.9 has them: unknown, configured, running, stopping, stopped, paused, failed. The
// status of a persistent box is derived from facts any process can read: its record
// (box_record.h: the lifecycle mark, the VM process it names), whether that process
// still runs, and whether the main command's exit was seen (docs/architecture.md).
// Plain values and pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace boxlite::runtime {

enum class BoxStatus { kUnknown, kConfigured, kRunning, kStopping, kStopped, kPaused, kFailed };

// The lowercase name ("running"); the names are BoxInfo::state's values.
std::string_view StatusName(BoxStatus status);
// A status from its name, any case; nullopt for a name that is none. "paused" parses
// (it belongs to snapshots, which this build does not make yet).
std::optional<BoxStatus> ParseStatus(std::string_view name);

// BoxLite 0.9's rules. Active: running or paused.
bool IsActive(BoxStatus s);
bool CanStart(BoxStatus s);   // configured, stopped, failed.
bool CanStop(BoxStatus s);    // running, paused.
bool CanRemove(BoxStatus s);  // configured, stopped, failed, unknown (force: any).
bool CanExec(BoxStatus s);    // configured, running, stopped (the first two start the box).

// The record's lifecycle marks (BoxRecord::phase).
inline constexpr std::string_view kPhaseStopping = "stopping";  // A stop is in progress.
inline constexpr std::string_view kPhaseFailed = "failed";      // Set with BoxRecord::failure.

// What a status is derived from.
struct StatusFacts {
  bool ever_started = false;  // The box's image was resolved by a first start.
  bool vm_recorded = false;   // The record names a VM process (no stop has cleared it).
  bool vm_alive = false;      // That process still runs.
  std::string_view phase;     // The record's lifecycle mark: "", kPhaseStopping or kPhaseFailed.
  bool main_exited = false;   // The main command's exit was seen (it stops the box).
};

// A live VM is running, or stopping while a stop is in progress. A VM that is gone
// without a stop (the record still names it) and without its main command's exit has
// failed, as has a box marked failed; otherwise a box that ever started is stopped, one
// that never did is configured.
BoxStatus DeriveStatus(const StatusFacts& facts);

// Why a lifecycle call is refused in `s`, for `name`: OK when allowed.
// `op` is "start", "stop", "remove" or "exec".
std::string RefusalReason(std::string_view op, BoxStatus s);

}  // namespace boxlite::runtime

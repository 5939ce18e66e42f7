// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A box's status (BoxInfo::state) and the lifecycle calls each status allows, as BoxLite
// 0.9 has them: unknown, configured, running, stopping, stopped, paused, failed.
// Plain values and pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "boxlite/status.h"

namespace boxlite {

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

// Why `op` ("start", "stop", "remove" or "exec") is refused in `s`, saying what to do
// instead; empty when it is allowed. Start is also allowed on a running box (a no-op).
std::string RefusalReason(std::string_view op, BoxStatus s);

// OK when `op` is allowed in `s`; else FailedPrecondition about the box (subject kBox):
// "box NAME (FAILURE): cannot exec a box that is failed: start it again, or remove it".
Status CheckBoxCall(std::string_view op, std::string_view name, BoxStatus s,
                    std::string_view failure = {});

}  // namespace boxlite

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_state.h"

#include <array>
#include <cctype>
#include <utility>

namespace boxlite {
namespace {

constexpr std::array<std::pair<BoxStatus, std::string_view>, 7> kNames = {{
    {BoxStatus::kUnknown, "unknown"},
    {BoxStatus::kConfigured, "configured"},
    {BoxStatus::kRunning, "running"},
    {BoxStatus::kStopping, "stopping"},
    {BoxStatus::kStopped, "stopped"},
    {BoxStatus::kPaused, "paused"},
    {BoxStatus::kFailed, "failed"},
}};

}  // namespace

std::string_view StatusName(BoxStatus status) {
  for (const auto& [s, name] : kNames) {
    if (s == status) return name;
  }
  return "unknown";
}

std::optional<BoxStatus> ParseStatus(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [s, n] : kNames) {
    if (n == lower) return s;
  }
  return std::nullopt;
}

bool IsActive(BoxStatus s) { return s == BoxStatus::kRunning || s == BoxStatus::kPaused; }

bool CanStart(BoxStatus s) {
  return s == BoxStatus::kConfigured || s == BoxStatus::kStopped || s == BoxStatus::kFailed;
}

bool CanStop(BoxStatus s) { return IsActive(s); }

bool CanRemove(BoxStatus s) {
  return s == BoxStatus::kConfigured || s == BoxStatus::kStopped || s == BoxStatus::kFailed ||
         s == BoxStatus::kUnknown;
}

bool CanExec(BoxStatus s) {
  return s == BoxStatus::kConfigured || s == BoxStatus::kRunning || s == BoxStatus::kStopped;
}

std::string RefusalReason(std::string_view op, BoxStatus s) {
  bool allowed = op == "start"    ? CanStart(s) || s == BoxStatus::kRunning  // Start is idempotent.
                 : op == "stop"   ? CanStop(s)
                 : op == "remove" ? CanRemove(s)
                 : op == "exec"   ? CanExec(s)
                                  : false;
  if (allowed) return "";
  std::string out = "cannot " + std::string(op) + " a box that is " + std::string(StatusName(s));
  if (s == BoxStatus::kStopping) return out + ": wait for the stop to end";
  if (s == BoxStatus::kFailed) return out + ": start it again, or remove it";
  if (s == BoxStatus::kPaused) return out + ": resume it first";
  if (op == "remove" && IsActive(s)) return out + ": stop it first, or remove it with force";
  return out;
}

Status CheckBoxCall(std::string_view op, std::string_view name, BoxStatus s,
                    std::string_view failure) {
  std::string refused = RefusalReason(op, s);
  if (refused.empty()) return Status::OK();
  std::string why = failure.empty() ? "" : " (" + std::string(failure) + ")";
  return Status::FailedPrecondition("box " + std::string(name) + why + ": " + refused)
      .WithSubject(StatusSubject::kBox);
}

}  // namespace boxlite

namespace boxlite::runtime {

BoxStatus DeriveStatus(const StatusFacts& f) {
  if (f.vm_alive) {
    if (f.phase == kPhaseStopping) return BoxStatus::kStopping;
    return f.phase == kPhasePaused ? BoxStatus::kPaused : BoxStatus::kRunning;
  }
  if (f.phase == kPhaseFailed) return BoxStatus::kFailed;
  if (f.vm_recorded && !f.main_exited && f.phase != kPhaseStopping) return BoxStatus::kFailed;
  return f.ever_started ? BoxStatus::kStopped : BoxStatus::kConfigured;
}

}  // namespace boxlite::runtime

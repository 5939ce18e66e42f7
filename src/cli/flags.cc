// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/flags.h"

#include <algorithm>
#include <cctype>

#include "src/base/macros.h"
#include "src/base/strings.h"

namespace boxlite::cli {
namespace {

const FlagSpec* FindLong(const std::vector<FlagSpec>& specs, const std::string& name) {
  for (const auto& s : specs) {
    if (s.long_name == name) return &s;
  }
  return nullptr;
}

const FlagSpec* FindShort(const std::vector<FlagSpec>& specs, char c) {
  for (const auto& s : specs) {
    if (s.short_name == c) return &s;
  }
  return nullptr;
}

Status Store(ParsedFlags* out, const FlagSpec& spec, const std::string& value) {
  auto& list = out->values[spec.long_name];
  if (!spec.repeated && !list.empty()) {
    return Status::InvalidArgument("flag --" + spec.long_name + " given more than once");
  }
  list.push_back(value);
  return Status::OK();
}

}  // namespace

bool ParsedFlags::Has(const std::string& name) const {
  auto it = switches.find(name);
  return (it != switches.end() && it->second) || values.count(name) > 0;
}

std::optional<std::string> ParsedFlags::Get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::optional<bool> ParsedFlags::Switch(const std::string& name) const {
  auto it = switches.find(name);
  if (it == switches.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::string>& ParsedFlags::All(const std::string& name) const {
  static const std::vector<std::string> kEmpty;
  auto it = values.find(name);
  return it == values.end() ? kEmpty : it->second;
}

Result<int64_t> ParseNumberFlag(std::string_view flag, std::string_view text, int64_t min,
                                int64_t max, std::string_view unit) {
  auto value = base::ParseInt(text);
  if (!value || *value < min || *value > max) {
    std::string bounds = base::StrFormat("%lld to %lld", static_cast<long long>(min),
                                         static_cast<long long>(max));
    if (!unit.empty()) bounds += " " + std::string(unit);
    return Status::InvalidArgument(std::string(flag) + " must be a whole number from " + bounds +
                                   ", not " + base::ShellQuote(text));
  }
  return *value;
}

Status ApplyUlimitFlag(std::string_view spec, SecurityOptions* out) {
  size_t eq = spec.find('=');
  std::string_view name = spec.substr(0, eq);
  std::optional<uint64_t>* limit = nullptr;
  if (name == "nofile") {
    limit = &out->max_open_files;
  } else if (name == "fsize") {
    limit = &out->max_file_size;
  } else if (name == "nproc") {
    limit = &out->max_processes;
  } else if (name == "as") {
    limit = &out->max_memory;
  } else if (name == "cpu") {
    limit = &out->max_cpu_time;
  }
  std::optional<uint64_t> value;
  if (eq != std::string_view::npos) value = base::ParseUint(spec.substr(eq + 1));
  if (limit == nullptr || !value) {
    return Status::InvalidArgument("--ulimit must be NAME=N with NAME nofile, fsize, nproc, as "
                                   "or cpu (soft and hard alike), not " +
                                   base::ShellQuote(spec));
  }
  *limit = *value;
  return Status::OK();
}

Status ApplyUlimitFlag(std::string_view spec, ExecLimits* out) {
  SecurityOptions parsed;
  BOXLITE_RETURN_IF_ERROR(ApplyUlimitFlag(spec, &parsed));
  for (auto [from, to] : {std::pair{&parsed.max_open_files, &out->max_open_files},
                          {&parsed.max_file_size, &out->max_file_size},
                          {&parsed.max_processes, &out->max_processes},
                          {&parsed.max_memory, &out->max_memory},
                          {&parsed.max_cpu_time, &out->max_cpu_time}}) {
    if (*from) *to = *from;
  }
  return Status::OK();
}

Status ApplyExecLimitFlags(const ParsedFlags& flags, ExecOptions* out) {
  for (const auto& limit : flags.All("ulimit")) {
    BOXLITE_RETURN_IF_ERROR(ApplyUlimitFlag(limit, &out->limits));
  }
  if (out->limits.max_open_files &&
      (*out->limits.max_open_files < 1 || *out->limits.max_open_files > kMaxOpenFilesLimit)) {
    return Status::InvalidArgument(base::StrFormat(
        "--ulimit nofile must be from 1 to %llu (the guest's fs.nr_open)",
        static_cast<unsigned long long>(kMaxOpenFilesLimit)));
  }
  ExecCgroupOptions& c = out->cgroup;
  if (auto name = flags.Get("cgroup-name")) c.name = *name;
  // The bounds are the agent's (src/protocol/messages.h, ValidateExecCgroup).
  if (auto mem = flags.Get("memory")) {
    BOXLITE_ASSIGN_OR_RETURN(int64_t mib,
                             ParseNumberFlag("--memory", *mem, 4, int64_t{64} << 20, "MiB"));
    c.memory_max_bytes = static_cast<uint64_t>(mib) << 20;
  }
  if (auto quota = flags.Get("cpu-quota")) {
    BOXLITE_ASSIGN_OR_RETURN(int64_t us,
                             ParseNumberFlag("--cpu-quota", *quota, 1000, int64_t{1} << 40, "us"));
    c.cpu_quota_us = static_cast<uint64_t>(us);
  }
  if (auto period = flags.Get("cpu-period")) {
    BOXLITE_ASSIGN_OR_RETURN(int64_t us,
                             ParseNumberFlag("--cpu-period", *period, 1000, 1000000, "us"));
    c.cpu_period_us = static_cast<uint64_t>(us);
  }
  if (auto pids = flags.Get("pids-limit")) {
    BOXLITE_ASSIGN_OR_RETURN(int64_t n, ParseNumberFlag("--pids-limit", *pids, 1, 4194304));
    c.pids_max = static_cast<uint64_t>(n);
  }
  bool limited = c.memory_max_bytes != 0 || c.cpu_quota_us != 0 || c.cpu_period_us != 0 ||
                 c.pids_max != 0;
  if (limited && c.name.empty()) {
    return Status::InvalidArgument(
        "--memory, --cpu-quota, --cpu-period and --pids-limit of exec need --cgroup-name",
        "name the cgroup the command's processes share (a container's id)");
  }
  if (c.cpu_period_us != 0 && c.cpu_quota_us == 0) {
    return Status::InvalidArgument("--cpu-period needs --cpu-quota");
  }
  return Status::OK();
}

Result<int64_t> ParseDiskSizeFlag(std::string_view text, int64_t max_mib) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string unit(text.substr(digits));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int64_t mib_per_unit = 0;
  if (unit.empty() || unit == "g" || unit == "gib") {
    mib_per_unit = 1024;
  } else if (unit == "m" || unit == "mib") {
    mib_per_unit = 1;
  }
  auto value = base::ParseUint(text.substr(0, digits));
  if (digits == 0 || mib_per_unit == 0 || !value ||
      *value > static_cast<uint64_t>(max_mib / mib_per_unit)) {
    return Status::InvalidArgument(base::StrFormat(
        "--disk-size must be a whole number of GiB, or one with a unit (512M, 512MiB, 2G, "
        "2GiB), at most %lld GiB, not %s",
        static_cast<long long>(max_mib / 1024), base::ShellQuote(text).c_str()));
  }
  return static_cast<int64_t>(*value) * mib_per_unit;
}

Result<ParsedFlags> ParseFlags(const std::vector<std::string>& args,
                               const std::vector<FlagSpec>& specs, bool stop_at_positional) {
  ParsedFlags out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    bool flags_over = stop_at_positional && !out.positional.empty();
    if (flags_over || arg == "-" || arg.empty() || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      out.positional.insert(out.positional.end(), args.begin() + static_cast<long>(i) + 1,
                            args.end());
      break;
    }
    if (arg.starts_with("--")) {
      std::string name = arg.substr(2);
      std::optional<std::string> value;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const FlagSpec* spec = FindLong(specs, name);
      if (spec == nullptr) return Status::InvalidArgument("unknown flag: --" + name);
      if (!spec->takes_value) {
        if (value && spec->optional_bool && (*value == "true" || *value == "false")) {
          out.switches[name] = *value == "true";
          continue;
        }
        if (value && spec->optional_bool) {
          return Status::InvalidArgument("flag --" + name + " takes true or false, not " +
                                         base::ShellQuote(*value));
        }
        if (value) return Status::InvalidArgument("flag --" + name + " takes no value");
        out.switches[name] = true;
        continue;
      }
      if (!value) {
        if (i + 1 >= args.size()) {
          return Status::InvalidArgument("flag --" + name + " needs a value");
        }
        value = args[++i];
      }
      Status s = Store(&out, *spec, *value);
      if (!s.ok()) return s;
      continue;
    }
    // Short flags, possibly combined: -it, -e K=V, -eK=V.
    for (size_t j = 1; j < arg.size(); ++j) {
      const FlagSpec* spec = FindShort(specs, arg[j]);
      if (spec == nullptr) return Status::InvalidArgument(std::string("unknown flag: -") + arg[j]);
      if (!spec->takes_value) {
        out.switches[spec->long_name] = true;
        continue;
      }
      std::string value;
      if (j + 1 < arg.size()) {
        value = arg.substr(j + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Status::InvalidArgument(std::string("flag -") + arg[j] + " needs a value");
      }
      Status s = Store(&out, *spec, value);
      if (!s.ok()) return s;
      break;
    }
  }
  return out;
}

std::string FormatHelp(const std::string& usage, const std::string& summary,
                       const std::vector<FlagSpec>& specs) {
  std::string out = "Usage: boxlite " + usage + "\n\n" + summary + "\n";
  if (specs.empty()) return out;
  out += "\nOptions:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  for (const auto& s : specs) {
    std::string left = s.short_name ? std::string("-") + s.short_name + ", " : "    ";
    left += "--" + s.long_name;
    if (s.optional_bool) left += "[=true|false]";
    if (s.takes_value) left += " " + (s.value_name.empty() ? std::string("VALUE") : s.value_name);
    width = std::max(width, left.size());
    rows.emplace_back(left, s.help);
  }
  for (const auto& [left, help] : rows) {
    out += "  " + left + std::string(width - left.size() + 2, ' ') + help + "\n";
  }
  return out;
}

}  // namespace boxlite::cli

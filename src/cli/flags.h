// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A small docker-style flag parser: flags come before the first positional argument
// (everything after it belongs to the command run in the box), short flags combine
// ("-it"), values follow as "-e K=V", "--env K=V" or "--env=K=V", and "--" ends flags.
// Thread-safety: plain values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/options.h"
#include "boxlite/result.h"

namespace boxlite::cli {

struct FlagSpec {
  std::string long_name;   // "env"
  char short_name = 0;     // 'e'
  bool takes_value = false;
  bool repeated = false;
  std::string help;        // "set an environment variable (K=V)"
  std::string value_name;  // "K=V"
  // A switch that also takes "=true" or "=false" (--include-parent=false).
  bool optional_bool = false;
};

struct ParsedFlags {
  std::map<std::string, std::vector<std::string>> values;  // By long name.
  std::map<std::string, bool> switches;
  std::vector<std::string> positional;  // First positional and everything after it.

  bool Has(const std::string& name) const;
  std::optional<std::string> Get(const std::string& name) const;
  const std::vector<std::string>& All(const std::string& name) const;
  // A switch's value: nullopt when absent.
  std::optional<bool> Switch(const std::string& name) const;
};

// `stop_at_positional`: after the first positional argument, the rest is passed through
// untouched (for `run IMAGE CMD...`).
Result<ParsedFlags> ParseFlags(const std::vector<std::string>& args,
                               const std::vector<FlagSpec>& specs, bool stop_at_positional);

// The value of a numeric flag: a whole decimal number in [min, max], never narrowed. The
// error names the flag and the bounds: "--cpus must be a whole number from 1 to 16, not
// '4294967297'" (`unit`, e.g. "MiB", follows the bounds when given).
Result<int64_t> ParseNumberFlag(std::string_view flag, std::string_view text, int64_t min,
                                int64_t max, std::string_view unit = {});

// `--disk-size` in MiB: a bare number is GiB, as BoxLite 0.9 reads it ("10" is 10 GiB);
// an explicit unit gives MiB or GiB ("512M", "512MiB", "2G", "2GiB"; any case). 0 means
// the default size. At most `max_mib`.
Result<int64_t> ParseDiskSizeFlag(std::string_view text, int64_t max_mib);

// `--ulimit NAME=N` (run, create): one resource limit of every process in the box, soft
// and hard alike. NAME is setrlimit's, as docker spells it: nofile, fsize, nproc, as, cpu
// (SecurityOptions' max_open_files, max_file_size, max_processes, max_memory,
// max_cpu_time). The value's range is checked with the other options (the runtime's
// ValidateAdvancedOptions).
Status ApplyUlimitFlag(std::string_view spec, SecurityOptions* out);
// The same --ulimit for one exec (ExecOptions::limits).
Status ApplyUlimitFlag(std::string_view spec, ExecLimits* out);

// The limit flags of `boxlite exec` (--ulimit, --cgroup-name, --memory, --cpu-quota,
// --cpu-period, --pids-limit) into `out`: InvalidArgument naming the flag and its
// bounds, or a cgroup limit given without --cgroup-name.
Status ApplyExecLimitFlags(const ParsedFlags& flags, ExecOptions* out);

// Usage text: "Usage: boxlite <usage>\n\n<summary>\n\nOptions:\n  -e, --env K=V  ...".
std::string FormatHelp(const std::string& usage, const std::string& summary,
                       const std::vector<FlagSpec>& specs);

}  // namespace boxlite::cli

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite volume create | ls|list | get|inspect | rm|delete`: the runtime's volumes
// (Runtime::CreateVolume and friends). JSON keys: id, created_at (RFC 3339, UTC),
// size_bytes, path.
#include <cstdio>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

#include "src/base/strings.h"
#include "src/cli/command.h"
#include "src/cli/format.h"

namespace boxlite::cli {
namespace {

Outcome VolumeFail(Status s) { return Outcome{0, std::move(s)}; }


nlohmann::json VolumeJson(const VolumeInfo& v) {
  return {{"id", v.id},
          {"created_at", Rfc3339(v.created_unix)},
          {"size_bytes", v.size_bytes},
          {"path", v.path}};
}

Result<bool> WantJson(const ParsedFlags& flags) {
  std::string format = flags.Get("format").value_or("table");
  if (format == "json") return true;
  if (format == "table") return false;
  return Status::InvalidArgument("--format must be table or json, not " + base::ShellQuote(format));
}

Status NoExtra(const ParsedFlags& flags, size_t want, const char* usage) {
  if (flags.positional.size() != want) {
    return Status::InvalidArgument(std::string("usage: boxlite volume ") + usage);
  }
  return Status::OK();
}

Outcome Create(Runtime& rt, const ParsedFlags& flags) {
  if (Status s = NoExtra(flags, 1, "create"); !s.ok()) return VolumeFail(s);
  auto v = rt.CreateVolume();
  if (!v.ok()) return VolumeFail(v.error());
  std::printf("%s\n", v->id.c_str());
  return Outcome{};
}

Outcome List(Runtime& rt, const ParsedFlags& flags) {
  if (Status s = NoExtra(flags, 1, "ls [-q] [--format table|json]"); !s.ok()) return VolumeFail(s);
  auto json = WantJson(flags);
  if (!json.ok()) return VolumeFail(json.error());
  auto volumes = rt.ListVolumes();
  if (!volumes.ok()) return VolumeFail(volumes.error());
  if (flags.Has("quiet")) {
    for (const auto& v : *volumes) std::printf("%s\n", v.id.c_str());
    return Outcome{};
  }
  if (*json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : *volumes) out.push_back(VolumeJson(v));
    PrintJson(out);
    return Outcome{};
  }
  std::printf("%-14s %-22s %s\n", "VOLUME ID", "CREATED", "SIZE");
  for (const auto& v : *volumes) {
    std::printf("%-14s %-22s %s\n", v.id.c_str(), Rfc3339(v.created_unix).c_str(),
                base::HumanBytes(v.size_bytes).c_str());
  }
  return Outcome{};
}

Outcome Get(Runtime& rt, const ParsedFlags& flags) {
  if (Status s = NoExtra(flags, 2, "get ID [--format json]"); !s.ok()) return VolumeFail(s);
  auto json = WantJson(flags);
  if (!json.ok()) return VolumeFail(json.error());
  auto v = rt.GetVolume(flags.positional[1]);
  if (!v.ok()) return VolumeFail(v.error());
  PrintJson(VolumeJson(*v), 2);
  return Outcome{};
}

Outcome Remove(Runtime& rt, const ParsedFlags& flags) {
  if (flags.positional.size() < 2) {
    return VolumeFail(Status::InvalidArgument("usage: boxlite volume rm [-f] ID..."));
  }
  return ForEachTarget(flags.positional, 1, [&](const std::string& id) {
    return rt.RemoveVolume(id, flags.Has("force"));
  });
}

}  // namespace

Outcome VolumeCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) {
    return VolumeFail(Status::InvalidArgument(
        "volume needs a subcommand: create, ls, get or rm (see 'boxlite volume --help')"));
  }
  const std::string& sub = flags.positional[0];
  Outcome (*fn)(Runtime&, const ParsedFlags&) = nullptr;
  if (sub == "create") fn = Create;
  if (sub == "ls" || sub == "list") fn = List;
  if (sub == "get" || sub == "inspect") fn = Get;
  if (sub == "rm" || sub == "delete") fn = Remove;
  if (fn == nullptr) {
    return VolumeFail(Status::InvalidArgument("unknown volume subcommand " + base::ShellQuote(sub),
                                        "use create, ls, get or rm"));
  }
  auto rt = ctx.runtime();
  if (!rt.ok()) return VolumeFail(rt.error());
  return fn(**rt, flags);
}

}  // namespace boxlite::cli

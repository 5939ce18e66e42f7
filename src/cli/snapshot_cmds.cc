// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite snapshot create|ls|rm|restore BOX [NAME]` and `boxlite clone BOX [--name N]`:
// a box's disk snapshots and clones (Box::CreateSnapshot and friends; docs/snapshots.md).
// JSON keys are those of BoxLite 0.9's snapshot JSON (id, box_id, name, created_at as unix
// seconds, container_disk_bytes, size_bytes) plus memory and memory_bytes.
#include <cstdio>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

#include "src/base/strings.h"
#include "src/cli/command.h"
#include "src/cli/format.h"

namespace boxlite::cli {
namespace {


nlohmann::json SnapshotJson(const SnapshotInfo& s) {
  return {{"id", s.id},
          {"box_id", s.box_id},
          {"name", s.name},
          {"created_at", s.created_unix},
          {"container_disk_bytes", s.container_disk_bytes},
          {"size_bytes", s.size_bytes},
          {"memory", s.memory},
          {"memory_bytes", s.memory_bytes}};
}

Result<std::shared_ptr<Box>> Find(Context& ctx, const std::string& name) {
  auto rt = ctx.runtime();
  if (!rt.ok()) return rt.error();
  return (*rt)->Get(name);
}

Outcome Create(Box& box, const ParsedFlags& flags, bool json) {
  if (flags.positional.size() != 3) return Usage("usage: boxlite snapshot create [--memory] BOX NAME");
  SnapshotOptions options;
  options.memory = flags.Has("memory");
  auto info = box.CreateSnapshot(flags.positional[2], options);
  if (!info.ok()) return Fail(info.error());
  if (json) {
    PrintJson(SnapshotJson(*info), 2);
  } else {
    std::printf("%s\n", info->id.c_str());
  }
  return Outcome{};
}

Outcome List(Box& box, const ParsedFlags& flags, bool json) {
  if (flags.positional.size() != 2) return Usage("usage: boxlite snapshot ls [-q] [--format table|json] BOX");
  auto list = box.ListSnapshots();
  if (!list.ok()) return Fail(list.error());
  if (flags.Has("quiet")) {
    for (const auto& s : *list) std::printf("%s\n", s.name.c_str());
    return Outcome{};
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : *list) out.push_back(SnapshotJson(s));
    PrintJson(out);
    return Outcome{};
  }
  std::printf("%-24s %-14s %-22s %-10s %s\n", "NAME", "ID", "CREATED", "SIZE", "MEMORY");
  for (const auto& s : *list) {
    std::printf("%-24s %-14s %-22s %-10s %s\n", s.name.c_str(), s.id.c_str(),
                Rfc3339(s.created_unix).c_str(), base::HumanBytes(s.size_bytes).c_str(),
                s.memory ? base::HumanBytes(s.memory_bytes).c_str() : "-");
  }
  return Outcome{};
}

Outcome Remove(Box& box, const ParsedFlags& flags, bool) {
  if (flags.positional.size() < 3) return Usage("usage: boxlite snapshot rm BOX NAME...");
  return ForEachTarget(flags.positional, 2,
                       [&](const std::string& name) { return box.RemoveSnapshot(name); });
}

Outcome Restore(Box& box, const ParsedFlags& flags, bool) {
  if (flags.positional.size() != 3) return Usage("usage: boxlite snapshot restore BOX NAME");
  Status s = box.RestoreSnapshot(flags.positional[2]);
  if (!s.ok()) return Fail(s);
  return Outcome{};
}

}  // namespace

Outcome SnapshotCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) {
    return Usage("snapshot needs a subcommand: create, ls, rm or restore (see 'boxlite snapshot --help')");
  }
  const std::string& sub = flags.positional[0];
  Outcome (*fn)(Box&, const ParsedFlags&, bool) = nullptr;
  if (sub == "create") fn = Create;
  if (sub == "ls" || sub == "list") fn = List;
  if (sub == "rm" || sub == "remove" || sub == "delete") fn = Remove;
  if (sub == "restore") fn = Restore;
  if (fn == nullptr) {
    return Usage("unknown snapshot subcommand " + base::ShellQuote(sub) +
                 ": use create, ls, rm or restore");
  }
  if (flags.positional.size() < 2) return Usage("usage: boxlite snapshot " + sub + " BOX ...");
  auto format = FormatFlag(flags, {"table", "json"}, "table");
  if (!format.ok()) return Usage(format.error().message());
  auto box = Find(ctx, flags.positional[1]);
  if (!box.ok()) return Fail(box.error());
  return fn(**box, flags, *format == "json");
}

Outcome CloneCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) return Usage("usage: boxlite clone [--name NAME] BOX");
  auto box = Find(ctx, flags.positional[0]);
  if (!box.ok()) return Fail(box.error());
  auto clone = (*box)->Clone(flags.Get("name").value_or(""));
  if (!clone.ok()) return Fail(clone.error());
  std::printf("%s\n", (*clone)->id().c_str());
  return Outcome{};
}

}  // namespace boxlite::cli

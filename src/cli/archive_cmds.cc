// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite export` and `boxlite import-box`: a box as a .boxlite archive and back
// (Box::Export, Runtime::ImportBox; docs/snapshots.md, "Export format"). `import` stays
// the image import.
#include <cstdio>

#include "src/cli/command.h"

namespace boxlite::cli {

Outcome ExportCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty() || flags.positional.size() > 2) {
    return Usage("export takes a BOX and an optional DEST (a file, or a directory; default .)");
  }
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error()};
  auto box = (*rt)->Get(flags.positional[0]);
  if (!box.ok()) return Outcome{0, box.error()};
  std::string dest = flags.positional.size() == 2 ? flags.positional[1] : ".";
  auto written = (*box)->Export(dest);
  if (!written.ok()) return Outcome{0, written.error()};
  std::printf("%s\n", written->c_str());
  return Outcome{};
}

Outcome ImportBoxCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) return Usage("import-box takes exactly one FILE");
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error()};
  auto box = (*rt)->ImportBox(flags.positional[0], flags.Get("name").value_or(""),
                              flags.Has("untrusted"));
  if (!box.ok()) return Outcome{0, box.error()};
  std::printf("%s\n", (*box)->id().c_str());
  return Outcome{};
}

}  // namespace boxlite::cli

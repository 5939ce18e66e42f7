// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite network tunnel BOX PORT`: a TCP connection to PORT inside a running box
// (Box::Tunnel, include/boxlite/tunnel.h) relayed to this process's stdin and stdout,
// like `nc`: stdin's end is the connection's half close, and the command ends when the
// box's side has ended. BoxLite 0.9 has the command for REST runtimes only (it prints a
// URL); a local box needs no URL, the bytes flow here.
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "src/base/strings.h"
#include "src/cli/command.h"

namespace boxlite::cli {
namespace {

Status WriteOut(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IoError("write to stdout failed");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Outcome Tunnel(Context& ctx, const std::string& name, const std::string& port_text) {
  auto port = base::ParseInt(port_text);
  if (!port) return Usage("PORT must be a number from 1 to 65535, not " + base::ShellQuote(port_text));
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  auto box = (*rt)->Get(name);
  if (!box.ok()) return Fail(box.error());
  auto conn = (*box)->Tunnel(static_cast<int>(*port));
  if (!conn.ok()) return Fail(conn.error());
  std::shared_ptr<Connection> c = *conn;
  // stdin to the box on a thread of its own; it may still be blocked reading stdin when
  // the box's side ends, so it is detached (the process exits then).
  std::thread([c] {
    char buf[65536];
    while (true) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (!c->Write(std::string_view(buf, static_cast<size_t>(n))).ok()) return;
    }
    (void)c->ShutdownWrite();
  }).detach();
  while (true) {
    auto chunk = c->Read(65536);
    if (!chunk.ok()) return Fail(chunk.error());
    if (chunk->empty()) break;
    Status s = WriteOut(*chunk);
    if (!s.ok()) return Fail(s);
  }
  (void)c->Close();
  return Outcome{};
}

}  // namespace

Outcome NetworkCommand(Context& ctx, const ParsedFlags& flags) {
  const auto& args = flags.positional;
  if (args.empty() || args[0] != "tunnel") {
    return Usage("network needs a subcommand: tunnel BOX PORT (see 'boxlite network --help')");
  }
  if (args.size() != 3) return Usage("usage: boxlite network tunnel BOX PORT");
  return Tunnel(ctx, args[1], args[2]);
}

}  // namespace boxlite::cli

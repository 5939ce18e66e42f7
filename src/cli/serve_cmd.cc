// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite serve` (docs/server.md): BoxLite 0.9's REST + WebSocket API over this host's
// runtime (src/server). Prints `listening on http://HOST:PORT` once bound; SIGINT or
// SIGTERM stops it: no new connections, the execs it started are killed, and the boxes
// it started that are not detached are stopped (Runtime::Shutdown(10)).
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "boxlite/config.h"
#include "src/cli/command.h"
#include "src/server/api.h"
#include "src/server/server.h"

namespace boxlite::cli {

namespace {

Result<uint64_t> ParseCount(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || value[0] == '-' || end == value.c_str() || *end != '\0' || errno != 0) {
    return Status::InvalidArgument("--" + flag + " must be a whole number, not '" + value + "'");
  }
  return static_cast<uint64_t>(n);
}

}  // namespace

Outcome ServeCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.Has("print-routes")) {
    // The route table the server matches against (the OpenAPI test reads it).
    for (const auto& r : server::Routes()) std::printf("%s %s\n", r.method, r.pattern);
    return Outcome{};
  }
  server::ServerOptions options;
  if (auto host = flags.Get("host")) options.host = *host;
  if (auto port = flags.Get("port")) {
    auto n = ParseCount("port", *port);
    if (!n.ok() || *n > 65535) return Usage("--port must be between 0 and 65535");
    options.port = static_cast<int>(*n);
  }
  if (auto key = flags.Get("api-key")) {
    options.api_key = *key;
  } else if (auto env = EnvironmentValue("BOXLITE_SERVE_API_KEY")) {
    options.api_key = *env;
  }
  if (auto max = flags.Get("max-upload-bytes")) {
    auto n = ParseCount("max-upload-bytes", *max);
    if (!n.ok()) return Usage(n.error().message());
    options.max_upload_bytes = *n;
  }
  if (auto max = flags.Get("max-connections")) {
    auto n = ParseCount("max-connections", *max);
    if (!n.ok() || *n < 1 || *n > 100000) {
      return Usage("--max-connections must be between 1 and 100000");
    }
    options.max_connections = static_cast<int>(*n);
  }
  // Seconds a client has to send a request header (and a kept-alive one to start the
  // next); tests shorten it.
  if (auto t = EnvironmentValue("BOXLITE_SERVE_HEADER_TIMEOUT")) {
    auto n = ParseCount("BOXLITE_SERVE_HEADER_TIMEOUT", *t);
    if (!n.ok() || *n < 1 || *n > 3600) {
      return Fail(Status::InvalidArgument(
          "BOXLITE_SERVE_HEADER_TIMEOUT must be a number of seconds between 1 and 3600"));
    }
    options.header_timeout = std::chrono::seconds(*n);
  }
  if (Status s = server::ValidateServerOptions(options); !s.ok()) return Fail(s);
  auto reaper = server::ReaperConfig::FromEnv();
  if (!reaper.ok()) return Fail(reaper.error());

  // Every thread the server starts inherits the blocked signals; this one waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  auto srv = server::Server::Start(*rt, options, *reaper);
  if (!srv.ok()) return Fail(srv.error());
  std::printf("listening on http://%s:%d\n", (*srv)->host().c_str(), (*srv)->port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "boxlite serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*srv)->Shutdown(10);
  std::fflush(stdout);
  std::fflush(stderr);
  // Readers of execs on detached boxes may still block in the runtime: leave without
  // running destructors under them (every box this server had to stop is stopped).
  std::_Exit(0);
}

}  // namespace boxlite::cli

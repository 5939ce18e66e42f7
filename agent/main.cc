// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-agent: PID 1 of every BoxLite VM. It lives in the initramfs, never in the
// user's root file system. Boot: mount the early file systems, open the agent port, mount
// the box disk at /run/rootfs, then serve the host until it asks for shutdown. A fatal
// error is logged to the console and stops the VM; PID 1 never exits.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "agent/init.h"
#include "agent/server.h"
#include "src/sys/errno_status.h"

int main() {
  using boxlite::Status;
  namespace agent = boxlite::agent;
  if (::getpid() != 1) {
    std::fprintf(stderr, "boxlite-agent: runs only as PID 1 inside a BoxLite VM\n");
    return 2;
  }
  Status s = agent::MountEarly();
  if (!s.ok()) agent::Fatal(s);
  std::vector<std::string> port_paths;
  s = agent::FindAgentPorts(&port_paths);
  if (!s.ok()) agent::Fatal(s);
  std::vector<boxlite::base::UniqueFd> ports;
  for (const auto& path : port_paths) {
    boxlite::base::UniqueFd port(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!port) agent::Fatal(boxlite::sys::ErrnoStatus(errno, "open %s", path.c_str()));
    ports.push_back(std::move(port));
  }
  s = agent::MountRootfs();
  if (s.ok()) s = agent::PrepareRootfs();
  if (!s.ok()) agent::Fatal(s.Wrap("prepare the box disk"));
  agent::Server server(std::move(ports), agent::kRootfs);
  s = server.Run();
  if (!s.ok()) agent::Fatal(s);
  agent::PowerOff();
}

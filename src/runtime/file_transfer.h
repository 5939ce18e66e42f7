// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Copies files and directory trees between the host and a running box over the agent
// channel (put_file / get_file / stat / list_dir, docs/protocol.md). Regular files stream
// under the same credit flow control as exec output; modes (incl. setuid/setgid/sticky)
// and symlinks are kept; files copied in belong to root in the guest, files copied out to
// the calling user on the host. A file copied in appears atomically (the agent renames a
// complete temporary file into place).
// Thread-safety: the functions may run concurrently on one channel.
#pragma once

#include <memory>
#include <string>

#include "boxlite/status.h"
#include "src/runtime/channel.h"

namespace boxlite::runtime {

// Copies `host_path` (file, symlink or directory tree) to `guest_path`. When guest_path
// is an existing directory, the source goes inside it (like cp).
Status CopyToGuest(AgentChannel* channel, const std::string& host_path,
                   const std::string& guest_path);

// Copies `guest_path` to `host_path`; an existing host directory receives it inside.
Status CopyFromGuest(AgentChannel* channel, const std::string& guest_path,
                     const std::string& host_path);

}  // namespace boxlite::runtime

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Resolves a user spec ("name", "uid", "uid:gid", "name:group") against the image's
// /etc/passwd and /etc/group, the way container runtimes do: names must exist, numeric
// ids need not. Pure parsing over file contents, so it is unit-tested on the host.
// Thread-safety: pure functions.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"

namespace boxlite::agent {

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // Supplementary groups, from /etc/group membership.
  std::string home = "/";
  std::string name;  // Empty when the uid has no passwd entry.
};

// `passwd` and `group` are the files' contents (empty when the file is missing).
Result<Identity> ResolveUser(std::string_view spec, std::string_view passwd,
                             std::string_view group);

}  // namespace boxlite::agent

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/users.h"

#include <optional>

#include "src/base/strings.h"

namespace boxlite::agent {
namespace {

struct PasswdEntry {
  std::string name;
  uid_t uid;
  gid_t gid;
  std::string home;
};

struct GroupEntry {
  std::string name;
  gid_t gid;
  std::vector<std::string> members;
};

std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (const auto& line : base::Split(text, '\n', true)) {
    if (line.empty() || line[0] == '#') continue;
    auto f = base::Split(line, ':');
    if (f.size() < 7) continue;
    auto uid = base::ParseUint(f[2]);
    auto gid = base::ParseUint(f[3]);
    if (!uid || !gid || *uid > UINT32_MAX || *gid > UINT32_MAX) continue;
    out.push_back({f[0], static_cast<uid_t>(*uid), static_cast<gid_t>(*gid), f[5]});
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(std::string_view text) {
  std::vector<GroupEntry> out;
  for (const auto& line : base::Split(text, '\n', true)) {
    if (line.empty() || line[0] == '#') continue;
    auto f = base::Split(line, ':');
    if (f.size() < 3) continue;
    auto gid = base::ParseUint(f[2]);
    if (!gid || *gid > UINT32_MAX) continue;
    out.push_back({f[0], static_cast<gid_t>(*gid),
                   f.size() > 3 ? base::Split(f[3], ',', true) : std::vector<std::string>{}});
  }
  return out;
}

std::optional<uint32_t> ParseId(std::string_view s) {
  auto v = base::ParseUint(s);
  if (!v || *v > UINT32_MAX - 1) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

}  // namespace

Result<Identity> ResolveUser(std::string_view spec, std::string_view passwd,
                             std::string_view group) {
  Identity id;
  if (spec.empty()) spec = "0";
  std::string_view user_part = spec;
  std::string_view group_part;
  size_t colon = spec.find(':');
  if (colon != std::string_view::npos) {
    user_part = spec.substr(0, colon);
    group_part = spec.substr(colon + 1);
    if (user_part.empty() || group_part.empty()) {
      return Status::InvalidArgument("user must be name, uid, uid:gid or name:group",
                                     std::string(spec));
    }
  }
  auto users = ParsePasswd(passwd);
  auto groups = ParseGroup(group);
  const PasswdEntry* entry = nullptr;
  if (auto uid = ParseId(user_part)) {
    id.uid = *uid;
    id.gid = *uid == 0 ? 0 : *uid;
    for (const auto& u : users) {
      if (u.uid == *uid) {
        entry = &u;
        break;
      }
    }
  } else {
    for (const auto& u : users) {
      if (u.name == user_part) {
        entry = &u;
        break;
      }
    }
    if (entry == nullptr) {
      return Status::NotFound(
          base::StrFormat("user \"%.*s\" is not in the image's /etc/passwd",
                          static_cast<int>(user_part.size()), user_part.data()),
          "use a numeric uid or add the user to the image");
    }
    id.uid = entry->uid;
  }
  if (entry != nullptr) {
    id.gid = entry->gid;
    id.home = entry->home.empty() ? "/" : entry->home;
    id.name = entry->name;
  }
  if (!group_part.empty()) {
    if (auto gid = ParseId(group_part)) {
      id.gid = *gid;
    } else {
      bool found = false;
      for (const auto& g : groups) {
        if (g.name == group_part) {
          id.gid = g.gid;
          found = true;
          break;
        }
      }
      if (!found) {
        return Status::NotFound(
            base::StrFormat("group \"%.*s\" is not in the image's /etc/group",
                            static_cast<int>(group_part.size()), group_part.data()),
            "use a numeric gid or add the group to the image");
      }
    }
  }
  if (!id.name.empty()) {
    for (const auto& g : groups) {
      for (const auto& member : g.members) {
        if (member == id.name && g.gid != id.gid) id.groups.push_back(g.gid);
      }
    }
  }
  return id;
}

}  // namespace boxlite::agent

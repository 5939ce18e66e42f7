// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/credentials.h"

#include <cpptoml.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "src/base/macros.h"
#include "src/base/unique_fd.h"
#include "src/sys/fs.h"

namespace boxlite::remote {
namespace {

constexpr const char* kKeys[] = {"url", "api_key", "path_prefix", "auth_method"};

Result<std::shared_ptr<cpptoml::table>> ParseTable(std::string_view text, std::string_view path) {
  std::istringstream in{std::string(text)};
  try {
    cpptoml::parser p(in);
    return p.parse();
  } catch (const cpptoml::parse_exception& e) {
    return Status::InvalidArgument("bad credentials file " + std::string(path) + ": " + e.what() +
                                   " (fix it, or remove it and run 'boxlite auth login')");
  }
}

Result<std::shared_ptr<cpptoml::table>> LoadTable(const std::string& path) {
  if (!sys::Exists(path)) return cpptoml::make_table();
  auto text = sys::ReadFile(path);
  if (!text.ok()) return text.error().Wrap("read the credentials file");
  return ParseTable(*text, path);
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes `data` to `path` as a new 0600 file replacing the old one in one rename.
Status WritePrivate(const std::string& path, const std::string& data) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) {
    Status made = sys::MakeDirs(dir, 0700);
    if (!made.ok()) return made.Wrap("create " + dir);
  }
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError(Errno("create " + tmp));
  base::UniqueFd guard(fd);
  Status s;
  if (::fchmod(fd, 0600) != 0) s = Status::IoError(Errno("chmod " + tmp));
  if (s.ok()) s = sys::WriteAll(fd, data);
  if (s.ok() && ::fsync(fd) != 0) s = Status::IoError(Errno("fsync " + tmp));
  guard.reset();
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::IoError(Errno("rename " + path));
  if (!s.ok()) ::unlink(tmp.c_str());
  return s.ok() ? s : s.Wrap("write the credentials file");
}

std::string Serialize(const cpptoml::table& root) {
  std::ostringstream out;
  out << "# BoxLite remote profiles (boxlite auth login). Keep this file private (0600).\n";
  out << root;
  return out.str();
}

}  // namespace

std::string CredentialsPathIn(const std::string& home) {
  return home + "/.boxlite/credentials.toml";
}

Result<Profiles> ParseCredentials(std::string_view text, std::string_view path) {
  BOXLITE_ASSIGN_OR_RETURN(auto root, ParseTable(text, path));
  Profiles out;
  for (const auto& [name, value] : *root) {
    if (!value->is_table()) continue;
    auto t = value->as_table();
    Profile p;
    std::string* fields[] = {&p.url, &p.api_key, &p.path_prefix, &p.auth_method};
    for (size_t i = 0; i < std::size(kKeys); ++i) {
      if (auto v = t->get_as<std::string>(kKeys[i])) *fields[i] = *v;
    }
    out[name] = std::move(p);
  }
  return out;
}

Result<Profiles> LoadCredentials(const std::string& path) {
  if (!sys::Exists(path)) return Profiles{};
  auto text = sys::ReadFile(path);
  if (!text.ok()) return text.error().Wrap("read the credentials file " + path);
  return ParseCredentials(*text, path);
}

Status SaveProfile(const std::string& path, const std::string& name, const Profile& profile) {
  if (name.empty()) return Status::InvalidArgument("a profile needs a name");
  BOXLITE_ASSIGN_OR_RETURN(auto root, LoadTable(path));
  auto t = root->get_table(name);
  if (!t) {
    t = cpptoml::make_table();
    root->insert(name, t);
  }
  const std::string* fields[] = {&profile.url, &profile.api_key, &profile.path_prefix,
                                 &profile.auth_method};
  for (size_t i = 0; i < std::size(kKeys); ++i) {
    if (fields[i]->empty()) {
      t->erase(kKeys[i]);
    } else {
      t->insert(kKeys[i], *fields[i]);
    }
  }
  return WritePrivate(path, Serialize(*root));
}

Status RemoveProfile(const std::string& path, const std::string& name) {
  BOXLITE_ASSIGN_OR_RETURN(auto root, LoadTable(path));
  if (!root->get_table(name)) {
    return Status::NotFound("no profile '" + name + "' in " + path);
  }
  root->erase(name);
  return WritePrivate(path, Serialize(*root));
}

RemoteSettings ResolveRemoteSettings(
    const std::optional<std::string>& flag_url, const std::optional<std::string>& flag_prefix,
    const std::optional<std::string>& flag_profile, const Profiles& profiles,
    const std::function<std::optional<std::string>(const char*)>& env) {
  auto nonempty = [&](const char* name) -> std::optional<std::string> {
    auto v = env(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  RemoteSettings s;
  s.profile = flag_profile.value_or(nonempty("BOXLITE_PROFILE").value_or("default"));
  auto it = profiles.find(s.profile);
  const Profile* p = it == profiles.end() ? nullptr : &it->second;
  if (flag_url && !flag_url->empty()) {
    s.url = *flag_url;
    s.url_source = "flag";
  } else if (auto e = nonempty("BOXLITE_REST_URL")) {
    s.url = *e;
    s.url_source = "env";
  } else if (p && !p->url.empty()) {
    s.url = p->url;
    s.url_source = "profile";
  }
  if (flag_prefix) {
    s.path_prefix = *flag_prefix;
  } else if (auto e = nonempty("BOXLITE_REST_PATH_PREFIX")) {
    s.path_prefix = *e;
  } else if (p) {
    s.path_prefix = p->path_prefix;
  }
  if (auto e = nonempty("BOXLITE_API_KEY")) {
    s.bearer_token = *e;
    s.key_source = "env";
  } else if (p && !p->api_key.empty()) {
    s.bearer_token = p->api_key;
    s.key_source = "profile";
  }
  return s;
}

std::string MaskKey(std::string_view key) {
  if (key.size() < 12) return std::string(key.size(), '*');
  return std::string(key.substr(0, 4)) + "..." + std::string(key.substr(key.size() - 4));
}

}  // namespace boxlite::remote

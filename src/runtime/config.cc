// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "boxlite/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/fs.h"

namespace boxlite {
namespace {

bool IsBase62(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// host[:port] or [v6]:port, as references name registries.
Status CheckHost(const std::string& host) {
  if (host.empty()) {
    return Status::InvalidArgument("registry host is empty", "give host[:port], e.g. ghcr.io");
  }
  if (host.find("://") != std::string::npos) {
    return Status::InvalidArgument("registry host \"" + host + "\" is a URL",
                                   "give host[:port] without a scheme; use transport=\"http\" "
                                   "for plain HTTP");
  }
  if (host.find('/') != std::string::npos) {
    return Status::InvalidArgument("registry host \"" + host + "\" holds a path",
                                   "give host[:port] only");
  }
  std::string_view name = host;
  std::string_view port;
  if (name.front() == '[') {
    size_t close = name.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("registry host \"" + host + "\" has an unclosed '['");
    }
    std::string_view after = name.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status::InvalidArgument("registry host \"" + host + "\" is not host[:port]");
      }
      port = after.substr(1);
    }
    name = name.substr(1, close - 1);
    if (name.empty()) return Status::InvalidArgument("registry host \"" + host + "\" is empty");
    for (char c : name) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return Status::InvalidArgument("registry host \"" + host + "\" is not an IPv6 address");
      }
    }
  } else {
    size_t colon = name.find(':');
    if (colon != std::string_view::npos) {
      port = name.substr(colon + 1);
      name = name.substr(0, colon);
      if (port.find(':') != std::string_view::npos) {
        return Status::InvalidArgument("registry host \"" + host + "\" is not host[:port]",
                                       "write an IPv6 address as [addr]:port");
      }
    }
    if (name.empty()) return Status::InvalidArgument("registry host \"" + host + "\" has no name");
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return Status::InvalidArgument(
            "registry host \"" + host + "\" holds an invalid character",
            "a host name has letters, digits, '.', '-' and '_' only");
      }
    }
  }
  if (!port.empty() || host.back() == ':') {
    auto p = base::ParseUint(port);
    if (!p || *p == 0 || *p > 65535) {
      return Status::InvalidArgument("registry host \"" + host + "\" has an invalid port",
                                     "the port is a number from 1 to 65535");
    }
  }
  return Status::OK();
}

// JSON helpers with errors naming the path.
Status TypeError(const std::string& path, const char* want) {
  return Status::InvalidArgument("config: " + path + " must be " + want);
}

Status CheckKeys(const nlohmann::json& obj, const std::string& path,
                 std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : obj.items()) {
    (void)value;
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) {
      std::vector<std::string> names(allowed.begin(), allowed.end());
      return Status::InvalidArgument(
          "config: unknown key \"" + key + "\" in " + path,
          "the keys allowed there are " + base::Join(names, ", "));
    }
  }
  return Status::OK();
}

Status GetString(const nlohmann::json& obj, const char* key, const std::string& path,
                 std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::OK();
  if (!it->is_string()) return TypeError(path + "." + key, "a string");
  *out = it->get<std::string>();
  return Status::OK();
}

Status GetBool(const nlohmann::json& obj, const char* key, const std::string& path, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::OK();
  if (!it->is_boolean()) return TypeError(path + "." + key, "true or false");
  *out = it->get<bool>();
  return Status::OK();
}

Result<ImageRegistry> ParseRegistryJson(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) return TypeError(path, "an object {host, transport, ...}");
  BOXLITE_RETURN_IF_ERROR(
      CheckKeys(j, path, {"host", "transport", "skip_verify", "search", "auth"}));
  ImageRegistry r;
  if (!j.contains("host")) {
    return Status::InvalidArgument("config: " + path + ".host is missing");
  }
  BOXLITE_RETURN_IF_ERROR(GetString(j, "host", path, &r.host));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "transport", path, &r.transport));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "skip_verify", path, &r.skip_verify));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "search", path, &r.search));
  auto auth = j.find("auth");
  if (auth != j.end() && !auth->is_null()) {
    const std::string apath = path + ".auth";
    if (!auth->is_object()) return TypeError(apath, "an object {\"type\": ...}");
    std::string type = "anonymous";
    BOXLITE_RETURN_IF_ERROR(GetString(*auth, "type", apath, &type));
    if (type == "anonymous") {
      BOXLITE_RETURN_IF_ERROR(CheckKeys(*auth, apath, {"type"}));
    } else if (type == "basic") {
      BOXLITE_RETURN_IF_ERROR(CheckKeys(*auth, apath, {"type", "username", "password"}));
      BOXLITE_RETURN_IF_ERROR(GetString(*auth, "username", apath, &r.username));
      BOXLITE_RETURN_IF_ERROR(GetString(*auth, "password", apath, &r.password));
      if (r.username.empty() || r.password.empty()) {
        return Status::InvalidArgument("config: " + apath +
                                       " of type \"basic\" needs username and password");
      }
    } else if (type == "bearer") {
      BOXLITE_RETURN_IF_ERROR(CheckKeys(*auth, apath, {"type", "token"}));
      BOXLITE_RETURN_IF_ERROR(GetString(*auth, "token", apath, &r.bearer_token));
      if (r.bearer_token.empty()) {
        return Status::InvalidArgument("config: " + apath + " of type \"bearer\" needs a token");
      }
    } else {
      return Status::InvalidArgument("config: " + apath + ".type \"" + type + "\" is unknown",
                                     "use \"anonymous\", \"basic\" or \"bearer\"");
    }
  }
  auto checked = ValidateImageRegistry(r);
  if (!checked) return checked.error().Wrap("config: " + path);
  return checked;
}

}  // namespace

Result<ImageRegistry> ValidateImageRegistry(const ImageRegistry& registry) {
  ImageRegistry r = registry;
  BOXLITE_RETURN_IF_ERROR(CheckHost(r.host));
  if (r.transport.empty()) r.transport = "https";
  if (r.transport != "https" && r.transport != "http") {
    return Status::InvalidArgument("registry " + r.host + ": transport \"" + r.transport +
                                   "\" is unknown", "use \"https\" or \"http\"");
  }
  if (r.username.empty() != r.password.empty()) {
    return Status::InvalidArgument("registry " + r.host + ": username and password go together",
                                   "give both, or neither");
  }
  for (const std::string* s : {&r.username, &r.password, &r.bearer_token}) {
    for (char c : *s) {
      if (c == '\r' || c == '\n' || c == '\0') {
        return Status::InvalidArgument("registry " + r.host +
                                       ": credentials must not hold line breaks or NUL");
      }
    }
  }
  if (r.username.find(':') != std::string::npos) {
    return Status::InvalidArgument("registry " + r.host + ": a user name must not hold ':'");
  }
  return r;
}

Result<RuntimeOptions> ParseRuntimeConfig(std::string_view json) {
  if (json.size() > kMaxConfigBytes) {
    return Status::InvalidArgument(
        base::StrFormat("config is larger than %zu bytes", kMaxConfigBytes));
  }
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Status::InvalidArgument("config is not valid JSON",
                                   "expected {\"home_dir\": ..., \"image_registries\": [...]}");
  }
  if (!doc.is_object()) return TypeError("the top level", "an object");
  BOXLITE_RETURN_IF_ERROR(CheckKeys(doc, "the top level", {"home_dir", "image_registries"}));
  RuntimeOptions out;
  BOXLITE_RETURN_IF_ERROR(GetString(doc, "home_dir", "config", &out.home_dir));
  auto regs = doc.find("image_registries");
  if (regs != doc.end() && !regs->is_null()) {
    if (!regs->is_array()) return TypeError("image_registries", "a list");
    for (size_t i = 0; i < regs->size(); ++i) {
      BOXLITE_ASSIGN_OR_RETURN(
          ImageRegistry r,
          ParseRegistryJson((*regs)[i], base::StrFormat("image_registries[%zu]", i)));
      out.registries.push_back(std::move(r));
    }
  }
  return out;
}

Result<RuntimeOptions> LoadRuntimeConfig(const std::string& path) {
  auto fd = sys::Open(path, O_RDONLY | O_CLOEXEC);
  if (!fd) return fd.error().Wrap("read the config file " + path);
  auto text = sys::ReadAll(fd->get(), kMaxConfigBytes + 1);
  if (!text) return text.error().Wrap("read the config file " + path);
  auto parsed = ParseRuntimeConfig(*text);
  if (!parsed) return parsed.error().Wrap(path);
  return parsed;
}

Result<ImageRegistry> ParseRegistryFlag(std::string_view value) {
  ImageRegistry r;
  r.host = std::string(value);
  r.search = true;
  auto checked = ValidateImageRegistry(r);
  if (!checked) return checked.error().Wrap("--registry");
  return checked;
}

bool LooksLikeVolumeId(std::string_view text) {
  if (text.size() != 12) return false;
  for (char c : text) {
    if (!IsBase62(c)) return false;
  }
  return true;
}

Result<VolumeMount> ParseVolumeSpec(std::string_view spec) {
  const std::string text(spec);
  auto parts = base::Split(text, ':');
  VolumeMount m;
  auto mode = [&](const std::string& word) -> Status {
    if (word != "ro" && word != "rw") {
      return Status::InvalidArgument("volume mode must be ro or rw, not \"" + word + "\"", text);
    }
    m.read_only = word == "ro";
    return Status::OK();
  };
  if (parts.empty() || parts.size() > 3) {
    return Status::InvalidArgument("a volume is HOST:GUEST[:ro|rw] or GUEST[:ro]", text);
  }
  bool anonymous = parts.size() == 1 || (parts.size() == 2 && (parts[1] == "ro" || parts[1] == "rw"));
  if (anonymous) {
    m.guest_path = parts[0];
    if (parts.size() == 2) BOXLITE_RETURN_IF_ERROR(mode(parts[1]));
  } else {
    m.host_path = parts[0];
    m.guest_path = parts[1];
    if (parts.size() == 3) BOXLITE_RETURN_IF_ERROR(mode(parts[2]));
    if (m.host_path.empty()) {
      return Status::InvalidArgument("volume host side is empty",
                                     "write HOST:GUEST, or GUEST alone for an anonymous volume");
    }
  }
  if (m.guest_path.empty() || m.guest_path[0] != '/' || m.guest_path == "/") {
    return Status::InvalidArgument("volume guest path must be absolute and not /", text);
  }
  if (!m.host_path.empty() && m.host_path[0] != '/' &&
      !(m.host_path.find('/') == std::string::npos && LooksLikeVolumeId(m.host_path))) {
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd)) == nullptr) {
      return Status::InvalidArgument("cannot make the volume path absolute", m.host_path);
    }
    m.host_path = std::string(cwd) + "/" + m.host_path;
  }
  return m;
}

}  // namespace boxlite

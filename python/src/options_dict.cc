// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "options_dict.h"

#include <Python.h>

#include <climits>
#include <functional>
#include <map>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "advanced_dict.h"
#include "status_error.h"
#include "text.h"

namespace nb = nanobind;

namespace boxlite::python {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  throw StatusError(Status::InvalidArgument(message), Domain::kBox, "check the box options");
}

std::string TypeName(nb::handle h) { return Py_TYPE(h.ptr())->tp_name; }

bool IsNone(nb::handle h) { return !h.is_valid() || h.is_none(); }

std::string AsText(const std::string& key, nb::handle h) {
  Text text;
  if (!nb::try_cast<Text>(h, text)) {
    if (PyUnicode_Check(h.ptr())) Fail(key + " contains a lone surrogate that stands for no byte");
    Fail(key + " must be a string, not " + TypeName(h));
  }
  return std::move(text.bytes);
}

int64_t AsInt(const std::string& key, nb::handle h, int64_t min, int64_t max) {
  if (!PyLong_Check(h.ptr()) || PyBool_Check(h.ptr())) {
    Fail(key + " must be an int, not " + TypeName(h));
  }
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
  if (overflow != 0 || v < min || v > max) {
    std::string shown = nb::str(h).c_str();
    // The same words as ValidateBoxOptions: the bounds are its constants.
    Fail(key + " must be from " + std::to_string(min) + " to " + std::to_string(max) + ", not " +
         shown);
  }
  return v;
}

bool AsBool(const std::string& key, nb::handle h) {
  if (!PyBool_Check(h.ptr())) Fail(key + " must be a bool, not " + TypeName(h));
  return h.ptr() == Py_True;
}

// A list or tuple (not a string: a string is a sequence of its characters).
std::vector<nb::handle> AsSequence(const std::string& key, nb::handle h, const char* of) {
  if (!PyList_Check(h.ptr()) && !PyTuple_Check(h.ptr())) {
    Fail(key + " must be a list of " + of + ", not " + TypeName(h));
  }
  std::vector<nb::handle> out;
  for (nb::handle item : h) out.push_back(item);
  return out;
}

std::vector<std::string> AsStrings(const std::string& key, nb::handle h) {
  std::vector<std::string> out;
  for (nb::handle item : AsSequence(key, h, "strings")) out.push_back(AsText(key + " entry", item));
  return out;
}

EnvList AsEnv(nb::handle h) {
  EnvList out;
  if (PyDict_Check(h.ptr())) {
    for (auto [k, v] : nb::borrow<nb::dict>(h)) {
      std::string name = AsText("env name", k);
      out.emplace_back(name, AsText("env value of " + name, v));
    }
    return out;
  }
  for (nb::handle item : AsSequence("env", h, "(name, value) pairs")) {
    if ((!PyTuple_Check(item.ptr()) && !PyList_Check(item.ptr())) || nb::len(item) != 2) {
      Fail("env entries must be (name, value) pairs, not " + TypeName(item));
    }
    std::string name = AsText("env name", item[0]);
    out.emplace_back(name, AsText("env value of " + name, item[1]));
  }
  return out;
}

VolumeMount AsMount(nb::handle item) {
  VolumeMount m;
  if (PyDict_Check(item.ptr())) {
    nb::dict d = nb::borrow<nb::dict>(item);
    for (auto [k, v] : d) {
      std::string key = AsText("mount key", k);
      if (key == "host_path") {
        m.host_path = AsText("mount host_path", v);
      } else if (key == "guest_path") {
        m.guest_path = AsText("mount guest_path", v);
      } else if (key == "read_only") {
        m.read_only = AsBool("mount read_only", v);
      } else {
        Fail("unknown mount key \"" + key + "\" (host_path, guest_path, read_only)");
      }
    }
    return m;
  }
  if ((!PyTuple_Check(item.ptr()) && !PyList_Check(item.ptr())) ||
      (nb::len(item) != 2 && nb::len(item) != 3)) {
    Fail("a mount is (host_path, guest_path, read_only), not " + TypeName(item));
  }
  m.host_path = AsText("mount host path", item[0]);
  m.guest_path = AsText("mount guest path", item[1]);
  if (nb::len(item) == 3) m.read_only = AsBool("mount read_only", item[2]);
  return m;
}

PortForward AsPort(nb::handle item) {
  PortForward p;
  auto port = [](const char* what, nb::handle v, int64_t min) {
    return static_cast<uint16_t>(AsInt(what, v, min, 65535));
  };
  if (PyDict_Check(item.ptr())) {
    for (auto [k, v] : nb::borrow<nb::dict>(item)) {
      std::string key = AsText("port key", k);
      if (key == "host_port") {
        if (!IsNone(v)) p.host_port = port("host port", v, 0);
      } else if (key == "guest_port") {
        p.guest_port = port("guest port", v, 0);
      } else if (key == "protocol") {
        if (!IsNone(v) && AsText("port protocol", v) != "tcp") {
          Fail("only TCP ports can be published, not \"" + AsText("port protocol", v) + "\"");
        }
      } else if (key == "host_ip") {
        // The host address to listen on (ValidateBoxOptions checks it); default 127.0.0.1.
        if (!IsNone(v)) p.host_ip = AsText("port host_ip", v);
      } else {
        Fail("unknown port key \"" + key + "\" (host_port, guest_port, host_ip, protocol)");
      }
    }
    return p;
  }
  if ((!PyTuple_Check(item.ptr()) && !PyList_Check(item.ptr())) || nb::len(item) != 2) {
    Fail("a port is {host_port, guest_port, ...} or (host_port, guest_port), not " +
         TypeName(item));
  }
  p.host_port = port("host port", item[0], 0);
  p.guest_port = port("guest port", item[1], 0);
  return p;
}

nb::object OptionalStrings(const std::optional<std::vector<std::string>>& v) {
  if (!v) return nb::none();
  nb::list out;
  for (const auto& s : *v) out.append(nb::cast(Text{s}));
  return out;
}

}  // namespace

namespace {

// One setter per dict key: it converts the value (never None) into its field.
using Setter = void (*)(BoxOptions& o, const std::string& key, nb::handle v);

template <std::string BoxOptions::*F>
void SetText(BoxOptions& o, const std::string& key, nb::handle v) {
  o.*F = AsText(key, v);
}

template <bool BoxOptions::*F>
void SetBool(BoxOptions& o, const std::string& key, nb::handle v) {
  o.*F = AsBool(key, v);
}

template <std::optional<std::vector<std::string>> BoxOptions::*F>
void SetArgv(BoxOptions& o, const std::string& key, nb::handle v) {
  o.*F = AsStrings(key, v);
}

// The bounds are ValidateBoxOptions's constants, checked here so that no value is
// narrowed on its way in.
void SetCpus(BoxOptions& o, const std::string& key, nb::handle v) {
  o.cpus = static_cast<int>(AsInt(key, v, kMinCpus, kMaxCpus));
}
void SetMemory(BoxOptions& o, const std::string& key, nb::handle v) {
  o.memory_mib = static_cast<int>(AsInt(key, v, kMinMemoryMib, kMaxMemoryMib));
}
void SetMaxClients(BoxOptions& o, const std::string& key, nb::handle v) {
  o.max_clients = static_cast<int>(AsInt(key, v, kMinMaxClients, kMaxMaxClients));
}
void SetDisk(BoxOptions& o, const std::string&, nb::handle v) {
  o.disk_size_mib = AsInt("disk_size", v, 0, kMaxDiskSizeMib);
}
void SetEnv(BoxOptions& o, const std::string&, nb::handle v) { o.env = AsEnv(v); }
void SetMounts(BoxOptions& o, const std::string& key, nb::handle v) {
  for (nb::handle m : AsSequence(key, v, "mounts")) o.mounts.push_back(AsMount(m));
}
void SetPorts(BoxOptions& o, const std::string& key, nb::handle v) {
  for (nb::handle p : AsSequence(key, v, "ports")) o.ports.push_back(AsPort(p));
}
void SetAutoPause(BoxOptions& o, const std::string& key, nb::handle v) {
  o.auto_pause = static_cast<uint32_t>(AsInt(key, v, 0, UINT32_MAX));
}
void SetAutoDelete(BoxOptions& o, const std::string& key, nb::handle v) {
  o.auto_delete = AsInt(key, v, INT64_MIN, INT64_MAX);
}
void SetAllowNet(BoxOptions& o, const std::string& key, nb::handle v) {
  o.allow_net = AsStrings(key, v);  // Validated by the core (src/net/egress_rules.h).
}
// Secrets: boxlite.Secret objects (python/boxlite/secret.py), read by attribute; the
// rules are ValidateBoxOptions's. An error never quotes the value.
void SetSecrets(BoxOptions& o, const std::string& key, nb::handle v) {
  for (nb::handle item : AsSequence(key, v, "boxlite.Secret objects")) {
    if (!nb::hasattr(item, "name") || !nb::hasattr(item, "value") || !nb::hasattr(item, "hosts")) {
      Fail("secrets must be boxlite.Secret objects, not " + TypeName(item));
    }
    Secret s;
    s.name = AsText(key + ".name", item.attr("name"));
    s.value = AsText(key + " value", item.attr("value"));
    s.hosts = AsStrings(key + ".hosts", item.attr("hosts"));
    nb::object placeholder = nb::getattr(item, "placeholder", nb::none());
    if (!placeholder.is_none()) s.placeholder = AsText(key + ".placeholder", placeholder);
    o.secrets.push_back(std::move(s));
  }
}

void SetWarm(BoxOptions& o, const std::string& key, nb::handle v) { o.warm = AsBool(key, v); }

// security, capabilities, health_check: one nested dict each (advanced_dict.h).
void SetAdvanced(BoxOptions& o, const std::string& key, nb::handle v) {
  nb::dict section;
  section[key.c_str()] = v;
  AdvancedFromDict(section, &o);
}

const std::map<std::string, Setter, std::less<>>& Setters() {
  static const auto* setters = new std::map<std::string, Setter, std::less<>>{
      {"image", &SetText<&BoxOptions::image>},
      {"rootfs_path", &SetText<&BoxOptions::rootfs_path>},
      {"cpus", &SetCpus},
      {"memory_mib", &SetMemory},
      {"disk_size_mib", &SetDisk},
      {"env", &SetEnv},
      {"mounts", &SetMounts},
      {"ports", &SetPorts},
      {"network", &SetText<&BoxOptions::network>},
      {"allow_host", &SetBool<&BoxOptions::allow_host>},
      {"allow_net", &SetAllowNet},
      {"secrets", &SetSecrets},
      {"working_dir", &SetText<&BoxOptions::working_dir>},
      {"user", &SetText<&BoxOptions::user>},
      {"name", &SetText<&BoxOptions::name>},
      {"auto_remove", &SetBool<&BoxOptions::auto_remove>},
      {"detach", &SetBool<&BoxOptions::detach>},
      {"entrypoint", &SetArgv<&BoxOptions::entrypoint>},
      {"cmd", &SetArgv<&BoxOptions::cmd>},
      {"tty", &SetBool<&BoxOptions::tty>},
      {"auto_pause", &SetAutoPause},
      {"auto_delete", &SetAutoDelete},
      {"auto_resume", &SetBool<&BoxOptions::auto_resume>},
      {"security", &SetAdvanced},
      {"capabilities", &SetAdvanced},
      {"health_check", &SetAdvanced},
      {"warm", &SetWarm},  // Warm start.
      {"max_clients", &SetMaxClients},
  };
  return *setters;
}

}  // namespace

BoxOptions BoxOptionsFromDict(nb::handle dict) {
  if (!PyDict_Check(dict.ptr())) Fail("box options must be a dict, not " + TypeName(dict));
  BoxOptions o;
  for (auto [k, v] : nb::borrow<nb::dict>(dict)) {
    std::string key = AsText("box option name", k);
    auto setter = Setters().find(key);
    if (setter == Setters().end()) Fail("unknown box option \"" + key + "\"");
    if (!IsNone(v)) setter->second(o, key, v);  // None: the default.
  }
  return o;
}

nb::dict BoxOptionsToDict(const BoxOptions& o) {
  nb::dict d;
  d["image"] = nb::cast(Text{o.image});
  d["rootfs_path"] = nb::cast(Text{o.rootfs_path});
  d["cpus"] = o.cpus;
  d["memory_mib"] = o.memory_mib;
  d["disk_size_mib"] = o.disk_size_mib;
  nb::list env;
  for (const auto& [k, v] : o.env) env.append(nb::make_tuple(Text{k}, Text{v}));
  d["env"] = env;
  nb::list mounts;
  for (const auto& m : o.mounts) {
    mounts.append(nb::make_tuple(Text{m.host_path}, Text{m.guest_path}, m.read_only));
  }
  d["mounts"] = mounts;
  nb::list ports;
  for (const auto& p : o.ports) {
    nb::dict port;
    port["host_port"] = p.host_port;
    port["guest_port"] = p.guest_port;
    port["host_ip"] = nb::cast(Text{p.host_ip});
    ports.append(port);
  }
  d["ports"] = ports;
  d["network"] = nb::cast(Text{o.network});
  d["allow_host"] = o.allow_host;
  nb::list allow_net;
  for (const auto& p : o.allow_net) allow_net.append(nb::cast(Text{p}));
  d["allow_net"] = allow_net;
  d["working_dir"] = nb::cast(Text{o.working_dir});
  d["user"] = nb::cast(Text{o.user});
  d["name"] = nb::cast(Text{o.name});
  d["auto_remove"] = o.auto_remove;
  d["detach"] = o.detach;
  d["entrypoint"] = OptionalStrings(o.entrypoint);
  d["cmd"] = OptionalStrings(o.cmd);
  d["tty"] = o.tty;
  d["auto_pause"] = o.auto_pause;
  d["auto_delete"] = o.auto_delete ? nb::cast(*o.auto_delete) : nb::none();
  d["auto_resume"] = o.auto_resume;
  d["warm"] = o.warm ? nb::cast(*o.warm) : nb::none();
  d["max_clients"] = o.max_clients;
  return d;
}

}  // namespace boxlite::python

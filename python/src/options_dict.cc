// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "options_dict.h"

#include <Python.h>

#include <climits>
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
    std::string shown = nb::cast<std::string>(nb::str(h));
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
        if (!IsNone(v)) p.host_port = port("host_port", v, 0);
      } else if (key == "guest_port") {
        p.guest_port = port("guest_port", v, 0);
      } else if (key == "protocol") {
        if (!IsNone(v) && AsText("port protocol", v) != "tcp") {
          Fail("only TCP ports can be published, not \"" + AsText("port protocol", v) + "\"");
        }
      } else if (key == "host_ip") {
        // Published ports listen on 127.0.0.1 in this build.
        if (!IsNone(v)) (void)AsText("port host_ip", v);
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

BoxOptions BoxOptionsFromDict(nb::handle dict) {
  if (!PyDict_Check(dict.ptr())) Fail("box options must be a dict, not " + TypeName(dict));
  BoxOptions o;
  for (auto [k, v] : nb::borrow<nb::dict>(dict)) {
    std::string key = AsText("box option name", k);
    if (IsNone(v)) continue;  // None: the default.
    if (key == "image") {
      o.image = AsText(key, v);
    } else if (key == "rootfs_path") {
      o.rootfs_path = AsText(key, v);
    } else if (key == "cpus") {
      o.cpus = static_cast<int>(AsInt(key, v, kMinCpus, kMaxCpus));
    } else if (key == "memory_mib") {
      o.memory_mib = static_cast<int>(AsInt(key, v, kMinMemoryMib, kMaxMemoryMib));
    } else if (key == "disk_size_mib") {
      o.disk_size_mib = AsInt("disk_size", v, 0, kMaxDiskSizeMib);
    } else if (key == "env") {
      o.env = AsEnv(v);
    } else if (key == "mounts") {
      for (nb::handle m : AsSequence(key, v, "mounts")) o.mounts.push_back(AsMount(m));
    } else if (key == "ports") {
      for (nb::handle p : AsSequence(key, v, "ports")) o.ports.push_back(AsPort(p));
    } else if (key == "network") {
      o.network = AsText(key, v);
    } else if (key == "allow_host") {
      o.allow_host = AsBool(key, v);
    } else if (key == "allow_net") {
      if (!AsStrings(key, v).empty()) {
        throw StatusError(Status::NotSupported("egress allow-lists (NetworkSpec.allow_net) are "
                                               "not supported by this build: leave allow_net empty"),
                          Domain::kBox, "check the box options");
      }
    } else if (key == "secrets") {
      if (!AsSequence(key, v, "Secret objects").empty()) {
        throw StatusError(Status::NotSupported("secrets (host-side secret substitution for egress) "
                                               "are not supported by this build: leave secrets "
                                               "empty"),
                          Domain::kBox, "check the box options");
      }
    } else if (key == "working_dir") {
      o.working_dir = AsText(key, v);
    } else if (key == "user") {
      o.user = AsText(key, v);
    } else if (key == "name") {
      o.name = AsText(key, v);
    } else if (key == "auto_remove") {
      o.auto_remove = AsBool(key, v);
    } else if (key == "detach") {
      o.detach = AsBool(key, v);
    } else if (key == "entrypoint") {
      o.entrypoint = AsStrings(key, v);
    } else if (key == "cmd") {
      o.cmd = AsStrings(key, v);
    } else if (key == "tty") {
      o.tty = AsBool(key, v);
    } else if (key == "auto_pause") {
      o.auto_pause = static_cast<uint32_t>(AsInt(key, v, 0, UINT32_MAX));
    } else if (key == "auto_delete") {
      o.auto_delete = AsInt(key, v, INT64_MIN, INT64_MAX);
    } else if (key == "auto_resume") {
      o.auto_resume = AsBool(key, v);
    } else if (key == "security" || key == "capabilities" || key == "health_check") {
      continue;  // AdvancedFromDict, below.
    } else {
      Fail("unknown box option \"" + key + "\"");
    }
  }
  AdvancedFromDict(nb::borrow<nb::dict>(dict), &o);  // advanced_dict.h
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
    ports.append(port);
  }
  d["ports"] = ports;
  d["network"] = nb::cast(Text{o.network});
  d["allow_host"] = o.allow_host;
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
  return d;
}

}  // namespace boxlite::python

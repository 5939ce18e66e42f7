// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "advanced_dict.h"

#include <Python.h>

#include <string>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include "status_error.h"

namespace nb = nanobind;

namespace boxlite::python {
namespace {

[[noreturn]] void Mistyped(const std::string& field, const char* what) {
  throw StatusError(Status::InvalidArgument(field + " must be " + what), Domain::kBox,
                    "create box");
}

// The entry `key` of a dict-or-None section; null handle when absent or None.
nb::handle Entry(nb::handle section, const char* key) {
  if (!section.is_valid() || section.is_none()) return nb::handle();
  nb::dict d = nb::borrow<nb::dict>(section);
  if (!d.contains(key)) return nb::handle();
  nb::handle v = d[key];
  return v.is_none() ? nb::handle() : v;
}

nb::handle Section(const nb::dict& options, const char* key) {
  if (!options.contains(key)) return nb::handle();
  nb::handle v = options[key];
  if (v.is_none()) return nb::handle();
  if (!nb::isinstance<nb::dict>(v)) Mistyped(key, "a dict or None");
  return v;
}

void ReadBool(nb::handle section, const char* name, const std::string& field, bool* out) {
  nb::handle v = Entry(section, name);
  if (!v.is_valid()) return;
  if (!nb::isinstance<nb::bool_>(v)) Mistyped(field, "True or False");
  *out = nb::cast<bool>(v);
}

bool IsInt(nb::handle v) { return nb::isinstance<nb::int_>(v) && !nb::isinstance<nb::bool_>(v); }

void ReadLimit(nb::handle section, const char* name, std::optional<uint64_t>* out) {
  nb::handle v = Entry(section, name);
  if (!v.is_valid()) return;
  std::string field = std::string("security.") + name;
  if (!IsInt(v)) Mistyped(field, "an integer or None");
  uint64_t value = 0;
  bool negative = PyObject_RichCompareBool(v.ptr(), nb::int_(0).ptr(), Py_LT) != 0;
  if (negative || !nb::try_cast<uint64_t>(v, value)) {
    throw StatusError(Status::InvalidArgument(field + " must be a positive integer or None, not " +
                                              nb::cast<std::string>(nb::repr(v))),
                      Domain::kBox, "create box");
  }
  *out = value;
}

void ReadSeconds(nb::handle section, const char* name, int* out) {
  nb::handle v = Entry(section, name);
  if (!v.is_valid()) return;
  std::string field = std::string("health_check.") + name;
  if (!IsInt(v)) Mistyped(field, "an integer number of seconds");
  long long value = 0;
  if (!nb::try_cast<long long>(v, value) || value < INT32_MIN || value > INT32_MAX) value = -1;
  *out = static_cast<int>(value);
}

void ReadNames(nb::handle section, const char* name, std::vector<std::string>* out) {
  nb::handle v = Entry(section, name);
  if (!v.is_valid()) return;
  std::string field = std::string("capabilities.") + name;
  if (nb::isinstance<nb::str>(v) || nb::isinstance<nb::bytes>(v)) {
    Mistyped(field, "a list of capability names");
  }
  try {
    for (nb::handle item : v) {
      if (!nb::isinstance<nb::str>(item)) Mistyped(field, "a list of capability names (str)");
      out->push_back(nb::cast<std::string>(item));
    }
  } catch (const nb::python_error&) {
    Mistyped(field, "a list of capability names");
  }
}

nb::object Opt(const std::optional<uint64_t>& v) { return v ? nb::cast(*v) : nb::none(); }
nb::object Opt(const std::optional<int64_t>& v) { return v ? nb::cast(*v) : nb::none(); }
nb::object Opt(const std::optional<double>& v) { return v ? nb::cast(*v) : nb::none(); }

}  // namespace

void AdvancedFromDict(const nb::dict& options, BoxOptions* out) {
  nb::handle sec = Section(options, "security");
  SecurityOptions& s = out->security;
  ReadBool(sec, "jailer_enabled", "security.jailer_enabled", &s.jailer_enabled);
  ReadBool(sec, "seccomp_enabled", "security.seccomp_enabled", &s.seccomp_enabled);
  ReadLimit(sec, "max_open_files", &s.max_open_files);
  ReadLimit(sec, "max_file_size", &s.max_file_size);
  ReadLimit(sec, "max_processes", &s.max_processes);
  ReadLimit(sec, "max_memory", &s.max_memory);
  ReadLimit(sec, "max_cpu_time", &s.max_cpu_time);
  ReadBool(sec, "network_enabled", "security.network_enabled", &s.network_enabled);
  ReadBool(sec, "close_fds", "security.close_fds", &s.close_fds);
  nb::handle caps = Section(options, "capabilities");
  ReadNames(caps, "add", &out->capabilities.add);
  ReadNames(caps, "drop", &out->capabilities.drop);
  nb::handle health = Section(options, "health_check");
  HealthCheckOptions& h = out->health_check;
  ReadBool(health, "enabled", "health_check.enabled", &h.enabled);
  ReadSeconds(health, "interval_s", &h.interval_s);
  ReadSeconds(health, "timeout_s", &h.timeout_s);
  ReadSeconds(health, "retries", &h.retries);
  ReadSeconds(health, "start_period_s", &h.start_period_s);
}

nb::dict HealthDict(const HealthStatus& health) {
  nb::dict d;
  d["state"] = health.state;
  d["failures"] = health.failures;
  d["last_check_unix"] = health.last_check_unix;
  return d;
}

nb::dict MetricsDict(const BoxMetrics& m) {
  nb::dict d;
  d["cpu_seconds"] = m.cpu_seconds;
  d["memory_rss_bytes"] = m.memory_rss_bytes;
  d["guest_memory_used_bytes"] = m.guest_memory_used_bytes;
  d["guest_memory_total_bytes"] = m.guest_memory_total_bytes;
  d["execs_run"] = m.execs_run;
  d["create_seconds"] = m.create_seconds;
  d["boot_seconds"] = m.boot_seconds;
  d["commands_executed_total"] = m.commands_executed_total;
  d["exec_errors_total"] = m.exec_errors_total;
  d["bytes_sent_total"] = m.bytes_sent_total;
  d["bytes_received_total"] = m.bytes_received_total;
  d["cpu_percent"] = Opt(m.cpu_percent);
  d["memory_bytes"] = Opt(m.memory_bytes);
  d["network_bytes_sent"] = Opt(m.network_bytes_sent);
  d["network_bytes_received"] = Opt(m.network_bytes_received);
  d["network_tcp_connections"] = Opt(m.network_tcp_connections);
  d["network_tcp_errors"] = Opt(m.network_tcp_errors);
  d["network_refused_flows"] = Opt(m.network_refused_flows);  // Counted by boxlite-net.
  d["total_create_duration_ms"] = Opt(m.total_create_duration_ms);
  d["guest_boot_duration_ms"] = Opt(m.guest_boot_duration_ms);
  d["stage_filesystem_setup_ms"] = Opt(m.stage_filesystem_setup_ms);
  d["stage_image_prepare_ms"] = Opt(m.stage_image_prepare_ms);
  d["stage_guest_rootfs_ms"] = Opt(m.stage_guest_rootfs_ms);
  d["stage_box_config_ms"] = Opt(m.stage_box_config_ms);
  d["stage_box_spawn_ms"] = Opt(m.stage_box_spawn_ms);
  d["stage_container_init_ms"] = Opt(m.stage_container_init_ms);
  return d;
}

nb::dict RuntimeMetricsDict(const RuntimeMetrics& m) {
  nb::dict d;
  d["boxes_created_total"] = m.boxes_created_total;
  d["boxes_failed_total"] = m.boxes_failed_total;
  d["boxes_stopped_total"] = m.boxes_stopped_total;
  d["num_running_boxes"] = m.num_running_boxes;
  d["total_commands_executed"] = m.total_commands_executed;
  d["total_exec_errors"] = m.total_exec_errors;
  return d;
}

}  // namespace boxlite::python

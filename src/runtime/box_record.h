// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The on-disk record of a persistent box: $BOXLITE_HOME/boxes/<id>/box.json, written
// atomically. It holds the box's options, the image it was created from, and - while its
// VM runs - the QEMU pid with the process start time (so a recycled pid is never mistaken
// for the box). Any process using the same home reads it to find, exec into, stop or
// remove the box. Files beside it: disk.qcow2, console.log, qemu.log, health.json,
// snapshots/ (src/runtime/snapshot_store.h), agent-<n>.sock
// (one per host client slot), port-<n>.lock, lock (held while the lifecycle changes).
// Thread-safety: plain values and functions; callers hold the box lock to write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/options.h"
#include "boxlite/result.h"
#include "src/image/manifest.h"
#include "src/protocol/messages.h"

namespace boxlite::runtime {

// Host client slots of a box (one virtio-serial port and socket each): a persistent
// box's max_clients, bounded (a record is a file any user of the home may edit); 1 for
// an ephemeral box.
int AgentPorts(const BoxOptions& options, bool persistent);

struct BoxRecord {
  std::string id;
  std::string name;
  int64_t created_unix = 0;
  BoxOptions options;
  // Resolved at first start.
  std::string image_reference;
  std::string rootfs_path;
  uint64_t rootfs_bytes = 0;
  image::ImageConfig image_config;
  int64_t disk_size_mib = 0;
  // While running.
  int pid = 0;
  uint64_t pid_start_time = 0;
  int net_pid = 0;
  uint64_t net_pid_start_time = 0;
  std::vector<PortForward> bound_ports;
  std::string accel;
  double create_seconds = 0;  // Of the current boot.
  double boot_seconds = 0;
  bool warm_start = false;  // The current VM restored a warm-start template (templates.h).
  uint64_t console_offset = 0;  // console.log's size when the current boot began.
  // The main command's exit status, once a host saw it end (BoxInfo::exit_code).
  std::optional<int> exit_code;
  // The lifecycle mark (box_state.h): "stopping" while a stop is in progress, "paused"
  // while a snapshot or clone has the guest's disk frozen, "failed"
  // when the VM died without a stop or a start failed; `failure` says why.
  std::string phase;
  std::string failure;
  // The disk is a standalone qcow2 with no shared base (an imported box): rootfs_path
  // stays empty and the launch opens disk.qcow2 alone.
  bool standalone_disk = false;
};

// A box's options and its image's config as the record keeps them; the manifest of an
// exported box (src/runtime/box_archive.h) uses the same forms. The readers take any
// JSON (missing or mistyped fields keep their defaults).
protocol::Json BoxOptionsToJson(const BoxOptions& options);
BoxOptions BoxOptionsFromJson(const protocol::Json& json);
protocol::Json ImageConfigToJson(const image::ImageConfig& config);
image::ImageConfig ImageConfigFromJson(const protocol::Json& json);

std::string BoxDir(const std::string& boxes_dir, const std::string& id);
Status SaveRecord(const std::string& dir, const BoxRecord& record);
Result<BoxRecord> LoadRecord(const std::string& dir);
// The last health status of a box's health check (HealthCheckOptions), in health.json
// beside the record: the process that probes writes it, any process reads it. Kept apart
// from box.json so the prober never rewrites the record under a lifecycle change.
Status SaveHealth(const std::string& dir, const HealthStatus& health);
// nullopt when there is none (or it is unreadable).
std::optional<HealthStatus> LoadHealth(const std::string& dir);
// Every record under `boxes_dir` (unreadable ones are skipped).
std::vector<BoxRecord> LoadAllRecords(const std::string& boxes_dir);

// The start time (clock ticks since boot) of a process, or 0 when it does not exist.
uint64_t ProcessStartTime(int pid);
// True when `pid` still is the process recorded with `start_time`.
bool SameProcessAlive(int pid, uint64_t start_time);

}  // namespace boxlite::runtime

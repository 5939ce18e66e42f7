// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Plain option and result structs of the public API. Values only; thread-safe to copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace boxlite {

struct RuntimeOptions {
  std::string home_dir;  // Empty: $BOXLITE_HOME, else ~/.local/share/boxlite.
  std::string data_dir;  // Guest kernel, initramfs and built-in images; empty: search.
  // Registry mirrors tried first for docker.io images (e.g. "http://127.0.0.1:5000"),
  // added to BOXLITE_REGISTRY_MIRRORS.
  std::vector<std::string> registry_mirrors;
  std::vector<std::string> insecure_registries;  // host:port reached over plain HTTP.
};

struct VolumeMount {
  std::string host_path;
  std::string guest_path;
  bool read_only = false;
};

struct PortForward {
  uint16_t host_port = 0;  // 0: pick a free port.
  uint16_t guest_port = 0;
};

using EnvList = std::vector<std::pair<std::string, std::string>>;

// The bounds Runtime::Create checks (the CLI and the Python SDK name them in their errors).
// disk_size_mib must also fit in the free space of the file system holding the home.
constexpr int kMinCpus = 1;
constexpr int kMaxCpus = 16;
constexpr int kMinMemoryMib = 128;
constexpr int kMaxMemoryMib = 65536;
constexpr int64_t kMaxDiskSizeMib = int64_t{16} << 20;  // 16 TiB, ext4's limit.

struct BoxOptions {
  std::string image = "alpine:latest";
  std::string rootfs_path;  // A local OCI layout directory used instead of `image`.
  int cpus = 1;
  int memory_mib = 1024;
  int64_t disk_size_mib = 0;  // 0: the image's size + 1 GiB.
  EnvList env;
  std::vector<VolumeMount> mounts;
  std::vector<PortForward> ports;
  std::string network = "nat";  // "nat" or "none".
  // "nat" only: the guest may reach the host, its loopback at 10.0.2.2 and its own
  // addresses, which a default box cannot (docs/security.md). Private networks stay
  // closed either way.
  bool allow_host = false;
  std::string working_dir;
  std::string user;
  std::string name;
  bool auto_remove = true;  // Remove the box when it stops.
  bool detach = false;      // Keep running after the owning process exits.
};

// The default ExecOptions::max_output_bytes: 64 MiB per stream.
constexpr int64_t kDefaultMaxOutputBytes = int64_t{64} << 20;

struct ExecOptions {
  std::vector<std::string> argv;
  // `docker run` semantics: prefix the image's Entrypoint, and use its Cmd when argv is
  // empty.
  bool use_image_entrypoint = false;
  EnvList env;       // Added to the box's environment (later wins).
  std::string cwd;   // Empty: the box's working_dir, else the image's, else "/".
  std::string user;  // Empty: the box's user, else the image's.
  bool tty = false;
  int rows = 24;
  int cols = 80;
  bool open_stdin = false;  // false: stdin reads as empty.
  // Box::StartExec only: run in the background with output to the box's log (console);
  // the process survives this host process. The returned Exec only reports the pid.
  bool detached = false;
  // Box::Run only: bytes fed to stdin (then closed) while the output is collected.
  std::optional<std::string> stdin_data;
  std::optional<double> timeout_seconds;
  // Box::Run only: the most output kept per stream (stdout, stderr); 0 keeps everything.
  // Beyond it the output is still read (the process never stalls) but dropped, and
  // ExecResult::stdout_truncated / stderr_truncated say so.
  int64_t max_output_bytes = kDefaultMaxOutputBytes;
};

// How Box::CopyIn / Box::CopyOut treat a tree (the names and defaults of BoxLite 0.9's
// CopyOptions).
struct CopyOptions {
  // Copy a directory with everything below it; false: a directory source is an error.
  bool recursive = true;
  // Replace existing files and symlinks at the destination; false: an existing one is an
  // error and is left as it was (directories are still merged into).
  bool overwrite = true;
  // Copy what symlinks point to instead of the links: the host's links on CopyIn, the
  // box's on CopyOut (resolved inside the box; what arrives is still written beneath
  // the destination).
  bool follow_symlinks = false;
  // A directory copied into an existing directory `dst` lands as `dst/<name>` (like
  // `docker cp`); false: its contents land directly in `dst`.
  bool include_parent = true;
};

struct ExitStatus {
  int exit_code = 0;   // 128 + signal when killed by a signal.
  int signal = 0;
  bool timed_out = false;
  std::string error_message;  // Why the command could not start, if it did not.
};

struct ExecResult {
  int exit_code = 0;
  int signal = 0;
  std::string stdout_data;
  std::string stderr_data;
  std::string error_message;
  bool timed_out = false;
  double duration_seconds = 0;
  // More output than ExecOptions::max_output_bytes came on that stream: the data above
  // is its first max_output_bytes.
  bool stdout_truncated = false;
  bool stderr_truncated = false;
};

struct BoxInfo {
  std::string id;
  std::string name;
  std::string image;
  std::string state;  // "created", "running", "stopped".
  int64_t created_unix = 0;
  int cpus = 0;
  int memory_mib = 0;
  int64_t disk_size_mib = 0;
  std::string network;
  std::vector<PortForward> ports;
  std::vector<VolumeMount> mounts;
  bool auto_remove = true;
  bool detach = false;
  int pid = 0;  // The VM process, when running.
  std::string accel;
};

struct BoxMetrics {
  double cpu_seconds = 0;        // CPU time of the VM process (all vCPUs and devices).
  uint64_t memory_rss_bytes = 0;  // Host memory the VM process holds.
  uint64_t guest_memory_used_bytes = 0;
  uint64_t guest_memory_total_bytes = 0;
  uint64_t execs_run = 0;
  double create_seconds = 0;  // Preparing the disk and starting the VM process.
  double boot_seconds = 0;    // VM process start to the agent answering.
};

struct ImageInfo {
  std::string reference;
  std::string id;  // Config digest.
  std::string manifest_digest;
  uint64_t size_bytes = 0;
  int64_t created_unix = 0;
};

}  // namespace boxlite

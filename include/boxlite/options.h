// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Plain option and result structs of the public API. Values only; thread-safe to copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite {

// --- Registries and volumes (include/boxlite/config.h parses and checks them) ---
// A registry images are pulled from, with how to reach it. Checked by
// ValidateImageRegistry: `host` is host[:port] (no scheme, no path); `transport` is
// "https" (also spelled "") or "http"; username and password come together. Auth
// precedence: bearer_token, then username/password (Basic, or the token service's
// credentials), then anonymous (docker config.json credentials still apply then).
struct ImageRegistry {
  std::string host;
  std::string transport = "https";
  bool skip_verify = false;  // Accept any TLS certificate from this host (only).
  bool search = false;       // Used to resolve unqualified references, before docker.io.
  std::string username, password, bearer_token;
};

// A named or anonymous volume: a directory under <home>/volumes/<id> shared into boxes.
struct VolumeInfo {
  std::string id;  // 12 Base62 characters.
  int64_t created_unix = 0;
  uint64_t size_bytes = 0;  // Bytes allocated by its files.
  std::string path;         // The host directory.
};
// --- end registries and volumes ---

// Runtime::Open completes these with ResolveRuntimeOptions (include/boxlite/config.h):
// a field left empty (or 0) takes its BOXLITE_* environment variable, then the default;
// the code past Open reads only the resolved options.
struct RuntimeOptions {
  // Empty: $BOXLITE_HOME, else $XDG_DATA_HOME/boxlite, else ~/.local/share/boxlite.
  std::string home_dir;
  // Guest kernel, initramfs and built-in images; empty: $BOXLITE_DATA_DIR, else the
  // install location, then share/boxlite beside the running program.
  std::string data_dir;
  // Registry mirrors tried first for docker.io images (e.g. "http://127.0.0.1:5000"),
  // after those of BOXLITE_REGISTRY_MIRRORS.
  std::vector<std::string> registry_mirrors;
  // host:port reached over plain HTTP, after those of BOXLITE_INSECURE_REGISTRIES
  // ("http://host:port/" is accepted and kept as host:port).
  std::vector<std::string> insecure_registries;
  // Registries with their transport, TLS and credentials; those with `search` resolve
  // unqualified references in order, before docker.io.
  std::vector<ImageRegistry> registries;
  // --- Settings that BOXLITE_* variables also give (README.md, "Environment") ---
  std::string log_level;  // error, warn, info, debug, trace; empty: $BOXLITE_LOG, else warn.
  std::string accel;      // "kvm" or "tcg"; empty: $BOXLITE_ACCEL, else detected.
  int boot_timeout_s = 0;  // Seconds a guest has to answer; 0: $BOXLITE_BOOT_TIMEOUT, else 120.
  // Ephemeral boxes' console logs are kept here (debugging); empty: $BOXLITE_CONSOLE_DIR.
  std::string console_dir;
  // The boxlite-net and boxlite-console programs; empty: $BOXLITE_NET_HELPER and
  // $BOXLITE_CONSOLE_HELPER, else the installed ones, then the build tree's.
  std::string net_helper;
  std::string console_helper;
  // Resolvers boxlite-net forwards the guest's DNS to ("IP", "IP:PORT", "[IPv6]:PORT");
  // empty: $BOXLITE_DNS_SERVERS, else the host's /etc/resolv.conf.
  std::vector<std::string> dns_servers;
  // Warm start for boxes whose BoxOptions.warm is unset (docs/snapshots.md, "Warm start");
  // nullopt: $BOXLITE_WARM (0 or 1), else on. Runtime::Open resolves it to a value.
  std::optional<bool> warm;
  // --- end BOXLITE_* settings ---
  // --- Remote runtime (docs/remote.md) ---
  // Set, Runtime::Open returns a runtime that sends every call to the `boxlite serve` at
  // this http:// or https:// URL (its path, if any, is kept: "https://host/api"); the
  // local fields above are then unused. Open reads no variable for these: the front ends
  // resolve BOXLITE_REST_URL, BOXLITE_REST_PATH_PREFIX, BOXLITE_API_KEY and profiles.
  std::string url;
  // The routing slot of multi-tenant servers: box routes are {url}/v1/{path_prefix}/boxes...
  std::string path_prefix;
  std::string bearer_token;  // Sent as "Authorization: Bearer <token>"; empty: none.
  // --- end remote runtime ---
};

struct VolumeMount {
  // A host directory, or a volume id (Runtime::CreateVolume); empty: an anonymous volume
  // made under the home for this box and removed with it.
  std::string host_path;
  std::string guest_path;
  bool read_only = false;
};

struct PortForward {
  uint16_t host_port = 0;  // 0: pick a free port.
  uint16_t guest_port = 0;
  // The host address it listens on: 127.0.0.1 unless asked (an IPv4 address of the
  // host, or 0.0.0.0 for all; BoxLite 0.9's default is 0.0.0.0, ours loopback).
  std::string host_ip = "127.0.0.1";
  std::string protocol = "tcp";
};

using EnvList = std::vector<std::pair<std::string, std::string>>;

// One published port from `[hostIP:][hostPort:]guestPort[/tcp]` (the CLI's -p and the
// SDK's string form). A bare guest port gets an automatic host port (host_port 0). Ports
// are bound on 127.0.0.1 unless a host IPv4 address is given (0.0.0.0: every address of
// the host, as BoxLite 0.9's default), and only TCP is forwarded: /udp is an
// InvalidArgument error that says so.
Result<PortForward> ParsePortSpec(std::string_view spec);

// One environment variable from `K=V`, or a bare `K`, which copies the value this process
// has (an empty value when it has none). The one rule for -e on run, create and exec.
Result<std::pair<std::string, std::string>> ParseEnvSpec(std::string_view spec);

// The bounds Runtime::Create checks (the CLI and the Python SDK name them in their errors).
// disk_size_mib must also fit in the free space of the file system holding the home.
constexpr int kMinCpus = 1;
constexpr int kMaxCpus = 16;
constexpr int kMinMemoryMib = 128;
constexpr int kMaxMemoryMib = 65536;
constexpr int64_t kMaxDiskSizeMib = int64_t{16} << 20;  // 16 TiB, ext4's limit.
// Host clients a persistent box serves at once (BoxOptions::max_clients): one
// virtio-serial port each, and virtio-serial has 31 ports, one of them the console's.
constexpr int kMinMaxClients = 1;
constexpr int kDefaultMaxClients = 4;
constexpr int kMaxMaxClients = 30;

// --- Security, capabilities and health checks (BoxOptions.security / .capabilities /
// .health_check; checked by ValidateAdvancedOptions). docs/security.md says what each
// does inside the guest.
struct SecurityOptions {
  // The host jail (seccomp, namespaces, an unprivileged user for QEMU and boxlite-net) is
  // always on; these two are kept for programs written for BoxLite 0.9 and cannot turn it
  // off (false is accepted and changes nothing).
  bool jailer_enabled = true;
  bool seccomp_enabled = true;
  // Resource limits (setrlimit) of every process the box runs: execs and the main
  // command. Unset: the guest's defaults.
  std::optional<uint64_t> max_open_files;  // RLIMIT_NOFILE, 1..kMaxOpenFilesLimit.
  std::optional<uint64_t> max_file_size;   // RLIMIT_FSIZE, bytes.
  std::optional<uint64_t> max_processes;   // RLIMIT_NPROC (not enforced for uid 0).
  std::optional<uint64_t> max_memory;      // RLIMIT_AS, bytes of address space.
  std::optional<uint64_t> max_cpu_time;    // RLIMIT_CPU, seconds.
  bool network_enabled = true;  // false: the box has no network device at all.
  bool close_fds = true;        // Processes start with only stdin, stdout and stderr open.
};

// The highest max_open_files (the guest kernel's fs.nr_open).
constexpr uint64_t kMaxOpenFilesLimit = 1u << 20;

// Linux capabilities of the box's processes, changed from Docker's default set.
// Names are case-insensitive with an optional CAP_ prefix; "ALL" names every one. An
// explicit add beats a named drop; with add ALL the named drops win; with drop ALL the
// adds are the whole set.
struct ContainerCapabilities {
  std::vector<std::string> add;
  std::vector<std::string> drop;
};

// Health probing of a running box: the host pings the guest agent every interval_s and
// counts a reply later than timeout_s as a failure; failures during start_period_s after
// the start do not count, and `retries` failures in a row make the box unhealthy.
struct HealthCheckOptions {
  bool enabled = false;
  int interval_s = 30;
  int timeout_s = 10;
  int retries = 3;
  int start_period_s = 60;
};

// A credential the box may use but never read (docs/networking.md, "Secrets"): the guest
// sees BOXLITE_SECRET_<NAME>=<placeholder>, and the network gateway puts `value` in place
// of the placeholder in HTTPS requests to `hosts` (allow_net's patterns; empty: never
// matches). `value` never enters the VM and never appears in logs or box records shown
// to users.
struct Secret {
  // Any text up to 255 bytes (BoxLite 0.9's rule): the variable is BOXLITE_SECRET_ and the
  // name upper-cased, bytes outside [A-Za-z0-9_] as '_' (empty: BOXLITE_SECRET__UNNAMED).
  std::string name;
  std::string value;        // 1..64 KiB, no NUL.
  // Exact host names or "*.domain" (one label under it), optionally ":443".
  std::vector<std::string> hosts;
  std::string placeholder;  // Empty: DefaultSecretPlaceholder(name).
};

// BoxLite 0.9's placeholder of a secret that names none: "<BOXLITE_SECRET:NAME>".
std::string DefaultSecretPlaceholder(std::string_view name);

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
  // Egress allow-list ("nat" only; docs/networking.md): empty, every public address; else
  // only these: an exact host, "*.domain", an IPv4/IPv6 address or CIDR, each with an
  // optional ":port".
  std::vector<std::string> allow_net;
  // Secrets substituted by the network gateway (see Secret above).
  std::vector<Secret> secrets;
  std::string working_dir;
  std::string user;
  std::string name;
  bool auto_remove = true;  // Remove the box when it stops (see RemovesOnStop).
  bool detach = false;      // Keep running after the owning process exits.

  // The box's main command (the container's init): `entrypoint` replaces the image's
  // ENTRYPOINT, `cmd` its CMD (nullopt: the image's; an empty list: none). When
  // entrypoint + cmd is non-empty, Start() runs it with stdin held open, and the box
  // stops itself when it exits (BoxInfo::exit_code); Box::AttachMain reads its output.
  std::optional<std::vector<std::string>> entrypoint, cmd;
  bool tty = false;  // The main command runs on a terminal (stdout and stderr merged).
  // Seconds of idleness before a REST runtime pauses the box; a local runtime takes 0
  // only.
  uint32_t auto_pause = 0;
  // 0: keep the box when it stops; n > 0: remove it when it stops (a REST runtime waits
  // n seconds). Set, it takes precedence over auto_remove.
  std::optional<int64_t> auto_delete;
  bool auto_resume = true;
  // Security, capabilities and health checks (see the structs above).
  SecurityOptions security;
  ContainerCapabilities capabilities;
  HealthCheckOptions health_check;
  // Warm start (docs/snapshots.md, "Warm start"): the box restores the template of its
  // boot (same image, sizes, kernel, agent and devices) instead of booting, and its first
  // boot leaves one. nullopt: the runtime's setting (RuntimeOptions.warm).
  std::optional<bool> warm;
  // A persistent box (detached or kept): how many host processes may use it at once
  // (each exec, attach or `boxlite exec` CLI holds one until it ends), kMinMaxClients to
  // kMaxMaxClients. Each is one virtio-serial port of the VM (docs/kubernetes.md gives
  // the memory each costs). An ephemeral box has one client, its owner.
  int max_clients = kDefaultMaxClients;
};

// Whether a box with these options is removed when it stops: auto_delete when set
// (> 0), else auto_remove.
inline bool RemovesOnStop(const BoxOptions& o) {
  return o.auto_delete.has_value() ? *o.auto_delete > 0 : o.auto_remove;
}

// Checks every option of a box (bounds, names, paths, ports, network, lifecycle rules):
// OK, or InvalidArgument/NotSupported saying which option is wrong and how to fix it.
// Runtime::Create calls it; the SDKs call it to validate options as they are built.
Status ValidateBoxOptions(const BoxOptions& options);

// The checks of BoxOptions.security, .capabilities and .health_check: InvalidArgument
// naming the field and its allowed values.
Status ValidateAdvancedOptions(const BoxOptions& options);

// The default ExecOptions::max_output_bytes: 64 MiB per stream.
constexpr int64_t kDefaultMaxOutputBytes = int64_t{64} << 20;

// One bind of a pod container's process (ExecOptions::container_mounts): `source`, a path
// of the box, appears at `destination` inside the container's root (both absolute; the
// destination is resolved beneath that root and made when missing), read-only when asked.
struct ContainerMount {
  std::string source;
  std::string destination;
  bool read_only = false;
};

// `SRC:DST[:ro|:rw]` (`boxlite exec --container-mount`): SRC up to the first colon, both
// absolute. InvalidArgument, saying what to write, otherwise.
Result<ContainerMount> ParseContainerMount(std::string_view spec);

// Resource limits (setrlimit, soft = hard) of one exec, each replacing the box's
// (SecurityOptions) when set: a pod container's config.json rlimits.
struct ExecLimits {
  std::optional<uint64_t> max_open_files;  // RLIMIT_NOFILE, 1..kMaxOpenFilesLimit.
  std::optional<uint64_t> max_file_size;   // RLIMIT_FSIZE, bytes.
  std::optional<uint64_t> max_processes;   // RLIMIT_NPROC.
  std::optional<uint64_t> max_memory;      // RLIMIT_AS, bytes.
  std::optional<uint64_t> max_cpu_time;    // RLIMIT_CPU, seconds.
};

// A cgroup of the box shared by the execs that name it (a pod container's processes:
// docs/kubernetes.md, "Limits"), made on first use beneath the box's cgroup; each exec
// naming it sets its limits again (0: none). Bounds: the name is 1 to 128 of A-Z a-z 0-9
// _ . - starting with a letter or digit; memory_max 4 MiB to 64 TiB; cpu_period 1000 to
// 1000000 us, cpu_quota from 1000 us; pids_max 1 to 4194304.
struct ExecCgroupOptions {
  std::string name;  // Empty: the exec gets a cgroup of its own, with no limits.
  uint64_t memory_max_bytes = 0;
  uint64_t cpu_quota_us = 0;   // Of CPU time per period: cpu.max (else cpu.weight).
  uint64_t cpu_period_us = 0;  // 0 with a quota: 100000.
  uint64_t pids_max = 0;
};

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
  // Non-empty: run chrooted in this directory of the box (an absolute path, resolved
  // inside the box's root), with /proc, /sys (read-only) and the box's /dev (its /dev/shm
  // and /dev/pts) mounted in it, the user resolved from its /etc/passwd and /etc/group:
  // a container's root in a pod's box (containerd shim, docs/kubernetes.md).
  std::string root_dir;
  // root_dir only: directories or files of the box bound into the container's root for
  // this process (a pod container's volumes: docs/kubernetes.md, "Volumes").
  std::vector<ContainerMount> container_mounts;
  ExecLimits limits;
  ExecCgroupOptions cgroup;
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

// A box's health as its health check (HealthCheckOptions) sees it from this process.
struct HealthStatus {
  std::string state = "none";  // "none" (no health check), "starting", "healthy", "unhealthy".
  int failures = 0;            // Failed probes in a row.
  int64_t last_check_unix = 0;  // When the last probe ended; 0: none yet.
};

struct BoxInfo {
  std::string id;
  std::string name;
  std::string image;
  // BoxLite 0.9's states: "configured" (created, never started), "running", "stopping"
  // (a stop is in progress), "stopped", "paused", "failed" (its VM ended without a stop
  // and without its main command exiting, or a start failed), "unknown".
  std::string state;
  std::string failure;  // Why the box failed (state "failed"); empty otherwise.
  int64_t created_unix = 0;
  int cpus = 0;
  int memory_mib = 0;
  int64_t disk_size_mib = 0;
  std::string network;
  std::vector<std::string> allow_net;  // The egress allow-list (BoxOptions::allow_net).
  std::vector<PortForward> ports;
  std::vector<VolumeMount> mounts;
  bool auto_remove = true;
  bool detach = false;
  int pid = 0;  // The VM process, when running.
  std::string accel;
  // The main command's exit status once it ended (it stopped the box); reported by the
  // guest, so any int.
  std::optional<int> exit_code;
  uint32_t auto_pause = 0;
  int64_t auto_delete = 0;  // As set; 0 when unset.
  bool auto_resume = true;
  std::optional<std::vector<std::string>> entrypoint, cmd;  // As given (nullopt: the image's).
  HealthStatus health;
  // The VM's last start restored a warm-start template instead of booting
  // (docs/snapshots.md, "Warm start").
  bool warm_start = false;
};

struct BoxMetrics {
  double cpu_seconds = 0;        // CPU time of the VM process (all vCPUs and devices).
  uint64_t memory_rss_bytes = 0;  // Host memory the VM process holds.
  uint64_t guest_memory_used_bytes = 0;
  uint64_t guest_memory_total_bytes = 0;
  uint64_t execs_run = 0;
  double create_seconds = 0;  // Preparing the disk and starting the VM process.
  double boot_seconds = 0;    // VM process start to the agent answering.

  // BoxLite 0.9's names. Counters of this process's Box object since it was created.
  uint64_t commands_executed_total = 0;  // Execs started.
  uint64_t exec_errors_total = 0;        // Execs that failed to start or lost the box.
  uint64_t bytes_sent_total = 0;         // stdin bytes sent to the box's processes.
  uint64_t bytes_received_total = 0;     // stdout/stderr bytes received from them.
  // Percent of one host CPU the VM process used since the previous Metrics() call (the
  // first call: since the VM started); above 100 with several busy vCPUs.
  std::optional<double> cpu_percent;
  std::optional<uint64_t> memory_bytes;  // Host memory the VM process holds (RSS).
  // The guest's eth0 counters and TCP totals (/proc/net/snmp), as the guest reports
  // them: unset for a box without network or when the guest does not answer.
  std::optional<uint64_t> network_bytes_sent;
  std::optional<uint64_t> network_bytes_received;
  std::optional<uint64_t> network_tcp_connections;  // Opened (active + passive) since boot.
  std::optional<uint64_t> network_tcp_errors;  // Failed attempts + resets + bad segments.
  // Flows boxlite-net refused since the VM started (guest packets to a refused address
  // answered with a TCP reset or an ICMP unreachable: src/net/flow_stats.h); counted on
  // the host, so the guest cannot change it. Unset without network.
  std::optional<uint64_t> network_refused_flows;
  // The launch, in milliseconds (unset for a box this process attached to). docs/metrics.md
  // maps each stage onto the launch's steps.
  std::optional<int64_t> total_create_duration_ms;
  std::optional<int64_t> guest_boot_duration_ms;
  std::optional<int64_t> stage_filesystem_setup_ms;
  std::optional<int64_t> stage_image_prepare_ms;
  std::optional<int64_t> stage_guest_rootfs_ms;
  std::optional<int64_t> stage_box_config_ms;
  std::optional<int64_t> stage_box_spawn_ms;
  std::optional<int64_t> stage_container_init_ms;
};

// Counters of one Runtime object (this process) since it was opened.
struct RuntimeMetrics {
  uint64_t boxes_created_total = 0;
  uint64_t boxes_failed_total = 0;   // Starts that failed.
  uint64_t boxes_stopped_total = 0;  // Running boxes stopped (or removed running).
  uint64_t num_running_boxes = 0;    // Boxes of this runtime running now.
  uint64_t total_commands_executed = 0;
  uint64_t total_exec_errors = 0;
};

struct ImageInfo {
  std::string reference;
  std::string id;  // Config digest.
  std::string manifest_digest;
  uint64_t size_bytes = 0;
  int64_t created_unix = 0;
  std::string repository;    // registry/repository: "docker.io/library/alpine".
  std::string tag;           // "latest"; empty for a digest-only reference.
  int64_t cached_at_unix = 0;  // When this reference was pulled or imported here.
  int layer_count = 0;
};

}  // namespace boxlite

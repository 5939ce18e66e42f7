// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// See docs/protocol.md for the full format.
//
// The JSON control messages carried by request, response and event frames, with
// conversions that never throw: a malformed message from the peer is a ProtocolError or
// InvalidArgument Status, never an exception or a crash. Shared by host and agent.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite::protocol {

using Json = nlohmann::json;

constexpr int kProtocolVersion = 1;

// On the guest kernel's command line of an ephemeral box: its disk overlay is an
// unlinked file that dies with the box, so the agent mounts it without the journal
// (nothing could ever be recovered from it), which saves reading and starting the
// journal at boot.
constexpr char kVolatileDiskKernelArg[] = "boxlite.volatile_disk=1";
// The name of the virtio-serial port the agent serves.
constexpr std::string_view kAgentPortName = "boxlite.agent";
// Output credit the host grants each exec's stdout and stderr up front.
constexpr uint32_t kDefaultWindow = 4u << 20;

// Parses a JSON object; ProtocolError when it is not one.
Result<Json> ParseObject(std::string_view text);

// Byte strings (docs/protocol.md, "Byte strings"). Names, paths, symlink targets, argv,
// env and messages are bytes, not text: in memory a Json string value may hold any bytes.
// On the wire one that is valid UTF-8 is a JSON string and any other is the object
// {"b64": "<base64>"}; readers accept both. No byte string may exceed this.
constexpr size_t kMaxByteString = 1u << 20;
// Whether `s` is UTF-8 that the JSON serialiser accepts (the test for the plain form).
bool IsUtf8(std::string_view s);
// The wire form of one byte string.
Json BytesToJson(std::string_view bytes);
// The bytes of a wire-form value: a string, or {"b64": ...} with canonical base64.
// InvalidArgument for anything else or for more than kMaxByteString bytes.
Status BytesFromJson(const Json& value, std::string* out);
// Serialises a message: every string value that is not UTF-8 takes the {"b64"} form;
// an object key that is not UTF-8 (never one of ours) is serialised with U+FFFD
// replacements. Never throws on any content. `indent` as for Json::dump.
std::string Dump(Json j, int indent = -1);

// Typed field access that reports missing or mistyped fields instead of throwing.
// Optional fields keep `*out` unchanged when absent. Strings are byte strings (above).
Status GetString(const Json& j, std::string_view key, std::string* out, bool required = false);
Status GetBool(const Json& j, std::string_view key, bool* out, bool required = false);
Status GetInt(const Json& j, std::string_view key, int64_t* out, bool required = false);
Status GetStrings(const Json& j, std::string_view key, std::vector<std::string>* out,
                  bool required = false);

struct MountSpec {
  std::string tag;         // virtio-9p mount tag.
  std::string guest_path;  // Absolute path inside the box.
  bool read_only = false;
};

struct NetworkConfig {
  std::string mode = "none";  // "none" or "nat".
  std::string address;        // CIDR of eth0, e.g. "10.0.2.15/24".
  std::string gateway;
  std::vector<std::string> dns;
};

// setrlimit values of a box's processes; 0 leaves the guest's default.
struct ProcessLimits {
  int64_t nofile = 0;  // RLIMIT_NOFILE
  int64_t fsize = 0;   // RLIMIT_FSIZE, bytes
  int64_t nproc = 0;   // RLIMIT_NPROC
  int64_t as = 0;      // RLIMIT_AS, bytes
  int64_t cpu = 0;     // RLIMIT_CPU, seconds
};

// A cgroup of the box that an exec is born into instead of one of its own: a pod
// container's, which each of its processes names (docs/kubernetes.md, "Limits"). Made
// under the box's cgroup on first use; every exec naming it sets its limits again, the
// last one's values holding. 0 leaves a limit unset ("max"). Bounds: ValidateExecCgroup.
struct ExecCgroup {
  std::string name;        // kExecCgroupNameRule; empty: no shared cgroup.
  int64_t memory_max = 0;  // Bytes: memory.max (and memory.swap.max 0).
  int64_t cpu_quota = 0;   // Microseconds per cpu_period: cpu.max (else cpu.weight).
  int64_t cpu_period = 0;  // Microseconds; 0 with a quota: 100000.
  int64_t pids_max = 0;    // pids.max.
};

inline constexpr char kExecCgroupNameRule[] =
    "1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit";
inline constexpr int64_t kMinCgroupMemory = int64_t{4} << 20;  // Below, nothing starts.
inline constexpr int64_t kMaxCgroupMemory = int64_t{1} << 46;  // 64 TiB.
inline constexpr int64_t kMinCpuPeriod = 1000;                 // The kernel's bounds.
inline constexpr int64_t kMaxCpuPeriod = 1000000;
inline constexpr int64_t kMinCpuQuota = 1000;
inline constexpr int64_t kMaxCpuQuota = int64_t{1} << 40;
inline constexpr int64_t kMaxCgroupPids = int64_t{1} << 22;  // PID_MAX_LIMIT.

// OK when every field of `c` is within its bounds and the name follows
// kExecCgroupNameRule; else InvalidArgument naming the field and its bounds.
Status ValidateExecCgroup(const ExecCgroup& c);
// OK when every limit is 0 or positive, nofile at most `max_nofile`.
Status ValidateProcessLimits(const ProcessLimits& l, int64_t max_nofile);

// What the agent sets up once, before the first exec.
struct BoxConfig {
  std::string hostname = "box";
  bool grow_rootfs = true;  // Grow / to fill its disk (EXT4_IOC_RESIZE_FS).
  std::vector<MountSpec> mounts;
  NetworkConfig network;
  int64_t pids_max = 0;      // Limit on user processes; 0 means none.
  int64_t clock_unix_ns = 0;  // Host wall clock when the box was started; 0 leaves it.
  // Every process the agent starts (execs and the main command): its capability set
  // (bit n = capability n; src/protocol/capabilities.h), -1 for every capability;
  // resource limits (soft = hard), 0 for the guest's default; and whether descriptors
  // beyond 0, 1 and 2 are closed at exec.
  int64_t capabilities = -1;
  ProcessLimits limits;
  bool close_fds = true;
  // Secrets (docs/networking.md): the box CA's certificate (PEM), added to the guest's
  // trust store on its own disk; empty: none.
  std::string trusted_ca_pem;
};

struct HelloRequest {
  int64_t version = kProtocolVersion;
  BoxConfig config;
  // A client joining a running box (not its launcher): never configures the box. Before
  // the launcher's hello the agent refuses it (FailedPrecondition) and the client asks
  // again, so a client that comes early cannot configure the box with an empty config.
  bool attach = false;
};

struct HelloResponse {
  int64_t version = kProtocolVersion;
  std::string agent_version;
  std::string kernel;
  int64_t uptime_ms = 0;  // Guest uptime when the hello was answered.
  int64_t config_ms = 0;  // Time the agent took to apply the box config (first hello).
};

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"; the whole environment of the process.
  std::string cwd;               // Empty: the user's home or "/".
  std::string user;              // "name", "uid", "uid:gid" or "name:group"; empty = root.
  bool tty = false;
  int64_t rows = 24;
  int64_t cols = 80;
  bool stdin_open = false;  // false: stdin is /dev/null.
  int64_t window = kDefaultWindow;  // Initial credit for each output fd.
  // Runs in the background: output goes to the guest console (the box's log), and the
  // process outlives the host connection. No data frames, no exit event.
  bool detached = false;
  // The box's main command (BoxOptions::entrypoint + cmd). It survives its host
  // connection (its output is then drained and dropped), and when it ends the agent
  // writes "main command exited with code N" to the console and powers the VM off.
  bool main = false;
  // main only: when it cannot start at all (not found, not executable), the box stays up
  // without it (the command came from the image, not from the user).
  bool main_optional = false;
  // Non-empty: a directory of the box (resolved inside the box's root) the process runs
  // chrooted in, with /proc, /sys (read-only) and the box's /dev mounted there: the root
  // of a pod's container (agent/container_root.h).
  std::string root_dir;
  // root_dir only: binds of box paths into the container's root (at most
  // kMaxContainerMounts; agent/container_root.h).
  struct Mount {
    std::string source;
    std::string destination;
    bool read_only = false;
  };
  std::vector<Mount> container_mounts;
  // This process's resource limits (soft = hard), each replacing the box's
  // (BoxConfig::limits) when not 0: a pod container's config.json rlimits.
  ProcessLimits limits;
  // Non-empty name: the cgroup the process (and its children) run in, shared with the
  // other execs naming it (a pod container's), with its limits.
  ExecCgroup cgroup;
};

inline constexpr size_t kMaxContainerMounts = 64;
inline constexpr int64_t kMaxExecNofile = int64_t{1} << 20;  // The guest's fs.nr_open.

struct ExecResponse {
  int64_t pid = 0;
  int64_t stdin_window = 0;  // Credit for stdin data frames.
};

// Sent as an event on an exec's stream once it has exited and its output was flushed.
struct ExitEvent {
  int64_t exit_code = 0;  // 128 + signal when killed by a signal.
  int64_t signal = 0;     // The signal that killed it, or 0.
  std::string error;      // Why the command could not start, if it did not.
};

struct SignalRequest {
  int64_t target = 0;  // Stream id of the exec.
  int64_t signal = 0;
};

struct ResizeRequest {
  int64_t target = 0;
  int64_t rows = 0;
  int64_t cols = 0;
};

// A file system entry, as stat/list_dir report it and put_file creates it.
struct FileInfo {
  std::string path;    // Absolute inside the box (list_dir: relative to the listed dir).
  std::string kind;    // "file", "dir", "symlink", "other".
  int64_t mode = 0;    // Permission bits incl. setuid/setgid/sticky (no type bits).
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t size = 0;
  int64_t mtime = 0;   // Seconds since the epoch.
  std::string target;  // Symlink target.
};

// "stat": one entry, symlinks followed (inside the box's root) only when `follow`.
// The response is a FileInfo.
struct StatRequest {
  std::string path;
  bool follow = false;
};

// "list_dir": one page of a directory's entries, sorted by name. A page fits in one frame.
struct ListDirRequest {
  std::string path;
  int64_t offset = 0;  // Index of the first entry of the page.
};

// The most entries one list_dir page holds.
constexpr size_t kListDirMaxEntries = 4000;

struct ListDirResponse {
  std::vector<FileInfo> entries;  // path: the entry's name in the listed directory.
  int64_t next_offset = -1;       // Where the next page starts; -1 when this is the last.
};

// "get_file": the response is the file's FileInfo, then its content follows as stdout
// data frames under `window` credit, a close and an exit event (docs/protocol.md).
struct GetFileRequest {
  std::string path;
  int64_t window = kDefaultWindow;
};

// "freeze": the box disk's file system is flushed and frozen (FIFREEZE on the root the
// execs see), so a copy of the disk taken now is consistent; "thaw" (no fields) ends it.
// The guest thaws by itself after `thaw_after_ms`, so a host that dies mid-snapshot never
// leaves the box frozen. The response says whether it is frozen (false: the file system
// cannot be frozen; the copy is then only crash-consistent).
constexpr int64_t kDefaultThawAfterMs = 10000;
constexpr int64_t kMaxThawAfterMs = 60000;
struct FreezeRequest {
  int64_t thaw_after_ms = kDefaultThawAfterMs;  // 1..kMaxThawAfterMs.
};
struct FreezeResponse {
  bool frozen = false;
};

// "metrics" (no fields): the guest's own counters. Absent ones are what the guest could
// not read (no network: no net_* or tcp_*). Every count is at most kMaxGuestCount.
constexpr int64_t kMaxGuestCount = int64_t{1} << 56;
// Op "refresh" (docs/protocol.md): after a memory restore or a fork the guest takes the
// host's clock, fresh entropy and its new box's identity.
struct RefreshRequest {
  std::string entropy;        // kRefreshEntropyBytes host random bytes, credited to the pool.
  int64_t clock_unix_ns = 0;  // Host wall clock; the guest steps to it.
  std::string hostname;
  std::string box_id;
};
constexpr size_t kRefreshEntropyBytes = 64;

struct GuestMetrics {
  int64_t mem_total = 0;      // Bytes (MemTotal).
  int64_t mem_available = 0;  // Bytes (MemAvailable), at most mem_total.
  std::optional<int64_t> cpu_busy_ticks;  // /proc/stat's cpu line, in ticks_per_second.
  std::optional<int64_t> cpu_idle_ticks;
  std::optional<int64_t> ticks_per_second;
  int64_t processes = 0;
  std::optional<int64_t> net_rx_bytes;  // eth0's counters.
  std::optional<int64_t> net_tx_bytes;
  std::optional<int64_t> tcp_opens;   // Active + passive opens since boot.
  std::optional<int64_t> tcp_errors;  // Failed attempts + resets + bad segments.
  int64_t execs_running = 0;          // Processes the agent started that still run.
  int64_t uptime_ms = 0;
};

// Requests are {"op": "<name>", ...fields}; responses are {"ok": true, ...} or
// {"ok": false, "error": {"code": "<status code name>", "message": "..."}}.
Json ToJson(const BoxConfig& m);
Json ToJson(const HelloRequest& m);
Json ToJson(const HelloResponse& m);
Json ToJson(const ExecRequest& m);
Json ToJson(const ExecResponse& m);
Json ToJson(const ExitEvent& m);
Json ToJson(const SignalRequest& m);
Json ToJson(const ResizeRequest& m);
Json ToJson(const FileInfo& m);
Json ToJson(const StatRequest& m);
Json ToJson(const ListDirRequest& m);
Json ToJson(const ListDirResponse& m);
Json ToJson(const GetFileRequest& m);
Json ToJson(const GuestMetrics& m);
Json ToJson(const RefreshRequest& m);
Json ToJson(const FreezeRequest& m);
Json ToJson(const FreezeResponse& m);

Status FromJson(const Json& j, BoxConfig* m);
Status FromJson(const Json& j, HelloRequest* m);
Status FromJson(const Json& j, HelloResponse* m);
Status FromJson(const Json& j, ExecRequest* m);
Status FromJson(const Json& j, ExecResponse* m);
Status FromJson(const Json& j, ExitEvent* m);
Status FromJson(const Json& j, SignalRequest* m);
Status FromJson(const Json& j, ResizeRequest* m);
Status FromJson(const Json& j, FileInfo* m);
// Replies come from the guest: a page of more than kListDirMaxEntries entries or a
// next_offset that is neither -1 nor positive is InvalidArgument (whether paging moves
// forward is the reader's to check: src/runtime/tree_copy.h).
Status FromJson(const Json& j, StatRequest* m);
Status FromJson(const Json& j, ListDirRequest* m);
Status FromJson(const Json& j, ListDirResponse* m);
Status FromJson(const Json& j, GetFileRequest* m);
// A negative count, one above kMaxGuestCount, or mem_available above mem_total is
// InvalidArgument.
Status FromJson(const Json& j, GuestMetrics* m);
Status FromJson(const Json& j, RefreshRequest* m);
// thaw_after_ms outside 1..kMaxThawAfterMs is InvalidArgument.
Status FromJson(const Json& j, FreezeRequest* m);
Status FromJson(const Json& j, FreezeResponse* m);

// Builds a request payload: the message's fields plus "op". Like every Encode* below, it
// serialises with Dump(): byte strings in any field are carried exactly.
std::string EncodeRequest(std::string_view op, Json body);
std::string EncodeOkResponse(Json body = Json::object());
std::string EncodeErrorResponse(const Status& status);
// Splits a response: its body when ok, else the Status it carries.
Result<Json> DecodeResponse(std::string_view payload);

}  // namespace boxlite::protocol

// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The `boxlite._boxlite` extension: a thin, blocking binding of include/boxlite (Runtime,
// Box, Exec). The Python package (python/boxlite) builds the public SDK on it: the async
// API runs these calls on worker threads, the sync API calls them directly.
//
// Contract of every binding function:
//   - it releases the GIL around every call into the core, so a blocked call never holds
//     up other Python threads or an event loop;
//   - a failed Status becomes a StatusError, which the translator turns into the SDK's
//     exception hierarchy (status_error.h); nothing else is thrown;
//   - Python objects are only built with the GIL held, after the core call returned.
// The handle classes own a shared_ptr to the core object and drop it without the GIL:
// destroying a running box or exec stops it, which talks to the guest.
//
// Thread-safety: the core objects are thread-safe (see include/boxlite), so the handles
// may be used from any thread at once.
#include <Python.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "advanced_dict.h"
#include "boxlite/boxlite.h"
#include "boxlite/config.h"
#include "collect.h"
#include "options_dict.h"
#include "status_error.h"
#include "text.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace boxlite::python {
namespace {

using Release = nb::gil_scoped_release;

// Drops a core object without the GIL (its destructor may stop a VM or kill a process).
template <typename T>
void ResetWithoutGil(std::shared_ptr<T>& ptr) {
  if (!ptr) return;
  if (PyGILState_Check()) {
    Release release;
    ptr.reset();
  } else {
    ptr.reset();
  }
}

// Runs `f` (a call into the core) with the GIL released and returns its result.
template <typename F>
auto WithoutGil(F&& f) {
  Release release;
  return f();
}

std::optional<std::chrono::milliseconds> Millis(std::optional<double> seconds) {
  if (!seconds) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(*seconds * 1000)));
}

nb::bytes Bytes(const std::string& s) { return nb::bytes(s.data(), s.size()); }

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// Every string from the core reaches Python through Text (text.h): bytes that are not
// UTF-8 (a box name given on the command line, a message naming a guest file) never raise.
nb::object Str(const std::string& s) { return nb::cast(Text{s}); }

std::vector<std::string> ToCore(std::vector<Text> v) {
  std::vector<std::string> out;
  out.reserve(v.size());
  for (auto& t : v) out.push_back(std::move(t.bytes));
  return out;
}

EnvList ToCore(std::vector<std::pair<Text, Text>> env) {
  EnvList out;
  out.reserve(env.size());
  for (auto& [k, v] : env) out.emplace_back(std::move(k.bytes), std::move(v.bytes));
  return out;
}

nb::dict ImageInfoDict(const ImageInfo& info) {
  nb::dict d;
  d["reference"] = Str(info.reference);
  d["id"] = Str(info.id);
  d["manifest_digest"] = Str(info.manifest_digest);
  d["size_bytes"] = info.size_bytes;
  d["created_unix"] = info.created_unix;
  d["repository"] = Str(info.repository);
  d["tag"] = Str(info.tag);
  d["cached_at_unix"] = info.cached_at_unix;
  d["layer_count"] = info.layer_count;
  return d;
}

// --- Registries and volumes ---
// An ImageRegistry as Python passes it: (host, transport, skip_verify, search, username,
// password, bearer_token).
using RegistryTuple = std::tuple<std::string, std::string, bool, bool, std::string, std::string,
                                 std::string>;

ImageRegistry RegistryFromTuple(const RegistryTuple& t) {
  ImageRegistry r;
  std::tie(r.host, r.transport, r.skip_verify, r.search, r.username, r.password,
           r.bearer_token) = t;
  return r;
}

RegistryTuple RegistryToTuple(const ImageRegistry& r) {
  return {r.host, r.transport, r.skip_verify, r.search, r.username, r.password, r.bearer_token};
}

// Checks a registry (ValidateImageRegistry) and returns it normalised.
RegistryTuple CheckImageRegistry(const RegistryTuple& t) {
  return RegistryToTuple(ValueOrThrow(ValidateImageRegistry(RegistryFromTuple(t)),
                                      Domain::kRuntime, "image registry"));
}

// The JSON configuration file of `boxlite --config`: {"home_dir", "image_registries"}.
nb::dict LoadConfig(std::string path) {
  Result<RuntimeOptions> parsed = LoadRuntimeConfig(path);
  RuntimeOptions options = ValueOrThrow(std::move(parsed), Domain::kRuntime, "load config");
  nb::dict d;
  d["home_dir"] = Str(options.home_dir);
  nb::list regs;
  for (const auto& r : options.registries) regs.append(nb::cast(RegistryToTuple(r)));
  d["image_registries"] = regs;
  return d;
}

nb::dict VolumeInfoDict(const VolumeInfo& v) {
  nb::dict d;
  d["id"] = Str(v.id);
  d["created_unix"] = v.created_unix;
  d["size_bytes"] = v.size_bytes;
  d["path"] = Str(v.path);
  return d;
}
// --- end registries and volumes ---

nb::list ImageInfoList(const std::vector<ImageInfo>& images) {
  nb::list out;
  for (const auto& info : images) out.append(ImageInfoDict(info));
  return out;
}

nb::dict BoxInfoDict(const BoxInfo& info) {
  nb::dict d;
  d["id"] = Str(info.id);
  d["name"] = Str(info.name);
  d["image"] = Str(info.image);
  d["state"] = Str(info.state);
  d["failure"] = info.failure.empty() ? nb::object(nb::none()) : Str(info.failure);
  d["created_unix"] = info.created_unix;
  d["cpus"] = info.cpus;
  d["memory_mib"] = info.memory_mib;
  d["disk_size_mib"] = info.disk_size_mib;
  d["network"] = Str(info.network);
  nb::list allow_net;  // The egress allow-list (docs/networking.md).
  for (const auto& p : info.allow_net) allow_net.append(Str(p));
  d["allow_net"] = allow_net;
  nb::list ports;
  for (const auto& p : info.ports) {  // Bound ports (host_port picked) while running.
    nb::dict port;
    port["host_port"] = p.host_port;
    port["guest_port"] = p.guest_port;
    port["host_ip"] = Str(p.host_ip);
    port["protocol"] = Str(p.protocol);
    ports.append(port);
  }
  d["ports"] = ports;
  nb::list mounts;
  for (const auto& m : info.mounts) {
    mounts.append(nb::make_tuple(Str(m.host_path), Str(m.guest_path), m.read_only));
  }
  d["mounts"] = mounts;
  d["auto_remove"] = info.auto_remove;
  d["detach"] = info.detach;
  d["pid"] = info.pid;
  d["accel"] = Str(info.accel);
  d["exit_code"] = info.exit_code ? nb::cast(*info.exit_code) : nb::none();
  d["auto_pause"] = info.auto_pause;
  d["auto_delete"] = info.auto_delete;
  d["auto_resume"] = info.auto_resume;
  auto argv = [](const std::optional<std::vector<std::string>>& v) -> nb::object {
    if (!v) return nb::none();
    nb::list out;
    for (const auto& s : *v) out.append(Str(s));
    return out;
  };
  d["entrypoint"] = argv(info.entrypoint);
  d["cmd"] = argv(info.cmd);
  d["health"] = HealthDict(info.health);  // advanced_dict.h
  d["warm_start"] = info.warm_start;
  return d;
}


nb::tuple ExitTuple(const ExitStatus& st) {
  return nb::make_tuple(st.exit_code, st.signal, st.timed_out, Str(st.error_message));
}

// One process in a box.
class PyExec {
 public:
  explicit PyExec(std::shared_ptr<Exec> exec, std::string what)
      : exec_(std::move(exec)), what_(std::move(what)) {}
  PyExec(PyExec&&) = default;
  ~PyExec() { ResetWithoutGil(exec_); }

  int pid() const { return exec_->pid(); }
  // The server's id of a remote exec (Box.attach takes it); "" for a local one.
  std::string execution_id() const { return exec_->execution_id(); }

  void WriteStdin(nb::bytes data) {
    std::string bytes(data.c_str(), data.size());
    Status s = WithoutGil([&] { return exec_->WriteStdin(bytes); });
    ThrowIfError(s, Domain::kExec, "write to the stdin of " + what_);
  }

  void CloseStdin() {
    Status s = WithoutGil([&] { return exec_->CloseStdin(); });
    ThrowIfError(s, Domain::kExec, "close the stdin of " + what_);
  }

  // The next chunk of `fd`; b"" at the end of the stream; None when `timeout` passed
  // without output.
  nb::object Read(int fd, std::optional<double> timeout) {
    auto ms = Millis(timeout);
    Result<std::string> chunk = WithoutGil([&] { return exec_->Read(fd, ms); });
    if (!chunk.ok() && chunk.error().IsDeadlineExceeded() && ms) return nb::none();
    std::string data = ValueOrThrow(std::move(chunk), Domain::kExec,
                                    std::string("read the ") + (fd == 2 ? "stderr" : "stdout") +
                                        " of " + what_);
    return Bytes(data);
  }

  void Signal(int signo) {
    Status s = WithoutGil([&] { return exec_->Signal(signo); });
    ThrowIfError(s, Domain::kExec, "send signal " + std::to_string(signo) + " to " + what_);
  }

  void Resize(int rows, int cols) {
    Status s = WithoutGil([&] { return exec_->Resize(rows, cols); });
    ThrowIfError(s, Domain::kExec, "resize the terminal of " + what_);
  }

  void Kill() {
    Status s = WithoutGil([&] { return exec_->Kill(); });
    ThrowIfError(s, Domain::kExec, "kill " + what_);
  }

  void DiscardOutput(int fd) {
    Status s = WithoutGil([&] { return exec_->DiscardOutput(fd); });
    ThrowIfError(s, Domain::kExec, "discard the output of " + what_);
  }

  nb::tuple Wait(std::optional<double> timeout) {
    auto ms = Millis(timeout);
    Result<ExitStatus> st = WithoutGil([&] { return exec_->Wait(ms); });
    return ExitTuple(ValueOrThrow(std::move(st), Domain::kExec, "wait for " + what_));
  }

  // (exit_code, signal, timed_out, error_message, stdout, stderr, duration_seconds,
  // stdout_truncated, stderr_truncated). `max_output` per stream, None: no limit.
  nb::tuple Collect(std::optional<nb::bytes> stdin_data, std::optional<double> timeout,
                    std::optional<int64_t> max_output) {
    std::optional<std::string> input;
    if (stdin_data) input.emplace(stdin_data->c_str(), stdin_data->size());
    int64_t cap = max_output.value_or(0);
    Result<Collected> r =
        WithoutGil([&] { return python::Collect(*exec_, input, timeout, cap); });
    Collected c = ValueOrThrow(std::move(r), Domain::kExec, "run " + what_);
    return nb::make_tuple(c.exit.exit_code, c.exit.signal, c.exit.timed_out,
                          Str(c.exit.error_message), Bytes(c.stdout_data), Bytes(c.stderr_data),
                          c.duration_seconds, c.stdout_truncated, c.stderr_truncated);
  }

 private:
  std::shared_ptr<Exec> exec_;
  std::string what_;  // "the command \"sleep\"" for messages.
};

// --- Snapshots and clones (python/boxlite/snapshots.py) ---
nb::dict SnapshotInfoDict(const SnapshotInfo& info) {
  nb::dict d;
  d["id"] = Str(info.id);
  d["box_id"] = Str(info.box_id);
  d["name"] = Str(info.name);
  d["created_unix"] = info.created_unix;
  d["container_disk_bytes"] = info.container_disk_bytes;
  d["size_bytes"] = info.size_bytes;
  d["memory"] = info.memory;
  d["memory_bytes"] = info.memory_bytes;
  return d;
}
// --- end snapshots and clones ---

// One box.
// --- Tunnels (python/boxlite/tunnels.py): one TCP connection into a box. ---
class PyConnection {
 public:
  PyConnection(std::shared_ptr<Connection> conn, std::string what)
      : conn_(std::move(conn)), what_(std::move(what)) {}
  PyConnection(PyConnection&&) = default;
  ~PyConnection() { ResetWithoutGil(conn_); }

  // Up to `max_bytes`; b"" once the box's side has closed; None when `timeout` passed.
  nb::object Read(int64_t max_bytes, std::optional<double> timeout) {
    auto ms = Millis(timeout);
    size_t max = max_bytes > 0 ? static_cast<size_t>(max_bytes) : 0;
    Result<std::string> chunk = WithoutGil([&] { return conn_->Read(max, ms); });
    if (!chunk.ok() && chunk.error().IsDeadlineExceeded() && ms) return nb::none();
    return Bytes(ValueOrThrow(std::move(chunk), Domain::kBox, "read from " + what_));
  }

  void Write(nb::bytes data) {
    std::string bytes(data.c_str(), data.size());
    Status s = WithoutGil([&] { return conn_->Write(bytes); });
    ThrowIfError(s, Domain::kBox, "write to " + what_);
  }

  void ShutdownWrite() {
    Status s = WithoutGil([&] { return conn_->ShutdownWrite(); });
    ThrowIfError(s, Domain::kBox, "shut down the writes of " + what_);
  }

  void Close() {
    Status s = WithoutGil([&] { return conn_->Close(); });
    ThrowIfError(s, Domain::kBox, "close " + what_);
  }

 private:
  std::shared_ptr<Connection> conn_;
  std::string what_;  // "the tunnel to port 80 of box NAME", for messages.
};
// --- end tunnels ---

class PyBox {
 public:
  explicit PyBox(std::shared_ptr<Box> box) : box_(std::move(box)) {}
  PyBox(PyBox&&) = default;
  ~PyBox() { ResetWithoutGil(box_); }

  Text id() const { return Text{box_->id()}; }
  Text name() const { return Text{box_->name()}; }

  void Start() {
    Status s = WithoutGil([&] { return box_->Start(); });
    ThrowIfError(s, Domain::kStart, "start box " + box_->name());
  }

  void Stop() {
    Status s = WithoutGil([&] { return box_->Stop(); });
    ThrowIfError(s, Domain::kBox, "stop box " + box_->name());
  }

  // --- Forks (box.fork): running copies sharing this box's memory copy-on-write. ---
  std::vector<PyBox> Fork(int count, std::vector<Text> names, Text snapshot) {
    ForkOptions options;
    options.count = count;
    options.names = ToCore(std::move(names));
    options.snapshot = std::move(snapshot.bytes);
    auto forks = WithoutGil([&] { return box_->Fork(options); });
    std::vector<PyBox> out;
    for (auto& box : ValueOrThrow(std::move(forks), Domain::kBox, "fork box " + box_->name())) {
      out.emplace_back(std::move(box));
    }
    return out;
  }
  // --- end forks ---

  // BoxLite 0.9's rule for a call that starts the box implicitly (a command, an attach, a
  // copy): raises BoxStateError when its state does not allow `op` (a failed box).
  void CheckCall(const std::string& op) {
    Result<BoxInfo> info = WithoutGil([&] { return box_->Info(); });
    BoxInfo i = ValueOrThrow(std::move(info), Domain::kBox, "inspect box " + box_->name());
    BoxStatus state = ParseStatus(i.state).value_or(BoxStatus::kUnknown);
    ThrowIfError(CheckBoxCall(op, i.name, state, i.failure), Domain::kBox,
                 op + " in box " + i.name);
  }

  PyExec StartExec(std::vector<Text> argv, std::vector<std::pair<Text, Text>> env, Text cwd,
                   Text user, bool tty, int rows, int cols, bool open_stdin) {
    ExecOptions options;
    options.argv = ToCore(std::move(argv));
    options.env = ToCore(std::move(env));
    options.cwd = std::move(cwd.bytes);
    options.user = std::move(user.bytes);
    options.tty = tty;
    options.rows = rows;
    options.cols = cols;
    options.open_stdin = open_stdin;
    std::string what =
        "the command " + Quoted(options.argv.empty() ? std::string() : options.argv[0]) +
        " in box " + box_->name();
    Result<std::shared_ptr<Exec>> exec = WithoutGil([&] { return box_->StartExec(options); });
    return PyExec(ValueOrThrow(std::move(exec), Domain::kExec, "start " + what), what);
  }

  // The main command's session (Box::AttachMain), as start_exec returns an exec.
  PyExec AttachMain() {
    Result<std::shared_ptr<Exec>> exec = WithoutGil([&] { return box_->AttachMain(); });
    std::string what = "the main command of box " + box_->name();
    return PyExec(ValueOrThrow(std::move(exec), Domain::kExec, "attach to " + what), what);
  }

  // An exec started earlier, by its server id (Box::AttachExec; remote runtimes).
  PyExec AttachExec(std::string execution_id) {
    Result<std::shared_ptr<Exec>> exec = WithoutGil([&] { return box_->AttachExec(execution_id); });
    std::string what = "exec " + execution_id + " of box " + box_->name();
    return PyExec(ValueOrThrow(std::move(exec), Domain::kExec, "attach to " + what), what);
  }

  nb::dict Info() {
    Result<BoxInfo> info = WithoutGil([&] { return box_->Info(); });
    return BoxInfoDict(ValueOrThrow(std::move(info), Domain::kBox, "inspect box " + box_->name()));
  }

  PyConnection Tunnel(int port) {
    std::string what = "the tunnel to port " + std::to_string(port) + " of box " + box_->name();
    auto conn = WithoutGil([&] { return box_->Tunnel(port); });
    return PyConnection(ValueOrThrow(std::move(conn), Domain::kBox, "open " + what), what);
  }

  nb::dict Metrics() {
    Result<BoxMetrics> m = WithoutGil([&] { return box_->Metrics(); });
    return MetricsDict(
        ValueOrThrow(std::move(m), Domain::kBox, "read the metrics of box " + box_->name()));
  }

  void CopyIn(Text host, Text guest, bool recursive, bool overwrite, bool follow_symlinks,
              bool include_parent) {
    const std::string& host_path = host.bytes;
    const std::string& guest_path = guest.bytes;
    CopyOptions options{recursive, overwrite, follow_symlinks, include_parent};
    Status s = WithoutGil([&] { return box_->CopyIn(host_path, guest_path, options); });
    ThrowIfError(s, Domain::kCopy,
                 "copy " + host_path + " into box " + box_->name() + " at " + guest_path);
  }

  void CopyOut(Text guest, Text host, bool recursive, bool overwrite, bool follow_symlinks,
               bool include_parent) {
    const std::string& guest_path = guest.bytes;
    const std::string& host_path = host.bytes;
    CopyOptions options{recursive, overwrite, follow_symlinks, include_parent};
    Status s = WithoutGil([&] { return box_->CopyOut(guest_path, host_path, options); });
    ThrowIfError(s, Domain::kCopy,
                 "copy " + guest_path + " out of box " + box_->name() + " to " + host_path);
  }

  // Export (src/runtime/box_export.cc): the archive's path.
  std::string Export(Text dest) {
    const std::string& path = dest.bytes;
    Result<std::string> written = WithoutGil([&] { return box_->Export(path); });
    return ValueOrThrow(std::move(written), Domain::kBox,
                        "export box " + box_->name() + " to " + path);
  }

  nb::bytes ConsoleLog() {
    Result<std::string> log = WithoutGil([&] { return box_->ConsoleLog(); });
    return Bytes(
        ValueOrThrow(std::move(log), Domain::kBox, "read the console of box " + box_->name()));
  }

  // --- Snapshots and clones (python/boxlite/snapshots.py) ---
  nb::dict CreateSnapshot(Text name, bool memory) {
    SnapshotOptions options;
    options.memory = memory;
    Result<SnapshotInfo> info =
        WithoutGil([&] { return box_->CreateSnapshot(name.bytes, options); });
    return SnapshotInfoDict(ValueOrThrow(std::move(info), Domain::kBox,
                                         "snapshot box " + box_->name() + " as " + Quoted(name.bytes)));
  }

  nb::list ListSnapshots() {
    Result<std::vector<SnapshotInfo>> infos = WithoutGil([&] { return box_->ListSnapshots(); });
    nb::list out;
    for (const auto& info : ValueOrThrow(std::move(infos), Domain::kBox,
                                         "list the snapshots of box " + box_->name())) {
      out.append(SnapshotInfoDict(info));
    }
    return out;
  }

  nb::object GetSnapshot(Text name) {
    Result<std::optional<SnapshotInfo>> info = WithoutGil([&] { return box_->GetSnapshot(name.bytes); });
    auto found = ValueOrThrow(std::move(info), Domain::kBox,
                              "find snapshot " + Quoted(name.bytes) + " of box " + box_->name());
    if (!found) return nb::none();
    return SnapshotInfoDict(*found);
  }

  void RemoveSnapshot(Text name) {
    Status s = WithoutGil([&] { return box_->RemoveSnapshot(name.bytes); });
    ThrowIfError(s, Domain::kBox, "remove snapshot " + Quoted(name.bytes) + " of box " + box_->name());
  }

  void RestoreSnapshot(Text name) {
    Status s = WithoutGil([&] { return box_->RestoreSnapshot(name.bytes); });
    ThrowIfError(s, Domain::kBox, "restore box " + box_->name() + " to " + Quoted(name.bytes));
  }

  PyBox CloneBox(Text name) {
    Result<std::shared_ptr<Box>> clone = WithoutGil([&] { return box_->Clone(name.bytes); });
    return PyBox(ValueOrThrow(std::move(clone), Domain::kBox, "clone box " + box_->name()));
  }
  // --- end snapshots and clones ---

 private:
  std::shared_ptr<Box> box_;
};

std::string Describe(const BoxOptions& options) {
  std::string what = options.name.empty() ? "box" : "box " + options.name;
  return what + " from " + (options.rootfs_path.empty() ? options.image : options.rootfs_path);
}

// Checks a dict of BoxOptions fields with the core's rules; returns it normalized (every
// field present).
nb::dict ValidateBoxOptionsDict(nb::dict options_dict) {
  BoxOptions options = BoxOptionsFromDict(options_dict);
  Status s = WithoutGil([&] { return ValidateBoxOptions(options); });
  ThrowIfError(s, Domain::kBox, "check the box options");
  return BoxOptionsToDict(options);
}

// A runtime: one home directory.
class PyRuntime {
 public:
  explicit PyRuntime(std::shared_ptr<Runtime> rt) : rt_(std::move(rt)) {}
  PyRuntime(PyRuntime&&) = default;
  ~PyRuntime() { ResetWithoutGil(rt_); }

  static PyRuntime Open(std::string home_dir, std::string data_dir,
                        std::vector<std::string> registry_mirrors,
                        std::vector<std::string> insecure_registries,
                        std::vector<RegistryTuple> registries) {
    RuntimeOptions options;
    for (const auto& t : registries) {
      options.registries.push_back(ValueOrThrow(ValidateImageRegistry(RegistryFromTuple(t)),
                                                Domain::kRuntime, "image registry"));
    }
    options.home_dir = std::move(home_dir);
    options.data_dir = std::move(data_dir);
    options.registry_mirrors = std::move(registry_mirrors);
    options.insecure_registries = std::move(insecure_registries);
    Result<std::shared_ptr<Runtime>> rt = WithoutGil([&] { return Runtime::Open(options); });
    return PyRuntime(ValueOrThrow(std::move(rt), Domain::kRuntime, "open the BoxLite runtime"));
  }

  // A runtime over a `boxlite serve` (src/remote): RuntimeOptions' remote fields.
  static PyRuntime OpenRemote(std::string url, std::string path_prefix, std::string bearer_token) {
    RuntimeOptions options;
    options.url = std::move(url);
    options.path_prefix = std::move(path_prefix);
    options.bearer_token = std::move(bearer_token);
    Result<std::shared_ptr<Runtime>> rt = WithoutGil([&] { return Runtime::Open(options); });
    return PyRuntime(ValueOrThrow(std::move(rt), Domain::kRuntime, "open the REST runtime " + options.url));
  }

  Text home_dir() const { return Text{rt_->home_dir()}; }

  // `options`: a dict of BoxOptions fields (options_dict.h).
  PyBox Create(nb::dict options_dict) {
    BoxOptions options = BoxOptionsFromDict(options_dict);
    std::string what = Describe(options);
    Result<std::shared_ptr<Box>> box = WithoutGil([&] { return rt_->Create(options); });
    return PyBox(ValueOrThrow(std::move(box), Domain::kBox, "create " + what));
  }

  // (box, created): the box named options["name"] if it exists, else a new one.
  nb::tuple GetOrCreate(nb::dict options_dict) {
    BoxOptions options = BoxOptionsFromDict(options_dict);
    std::string what = Describe(options);
    Result<std::pair<std::shared_ptr<Box>, bool>> got =
        WithoutGil([&] { return rt_->GetOrCreate(options); });
    auto [box, created] = ValueOrThrow(std::move(got), Domain::kBox, "get or create " + what);
    return nb::make_tuple(PyBox(std::move(box)), created);
  }

  // timeout: None (10 s per box), -1 (no limit) or seconds.
  void Shutdown(std::optional<int> timeout_seconds) {
    Status s = WithoutGil([&] { return rt_->Shutdown(timeout_seconds); });
    ThrowIfError(s, Domain::kRuntime, "shut the runtime down");
  }

  nb::dict Metrics() {
    Result<RuntimeMetrics> m = WithoutGil([&] { return rt_->Metrics(); });
    return RuntimeMetricsDict(ValueOrThrow(std::move(m), Domain::kRuntime, "read the runtime metrics"));
  }

  // The box, or None when no box has that id, id prefix or name.
  nb::object Get(Text id_text) {
    const std::string& id_or_name = id_text.bytes;
    Result<std::shared_ptr<Box>> box = WithoutGil([&] { return rt_->Get(id_or_name); });
    if (!box.ok() && box.error().IsNotFound()) return nb::none();
    return nb::cast(PyBox(ValueOrThrow(std::move(box), Domain::kBox, "find box " + id_or_name)));
  }

  nb::list List() {
    Result<std::vector<BoxInfo>> boxes = WithoutGil([&] { return rt_->List(); });
    nb::list out;
    for (const auto& info : ValueOrThrow(std::move(boxes), Domain::kBox, "list boxes")) {
      out.append(BoxInfoDict(info));
    }
    return out;
  }

  void Remove(Text id_text, bool force) {
    const std::string& id_or_name = id_text.bytes;
    Status s = WithoutGil([&] { return rt_->Remove(id_or_name, force); });
    ThrowIfError(s, Domain::kBox, "remove box " + id_or_name);
  }

  nb::dict PullImage(std::string reference) {
    Result<ImageInfo> info = WithoutGil([&] { return rt_->PullImage(reference, nullptr); });
    return ImageInfoDict(
        ValueOrThrow(std::move(info), Domain::kImage, "pull image " + reference));
  }

  nb::list ListImages() {
    Result<std::vector<ImageInfo>> images = WithoutGil([&] { return rt_->ListImages(); });
    return ImageInfoList(ValueOrThrow(std::move(images), Domain::kImage, "list images"));
  }

  void RemoveImage(std::string reference) {
    Status s = WithoutGil([&] { return rt_->RemoveImage(reference); });
    ThrowIfError(s, Domain::kImage, "remove image " + reference);
  }

  // A .boxlite archive as a new stopped box (src/runtime/box_import.cc).
  PyBox ImportBox(Text path, std::string name, bool untrusted) {
    const std::string& archive = path.bytes;
    auto box = WithoutGil([&] { return rt_->ImportBox(archive, name, untrusted); });
    return PyBox(ValueOrThrow(std::move(box), Domain::kBox, "import box archive " + archive));
  }

  nb::list ImportImage(std::string path, std::string tag) {
    Result<std::vector<ImageInfo>> images = WithoutGil([&] { return rt_->ImportImage(path, tag); });
    return ImageInfoList(ValueOrThrow(std::move(images), Domain::kImage, "import image " + path));
  }

  // Volumes.
  nb::dict CreateVolume() {
    Result<VolumeInfo> v = WithoutGil([&] { return rt_->CreateVolume(); });
    return VolumeInfoDict(ValueOrThrow(std::move(v), Domain::kRuntime, "create volume"));
  }

  nb::list ListVolumes() {
    Result<std::vector<VolumeInfo>> vs = WithoutGil([&] { return rt_->ListVolumes(); });
    nb::list out;
    for (const auto& v : ValueOrThrow(std::move(vs), Domain::kRuntime, "list volumes")) {
      out.append(VolumeInfoDict(v));
    }
    return out;
  }

  // The volume, or None when there is no volume with that id.
  nb::object GetVolume(std::string id) {
    Result<VolumeInfo> v = WithoutGil([&] { return rt_->GetVolume(id); });
    if (!v.ok() && v.error().IsNotFound()) return nb::none();
    return VolumeInfoDict(ValueOrThrow(std::move(v), Domain::kRuntime, "get volume " + id));
  }

  void RemoveVolume(std::string id, bool force) {
    Status s = WithoutGil([&] { return rt_->RemoveVolume(id, force); });
    ThrowIfError(s, Domain::kRuntime, "remove volume " + id);
  }

  std::vector<std::pair<Text, Text>> HostInfo() {
    Result<std::vector<std::pair<std::string, std::string>>> facts = WithoutGil([&] { return rt_->HostInfo(); });
    std::vector<std::pair<Text, Text>> out;
    for (auto& [k, v] : ValueOrThrow(std::move(facts), Domain::kRuntime, "describe the host")) {
      out.emplace_back(Text{std::move(k)}, Text{std::move(v)});
    }
    return out;
  }

 private:
  std::shared_ptr<Runtime> rt_;
};

}  // namespace
}  // namespace boxlite::python

NB_MODULE(_boxlite, m) {
  using boxlite::python::PyBox;
  using boxlite::python::PyExec;
  using boxlite::python::PyRuntime;

  m.doc() = "Blocking binding of the BoxLite C++ core; use the `boxlite` package instead.";
  m.attr("version") = boxlite::kVersion;

  // Exec, streams and copies: CopyOptions' defaults, read by boxlite.options.CopyOptions.
  {
    boxlite::CopyOptions defaults;
    nb::dict copy_defaults;
    copy_defaults["recursive"] = defaults.recursive;
    copy_defaults["overwrite"] = defaults.overwrite;
    copy_defaults["follow_symlinks"] = defaults.follow_symlinks;
    copy_defaults["include_parent"] = defaults.include_parent;
    m.attr("copy_option_defaults") = copy_defaults;
  }

  // Raised only when boxlite.errors cannot be imported to translate a core error.
  nb::object core_error = nb::steal(
      PyErr_NewException("boxlite._boxlite.CoreError", PyExc_Exception, nullptr));
  m.attr("CoreError") = core_error;
  boxlite::python::RegisterStatusTranslator(core_error);

  // Box options: the core's defaults and rules (python/boxlite/options.py uses these).
  m.def("default_box_options", [] { return boxlite::python::BoxOptionsToDict(boxlite::BoxOptions{}); });
  m.def("validate_box_options", &boxlite::python::ValidateBoxOptionsDict, "options"_a);
  m.def("default_secret_placeholder",
        [](const std::string& name) { return boxlite::DefaultSecretPlaceholder(name); }, "name"_a);
  m.def(
      "removes_on_stop",
      [](nb::dict options) {
        return boxlite::RemovesOnStop(boxlite::python::BoxOptionsFromDict(options));
      },
      "options"_a);

  nb::class_<PyExec>(m, "Exec")
      .def_prop_ro("pid", &PyExec::pid)
      .def_prop_ro("execution_id", &PyExec::execution_id)
      .def("write_stdin", &PyExec::WriteStdin, "data"_a)
      .def("close_stdin", &PyExec::CloseStdin)
      .def("read", &PyExec::Read, "fd"_a, "timeout"_a = nb::none())
      .def("signal", &PyExec::Signal, "signo"_a)
      .def("resize", &PyExec::Resize, "rows"_a, "cols"_a)
      .def("kill", &PyExec::Kill)
      .def("discard_output", &PyExec::DiscardOutput, "fd"_a)
      .def("wait", &PyExec::Wait, "timeout"_a = nb::none())
      .def("collect", &PyExec::Collect, "stdin"_a = nb::none(), "timeout"_a = nb::none(),
           "max_output"_a = boxlite::kDefaultMaxOutputBytes);

  // Tunnels (python/boxlite/tunnels.py).
  nb::class_<boxlite::python::PyConnection>(m, "Connection")
      .def("read", &boxlite::python::PyConnection::Read, "max_bytes"_a, "timeout"_a = nb::none())
      .def("write", &boxlite::python::PyConnection::Write, "data"_a)
      .def("shutdown_write", &boxlite::python::PyConnection::ShutdownWrite)
      .def("close", &boxlite::python::PyConnection::Close);

  nb::class_<PyBox>(m, "Box")
      .def_prop_ro("id", &PyBox::id)
      .def("tunnel", &PyBox::Tunnel, "port"_a)
      .def_prop_ro("name", &PyBox::name)
      .def("start", &PyBox::Start)
      .def("check_call", &PyBox::CheckCall, "op"_a)
      .def("stop", &PyBox::Stop)
      .def("start_exec", &PyBox::StartExec, "argv"_a, "env"_a, "cwd"_a, "user"_a, "tty"_a,
           "rows"_a, "cols"_a, "open_stdin"_a)
      .def("info", &PyBox::Info)
      .def("metrics", &PyBox::Metrics)
      // CopyOptions' fields (include/boxlite/options.h); the defaults are the core's.
      .def("copy_in", &PyBox::CopyIn, "host_path"_a, "guest_path"_a,
           "recursive"_a = boxlite::CopyOptions().recursive,
           "overwrite"_a = boxlite::CopyOptions().overwrite,
           "follow_symlinks"_a = boxlite::CopyOptions().follow_symlinks,
           "include_parent"_a = boxlite::CopyOptions().include_parent)
      .def("copy_out", &PyBox::CopyOut, "guest_path"_a, "host_path"_a,
           "recursive"_a = boxlite::CopyOptions().recursive,
           "overwrite"_a = boxlite::CopyOptions().overwrite,
           "follow_symlinks"_a = boxlite::CopyOptions().follow_symlinks,
           "include_parent"_a = boxlite::CopyOptions().include_parent)
      .def("console_log", &PyBox::ConsoleLog)
      .def("fork", &PyBox::Fork, "count"_a, "names"_a, "snapshot"_a)
      // Snapshots and clones (python/boxlite/snapshots.py).
      .def("create_snapshot", &PyBox::CreateSnapshot, "name"_a, "memory"_a)
      .def("list_snapshots", &PyBox::ListSnapshots)
      .def("get_snapshot", &PyBox::GetSnapshot, "name"_a)
      .def("remove_snapshot", &PyBox::RemoveSnapshot, "name"_a)
      .def("restore_snapshot", &PyBox::RestoreSnapshot, "name"_a)
      .def("clone_box", &PyBox::CloneBox, "name"_a)
      .def("export", &PyBox::Export, "dest"_a)
      .def("attach_main", &PyBox::AttachMain)
      .def("attach_exec", &PyBox::AttachExec, "execution_id"_a);

  nb::class_<PyRuntime>(m, "Runtime")
      .def_static("open", &PyRuntime::Open, "home_dir"_a, "data_dir"_a, "registry_mirrors"_a,
                  "insecure_registries"_a,
                  "registries"_a = std::vector<boxlite::python::RegistryTuple>{})
      .def_static("open_remote", &PyRuntime::OpenRemote, "url"_a, "path_prefix"_a, "bearer_token"_a)
      .def_prop_ro("home_dir", &PyRuntime::home_dir)
      .def("create", &PyRuntime::Create, "options"_a)
      .def("get_or_create", &PyRuntime::GetOrCreate, "options"_a)
      .def("shutdown", &PyRuntime::Shutdown, "timeout"_a = nb::none())
      .def("get", &PyRuntime::Get, "id_or_name"_a)
      .def("list", &PyRuntime::List)
      .def("remove", &PyRuntime::Remove, "id_or_name"_a, "force"_a)
      .def("pull_image", &PyRuntime::PullImage, "reference"_a)
      .def("list_images", &PyRuntime::ListImages)
      .def("remove_image", &PyRuntime::RemoveImage, "reference"_a)
      .def("import_image", &PyRuntime::ImportImage, "path"_a, "tag"_a)
      .def("import_box", &PyRuntime::ImportBox, "path"_a, "name"_a, "untrusted"_a)
      .def("host_info", &PyRuntime::HostInfo)
      .def("create_volume", &PyRuntime::CreateVolume)
      .def("list_volumes", &PyRuntime::ListVolumes)
      .def("get_volume", &PyRuntime::GetVolume, "id"_a)
      .def("remove_volume", &PyRuntime::RemoveVolume, "id"_a, "force"_a)
      .def("metrics", &PyRuntime::Metrics);

  // Registries and configuration (include/boxlite/config.h).
  m.def("check_image_registry", &boxlite::python::CheckImageRegistry, "registry"_a);
  m.def("load_config", &boxlite::python::LoadConfig, "path"_a);
  m.def("looks_like_volume_id", [](std::string s) { return boxlite::LooksLikeVolumeId(s); },
        "text"_a);

  // The CLI's -p parser (include/boxlite/options.h), for the SDK's "[host:]guest[/tcp]"
  // strings: a dict with the keys of a port in the options dict.
  m.def(
      "parse_port_spec",
      [](const std::string& spec) {
        boxlite::PortForward p = boxlite::python::ValueOrThrow(
            boxlite::ParsePortSpec(spec), boxlite::python::Domain::kRuntime,
            "read a published port");
        nb::dict d;
        d["host_port"] = p.host_port;
        d["guest_port"] = p.guest_port;
        d["host_ip"] = p.host_ip;
        d["protocol"] = p.protocol;
        return d;
      },
      "spec"_a);
}

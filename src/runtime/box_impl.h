// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// BoxImpl implements boxlite::Box: it prepares the box's disk (a qcow2 overlay on the
// image's ext4 base), starts QEMU, connects the agent channel and drives the lifecycle.
//
// An ephemeral box keeps nothing on disk: its overlay, console log and QEMU's stderr are
// unlinked as soon as they are open and handed to QEMU as inherited descriptors, and the
// agent channel is a socket pair. When the owner dies, QEMU gets SIGKILL (parent-death
// signal) and the kernel frees everything. See docs/design.md.
//
// Thread-safety: public methods are thread-safe. mu_ serializes lifecycle changes
// (Start/Stop); execs run concurrently and only read the channel pointer under mu_.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "boxlite/box.h"
#include "src/base/unique_fd.h"
#include "src/runtime/box_record.h"
#include "src/runtime/box_state.h"
#include "src/runtime/channel.h"
#include "src/runtime/exec_impl.h"
#include "src/runtime/main_session.h"
#include "src/runtime/runtime_impl.h"
#include "src/runtime/templates.h"
#include "src/sys/file_lock.h"
#include "src/sys/subprocess.h"
#include "src/vmm/accel.h"
#include "src/vmm/guest_assets.h"
#include "src/vmm/qemu.h"
#include "src/vmm/qmp.h"

namespace boxlite::runtime {

// A memory snapshot a box boots from instead of cold-booting: a directory SaveMemoryLocked
// wrote (a named memory snapshot, a fork's source, a warm-start template). It holds
//   memory.json   what a box must match to boot from it (cpus, memory, kernel and
//                 initramfs digests, devices, base image) and where the RAM is
//   memory.state  QEMU's migration stream (device state; the RAM too when "ram" is "stream")
//   memory.ram    the guest RAM, sparse (when "ram" is "file")
//   disk.qcow2    the disk overlay as it was, consistent with the memory
struct MemoryImage {
  std::string dir;
  // RAM several boxes share: a sealed memfd holding dir/memory.ram, which the box maps
  // copy-on-write (its writes stay its own). -1: the box gets a memfd of its own, filled
  // from memory.ram (or from the stream).
  int shared_ram_fd = -1;
};

class BoxImpl final : public Box, public std::enable_shared_from_this<BoxImpl> {
 public:
  // A new box. A persistent one (auto_remove=false or detach) also needs its directory
  // and record: see CreateOnDisk.
  BoxImpl(std::shared_ptr<RuntimeImpl> runtime, std::string id, BoxOptions options);
  // A persistent box found on disk (it may be running, started by another process).
  BoxImpl(std::shared_ptr<RuntimeImpl> runtime, BoxRecord record);
  ~BoxImpl() override;

  bool persistent() const { return !RemovesOnStop(options_) || options_.detach; }
  const BoxOptions& options() const { return options_; }
  // Stop() waiting up to `limit` for a clean stop (nullopt: no limit) before killing.
  Status StopWithin(std::optional<std::chrono::seconds> limit);
  // Whether this process booted the box's VM and it has not been stopped since.
  bool LaunchedHere();
  // Writes the directory and record of a new persistent box.
  Status CreateOnDisk();
  // Stops the box (killing it when `force`, or when it does not stop) and deletes it.
  Status Remove(bool force);

  const std::string& id() const override { return id_; }
  const std::string& name() const override { return name_; }
  Status Start() override;
  Status Stop() override;
  Result<std::shared_ptr<Exec>> StartExec(const ExecOptions& options) override;
  Result<std::shared_ptr<Exec>> AttachMain() override;
  Result<ExecResult> Run(const ExecOptions& options) override;
  Result<BoxInfo> Info() override;
  Result<BoxMetrics> Metrics() override;
  Result<std::shared_ptr<Connection>> Tunnel(int port) override;  // box_tunnel.cc
  Status CopyIn(const std::string& host_path, const std::string& guest_path,
                const CopyOptions& options) override;
  Status CopyOut(const std::string& guest_path, const std::string& host_path,
                 const CopyOptions& options) override;
  Result<std::string> ConsoleLog() override;
  // Snapshots (box_snapshot.cc), clones (box_snapshot.cc), export (box_export.cc) and
  // forks (box_fork.cc).
  Result<SnapshotInfo> CreateSnapshot(const std::string& name,
                                      const SnapshotOptions& options) override;
  Result<std::vector<SnapshotInfo>> ListSnapshots() override;
  Result<std::optional<SnapshotInfo>> GetSnapshot(const std::string& name) override;
  Status RemoveSnapshot(const std::string& name) override;
  Status RestoreSnapshot(const std::string& name) override;
  Result<std::shared_ptr<Box>> Clone(const std::string& name,
                                     const CloneOptions& options) override;
  Result<std::string> Export(const std::string& dest, const ExportOptions& options) override;
  Result<std::vector<std::shared_ptr<Box>>> Fork(const ForkOptions& options) override;
  // Memory snapshots (box_memory.cc), for CreateSnapshot/RestoreSnapshot with memory.
  // With the guest paused: its RAM, device state and a disk copy consistent with them
  // go into the snapshot directory `dir`; the box then runs on.
  Status SaveMemoryLocked(const std::string& dir);
  // The box (stopped) boots from the memory snapshot in `dir`: running, its processes
  // as saved, the guest told its new clock, entropy and identity.
  Status RestoreMemoryLocked(const std::string& dir);

  // True while this object has the box's VM running (launched or attached here).
  bool RunningHere();

 private:
  // --- Snapshots and clones (box_snapshot.cc) ---
  // A running box's disk, quiesced for a copy: frozen by the agent, and "paused" in the
  // record for other processes. EndQuiesceLocked undoes both. (Box::Export uses it too.)
  struct Quiesced {
    std::shared_ptr<AgentChannel> channel;
    bool frozen = false;
    bool marked = false;
    Clock::time_point deadline;  // When the guest thaws by itself.
  };
  // Freezes a running box's disk for a copy of `disk_bytes` and marks it paused; a box
  // that is not running, or a guest that cannot freeze, is left as it is.
  Result<Quiesced> QuiesceLocked(uint64_t disk_bytes);
  void EndQuiesceLocked(Quiesced& q);
  // The box's disk overlay, read-only; FailedPrecondition when it has none yet.
  Result<base::UniqueFd> OpenDiskLocked();
  // Takes the box's lock (persistent boxes) and refuses a removed box.
  Status LockForSnapshotsLocked(std::optional<sys::FileLock>* box_lock);
  // Copies this box's disk (quiesced) into `clone`, a new box nobody else uses.
  Status CopyDiskInto(BoxImpl& clone);
  // Closes an ephemeral box's snapshots and disk descriptors (the box is gone).
  void DropHeldDisksLocked();
  struct HeldSnapshot {
    SnapshotInfo info;
    base::UniqueFd disk;  // An unlinked copy of the overlay.
  };
  // An ephemeral box's snapshots, oldest first; guarded by mu_.
  std::vector<HeldSnapshot> held_snapshots_;
  // An ephemeral clone's disk, which its first launch boots instead of a new overlay.
  base::UniqueFd seed_disk_;
  // --- end snapshots ---

  // The health check's prober (HealthCheckOptions): a thread pinging the agent. Shared
  // with the thread, which never touches the box.
  struct HealthProbe {
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;         // Guarded by mu.
    HealthStatus status;       // Guarded by mu.
    std::string dir;           // A persistent box's directory: health.json goes there.
    std::thread thread;
  };
  // Starts probing the connected agent when the box has a health check.
  void StartHealthLocked();
  // Tells the prober to record no more probes (before the channel is closed under it).
  void QuietHealthLocked();
  // Stops the prober (its status stays readable); the channel must be closed or alive.
  void StopHealthLocked();
  static void ProbeLoop(std::shared_ptr<HealthProbe> probe, std::shared_ptr<AgentChannel> channel,
                        HealthCheckOptions options);
  Result<std::shared_ptr<Exec>> StartExecUncounted(const ExecOptions& options);
  // Turns a lost channel into the box's explanation (DeathStatus), for a stream's owner.
  ExecImpl::Explainer DeathExplainer();
  // The guest's settings that come from BoxOptions.security and .capabilities.
  Status ApplySecurityConfig(protocol::BoxConfig* config) const;

  enum class State { kCreated, kRunning, kStopped, kRemoved };

  Status StartLocked();
  // --- Launching the VM (the box is not running anywhere): LaunchLocked runs these
  // steps in order (src/runtime/box_launch.cc says what each does and how a failure is
  // rolled back). ---
  struct LaunchPlan;
  // Boots the box's VM (the box is not running anywhere). With `image`, the launch
  // primitive of memory restores, forks and warm starts: instead of booting, the VM
  // resumes the memory snapshot `image` (see MemoryImage) with this box's identity. The
  // box's disk becomes a copy of the image's disk.qcow2 (its base must be the box's image),
  // its RAM a fresh memfd filled from memory.ram (share=on: it can be snapshotted again) or
  // the image's shared sealed memfd (share=off), QEMU starts with -incoming defer and takes
  // memory.state, the guest runs on, a new boxlite-net serves a nat box, and the agent is
  // given the host's clock, fresh entropy, this box's hostname and id (op "refresh",
  // docs/protocol.md). The box's options must give the devices the image was saved with
  // (memory.json): cpus, memory, persistent or not, network on or off, no mounts; otherwise
  // FailedPrecondition saying which differs, and nothing changed. The main command is not
  // started again: the one running in the image is attached (if any).
  Status LaunchLocked(const MemoryImage* image = nullptr);
  // One launch: LaunchLocked's steps. With `failed_template` (a boot, not a restore), a
  // warm-start template of the boot is used when there is one, and its key is set there
  // when the launch failed using it (LaunchLocked then drops it and boots).
  Status LaunchOnceLocked(const MemoryImage* image, std::string* failed_template);
  Status PrepareLaunchLocked(LaunchPlan& plan);
  Status OpenBoxFilesLocked(LaunchPlan& plan);
  Status OpenOverlayLocked(LaunchPlan& plan);          // Part of OpenBoxFilesLocked.
  Status OpenLogsAndSocketsLocked(LaunchPlan& plan);   // Part of OpenBoxFilesLocked.
  Status AttachDevicesLocked(LaunchPlan& plan);
  Status ShareMountsLocked(LaunchPlan& plan);
  Status PlanJailLocked(LaunchPlan& plan);
  Status StartNetworkLocked(LaunchPlan& plan);
  Status StartVmLocked(LaunchPlan& plan);
  Status SaveLaunchRecordLocked();
  Status GreetGuestLocked(LaunchPlan& plan);
  Status FinishLaunchLocked(LaunchPlan& plan);
  // The memory-snapshot part of a launch (box_memory.cc). Every VM gets a monitor and its
  // RAM in a memfd; a launch from a MemoryImage gets the image's disk, RAM and state.
  struct MemoryLaunch {
    const MemoryImage* image = nullptr;
    std::vector<base::UniqueFd> passed;  // QEMU's ends (monitor, RAM), until it runs.
    base::UniqueFd qmp_host;             // An ephemeral box's end of the monitor.
    bool ram_in_file = true;             // The image's RAM is in memory.ram.
  };
  // What a box must match to boot from a memory snapshot of this one (memory.json).
  Result<nlohmann::json> MemoryMatchLocked();
  // Checks `image` against this box (memory.json) before anything is opened.
  Status CheckMemoryImageLocked(const MemoryImage& image, MemoryLaunch& m);
  // The box's disk as a copy of the image's disk.qcow2, at `path` (kept when `keep`,
  // else unlinked once open).
  Result<base::UniqueFd> OpenRestoredDiskLocked(const MemoryImage& image,
                                                const std::string& path, bool keep);
  Status AttachMemoryLocked(vmm::VmConfig& config, MemoryLaunch& m);
  // QEMU runs (-incoming defer): feeds it memory.state and resumes the guest.
  Status ReceiveMemoryLocked(MemoryLaunch& m);
  // The agent's new clock, entropy, hostname and box id after a restore.
  Status RefreshGuestLocked();
  // The main command the restored guest runs, attached (none: OK).
  Status AdoptMainLocked();
  // A persistent box's lock file, held (its record reloaded); nullopt for others.
  Result<std::optional<sys::FileLock>> HoldBoxLockLocked();
  // The box's monitor: the kept one (ephemeral), or a new connection to qmp.sock.
  Result<vmm::QmpClient*> QmpLocked();
  // Stops what the launch started once QEMU runs, and marks the box stopped.
  void RollBackLaunchLocked();
  // --- end launch ---
  // --- Warm start (box_warm.cc): what the launch does with a template. ---
  struct WarmChoice {
    std::optional<TemplateStore::Held> restore;     // Start the VM from this template.
    std::optional<TemplateStore::Capture> capture;  // Leave a template of this boot.
    TemplateInputs inputs;                          // The capture's inputs.
    MemoryImage image;                              // The restore's (its directory).
  };
  // BoxOptions.warm, else RuntimeOptions.warm.
  bool WarmWantedLocked() const;
  // The inputs that name this box's template; nullopt when the box does not use one.
  Result<std::optional<TemplateInputs>> WarmInputsLocked(const vmm::GuestAssets& assets,
                                                         vmm::Accel accel);
  // Restore, capture or neither (before the box's disk is made).
  Status ChooseWarmLocked(const vmm::GuestAssets& assets, vmm::Accel accel, WarmChoice* choice);
  // With the agent answering and before hello: saves the VM as the template (a failure
  // only warns: the boot goes on).
  void CaptureTemplateLocked(WarmChoice* choice);
  // A template whose restore failed (`why`): removed, and the box's disk with it.
  void DropWarmTemplateLocked(const std::string& key, const Status& why);
  bool warm_start_ = false;  // Guarded by mu_: the VM running now restored a template.
  // --- end warm start ---
  // Connects to the running VM of a persistent box through a free client slot.
  Status ConnectPersistentLocked();
  // Sends the hello that configures the guest (or attaches to a configured one).
  // Sets *config_ms to the time the agent took to apply a new config.
  // config_ms and guest_uptime_ms, when given, receive the guest's figures from its answer.
  // `attach`: a client joining a box another process launched; it waits (asking again)
  // until the launcher's hello has configured the box.
  Status HelloLocked(const protocol::BoxConfig& config, int64_t* config_ms = nullptr,
                     int64_t* guest_uptime_ms = nullptr, bool attach = false);
  // Stops the VM; `graceful` lets the guest flush and unmount its disk first (pointless,
  // and slow when the guest is overloaded, for a box about to be removed).
  Status StopLocked(bool graceful = true,
                    std::optional<std::chrono::seconds> limit = std::chrono::seconds(10));
  // Reloads a persistent box's record; running when its VM process is alive.
  void RefreshLocked();
  // RefreshLocked for a caller holding the box's lock file.
  void RefreshHeldLocked();
  // Holds a persistent box's lock file in *held (nothing for an ephemeral or removed box)
  // and reloads its record: what a lifecycle change holds while it runs.
  Status HoldBoxLocked(std::optional<sys::FileLock>* held);
  // The box's status (box_state.h) and, when it failed, why (in *failure).
  BoxStatus StatusLocked(std::string* failure);
  // Why a VM that is gone without a stop (and without its main command's exit) ended.
  std::string VmEndedReasonLocked();
  // Records a start that failed (the VM is not running): the box is "failed" until it
  // starts again or is removed.
  void MarkStartFailedLocked(const Status& why);
  std::string DirPath(const std::string& name) const;
  // Why the box cannot run execs now: OK when running.
  Status Usable();
  // The console's last lines, for error messages.
  std::string ConsoleTail();
  // Explains a box that died: console tail and QEMU's own message.
  Status DeathStatus(const Status& channel_status);
  Result<std::shared_ptr<AgentChannel>> Channel();

  std::shared_ptr<RuntimeImpl> runtime_;
  const std::string id_;
  std::string name_;
  BoxOptions options_;

  std::mutex mu_;
  State state_ = State::kCreated;               // Guarded by mu_.
  std::optional<sys::Subprocess> vm_;           // Guarded by mu_.
  std::optional<sys::Subprocess> net_;          // boxlite-net of a nat box we started.
  std::vector<PortForward> bound_ports_;        // Guarded by mu_: host ports in use.
  std::shared_ptr<AgentChannel> channel_;       // Guarded by mu_.
  std::optional<ResolvedImage> image_;          // Guarded by mu_.
  std::string dir_;                             // Persistent boxes: boxes/<id>.
  BoxRecord record_;                            // Guarded by mu_ (persistent boxes).
  std::optional<sys::FileLock> port_lock_;      // Our client slot of a persistent box.
  bool launched_here_ = false;                  // We started the VM (not attached).
  std::string accel_;                           // Guarded by mu_.
  base::UniqueFd console_fd_;                   // Read end of the console log.
  std::string cgroup_dir_;                      // The VM's cgroup leaf, "" none (vm_jail.h).
  base::UniqueFd qemu_log_fd_;                  // QEMU's stderr.
  bool qemu_log_capped_ = false;  // A writer copies QEMU's stderr into it (a fork's VM).
  // boxlite-net's counters (vmm::ReadNetStats): <dir_>/net-stats for a persistent box,
  // else a memfd. Guarded by mu_. NetStatsLocked (box_observe.cc) reads them.
  base::UniqueFd net_stats_fd_;
  std::optional<uint64_t> NetRefusedFlowsLocked();
  int64_t disk_size_mib_ = 0;
  // Memory snapshots (box_memory.cc), guarded by mu_: the monitor of the VM (an
  // ephemeral box's socket end, kept while it runs; a persistent box's is connected when
  // needed).
  base::UniqueFd qmp_fd_;
  std::optional<vmm::QmpClient> qmp_;
  // An ephemeral box's disk, read-only, while its VM runs here: the unlinked overlay has no
  // name to read it by (snapshots, clones, memory snapshots, export). Guarded by mu_.
  base::UniqueFd disk_fd_;

  // Why the VM went away unexpectedly. Shared with the channel's close callback, which
  // may run after this box is gone.
  struct DeathNote {
    std::mutex mu;
    Status why;             // Guarded by mu.
    bool stopping = false;  // Guarded by mu: a deliberate stop is not a death.
  };
  std::shared_ptr<DeathNote> death_ = std::make_shared<DeathNote>();
  // The death status, OK while alive.
  Status Died();
  // The main command's exit status, once known.
  std::optional<int> ExitCodeLocked();
  std::optional<int> exit_code_;  // Guarded by mu_.
  std::string failure_;           // Guarded by mu_: an ephemeral box's failed start.

  std::shared_ptr<HealthProbe> health_;  // Guarded by mu_.
  // The launch's stages (BoxMetrics stage_*_ms), measured by LaunchLocked; guarded by mu_.
  struct LaunchStages {
    int64_t filesystem_setup_ms = 0;
    int64_t image_prepare_ms = 0;
    int64_t guest_rootfs_ms = 0;
    int64_t box_config_ms = 0;
    int64_t box_spawn_ms = 0;
    int64_t container_init_ms = 0;
  };
  std::optional<LaunchStages> stages_;
  // The previous CPU sample of the VM process (cpu_percent between Metrics() calls).
  std::mutex cpu_mu_;
  int cpu_pid_ = 0;                // Guarded by cpu_mu_.
  double cpu_seconds_ = 0;         // Guarded by cpu_mu_.
  Clock::time_point cpu_at_;       // Guarded by cpu_mu_.
  std::shared_ptr<ExecByteCounters> exec_bytes_ = std::make_shared<ExecByteCounters>();
  std::atomic<uint64_t> exec_errors_{0};
  // Execs: the request for `options` (image config, box options), then the call.
  Result<protocol::ExecRequest> ExecRequestLocked(const ExecOptions& options);
  Result<std::shared_ptr<ExecImpl>> CallExec(const std::shared_ptr<AgentChannel>& channel,
                                             const protocol::ExecRequest& req,
                                             ExecImpl::Explainer explain);
  // The main command (entrypoint + cmd), started once the guest answered.
  Status StartMainLocked();
  // Runs on the main session's pump thread when the main command ended.
  void OnMainExit(const ExitStatus& status);
  // The session of the main command `exec`: its exit stops the box.
  std::unique_ptr<MainSession> NewMainSession(std::shared_ptr<ExecImpl> exec);
  // The attach request that takes over a main command another process started.
  Result<std::shared_ptr<ExecImpl>> CallAttachMainLocked(
      const std::shared_ptr<AgentChannel>& channel);
  std::unique_ptr<MainSession> main_;  // Guarded by mu_: while it runs, when started here.
  std::unique_ptr<MainSession> ended_main_;  // Guarded by mu_: the last one, once it exited.
  bool main_optional_ = false;         // Guarded by mu_: the command is the image's own.

  int64_t created_unix_ = 0;
  double create_seconds_ = 0;
  double boot_seconds_ = 0;
  std::atomic<uint64_t> execs_run_{0};
};

}  // namespace boxlite::runtime

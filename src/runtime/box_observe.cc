// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What can be read from a box or copied across it: Info (the box's settings and state),
// Metrics (host-side counters, the guest's own numbers, the VM's CPU and memory;
// docs/metrics.md), CopyIn/CopyOut (src/runtime/file_transfer.h) and ConsoleLog.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/box_impl_internal.h"
#include "src/runtime/file_transfer.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/vmm/net_helper.h"  // ReadNetStats.

namespace boxlite::runtime {


Result<BoxInfo> BoxImpl::Info() {
  std::lock_guard<std::mutex> lock(mu_);
  RefreshLocked();
  BoxInfo info;
  info.id = id_;
  info.name = name_;
  // A box made from a local OCI layout names it as BoxLite 0.9 does.
  if (!options_.rootfs_path.empty()) {
    info.image = "rootfs:" + options_.rootfs_path;
  } else {
    info.image = image_ ? image_->reference : options_.image;
  }
  info.state = std::string(StatusName(StatusLocked(&info.failure)));
  info.created_unix = created_unix_;
  info.cpus = options_.cpus;
  info.memory_mib = options_.memory_mib;
  info.disk_size_mib = disk_size_mib_ ? disk_size_mib_ : options_.disk_size_mib;
  info.network = options_.security.network_enabled ? options_.network : "none";
  info.allow_net = options_.allow_net;
  info.ports = options_.ports;
  const auto& bound = persistent() && bound_ports_.empty() ? record_.bound_ports : bound_ports_;
  if (info.state == "running" && !bound.empty()) info.ports = bound;
  info.mounts = options_.mounts;
  info.auto_remove = RemovesOnStop(options_);
  info.detach = options_.detach;
  info.auto_pause = options_.auto_pause;
  info.auto_delete = options_.auto_delete.value_or(0);
  info.auto_resume = options_.auto_resume;
  info.entrypoint = options_.entrypoint;
  info.cmd = options_.cmd;
  if (info.state != "running") info.exit_code = ExitCodeLocked();
  info.pid = vm_ ? vm_->pid() : (state_ == State::kRunning ? record_.pid : 0);
  info.accel = accel_;
  info.warm_start = info.state == "running" && (persistent() ? record_.warm_start : warm_start_);
  if (health_) {
    std::lock_guard<std::mutex> hl(health_->mu);
    info.health = health_->status;
  } else if (persistent() && options_.health_check.enabled) {
    // Probed by another process (the one that started the box): its last word.
    if (auto saved = LoadHealth(dir_)) info.health = *saved;
  }
  return info;
}

namespace {

// CPU seconds (utime + stime) of a process and its start, seconds after boot.
struct ProcessCpu {
  double cpu_seconds = 0;
  double start_seconds = 0;
};

std::optional<ProcessCpu> ReadProcessCpu(int pid) {
  auto stat = sys::ReadFile(base::StrFormat("/proc/%d/stat", pid));
  if (!stat.ok()) return std::nullopt;
  // Fields after the parenthesised command: state is field 3; utime 14, stime 15,
  // starttime 22.
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 > stat->size()) return std::nullopt;
  auto fields = base::Split(stat->substr(close + 2), ' ');
  if (fields.size() <= 19) return std::nullopt;
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  ProcessCpu cpu;
  cpu.cpu_seconds = static_cast<double>(base::ParseUint(fields[11]).value_or(0) +
                                        base::ParseUint(fields[12]).value_or(0)) /
                    ticks;
  cpu.start_seconds = static_cast<double>(base::ParseUint(fields[19]).value_or(0)) / ticks;
  return cpu;
}

double HostUptimeSeconds() {
  auto text = sys::ReadFile("/proc/uptime");
  return text.ok() ? std::strtod(text->c_str(), nullptr) : 0;
}

}  // namespace

std::optional<uint64_t> BoxImpl::NetRefusedFlowsLocked() {
  if (options_.network != "nat") return std::nullopt;
  if (!net_stats_fd_ && !dir_.empty()) {  // A box another process started.
    net_stats_fd_.reset(::open((dir_ + "/net-stats").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  }
  if (!net_stats_fd_) return std::nullopt;
  auto stats = vmm::ReadNetStats(net_stats_fd_.get());
  if (!stats.ok()) return std::nullopt;
  return stats->refused_flows;
}

Result<BoxMetrics> BoxImpl::Metrics() {
  BoxMetrics m;
  int pid = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RefreshLocked();
    if (state_ != State::kRunning) {
      return Status::FailedPrecondition("box " + name_ + " is not running");
    }
    pid = vm_ ? vm_->pid() : record_.pid;
    m.network_refused_flows = NetRefusedFlowsLocked();
    m.create_seconds = create_seconds_ > 0 ? create_seconds_ : record_.create_seconds;
    m.boot_seconds = boot_seconds_ > 0 ? boot_seconds_ : record_.boot_seconds;
    if (m.create_seconds > 0 || m.boot_seconds > 0) {
      m.total_create_duration_ms = static_cast<int64_t>((m.create_seconds + m.boot_seconds) * 1000);
      m.guest_boot_duration_ms = static_cast<int64_t>(m.boot_seconds * 1000);
    }
    if (stages_) {
      m.stage_filesystem_setup_ms = stages_->filesystem_setup_ms;
      m.stage_image_prepare_ms = stages_->image_prepare_ms;
      m.stage_guest_rootfs_ms = stages_->guest_rootfs_ms;
      m.stage_box_config_ms = stages_->box_config_ms;
      m.stage_box_spawn_ms = stages_->box_spawn_ms;
      m.stage_container_init_ms = stages_->container_init_ms;
    }
  }
  m.execs_run = execs_run_;
  m.commands_executed_total = execs_run_;
  m.exec_errors_total = exec_errors_;
  m.bytes_sent_total = exec_bytes_->sent;
  m.bytes_received_total = exec_bytes_->received;
  if (auto channel = Channel(); channel.ok()) {
    auto guest = (*channel)->Call("metrics", protocol::Json::object(),
                                  Clock::now() + std::chrono::seconds(10));
    // The guest's numbers are untrusted: a reply out of bounds (messages.h) gives none.
    protocol::GuestMetrics gm;
    if (guest.ok() && protocol::FromJson(*guest, &gm).ok()) {
      auto count = [](const std::optional<int64_t>& v) -> std::optional<uint64_t> {
        if (!v) return std::nullopt;
        return static_cast<uint64_t>(*v);
      };
      m.guest_memory_total_bytes = static_cast<uint64_t>(gm.mem_total);
      m.guest_memory_used_bytes = static_cast<uint64_t>(gm.mem_total - gm.mem_available);
      m.network_bytes_received = count(gm.net_rx_bytes);
      m.network_bytes_sent = count(gm.net_tx_bytes);
      m.network_tcp_connections = count(gm.tcp_opens);
      m.network_tcp_errors = count(gm.tcp_errors);
    }
  }
  if (pid > 0) {
    if (auto cpu = ReadProcessCpu(pid)) {
      m.cpu_seconds = cpu->cpu_seconds;
      auto now = Clock::now();
      std::lock_guard<std::mutex> cl(cpu_mu_);
      double elapsed = 0;
      double used = 0;
      if (cpu_pid_ == pid) {
        elapsed = Seconds(now - cpu_at_);
        used = cpu->cpu_seconds - cpu_seconds_;
      } else {
        // The first sample of this VM: its average since it started.
        elapsed = HostUptimeSeconds() - cpu->start_seconds;
        used = cpu->cpu_seconds;
      }
      if (elapsed > 0.001) m.cpu_percent = std::max(0.0, used / elapsed * 100.0);
      cpu_pid_ = pid;
      cpu_seconds_ = cpu->cpu_seconds;
      cpu_at_ = now;
    }
    auto status = sys::ReadFile(base::StrFormat("/proc/%d/status", pid));
    if (status.ok()) {
      for (const auto& line : base::Split(*status, '\n')) {
        if (line.starts_with("VmRSS:")) {
          m.memory_rss_bytes = std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
          m.memory_bytes = m.memory_rss_bytes;
        }
      }
    }
  }
  return m;
}

namespace {

// A guest path longer than PATH_MAX can name nothing, and must not grow a request past
// one frame.
Status CheckGuestPath(const std::string& guest_path) {
  if (guest_path.size() < PATH_MAX) return Status::OK();
  return Status::InvalidArgument(
      base::StrFormat("the guest path is %zu bytes long; at most %d", guest_path.size(), PATH_MAX - 1));
}

}  // namespace

Status BoxImpl::CopyIn(const std::string& host_path, const std::string& guest_path,
                       const CopyOptions& options) {
  BOXLITE_RETURN_IF_ERROR(CheckGuestPath(guest_path));
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  return CopyToGuest(channel.get(), host_path, guest_path, options);
}

Status BoxImpl::CopyOut(const std::string& guest_path, const std::string& host_path,
                        const CopyOptions& options) {
  BOXLITE_RETURN_IF_ERROR(CheckGuestPath(guest_path));
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  return CopyFromGuest(channel.get(), guest_path, host_path, options);
}

Result<std::string> BoxImpl::ConsoleLog() {
  std::lock_guard<std::mutex> lock(mu_);
  if (persistent()) {
    auto text = sys::ReadFile(DirPath("console.log"));
    if (!text.ok() && text.error().IsNotFound()) return std::string();
    return text;
  }
  if (!console_fd_) return std::string();
  struct stat st;
  if (::fstat(console_fd_.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat console");
  std::string buf(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = ::pread(console_fd_.get(), buf.data(), buf.size(), 0);
  if (n < 0) return sys::ErrnoStatus(errno, "read console");
  buf.resize(static_cast<size_t>(n));
  return buf;
}

}  // namespace boxlite::runtime

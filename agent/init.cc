// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/init.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <arpa/inet.h>
#include <endian.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <map>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::agent {
namespace {

// From fs/ext4/ext4.h; not exported in the uapi headers of 6.1.
constexpr unsigned long kExt4IocResizeFs = _IOW('f', 16, uint64_t);

constexpr unsigned long kCgroupFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
constexpr char kCgroupOptions[] = "favordynmods";
// Boot work done in children while PID 1 goes on: mounting the cgroup hierarchy
// (MountEarly; PrepareRootfs waits for it) and growing the root file system
// (MountRootfs; WaitForRootfs waits for it). 0 once done.
pid_t g_cgroup_setup = 0;
pid_t g_rootfs_setup = 0;

// A boot child runs only when PID 1 has nothing to run: the guest has one vCPU, and at
// PID 1's own priority the child's work delayed each wakeup of PID 1 (mounting the box
// disk waits for dozens of block reads) behind the child's time slice. PID 1 waits for
// the child before anything that needs its result, so the child still runs to the end.
void BecomeIdleBootChild() {
  struct sched_param param = {};
  (void)::sched_setscheduler(0, SCHED_IDLE, &param);
}

// Waits for a boot child unless the server reaped it already (NoteChildReaped).
void WaitForChild(pid_t* pid) {
  if (*pid <= 0) return;
  while (::waitpid(*pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  *pid = 0;
}

Status Mount(const char* source, const char* target, const char* type, unsigned long flags,
             const char* data = nullptr) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, flags, data) != 0) {
    return sys::ErrnoStatus(errno, "mount %s on %s", type ? type : source, target);
  }
  return Status::OK();
}

Status GrowRootfs() {
  base::UniqueFd dev(::open("/dev/vda", O_RDONLY | O_CLOEXEC));
  if (!dev) return sys::ErrnoStatus(errno, "open /dev/vda");
  uint64_t dev_bytes = 0;
  if (::ioctl(dev.get(), BLKGETSIZE64, &dev_bytes) != 0) {
    return sys::ErrnoStatus(errno, "BLKGETSIZE64 /dev/vda");
  }
  // The superblock's block count (statvfs leaves out the metadata): a disk exactly the
  // base's size, the default, has nothing to grow and skips the resize call, which
  // costs a device read even then.
  unsigned char sb[1024];
  if (::pread(dev.get(), sb, sizeof(sb), 1024) != static_cast<ssize_t>(sizeof(sb))) {
    return sys::ErrnoStatus(errno, "read the superblock of /dev/vda");
  }
  auto le32 = [&](size_t offset) {
    uint32_t v;
    std::memcpy(&v, sb + offset, sizeof(v));
    return static_cast<uint64_t>(le32toh(v));
  };
  constexpr uint32_t kIncompat64Bit = 0x80;
  uint64_t blocks = le32(0x04);  // s_blocks_count_lo
  if (le32(0x60) & kIncompat64Bit) blocks |= le32(0x150) << 32;  // s_blocks_count_hi
  uint64_t block_size = 1024ull << le32(0x18);  // s_log_block_size
  uint64_t want = dev_bytes / block_size;
  if (want <= blocks) return Status::OK();
  base::UniqueFd root(::open(kRootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys::ErrnoStatus(errno, "open %s", kRootfs);
  if (::ioctl(root.get(), kExt4IocResizeFs, &want) != 0) {
    if (errno == EINVAL || errno == ENOTTY || errno == EOPNOTSUPP) return Status::OK();
    return sys::ErrnoStatus(errno, "grow / to %llu blocks", static_cast<unsigned long long>(want));
  }
  return Status::OK();
}

void WriteSmall(const char* path, std::string_view data) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = ::write(fd, data.data(), data.size());
  (void)ignored;
  ::close(fd);
}

int NetSocket() { return ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

Status BringUp(const char* ifname) {
  base::UniqueFd s(NetSocket());
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return sys::ErrnoStatus(errno, "%s flags", ifname);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return sys::ErrnoStatus(errno, "bring up %s", ifname);
  return Status::OK();
}

bool ParseIpv4(const std::string& text, in_addr* out) { return ::inet_pton(AF_INET, text.c_str(), out) == 1; }

Status ConfigureNetwork(const protocol::NetworkConfig& net, const std::string& hostname) {
  if (net.mode != "nat") return Status::OK();
  // address "10.0.2.15/24", gateway "10.0.2.2".
  auto slash = net.address.find('/');
  in_addr addr{};
  in_addr gw{};
  // Bounded before the cast: a huge prefix must not wrap into 1..32.
  uint64_t prefix_bits = slash == std::string::npos
      ? 24 : base::ParseUint(std::string_view(net.address).substr(slash + 1)).value_or(0);
  int prefix = static_cast<int>(std::min<uint64_t>(prefix_bits, 33));
  if (!ParseIpv4(net.address.substr(0, slash), &addr) || !ParseIpv4(net.gateway, &gw) ||
      prefix < 1 || prefix > 32) {
    return Status::InvalidArgument("bad network config", net.address + " via " + net.gateway);
  }
  base::UniqueFd s(NetSocket());
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  sin->sin_addr = addr;
  if (::ioctl(s.get(), SIOCSIFADDR, &ifr) != 0) return sys::ErrnoStatus(errno, "eth0 address");
  sin->sin_addr.s_addr = htonl(prefix == 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1));
  if (::ioctl(s.get(), SIOCSIFNETMASK, &ifr) != 0) return sys::ErrnoStatus(errno, "eth0 netmask");
  BOXLITE_RETURN_IF_ERROR(BringUp("eth0"));
  struct rtentry rt = {};
  auto* dst = reinterpret_cast<sockaddr_in*>(&rt.rt_dst);
  auto* gateway = reinterpret_cast<sockaddr_in*>(&rt.rt_gateway);
  auto* mask = reinterpret_cast<sockaddr_in*>(&rt.rt_genmask);
  dst->sin_family = gateway->sin_family = mask->sin_family = AF_INET;
  gateway->sin_addr = gw;
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  if (::ioctl(s.get(), SIOCADDRT, &rt) != 0 && errno != EEXIST) {
    return sys::ErrnoStatus(errno, "default route");
  }
  // Name resolution inside the box, as a container runtime provides it.
  std::string resolv;
  for (const auto& dns : net.dns) resolv += "nameserver " + dns + "\n";
  // Like a container runtime: only an image that has /etc gets name resolution files.
  std::string etc = std::string(kRootfs) + "/etc";
  if (!sys::IsDirectory(etc)) return Status::OK();
  ::unlink((etc + "/resolv.conf").c_str());
  (void)sys::WriteFileAtomic(etc + "/resolv.conf", resolv, 0644, false);
  auto hosts = sys::ReadFile(etc + "/hosts");
  if (!hosts.ok() || hosts->find(hostname) == std::string::npos) {
    std::string text = hosts.ok() ? *hosts : "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += "127.0.1.1\t" + hostname + "\n";
    (void)sys::WriteFileAtomic(etc + "/hosts", text, 0644, false);
  }
  return Status::OK();
}

Status MountShares(const std::vector<protocol::MountSpec>& mounts) {
  for (const auto& m : mounts) {
    if (m.guest_path.empty() || m.guest_path[0] != '/' || m.guest_path.find("..") != std::string::npos) {
      return Status::InvalidArgument("mount path must be absolute without ..", m.guest_path);
    }
    std::string target = std::string(kRootfs) + m.guest_path;
    BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(target, 0755));
    unsigned long flags = MS_NOSUID | MS_NODEV | (m.read_only ? MS_RDONLY : 0);
    if (::mount(m.tag.c_str(), target.c_str(), "9p", flags,
                "trans=virtio,version=9p2000.L,msize=512000,cache=mmap,access=client") != 0) {
      return sys::ErrnoStatus(errno, "mount share %s on %s", m.tag.c_str(), m.guest_path.c_str());
    }
  }
  return Status::OK();
}

void SetUpCgroups() {
  if (Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", kCgroupFlags, kCgroupOptions).ok() ||
      Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", kCgroupFlags).ok()) {
    ::mkdir(kUserCgroup, 0755);
    WriteSmall("/sys/fs/cgroup/cgroup.subtree_control", "+pids +memory");
    // User processes weigh the least against the agent (in the root cgroup, at
    // kAgentNice): a fork bomb in the box cannot starve it, so execs and the shutdown
    // still answer. Alone, they still get every idle cycle. Below, each exec has a cgroup
    // of its own (OpenExecCgroup).
    WriteSmall("/sys/fs/cgroup/cgroup.subtree_control", "+cpu");
    WriteSmall("/sys/fs/cgroup/box/cpu.weight", "1");
    WriteSmall("/sys/fs/cgroup/box/cgroup.subtree_control", "+cpu");
  }
}

// The exec cgroups kUserCgroup/e<id> made so far (PID 1 only), in order of id. The first
// kOpenExecCgroups keep their cgroup.events open, so finding a free one is one pread per
// cgroup looked at instead of an open, a read and a close.
struct ExecCgroupEntry {
  int id;
  base::UniqueFd events;
  base::UniqueFd dir;  // The cgroup's directory, what an exec is born into (clone3).
  // Read as empty after its last exec was reaped (ReleaseExecCgroup), and not handed out
  // since.
  bool known_empty = false;
};
std::vector<ExecCgroupEntry> g_exec_cgroups;
// Bounds the exec cgroups: more than the box can have populated at once is never needed.
constexpr size_t kMaxExecCgroups = 8192;
constexpr size_t kOpenExecCgroups = 64;

std::string ExecCgroup(int id) { return base::StrFormat("%s/e%d", kUserCgroup, id); }

// Whether the cgroup has no process (its cgroup.events reads "populated 0").
bool Unpopulated(const ExecCgroupEntry& e) {
  if (!e.events) {
    auto events = sys::ReadFile(ExecCgroup(e.id) + "/cgroup.events");
    return events.ok() && events->find("populated 0") != std::string::npos;
  }
  char buf[128];
  ssize_t n = ::pread(e.events.get(), buf, sizeof(buf) - 1, 0);
  if (n <= 0) return false;
  buf[n] = 0;
  return std::strstr(buf, "populated 0") != nullptr;
}

}  // namespace

int ExecCgroupDir(base::UniqueFd* owned, int* id) {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  *id = -1;
  static const bool per_exec = [] {
    auto control = sys::ReadFile(std::string(kUserCgroup) + "/cgroup.subtree_control");
    return control.ok() && control->find("cpu") != std::string::npos;
  }();
  if (!per_exec) {
    static base::UniqueFd user_dir(::open(kUserCgroup, kFlags));
    return user_dir.get();
  }
  ExecCgroupEntry* found = nullptr;
  for (auto& known : g_exec_cgroups) {
    if (known.known_empty) {
      found = &known;
      break;
    }
  }
  for (size_t i = 0; found == nullptr && i < g_exec_cgroups.size(); ++i) {
    if (Unpopulated(g_exec_cgroups[i])) found = &g_exec_cgroups[i];
  }
  if (found == nullptr && g_exec_cgroups.size() < kMaxExecCgroups) {
    int fresh = static_cast<int>(g_exec_cgroups.size());
    if (::mkdir(ExecCgroup(fresh).c_str(), 0755) == 0 || errno == EEXIST) {
      ExecCgroupEntry e{fresh, base::UniqueFd(), base::UniqueFd(), false};
      if (g_exec_cgroups.size() < kOpenExecCgroups) {
        e.events.reset(
            ::open((ExecCgroup(fresh) + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
        e.dir.reset(::open(ExecCgroup(fresh).c_str(), kFlags));
      }
      g_exec_cgroups.push_back(std::move(e));
      found = &g_exec_cgroups.back();
    }
  }
  if (found == nullptr && !g_exec_cgroups.empty()) found = &g_exec_cgroups.back();
  if (found == nullptr) {
    owned->reset(::open(kUserCgroup, kFlags));
    return owned->get();
  }
  found->known_empty = false;
  *id = found->id;
  if (found->dir) return found->dir.get();
  owned->reset(::open(ExecCgroup(found->id).c_str(), kFlags));
  return owned->get();
}

void ReleaseExecCgroup(int id) {
  if (id < 0 || static_cast<size_t>(id) >= g_exec_cgroups.size()) return;
  ExecCgroupEntry& e = g_exec_cgroups[static_cast<size_t>(id)];
  e.known_empty = Unpopulated(e);
}

void ConsoleLog(const char* fmt, ...) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof(buf), "boxlite-agent: ");
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof(buf) - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = std::min(sizeof(buf) - 2, static_cast<size_t>(n + (m > 0 ? m : 0)));
  buf[len++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, buf, len);
  (void)ignored;
}

Status MountEarly() {
  BOXLITE_RETURN_IF_ERROR(Mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"));
  int console = ::open("/dev/console", O_RDWR | O_CLOEXEC);
  if (console >= 0) {
    ::dup2(console, STDOUT_FILENO);
    ::dup2(console, STDERR_FILENO);
    ::close(console);
  }
  BOXLITE_RETURN_IF_ERROR(Mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                                "gid=5,mode=620,ptmxmode=666"));
  BOXLITE_RETURN_IF_ERROR(Mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  BOXLITE_RETURN_IF_ERROR(Mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  BOXLITE_RETURN_IF_ERROR(Mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  ::symlink("/proc/self/fd", "/dev/fd");
  BringUp("lo");
  // A cgroup for user processes, so the box can limit them (pids) without limiting us.
  // Every exec moves a process into it, and without favordynmods each move first waits
  // for an RCU grace period (20-30 ms under emulation at HZ=100). With it, the mount
  // waits once instead: a child does that while PID 1 goes on booting, and
  // PrepareRootfs waits for the child.
  // Children reset this before they run user code (server.cc ChildMain).
  ::setpriority(PRIO_PROCESS, 0, kAgentNice);
  g_cgroup_setup = ::fork();
  if (g_cgroup_setup <= 0) {
    if (g_cgroup_setup == 0) BecomeIdleBootChild();
    SetUpCgroups();
    if (g_cgroup_setup == 0) _exit(0);
  }
  // A box has no swap: when anonymous memory fills it, reclaim can only evict program
  // text and read it back, over and over, and the box crawls for minutes before the OOM
  // killer acts. Once the working set cannot stay resident for a second, kill instead.
  WriteSmall("/sys/kernel/mm/lru_gen/min_ttl_ms", "1000");
  return Status::OK();
}

Status FindAgentPorts(std::vector<std::string>* paths) {
  // Built-in virtio drivers probe before init runs; retry briefly in case a port's name
  // arrives a moment later (the device sends it after adding the port).
  std::string base(protocol::kAgentPortName);
  for (int attempt = 0; attempt < 500; ++attempt) {
    std::map<int, std::string> found;
    auto ports = sys::ListDir("/sys/class/virtio-ports");
    if (ports.ok()) {
      for (const auto& port : *ports) {
        auto name = sys::ReadFile("/sys/class/virtio-ports/" + port + "/name");
        if (!name.ok()) continue;
        std::string n(base::Trim(*name));
        if (n == base) {
          found[0] = "/dev/" + port;
        } else if (n.starts_with(base + ".")) {
          auto index = base::ParseUint(n.substr(base.size() + 1));
          if (index && *index > 0 && *index < 64) found[static_cast<int>(*index)] = "/dev/" + port;
        }
      }
    }
    if (found.count(0)) {
      paths->clear();
      for (auto& [index, path] : found) paths->push_back(path);
      return Status::OK();
    }
    ::usleep(2000);
  }
  return Status::NotFound("virtio-serial port", base);
}

// Reads what the first exec reads on every image (the user database, the directories of
// the default PATH, the shell) while the guest is otherwise idle, waiting for the host:
// under emulation each cold metadata block costs a disk request of about a millisecond,
// and the first exec would otherwise wait for them one at a time.
namespace {
void WarmFirstExec() {
  char buf[4096];
  for (const char* name : {"/etc/passwd", "/etc/group"}) {
    base::UniqueFd fd(::openat(AT_FDCWD, (std::string(kRootfs) + name).c_str(),
                               O_RDONLY | O_CLOEXEC));
    while (fd && ::read(fd.get(), buf, sizeof(buf)) > 0) {
    }
  }
  struct stat st;
  for (const char* dir : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin",
                          "/bin"}) {
    ::stat((std::string(kRootfs) + dir + "/sh").c_str(), &st);
  }
  base::UniqueFd sh(::open((std::string(kRootfs) + "/bin/sh").c_str(), O_RDONLY | O_CLOEXEC));
  if (sh) ::posix_fadvise(sh.get(), 0, 0, POSIX_FADV_WILLNEED);
}
}  // namespace

bool DiskIsVolatile() {
  auto cmdline = sys::ReadFile("/proc/cmdline");
  if (!cmdline.ok()) return false;
  for (const auto& arg : base::Split(base::Trim(*cmdline), ' ', true)) {
    if (arg == protocol::kVolatileDiskKernelArg) return true;
  }
  return false;
}

Status MountRootfs() {
  // noinit_itable: the inode tables of groups added by growing sit on fresh overlay
  // blocks that already read as zero, so the lazy zeroing thread would only burn CPU.
  // norecovery (no journal) for a volatile disk: see kVolatileDiskKernelArg.
  BOXLITE_RETURN_IF_ERROR(Mount("/dev/vda", kRootfs, "ext4", 0,
                                DiskIsVolatile() ? "noinit_itable,norecovery" : "noinit_itable"));
  // Under emulation every block request costs about a millisecond: read programs in
  // large runs, so starting one faults in its pages with a few requests, not dozens.
  WriteSmall("/sys/block/vda/queue/read_ahead_kb", "4096");
  // Growing the file system adds block groups: 25-40 ms for a few GiB under emulation,
  // more for tens. A child grows it (after reading ahead what the first exec needs)
  // while PID 1 answers the host; WaitForRootfs() holds the first command until it is
  // done, so that command already sees the disk's whole size.
  g_rootfs_setup = ::fork();
  if (g_rootfs_setup <= 0) {
    if (g_rootfs_setup == 0) {
      BecomeIdleBootChild();
      WarmFirstExec();
    }
    Status grown = GrowRootfs();
    if (!grown.ok()) ConsoleLog("%s", grown.ToString().c_str());
    if (g_rootfs_setup == 0) _exit(0);
  }
  return Status::OK();
}

void WaitForRootfs() { WaitForChild(&g_rootfs_setup); }

void NoteChildReaped(pid_t pid) {
  for (pid_t* boot_child : {&g_cgroup_setup, &g_rootfs_setup}) {
    if (*boot_child == pid) *boot_child = 0;
  }
}

Status PrepareRootfs() {
  std::string root = kRootfs;
  BOXLITE_RETURN_IF_ERROR(Mount("proc", (root + "/proc").c_str(), "proc",
                                MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("sysfs", (root + "/sys").c_str(), "sysfs",
                                MS_NOSUID | MS_NODEV | MS_NOEXEC));
  BOXLITE_RETURN_IF_ERROR(Mount("/dev", (root + "/dev").c_str(), nullptr, MS_BIND | MS_REC));
  // The box's own cgroup tree, so its processes can read their limits. Every cgroup2
  // mount sets the hierarchy's options: repeat favordynmods or this one would drop it.
  WaitForChild(&g_cgroup_setup);
  if (!Mount("cgroup2", (root + "/sys/fs/cgroup").c_str(), "cgroup2", kCgroupFlags,
             kCgroupOptions).ok()) {
    (void)Mount("cgroup2", (root + "/sys/fs/cgroup").c_str(), "cgroup2", kCgroupFlags);
  }
  return Status::OK();
}

// Secrets (docs/networking.md): the box CA joins the guest's trust store, on the box's
// own disk. Appended to each usual bundle that is a regular file (Debian/Ubuntu/Alpine,
// Fedora/RHEL, Alpine's cert.pem) unless already there, the Debian bundle made when there
// is none, and kept in /usr/local/share/ca-certificates so update-ca-certificates keeps
// it. SSL_CERT_FILE is not set: tools keep their image's own bundle path.
void TrustBoxCa(const std::string& pem) {
  if (pem.empty()) return;
  std::string root = kRootfs;
  bool any = false;
  for (const char* rel : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                          "/etc/ssl/cert.pem"}) {
    std::string path = root + rel;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    any = true;
    auto text = sys::ReadFile(path);
    if (!text.ok() || text->find(pem) != std::string::npos) continue;
    std::string out = *text;
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += pem;
    (void)sys::WriteFileAtomic(path, out, st.st_mode & 0777, false);
  }
  if (!any) {
    (void)sys::MakeDirs(root + "/etc/ssl/certs", 0755);
    (void)sys::WriteFileAtomic(root + "/etc/ssl/certs/ca-certificates.crt", pem, 0644, false);
  }
  if (sys::MakeDirs(root + "/usr/local/share/ca-certificates", 0755).ok()) {
    (void)sys::WriteFileAtomic(root + "/usr/local/share/ca-certificates/boxlite-box-ca.crt", pem,
                               0644, false);
  }
}

Status ApplyBoxConfig(const protocol::BoxConfig& config) {
  if (!config.hostname.empty() &&
      ::sethostname(config.hostname.data(), config.hostname.size()) != 0) {
    return sys::ErrnoStatus(errno, "sethostname %s", config.hostname.c_str());
  }
  BOXLITE_RETURN_IF_ERROR(MountShares(config.mounts));
  BOXLITE_RETURN_IF_ERROR(ConfigureNetwork(config.network, config.hostname));
  TrustBoxCa(config.trusted_ca_pem);
  if (config.pids_max > 0) {
    WriteSmall("/sys/fs/cgroup/box/pids.max", std::to_string(config.pids_max));
  }
  if (config.clock_unix_ns > 0) {
    struct timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    int64_t guest_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
    if (std::llabs(guest_ns - config.clock_unix_ns) > 1000000000) {
      struct timespec ts = {static_cast<time_t>(config.clock_unix_ns / 1000000000),
                            static_cast<long>(config.clock_unix_ns % 1000000000)};
      ::clock_settime(CLOCK_REALTIME, &ts);
    }
  }
  return Status::OK();
}

Status ApplyRefresh(const protocol::RefreshRequest& refresh) {
  // Entropy first: a fork must not hand out random bytes its siblings also produce.
  // RNDADDENTROPY credits the bytes; RNDRESEEDCRNG makes the CRNG take them now.
  base::UniqueFd rnd(::open("/dev/urandom", O_RDWR | O_CLOEXEC));
  if (!rnd) return sys::ErrnoStatus(errno, "open /dev/urandom");
  // struct rand_pool_info: entropy_count (bits), buf_size (bytes), then the bytes.
  alignas(int) unsigned char pool[2 * sizeof(int) + protocol::kRefreshEntropyBytes] = {};
  int header[2] = {static_cast<int>(protocol::kRefreshEntropyBytes * 8),
                   static_cast<int>(protocol::kRefreshEntropyBytes)};
  std::memcpy(pool, header, sizeof(header));
  std::memcpy(pool + sizeof(header), refresh.entropy.data(), protocol::kRefreshEntropyBytes);
  if (::ioctl(rnd.get(), RNDADDENTROPY, pool) != 0) {
    return sys::ErrnoStatus(errno, "add entropy");
  }
  if (::ioctl(rnd.get(), RNDRESEEDCRNG) != 0) return sys::ErrnoStatus(errno, "reseed the CRNG");
  struct timespec ts = {static_cast<time_t>(refresh.clock_unix_ns / 1000000000),
                        static_cast<long>(refresh.clock_unix_ns % 1000000000)};
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) return sys::ErrnoStatus(errno, "set the clock");
  if (::sethostname(refresh.hostname.data(), refresh.hostname.size()) != 0) {
    return sys::ErrnoStatus(errno, "sethostname");
  }
  // The image's /etc/hosts names the previous hostname (ConfigureNetwork): rename it.
  std::string path = std::string(kRootfs) + "/etc/hosts";
  auto hosts = sys::ReadFile(path);
  if (hosts.ok() && hosts->size() < (1u << 20)) {
    std::string text;
    for (const auto& line : base::Split(*hosts, '\n')) {
      if (line.empty() || line.starts_with("127.0.1.1")) continue;
      text += line + "\n";
    }
    text += "127.0.1.1\t" + refresh.hostname + "\n";
    (void)sys::WriteFileAtomic(path, text, 0644, false);
  }
  return Status::OK();
}

void PowerOff() {
  // Stop every process so the box disk can be unmounted cleanly: a persistent box's next
  // boot then needs no journal recovery.
  ::kill(-1, SIGKILL);
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  ::sync();
  for (const char* sub : {"/dev/pts", "/dev/shm", "/dev", "/sys", "/proc"}) {
    ::umount2((std::string(kRootfs) + sub).c_str(), MNT_DETACH);
  }
  if (::umount(kRootfs) != 0) ::mount(nullptr, kRootfs, nullptr, MS_REMOUNT | MS_RDONLY, nullptr);
  ::sync();
  // The guest kernel runs without ACPI: a triple-fault reboot (reboot=t) with QEMU's
  // -no-reboot is what ends the VM.
  ::reboot(RB_AUTOBOOT);
  while (true) ::pause();
}

void Fatal(const Status& status) {
  ConsoleLog("fatal: %s", status.ToString().c_str());
  PowerOff();
}

}  // namespace boxlite::agent

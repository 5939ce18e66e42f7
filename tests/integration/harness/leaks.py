# The one leak monitor of the test suites (tests/integration and python/tests): what a
# test starts, it must end. A LeakMonitor takes a snapshot when made and, in check(),
# fails with one line per kind of leftover:
#   processes  box programs (VM, network helper, console writer) holding a file under the
#              given roots (the homes of this session: a box's disk, log or base image)
#   files      entries in the tmp/ directory of any BoxLite home under the roots (an
#              ephemeral box's files exist there by name only until they are unlinked)
#   sockets    unix sockets of this process that reach outside it (the SDK's channels run
#              in the test process; a channel left open to a VM or agent socket is a leak)
#   mounts     mount points in the host's namespace under the roots or /tmp (where the
#              jail builds its minimal root, in the jailed process's own namespace)
# Other programs' VMs on the machine are ignored: only files under the roots count.
import gc
import os
import time
import warnings

# The programs a box runs on the host: its VM, its network helper and its console writer.
BOX_PROGRAMS = ("qemu-system", "boxlite-net", "boxlite-console")


def live_processes():
    """Yields (pid, parent pid, argv as a list of bytes) of every live (non-zombie) process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                after = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if after[0] == "Z":
                continue
            yield int(entry), int(after[1]), argv
        except (OSError, IndexError, ValueError):
            continue


def _prefixes(roots):
    return [os.path.realpath(str(r)).rstrip("/") + "/" for r in roots]


def holds_file_under(pid, roots):
    """True when process `pid` has a descriptor on a file under one of `roots`."""
    prefixes = _prefixes(roots)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if any(target.startswith(p) for p in prefixes):
            return True
    return False


def box_processes(roots):
    """Live box processes holding a file under `roots`: pid -> command line."""
    out = {}
    for pid, _, argv in live_processes():
        name = os.path.basename(argv[0]).decode(errors="replace") if argv and argv[0] else ""
        if name.startswith(BOX_PROGRAMS) and holds_file_under(pid, roots):
            out[pid] = b" ".join(argv).decode(errors="replace")
    return out


def homes_under(roots, depth=4):
    """BoxLite homes (directories with tmp/ and boxes/) at most `depth` levels below `roots`."""
    homes = set()
    for root in _prefixes(roots):
        level = [root.rstrip("/")]
        for _ in range(depth + 1):
            below = []
            for d in level:
                if os.path.isdir(os.path.join(d, "tmp")) and os.path.isdir(os.path.join(d, "boxes")):
                    homes.add(d)
                try:
                    below += [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
                except OSError:
                    pass
            level = below
    return homes


def home_tmp_files(roots):
    """Entries of the tmp/ directory of every home under `roots`."""
    out = set()
    for home in homes_under(roots):
        try:
            out |= {os.path.join(home, "tmp", n) for n in os.listdir(os.path.join(home, "tmp"))}
        except OSError:
            pass
    return out


def _unix_peers():
    """inode -> peer inode of every connected unix socket on the host (`ss -x`)."""
    import subprocess

    out = subprocess.run(["ss", "-xan"], capture_output=True, text=True, check=True).stdout
    peers = {}
    for line in out.splitlines()[1:]:
        fields = line.split()
        # Netid State Recv-Q Send-Q Local Port Peer Port
        if len(fields) >= 8 and fields[5].isdigit() and fields[7].isdigit():
            peers[fields[5]] = fields[7]
    return peers


def own_sockets():
    """Unix sockets of this process that reach outside it, as `socket:[inode]`: the SDK's
    channels to a VM or to a box's agent socket. A pair with both ends in this process
    (an event loop's wake-up pair, a library's) is its own business, and so is a TCP
    connection a runtime keeps to a registry."""
    mine = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine[target[8:-1]] = target
    if not mine:
        return set()
    peers = _unix_peers()
    return {name for inode, name in mine.items()
            if inode in peers and peers[inode] not in mine}


def host_mounts(roots):
    """(mount id, mount point) of the host's mounts under `roots` or /tmp."""
    prefixes = _prefixes(roots) + ["/tmp/"]
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # \040 for a space...
            if any((point.rstrip("/") + "/").startswith(p) for p in prefixes):
                out.add((fields[0], point))
    return out


def _settled(probe, before, timeout):
    """What `probe()` has beyond `before`, after waiting up to `timeout` seconds for it to
    go (processes end and descriptors close a moment after their owner lets go)."""
    deadline = time.monotonic() + timeout
    while True:
        extra = probe() - before
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


class LateRelease(UserWarning):
    """A resource that was freed, but only by the garbage collector (a reference cycle)."""


class LeakMonitor:
    """A snapshot of box processes, home tmp/ files, own sockets and mounts under `roots`
    (a set that may grow while the test runs: it is read again at check time)."""

    def __init__(self, roots):
        self.roots = roots
        self.processes = set(box_processes(roots))
        self.files = home_tmp_files(roots)
        self.sockets = own_sockets()
        self.mounts = host_mounts(roots)

    def check(self, allow_processes=False, timeout=5.0):
        """Raises AssertionError naming every leftover (what is new since the snapshot)."""
        problems = []
        if not allow_processes:
            procs = _settled(lambda: set(box_processes(self.roots)), self.processes, timeout)
            if procs:
                lines = {p: c for p, c in box_processes(self.roots).items() if p in procs}
                problems.append(f"box processes still running: {lines}")
            files = _settled(lambda: home_tmp_files(self.roots), self.files, timeout)
            if files:
                problems.append(f"files left in a home's tmp/: {sorted(files)}")
        # A socket held by a reference cycle goes when the collector runs: collect first,
        # so that what fails the test is held by something still reachable, and say which
        # ones only the collector freed (their owner lets go later than it should).
        cyclic = _settled(own_sockets, self.sockets, min(timeout, 1.0))
        if cyclic:
            gc.collect()
        sockets = _settled(own_sockets, self.sockets, timeout) if cyclic else set()
        if cyclic - sockets:
            warnings.warn(LateRelease(f"sockets freed only by the garbage collector: "
                                      f"{sorted(cyclic - sockets)}"), stacklevel=2)
        if sockets:
            problems.append(f"sockets of this process left open: {sorted(sockets)}")
        mounts = _settled(lambda: host_mounts(self.roots), self.mounts, timeout)
        if mounts:
            problems.append(f"mounts left in the host's namespace: {sorted(p for _, p in mounts)}")
        assert not problems, "; ".join(problems)

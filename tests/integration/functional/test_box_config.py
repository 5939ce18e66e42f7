"""Box configuration, each checked from inside the guest: resources, environment and
identity, host mounts, persistent boxes, files and metrics (issue: box configuration)."""
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Cli, qemu_processes, wait_for

BASE = "boxlite/base"


# ------------------------------------------------------------------------ resources

def test_cpus_memory_and_disk_size_are_what_the_guest_sees(cli):
    """--cpus -> nproc, --memory -> MemTotal (minus the kernel's reservation),
    --disk-size -> the size of / (grown online at boot)."""
    p = cli.run("run", "--rm", "--cpus", "2", "--memory", "512", "--disk-size", "2G", BASE,
                "sh", "-c", "nproc; grep MemTotal /proc/meminfo; df -k / | tail -1", timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0] == "2"
    mem_kib = int(lines[1].split()[1])
    assert 400 * 1024 < mem_kib <= 512 * 1024
    size_kib = int(lines[2].split()[1])
    assert 1800 * 1024 < size_kib <= 2048 * 1024


def test_default_disk_needs_no_growing_and_a_small_disk_uses_the_compact_base(cli):
    """The default disk is the image's base file system itself, built with 1 GiB free, so
    the guest grows nothing at boot; a disk smaller than that base starts from the
    compact base (built on demand, kept in the store) and is grown to the size asked."""
    script = "df -k / | tail -1; dmesg | grep -c 'resizing filesystem'"
    p = cli.run("run", "--rm", BASE, "sh", "-c", script, timeout=300)
    assert p.returncode == 1, p.stderr  # grep -c found nothing: exit 1 after printing 0.
    df, resizes = p.stdout.decode().splitlines()
    assert resizes == "0"
    assert int(df.split()[3]) >= 1024 * 1024  # Available KiB: at least 1 GiB free.

    p = cli.run("run", "--rm", "--disk-size", "512M", BASE, "sh", "-c", script, timeout=300)
    assert p.returncode == 0, p.stderr
    df, resizes = p.stdout.decode().splitlines()
    assert int(resizes) >= 1
    assert 450 * 1024 < int(df.split()[1]) <= 512 * 1024
    rootfs = {f.name for f in (cli.home / "images" / "rootfs").glob("*.ext4")}
    assert any(name.endswith(".compact.ext4") for name in rootfs), rootfs
    assert any(not name.endswith(".compact.ext4") for name in rootfs), rootfs


def test_ephemeral_disk_runs_without_journal_and_a_persistent_one_keeps_it(cli):
    """An ephemeral box's overlay dies with it, so its ext4 is mounted without the journal
    (norecovery); a persistent box's disk outlives crashes and keeps journaling."""
    p = cli.run("run", "--rm", BASE, "grep", "^/dev/vda ", "/proc/mounts", timeout=300)
    assert p.returncode == 0, p.stderr
    assert b"norecovery" in p.stdout, p.stdout
    name = "journaled"
    assert cli.run("run", "-d", "--name", name, BASE, "sleep", "1000").returncode == 0
    try:
        p = cli.run("exec", name, "grep", "^/dev/vda ", "/proc/mounts")
        assert p.returncode == 0, p.stderr
        assert b"norecovery" not in p.stdout, p.stdout
    finally:
        assert cli.run("rm", "-f", name).returncode == 0


def test_full_disk_is_enospc_in_the_guest_and_harmless(cli):
    """Filling the disk gives ENOSPC to the writer; the box keeps working."""
    p = cli.run("run", "--rm", "--disk-size", "200MiB", BASE, "sh", "-c",
                "dd if=/dev/zero of=/fill bs=1M count=400 2>&1 | grep 'No space'; sync; "
                "rm /fill; echo recovered", timeout=300)
    assert p.returncode == 0, p.stderr
    assert b"No space left on device" in p.stdout
    assert p.stdout.endswith(b"recovered\n")


def test_memory_exhaustion_meets_the_guest_oom_killer(cli):
    """A process allocating past the box's memory is killed by the guest's OOM killer
    (exit 137); the box and the host are unharmed."""
    # tail keeps the last ten lines; /dev/zero has no newline, so its buffer grows
    # until the kernel runs out of memory and kills it; the exec's own shell lives on.
    p = cli.run("run", "--rm", "--memory", "256", BASE, "sh", "-c",
                "sh -c 'tail /dev/zero'; echo status=$?; "
                "dmesg | grep -c 'Out of memory: Killed process'; echo alive", timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-3:] == [b"status=137", b"1", b"alive"], p.stdout


def test_fork_bomb_is_contained_by_the_pids_limit(cli):
    """A fork bomb stalls on the box's pids limit; the box still runs commands after."""
    p = cli.run("run", "--rm", BASE, "sh", "-c",
                "cat /sys/fs/cgroup/box/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; "
                "(b() { b | b & }; b) 2>/dev/null & sleep 5; kill -9 -1 2>/dev/null; "
                "sleep 1; echo survived", timeout=300)
    assert p.returncode in (0, 137), p.stderr
    assert p.stdout.split(b"\n")[0].strip().isdigit()
    assert b"survived" in p.stdout or p.returncode == 137


# ----------------------------------------------------------- environment and identity

@pytest.mark.allow_background_vms
def test_env_merges_image_box_and_exec_later_wins(cli, registry):
    """Box-wide env overrides the image's Env; an exec's env overrides both."""
    env = dict(registry.env())
    c = Cli(cli.binary, cli.home, env)
    name = "env-merge"
    ref = registry.refs["debian-python"]
    assert c.run("create", "--name", name, "-e", "A=box", "-e", "B=box", ref,
                 timeout=300).returncode == 0
    try:
        assert c.run("start", name, timeout=300).returncode == 0
        p = c.run("exec", "-e", "B=exec", name, "sh", "-c", 'echo "$A $B"; echo $PATH')
        assert p.returncode == 0, p.stderr
        out = p.stdout.decode().splitlines()
        assert out[0] == "box exec"
        assert "/usr/local/bin" in out[1]  # From the image's Env.
    finally:
        c.run("rm", "-f", name)


@pytest.mark.parametrize("user,expect", [
    ("app", "1000 1000 /home/app"),
    ("1000:1000", "1000 1000 /home/app"),
    ("nobody", "65534 65534 /nonexistent"),
    ("4242", "4242 4242 /"),
])
def test_user_by_name_or_uid_gid_from_the_images_passwd(cli, registry, user, expect):
    """--user resolves names through the image's /etc/passwd and /etc/group."""
    c = Cli(cli.binary, cli.home, registry.env())
    p = c.run("run", "--rm", "-u", user, "-w", "/", registry.refs["layered"], "sh", "-c",
              'echo "$(id -u) $(id -g) $HOME"', timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == expect


def test_unknown_user_is_a_clear_error(cli):
    p = cli.run("run", "--rm", "-u", "ghost", BASE, "id")
    assert p.returncode == 1  # BoxLite failed (0.9: 1), not the command
    assert b'"ghost"' in p.stderr and b"/etc/passwd" in p.stderr


# ------------------------------------------------------------------------ host mounts

def test_four_mounts_read_write_and_read_only(cli, tmp_path):
    """Four shares at once: reads and writes round-trip with the host; a read-only
    share gives EROFS in the guest and leaves the host unchanged."""
    dirs = []
    for i in range(4):
        d = tmp_path / f"share{i}"
        d.mkdir()
        (d / "in.txt").write_text(f"host-{i}\n")
        dirs.append(d)
    if os.geteuid() == 0:
        # Started by root, the VM runs as the owner of its read-write shares, who must not
        # be root (docs/security.md): they belong to a local user.
        for d in dirs[:3]:
            os.chown(d, 65534, 65534)
    p = cli.run("run", "--rm",
                "-v", f"{dirs[0]}:/m0", "-v", f"{dirs[1]}:/m1", "-v", f"{dirs[2]}:/m2:rw",
                "-v", f"{dirs[3]}:/m3:ro", BASE, "sh", "-c",
                "cat /m0/in.txt /m1/in.txt /m2/in.txt /m3/in.txt; "
                "echo guest-0 > /m0/out.txt; echo guest-2 > /m2/out.txt; "
                "echo nope > /m3/out.txt; echo ro=$?; rm /m3/in.txt; echo rm=$?",
                timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith("host-0\nhost-1\nhost-2\nhost-3\n")
    assert "ro=1" in out and "rm=1" in out
    assert b"Read-only file system" in p.stderr
    assert (dirs[0] / "out.txt").read_text() == "guest-0\n"
    assert (dirs[2] / "out.txt").read_text() == "guest-2\n"
    assert not (dirs[3] / "out.txt").exists()
    assert (dirs[3] / "in.txt").read_text() == "host-3\n"


def test_missing_mount_source_fails_before_boot(cli, tmp_path):
    """A host path that does not exist is refused before any VM starts."""
    before = set(qemu_processes())
    p = cli.run("run", "--rm", "-v", f"{tmp_path}/absent:/x", BASE, "true")
    assert p.returncode == 1  # BoxLite failed (0.9: 1), not the command
    assert b"does not exist" in p.stderr and b"absent" in p.stderr
    assert set(qemu_processes()) == before


# ----------------------------------------------------------------- persistent boxes

@pytest.mark.allow_background_vms
def test_persistent_box_lifecycle_across_processes(cli):
    """A named detached box: ls shows it running; another process execs into it by
    name; stop/start keep the disk; rm deletes everything."""
    name = "keeper"
    assert cli.run("run", "-d", "--name", name, BASE, "sleep", "1000").returncode == 0
    try:
        listing = json.loads(cli.run("ls", "-a", "--format", "json").stdout)
        mine = [b for b in listing if b["name"] == name]
        assert mine and mine[0]["state"] == "running"
        assert cli.run("exec", name, "sh", "-c", "echo kept > /root/state").returncode == 0
        assert cli.run("stop", name).returncode == 0
        listing = json.loads(cli.run("ls", "-a", "--format", "json").stdout)
        assert [b["state"] for b in listing if b["name"] == name] == ["stopped"]
        assert cli.run("exec", name, "true").returncode != 0
        assert cli.run("start", name).returncode == 0
        p = cli.run("exec", name, "cat", "/root/state")
        assert p.stdout == b"kept\n", p.stderr
    finally:
        assert cli.run("rm", "-f", name).returncode == 0
    assert not [b for b in json.loads(cli.run("ls", "-a", "--format", "json").stdout)
                if b["name"] == name]
    assert list((cli.home / "boxes").glob("*/box.json")) == []


@pytest.mark.allow_background_vms
def test_box_whose_vm_died_is_reported_failed(cli):
    """When a box's VM dies (no stop asked, its command did not exit), ls reports it
    failed (BoxLite 0.9's state) instead of hanging."""
    name = "doomed"
    assert cli.run("run", "-d", "--name", name, BASE, "sleep", "1000").returncode == 0
    try:
        info = json.loads(cli.run("inspect", name).stdout)[0]
        os.kill(info["pid"], 9)
        wait_for(lambda: not os.path.exists(f"/proc/{info['pid']}/cmdline") or
                 open(f"/proc/{info['pid']}/stat").read().split(")")[1].split()[0] == "Z",
                 timeout=10)
        listing = json.loads(cli.run("ls", "-a", "--format", "json", timeout=30).stdout)
        assert [b["state"] for b in listing if b["name"] == name] == ["failed"]
    finally:
        cli.run("rm", "-f", name)


@pytest.mark.allow_background_vms
def test_two_processes_use_one_home_at_once(cli):
    """Two processes create and use boxes in one home concurrently."""
    procs = [cli.popen("run", "--rm", "--name", f"twin-{i}", BASE, "sh", "-c",
                       f"sleep 2; echo twin-{i}", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [o[0] for o in outs] == [b"twin-0\n", b"twin-1\n"], [o[1] for o in outs]


def test_names_are_unique_across_processes(cli):
    name = "unique-name"
    assert cli.run("create", "--name", name, BASE).returncode == 0
    try:
        p = cli.run("create", "--name", name, BASE)
        assert p.returncode != 0 and b"exists" in p.stderr
    finally:
        cli.run("rm", "-f", name)


# ------------------------------------------------------------------------------ files

@pytest.mark.allow_background_vms
def test_copy_in_and_out_keep_modes_and_bytes(cli, tmp_path):
    """cp copies files and trees both ways: modes kept, binary-exact, symlinks kept."""
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    blob = os.urandom(3 * 1024 * 1024 + 17)
    (src / "sub" / "blob.bin").write_bytes(blob)
    (src / "run.sh").write_text("#!/bin/sh\necho ran\n")
    os.chmod(src / "run.sh", 0o750)
    os.chmod(src / "sub", 0o711)
    os.symlink("sub/blob.bin", src / "link")
    name = "files"
    assert cli.run("run", "-d", "--name", name, BASE, "sleep", "1000").returncode == 0
    try:
        assert cli.run("cp", str(src), f"{name}:/root/").returncode == 0
        p = cli.run("exec", name, "sh", "-c",
                    "/root/tree/run.sh; stat -c '%a %n' /root/tree/run.sh /root/tree/sub; "
                    "sha256sum /root/tree/sub/blob.bin; readlink /root/tree/link")
        out = p.stdout.decode().splitlines()
        assert out[0] == "ran"
        assert out[1] == "750 /root/tree/run.sh"
        assert out[2] == "711 /root/tree/sub"
        import hashlib
        assert out[3].split()[0] == hashlib.sha256(blob).hexdigest()
        assert out[4] == "sub/blob.bin"
        back = tmp_path / "back"
        back.mkdir()
        assert cli.run("cp", f"{name}:/root/tree", str(back)).returncode == 0
        assert (back / "tree" / "sub" / "blob.bin").read_bytes() == blob
        assert stat.S_IMODE(os.stat(back / "tree" / "run.sh").st_mode) == 0o750
        assert os.readlink(back / "tree" / "link") == "sub/blob.bin"
        bad = cli.run("cp", f"{name}:/no/such/file", str(back))
        assert bad.returncode != 0 and b"/no/such/file" in bad.stderr
    finally:
        cli.run("rm", "-f", name)


# ---------------------------------------------------------------- metrics and info

@pytest.mark.allow_background_vms
def test_inspect_reports_state_resources_ports_mounts_and_metrics(cli, tmp_path):
    name = "inspected"
    # pytest makes tmp_path private (0700); a share must be readable by the user the VM
    # runs as (docs/security.md).
    os.chmod(tmp_path, 0o755)
    assert cli.run("run", "-d", "--name", name, "--cpus", "1", "--memory", "384",
                   "-v", f"{tmp_path}:/data:ro", BASE, "sleep", "1000").returncode == 0
    try:
        cli.run("exec", name, "true")
        info = json.loads(cli.run("inspect", name).stdout)[0]
        assert info["state"] == "running"
        assert info["memory_mib"] == 384 and info["cpus"] == 1
        assert info["mounts"] == [{"host": str(tmp_path), "guest": "/data", "read_only": True}]
        m = info["metrics"]
        assert m["cpu_seconds"] > 0
        assert m["memory_rss_bytes"] > 10 * 1024 * 1024
        assert 300 * 1024 * 1024 < m["guest_memory_total_bytes"] <= 384 * 1024 * 1024
        assert 0 < m["guest_memory_used_bytes"] < m["guest_memory_total_bytes"]
        assert m["boot_seconds"] > 0
    finally:
        cli.run("rm", "-f", name)


# ------------------------------------------------------------------------ no leftovers

def test_thirty_boxes_created_and_removed_leave_nothing(fresh_cli):
    """30 boxes created and removed in turn leave no process, socket, mount or file;
    the home's size returns to where it started, apart from the image cache. Any one
    box's leftover (a VM, a file of boxes/ or tmp/, a byte of the home) fails it; 30 runs
    also take the home's per-box names (box ids, tmp/ entries) through many reuses."""
    def home_size():
        total = 0
        for p in fresh_cli.home.rglob("*"):
            if "images" in p.relative_to(fresh_cli.home).parts:
                continue
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        return total

    assert fresh_cli.run("run", "--rm", BASE, "true").returncode == 0  # Warms the image.
    before_size = home_size()
    before_vms = set(qemu_processes())
    for i in range(30):
        p = fresh_cli.run("run", "--rm", BASE, "true", timeout=300)
        assert p.returncode == 0, (i, p.stderr)
    assert set(qemu_processes()) == before_vms
    assert home_size() == before_size
    assert list((fresh_cli.home / "tmp").iterdir()) == []
    assert [p.name for p in (fresh_cli.home / "boxes").iterdir()] == []
    # BoxLite never mounts on the host; nothing of this home may be a mount point.
    assert str(fresh_cli.home) not in Path("/proc/self/mountinfo").read_text()

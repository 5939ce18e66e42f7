"""Warm start (docs/snapshots.md, "Warm start"): the first box of a tuple (image, sizes,
kernel, agent, devices) leaves a template memory snapshot taken before the host configures
the guest; later boxes of that tuple restore it instead of booting, and still come out
exactly as asked (hostname, env, mounts, network). Templates are rebuilt when an input
changes and go with their image."""
import json
import subprocess
import time
import os
import shutil
from pathlib import Path

import pytest

from conftest import Cli

BASE = "boxlite/base"
# Small guests: a template holds the RAM the guest touched, saved once per tuple.
MEM = ["--memory", "256"]


@pytest.fixture(scope="module")
def wcli(cli_binary, tmp_path_factory, registry):
    """A home of its own (its templates are counted), the loopback registry as mirror."""
    return Cli(cli_binary, tmp_path_factory.mktemp("warm-home"), registry.env())


def templates(home):
    """key -> template.json of every published template of the home."""
    out = {}
    root = Path(home) / "templates"
    if root.exists():
        for d in root.iterdir():
            if len(d.name) == 64 and (d / "template.json").exists():
                out[d.name] = json.loads((d / "template.json").read_text())
    return out


def inspect(cli, name):
    p = cli.run("inspect", name)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    return info[0] if isinstance(info, list) else info


def run_detached(cli, name, *flags, env=None):
    p = cli.run("run", "-d", "--name", name, *MEM, *flags, BASE, "sleep", "1000",
                timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    return inspect(cli, name)


def sh(cli, name, script):
    p = cli.run("exec", name, "sh", "-c", script, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def remove(cli, *names):
    for n in names:
        cli.run("rm", "-f", n)


def test_second_box_restores_the_template_and_is_itself(wcli, tmp_path):
    """The first box boots and leaves a template; the next two of the tuple restore it
    (inspect says warm_start), run commands, have their own hostnames and env and read
    different /dev/urandom bytes."""
    before = templates(wcli.home)
    try:
        a = run_detached(wcli, "warm-a")
        assert a["warm_start"] is False
        made = set(templates(wcli.home)) - set(before)
        assert len(made) == 1, templates(wcli.home)
        record = templates(wcli.home)[made.pop()]
        assert record["inputs"]["memory_mib"] == 256
        assert record["inputs"]["agent_ports"] == 4  # A persistent box's ports.
        b = run_detached(wcli, "warm-b", "-e", "WARM_ENV=from-b")
        c = run_detached(wcli, "warm-c")
        assert b["warm_start"] is True and c["warm_start"] is True
        assert len(templates(wcli.home)) == len(before) + 1  # Restored, not captured again.
        assert sh(wcli, "warm-b", "hostname") == "warm-b\n"
        assert sh(wcli, "warm-c", "hostname") == "warm-c\n"
        assert sh(wcli, "warm-b", "echo $WARM_ENV") == "from-b\n"
        assert sh(wcli, "warm-c", "echo ${WARM_ENV:-unset}") == "unset\n"
        rb = sh(wcli, "warm-b", "head -c 32 /dev/urandom | od -An -tx1")
        rc = sh(wcli, "warm-c", "head -c 32 /dev/urandom | od -An -tx1")
        assert rb != rc
        # A file written in one is not in the other: each has its own disk.
        sh(wcli, "warm-b", "echo mine > /only-b")
        assert sh(wcli, "warm-c", "test -e /only-b && echo shared || echo own") == "own\n"
    finally:
        remove(wcli, "warm-a", "warm-b", "warm-c")


def test_network_comes_out_as_asked_and_a_box_with_mounts_boots(wcli, tmp_path):
    """A warm box without network has no eth0, one with network has its address; a box
    with a host mount boots (memory images carry no 9p device) and sees its share."""
    share = tmp_path / "share"
    share.mkdir()
    (share / "which").write_text("mine\n")
    os.chmod(share, 0o755)
    os.chmod(share / "which", 0o644)
    try:
        run_detached(wcli, "off-1", "--network", "none")
        off = run_detached(wcli, "off-2", "--network", "none")
        assert off["warm_start"] is True
        assert sh(wcli, "off-2", "ls /sys/class/net").split() == ["lo"]
        on = run_detached(wcli, "on-1")
        assert on["warm_start"] is True  # The tuple of the first test.
        assert "eth0" in sh(wcli, "on-1", "ls /sys/class/net").split()
        assert "inet 10.0.2." in sh(wcli, "on-1", "ip -4 addr show eth0")
        mounted = run_detached(wcli, "mnt-1", "-v", f"{share}:/data:ro")
        assert mounted["warm_start"] is False
        assert sh(wcli, "mnt-1", "cat /data/which") == "mine\n"
    finally:
        remove(wcli, "off-1", "off-2", "on-1", "mnt-1")


def test_warm_start_turned_off_boots(wcli):
    """--no-warm and BOXLITE_WARM=0 boot even when the tuple has a template."""
    try:
        run_detached(wcli, "seed")  # The tuple has a template (this or an earlier box).
        assert run_detached(wcli, "cold-flag", "--no-warm")["warm_start"] is False
        assert run_detached(wcli, "cold-env", env={"BOXLITE_WARM": "0"})["warm_start"] is False
        assert sh(wcli, "cold-env", "echo up") == "up\n"
    finally:
        remove(wcli, "seed", "cold-flag", "cold-env")


def test_new_kernel_or_agent_makes_a_new_template(wcli, tmp_path):
    """A data dir whose initramfs (the agent) has one byte more, then whose kernel has one
    byte more: each gives a new template key, booted cold first, then restored."""
    installed = Path(os.environ.get("BOXLITE_DATA_DIR", "/usr/local/share/boxlite"))
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(installed / "images", data / "images")
    os.symlink(installed / "vmlinux", data / "vmlinux")
    shutil.copyfile(installed / "initramfs.cpio", data / "initramfs.cpio")
    with open(data / "initramfs.cpio", "ab") as f:
        f.write(b"\0")
    env = {"BOXLITE_DATA_DIR": str(data)}
    try:
        run_detached(wcli, "k0")  # The installed assets' template exists.
        keys = set(templates(wcli.home))
        assert run_detached(wcli, "agent-1", env=env)["warm_start"] is False
        new = set(templates(wcli.home)) - keys
        assert len(new) == 1
        assert (templates(wcli.home)[new.pop()]["inputs"]["initramfs_sha256"]
                not in {t["inputs"]["initramfs_sha256"] for k, t in templates(wcli.home).items()
                        if k in keys})
        assert run_detached(wcli, "agent-2", env=env)["warm_start"] is True
        os.unlink(data / "vmlinux")
        shutil.copyfile(installed / "vmlinux", data / "vmlinux")
        with open(data / "vmlinux", "ab") as f:
            f.write(b"\0")
        keys = set(templates(wcli.home))
        assert run_detached(wcli, "kernel-1", env=env)["warm_start"] is False
        assert len(set(templates(wcli.home)) - keys) == 1
        assert sh(wcli, "kernel-1", "echo up") == "up\n"
    finally:
        remove(wcli, "k0", "agent-1", "agent-2", "kernel-1")


def test_removing_the_image_removes_its_templates(wcli, registry):
    """A template of a pulled image goes when the image is removed (nothing left)."""
    ref = registry.refs["layered"]  # A layer chain of its own.
    before = templates(wcli.home)
    p = wcli.run("run", "--rm", *MEM, ref, "true", timeout=300)
    assert p.returncode == 0, p.stderr
    made = set(templates(wcli.home)) - set(before)
    assert len(made) == 1
    key = made.pop()
    p = wcli.run("run", "--rm", *MEM, ref, "echo", "warm", timeout=300)
    assert p.returncode == 0 and p.stdout == b"warm\n", p.stderr
    assert wcli.run("rmi", ref).returncode == 0
    assert key not in templates(wcli.home)
    assert not (Path(wcli.home) / "templates" / key).exists()
    leftovers = [d.name for d in (Path(wcli.home) / "templates").iterdir()
                 if d.name.startswith(".")]
    assert leftovers == []
    assert set(templates(wcli.home)) == set(before)


def test_an_early_exec_neither_configures_the_box_nor_its_template(wcli):
    """A client that joins a box while its launcher still boots it (and saves the warm-start
    template) waits for the launcher's hello: its empty config never becomes the box's.
    Before, an exec arriving then left eth0 down in that box and in every box restored from
    the template it saved."""
    mem = ["--memory", "272"]  # A tuple of its own: this box saves its template.
    first = wcli.popen("run", "--name", "early", *mem, BASE, "sleep", "1000",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert first.poll() is None, "the launching `boxlite run` ended"
            p = wcli.run("exec", "early", "sh", "-c", "hostname; ip -4 addr show eth0", timeout=300)
            if p.returncode == 0:
                break
            assert time.monotonic() < deadline, p.stderr
            time.sleep(0.05)
        out = p.stdout.decode()
        assert out.splitlines()[0] == "early"
        assert "inet 10.0.2.15/24" in out, out
        p = wcli.run("run", "-d", "--name", "early-2", *mem, BASE, "sleep", "1000", timeout=300)
        assert p.returncode == 0, p.stderr
        assert inspect(wcli, "early-2")["warm_start"] is True
        assert "inet 10.0.2.15/24" in sh(wcli, "early-2", "ip -4 addr show eth0")
        assert sh(wcli, "early-2", "hostname") == "early-2\n"
    finally:
        first.kill()
        first.wait()
        remove(wcli, "early", "early-2")

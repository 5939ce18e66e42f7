# Self-tests of the leak monitor (leaks.py): each kind of leftover it promises to find is
# made on purpose, without a VM, and must fail the check; what a test cleans up must not.
import contextlib
import os
import shutil
import socket
import subprocess

import pytest

from harness.leaks import LeakMonitor


@contextlib.contextmanager
def running(argv, **kwargs):
    """A process for the duration of the block, killed and reaped after it."""
    proc = subprocess.Popen(argv, **kwargs)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _home(root):
    home = root / "home"
    for sub in ("tmp", "boxes"):
        (home / sub).mkdir(parents=True)
    return home


def test_a_box_program_left_running_is_found(tmp_path):
    """A process named like a box program (boxlite-net) holding a file under the roots."""
    roots = {str(tmp_path)}
    prog = tmp_path / "boxlite-net"
    shutil.copy("/bin/sleep", prog)
    monitor = LeakMonitor(roots)
    held = open(tmp_path / "qemu.log", "w")
    with running([str(prog), "60"], stdout=held):
        held.close()
        with pytest.raises(AssertionError, match="box processes still running"):
            monitor.check(timeout=0.2)
    monitor.check(timeout=0.2)


def test_a_file_left_in_a_home_tmp_is_found(tmp_path):
    """An entry in a home's tmp/ (a home two levels below a root)."""
    home = _home(tmp_path / "t")
    monitor = LeakMonitor({str(tmp_path)})
    (home / "tmp" / "abc.qcow2").write_bytes(b"")
    with pytest.raises(AssertionError, match=r"files left in a home's tmp/: .*abc\.qcow2"):
        monitor.check(timeout=0.2)
    (home / "tmp" / "abc.qcow2").unlink()
    monitor.check(timeout=0.2)


def test_a_socket_to_another_process_is_found(tmp_path):
    """A unix socket whose peer is outside this process; a pair inside it is not a leak."""
    monitor = LeakMonitor({str(tmp_path)})
    inside = socket.socketpair()
    ours, theirs = socket.socketpair()
    with running(["sleep", "60"], pass_fds=[theirs.fileno()]):
        theirs.close()
        with pytest.raises(AssertionError, match="sockets of this process left open"):
            monitor.check(timeout=0.2)
        ours.close()
    monitor.check(timeout=0.2)
    for s in inside:
        s.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_mount_left_under_a_root_is_found(tmp_path):
    """A mount point under the roots in the host's namespace."""
    point = tmp_path / "mnt"
    point.mkdir()
    monitor = LeakMonitor({str(tmp_path)})
    subprocess.run(["mount", "-t", "tmpfs", "none", str(point)], check=True)
    try:
        with pytest.raises(AssertionError, match="mounts left in the host's namespace"):
            monitor.check(timeout=0.2)
    finally:
        subprocess.run(["umount", str(point)], check=True)
    monitor.check(timeout=0.2)

"""The home's tmp/ when a process dies between `qemu-img create` and the unlink of what it
made (src/runtime/home_tmp.h): the next runtime that opens the home removes the leftover,
and never a file of a live process. In a fresh home the first ephemeral box of an image runs
`qemu-img` for the empty-overlay template (src/vmm/disk.h), made in tmp/ beside the box's
own overlay and renamed into the image store; later boxes copy it.

The moment is observed, not timed: a `qemu-img` first on the CLI's PATH runs the real one
and then stops its parent (the CLI) with SIGSTOP, so the overlay exists by name and the CLI
is frozen before its unlink; the test waits until the kernel reports the CLI stopped.
"""
import os
import shutil
import signal
import stat

from conftest import wait_for

BASE = "boxlite/base"
SHIM = """#!/bin/sh
# The real qemu-img, then the CLI that ran it stops before it unlinks what was made.
"{real}" "$@" || exit $?
kill -STOP "$PPID"
"""


def _process_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _stopped_in_the_window(cli, tmp_path):
    """Starts `boxlite run --rm BASE true` and returns it once it is stopped right after
    `qemu-img create`, with the overlay in the home's tmp/."""
    real = shutil.which("qemu-img")
    assert real, "the host needs qemu-img (apt-get install qemu-utils)"
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "qemu-img").write_text(SHIM.format(real=real))
    (shim / "qemu-img").chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    env = dict(cli.env, PATH=f"{shim}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    proc = cli.popen("run", "--rm", BASE, "true", env=env,
                     stdout=open(os.devnull, "wb"), stderr=open(tmp_path / "stderr", "wb"))
    stopped = wait_for(lambda: proc.poll() is not None or _process_state(proc.pid) == "T",
                       timeout=300, interval=0.05)
    try:
        assert stopped and proc.poll() is None, (
            f"the CLI never reached qemu-img: {(tmp_path / 'stderr').read_text()}")
        leftovers = sorted(os.listdir(cli.home / "tmp"))
        assert any(name.endswith(".qcow2") for name in leftovers), leftovers
    except BaseException:
        proc.kill()  # A failed check leaves no stopped CLI behind.
        proc.wait()
        raise
    return proc, leftovers


def test_a_live_process_keeps_its_files_while_another_opens_the_home(fresh_cli, tmp_path):
    """A CLI frozen inside its window keeps its overlay while another CLI opens the same
    home (`ls`), then goes on to boot and run its box, and leaves tmp/ empty."""
    proc, leftovers = _stopped_in_the_window(fresh_cli, tmp_path)
    try:
        assert fresh_cli.run("ls").returncode == 0
        assert sorted(os.listdir(fresh_cli.home / "tmp")) == leftovers
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=300) == 0, (tmp_path / "stderr").read_text()
    assert os.listdir(fresh_cli.home / "tmp") == []


def test_a_process_killed_between_qemu_img_create_and_the_unlink_leaves_nothing(fresh_cli, tmp_path):
    """SIGKILL between `qemu-img create` and the unlink leaves the overlay in tmp/; the
    next runtime that opens the home (`boxlite ls`) removes it."""
    proc, _ = _stopped_in_the_window(fresh_cli, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert any(n.endswith(".qcow2") for n in os.listdir(fresh_cli.home / "tmp"))
    assert fresh_cli.run("ls").returncode == 0
    assert os.listdir(fresh_cli.home / "tmp") == []

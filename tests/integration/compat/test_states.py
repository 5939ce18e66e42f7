# BoxLite 0.9's box states (unknown, configured, running, stopping, stopped, paused,
# failed) as other processes see them, against real VMs: a box whose VM was killed, or
# whose start failed, is "failed" with its reason, starts again and is removed without
# force; a stop in progress reads "stopping" from another process; a box made from a local
# OCI layout is named "rootfs:<path>"; the health check's status reaches processes that do
# not probe. States are read through the CLI (a separate process) and the Python SDK, never
# from the object that set them.
import asyncio
import json
import os
import signal
import subprocess

import pytest

boxlite = pytest.importorskip("boxlite")

from conftest import Cli, qemu_processes, wait_for  # noqa: E402

BASE = "boxlite/base"
NAME = "st-box"


def run(coro):
    return asyncio.run(coro)


def inspect(c, name):
    p = c.run("inspect", name, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)[0]


def listed_status(c, box_id):
    """The box's status in `list -a` (which, unlike inspect, asks the guest nothing)."""
    p = c.run("list", "-a", "--format", "json", timeout=60)
    assert p.returncode == 0, p.stderr
    return [b["Status"] for b in json.loads(p.stdout) if b["ID"] == box_id]


def gone_or_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def c(cli_binary, tmp_path_factory):
    """The CLI and the SDK share this module's home."""
    return Cli(cli_binary, tmp_path_factory.mktemp("states-home"))


@pytest.fixture(scope="module")
def rt(c):
    return boxlite.Boxlite(boxlite.Options(home_dir=str(c.home)))


@pytest.fixture(scope="module")
def box(c):
    """One detached box the state tests share (each leaves it running)."""
    p = c.run("run", "-d", "--name", NAME, BASE, "sleep", "3600", timeout=300)
    assert p.returncode == 0, p.stderr
    yield p.stdout.decode().strip()
    c.run("rm", "-f", NAME)


@pytest.mark.allow_background_vms
def test_a_killed_vm_is_failed_with_its_reason_and_starts_again(c, rt, box):
    """QEMU killed with SIGKILL (no stop asked, the main command did not exit): the box is
    "failed" for every process, with the reason in inspect and BoxInfo.failure; exec is
    refused (0.9's can_exec); start boots it again and the disk is kept."""
    assert c.run("exec", NAME, "--", "sh", "-c", "echo kept > /root/mark; sync").returncode == 0
    pid = inspect(c, NAME)["State"]["Pid"]
    assert pid in qemu_processes()
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: gone_or_zombie(pid), timeout=30)

    info = inspect(c, NAME)
    assert info["Status"] == "failed" and info["State"]["Status"] == "failed", info
    assert info["State"]["Running"] is False and info["State"]["ExitCode"] is None
    assert "without a stop request" in info["State"]["Error"], info
    assert info["failure"] == info["State"]["Error"]
    py = run(rt.get_info(NAME))
    assert py.state.status == "failed" and py.state.running is False
    assert "without a stop request" in py.failure
    assert [i.id for i in run(rt.list_info(_state="failed"))] == [box]
    listed = json.loads(c.run("list", "-a", "--format", "json").stdout)
    assert [b["Status"] for b in listed if b["ID"] == box] == ["failed"]
    assert box[:12].encode() not in c.run("list", "-q").stdout  # Not running.

    p = c.run("exec", NAME, "--", "true")
    assert p.returncode == 1
    err = p.stderr.decode().strip()
    assert "\n" not in err and f"box {NAME} is failed" in err, err
    # The SDK's exec starts a configured or stopped box, never a failed one.
    handle = run(rt.get(NAME))
    with pytest.raises(boxlite.BoxStateError,
                       match="cannot exec a box that is failed: start it again, or remove it"):
        run(handle.exec("true"))
    assert inspect(c, NAME)["Status"] == "failed"

    p = c.run("start", NAME, timeout=300)
    assert p.returncode == 0, p.stderr
    info = inspect(c, NAME)
    assert info["Status"] == "running" and info["State"]["Error"] == "" and info["failure"] is None
    p = c.run("exec", NAME, "--", "cat", "/root/mark")
    assert p.stdout == b"kept\n", p.stderr


def test_a_start_that_fails_leaves_a_failed_box_that_rm_removes(c, rt):
    """A start that fails after the box exists (here its disk is smaller than its image)
    leaves it "failed" with the start's error as the reason; rm removes it without -f
    (0.9's can_remove)."""
    p = c.run("create", "--name", "st-tiny", "--disk-size", "1M", BASE)
    assert p.returncode == 0, p.stderr
    box_id = p.stdout.decode().strip()
    try:
        p = c.run("start", "st-tiny", timeout=300)
        assert p.returncode == 1
        assert "smaller than the image's file system" in p.stderr.decode()
        info = inspect(c, "st-tiny")
        assert info["Status"] == "failed", info
        assert info["State"]["Error"].startswith("start failed: disk_size 1 MiB is smaller"), info
        py = run(rt.get_info("st-tiny"))
        assert py.state.status == "failed" and py.failure == info["State"]["Error"]
        assert box_id in [i.id for i in run(rt.list_info(_state="failed"))]
    finally:
        p = c.run("rm", "st-tiny")
    assert p.returncode == 0, p.stderr
    assert c.run("inspect", "st-tiny").returncode == 1


@pytest.mark.allow_background_vms
def test_a_stop_in_progress_reads_stopping_from_another_process(c, rt, box):
    """While `boxlite stop` waits for the guest (frozen with SIGSTOP, so it cannot answer
    the power-off), the CLI and the SDK in other processes read "stopping"; once the
    guest runs again the stop ends and the box is "stopped", not failed."""
    info = inspect(c, NAME)
    assert info["Status"] == "running"
    pid = info["State"]["Pid"]
    os.kill(pid, signal.SIGSTOP)
    stopper = None
    try:
        stopper = c.popen("stop", NAME, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The event: the stopper has written "stopping" (it cannot finish while frozen).
        seen = wait_for(lambda: listed_status(c, box) == ["stopping"], timeout=8, interval=0.1)
        assert seen, (listed_status(c, box), stopper.poll())
        assert stopper.poll() is None  # The stop is still in progress.
        assert run(rt.get_info(NAME)).state.status == "stopping"
        info = inspect(c, NAME)
        assert info["Status"] == "stopping" and info["State"]["Running"] is False, info
    finally:
        os.kill(pid, signal.SIGCONT)
        if stopper:
            out, err = stopper.communicate(timeout=120)
    assert stopper.returncode == 0, err
    info = inspect(c, NAME)
    assert info["Status"] == "stopped" and info["State"]["Error"] == "", info
    assert run(rt.get_info(NAME)).failure is None
    # Stop of a stopped box does nothing (as in 0.9); start brings it back for the next test.
    assert c.run("stop", NAME).returncode == 0
    assert c.run("start", NAME, timeout=300).returncode == 0
    assert inspect(c, NAME)["Status"] == "running"


def test_a_box_from_a_rootfs_layout_is_named_rootfs_path(c, rt, test_images):
    """BoxInfo.image of a box made from a local OCI layout is "rootfs:<path>" (0.9), in
    the SDK and in the CLI's inspect and list; a box made from an image keeps its name."""
    layout = str(test_images.layout("busybox"))
    made = run(rt.create(boxlite.BoxOptions(rootfs_path=layout, auto_remove=False), name="st-rootfs"))
    try:
        assert run(rt.get_info(made.id)).image == f"rootfs:{layout}"
        assert inspect(c, "st-rootfs")["Image"] == f"rootfs:{layout}"
        listed = json.loads(c.run("list", "-a", "--format", "json").stdout)
        assert [b["Image"] for b in listed if b["ID"] == made.id] == [f"rootfs:{layout}"]
    finally:
        run(rt.remove(made.id, force=True))
    p = c.run("create", "--name", "st-rootfs-cli", "--rootfs", layout)
    assert p.returncode == 0, p.stderr
    try:
        info = inspect(c, "st-rootfs-cli")
        assert info["Image"] == f"rootfs:{layout}"
        assert info["health"]["state"] == "none"  # No health check.
        assert run(rt.get_info("st-rootfs-cli")).state.status == "configured"
    finally:
        assert c.run("rm", "st-rootfs-cli").returncode == 0


@pytest.mark.allow_background_vms
def test_health_is_seen_by_processes_that_do_not_probe(c, rt):
    """The health check runs in the process that started the box; another process (the
    CLI's inspect) reads its last status: state, failures and the last check's time; a
    process that only attaches (an exec) leaves it as it is."""
    adv = boxlite.AdvancedBoxOptions(
        health_check=boxlite.HealthCheckOptions(interval=1, timeout=5, retries=2, start_period=0))
    box = run(rt.create(boxlite.BoxOptions(image=BASE, detach=True, auto_remove=False, advanced=adv),
                        name="st-health"))

    async def healthy_then_look():
        await box.start()
        for _ in range(600):
            info = await box.info()
            if str(info.health_status.state) == "healthy":
                break
            await asyncio.sleep(0.1)
        # Read by another process while this one still probes.
        p = await asyncio.to_thread(c.run, "inspect", "st-health")
        return info, p

    try:
        info, p = asyncio.run(healthy_then_look())
        assert str(info.health_status.state) == "healthy", info
        assert p.returncode == 0, p.stderr
        other = json.loads(p.stdout)[0]
        assert other["health"]["state"] == "healthy" and other["health"]["failures"] == 0, other
        assert other["health"]["last_check"], other
        assert other["State"]["Health"] == {"Status": "healthy", "FailingStreak": 0}
        # A process that attaches to the box (an exec) does not start its health over.
        assert c.run("exec", "st-health", "--", "true").returncode == 0
        assert inspect(c, "st-health")["health"]["state"] == "healthy"
    finally:
        run(rt.remove("st-health", force=True))

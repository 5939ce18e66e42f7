"""Many boxes on one machine (docs/benchmarks.md, "Density"): memory a guest frees goes back
to the host (virtio-balloon free page reporting, src/vmm/qemu.cc), and thirty small boxes
run at once, each answers an exec, and all of them go without leaving anything behind.

Nothing here is timed: polls have generous deadlines and assert what the host shows."""
import json
import os
import subprocess
import time

import pytest

from conftest import Cli, wait_for
from harness.leaks import LeakMonitor

BASE = "boxlite/base"
MIB = 1 << 20


@pytest.fixture(scope="module")
def dcli(cli_binary, tmp_path_factory, registry):
    """A home of its own: its boxes are the only ones the leak monitor looks at."""
    return Cli(cli_binary, tmp_path_factory.mktemp("density-home"), registry.env())


def vm_pid(cli, name):
    p = cli.run("inspect", name)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    info = info[0] if isinstance(info, list) else info
    assert info["pid"] > 0, info
    return info["pid"]


def rss_bytes(pid):
    """The VM process's resident memory as the host's kernel counts it."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_rss_falls_after_the_guest_frees_memory(dcli):
    # Booted (--no-warm): no other box here would use a template of its size.
    p = dcli.run("run", "-d", "--name", "burst", "--memory", "1024", "--no-warm", BASE,
                 "sleep", "1000", timeout=300)
    assert p.returncode == 0, p.stderr
    try:
        pid = vm_pid(dcli, "burst")
        idle = rss_bytes(pid)
        # dd's one 600 MiB buffer is filled from /dev/zero (every page touched), then dd
        # blocks writing it to a pipe nobody reads, holding the memory until `sleep` ends;
        # then dd dies of SIGPIPE and the guest kernel frees it all. The peak is read while
        # the memory is held: free page reporting may already be at work once dd is gone.
        p = dcli.run("exec", "-d", "burst", "--", "sh", "-c",
                     "dd if=/dev/zero bs=600M count=1 | sleep 20", timeout=300)
        assert p.returncode == 0, p.stderr
        peak = wait_for(lambda: (r := rss_bytes(pid)) - idle > 400 * MIB and r, timeout=120)
        assert peak, f"the burst did not reach the host: {idle} -> {rss_bytes(pid)}"
        # Free page reporting runs a couple of seconds after the pages are freed; poll
        # generously and assert the drop, not how long it took.
        deadline = time.monotonic() + 120
        now = peak
        while time.monotonic() < deadline:
            now = rss_bytes(pid)
            if peak - now > 350 * MIB:
                break
            time.sleep(1)
        assert peak - now > 350 * MIB, (
            f"the VM kept the freed memory: idle {idle // MIB} MiB, after the burst "
            f"{peak // MIB} MiB, now {now // MIB} MiB")
        # The box is fine afterwards: memory it gets again is usable.
        p = dcli.run("exec", "burst", "sh", "-c",
                     "dd if=/dev/zero bs=64M count=1 2>/dev/null | wc -c", timeout=300)
        assert p.returncode == 0 and p.stdout.strip() == str(64 * MIB).encode(), p
    finally:
        dcli.run("rm", "-f", "burst")


BOXES = 30


def test_thirty_boxes_answer_and_go_without_leaks(dcli):
    monitor = LeakMonitor({str(dcli.home)})
    names = [f"d{i:02d}" for i in range(BOXES)]
    try:
        # A few launches at once (warm start after the first: docs/snapshots.md).
        first = dcli.run("run", "-d", "--name", names[0], "--memory", "256", BASE, "sleep",
                         "1000", timeout=300)
        assert first.returncode == 0, first.stderr
        pending = list(names[1:])
        while pending:
            batch, pending = pending[:4], pending[4:]
            procs = [dcli.popen("run", "-d", "--name", n, "--memory", "256", BASE, "sleep",
                                "1000", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for n in batch]
            for n, proc in zip(batch, procs):
                out, err = proc.communicate(timeout=300)
                assert proc.returncode == 0, f"{n}: {err.decode(errors='replace')}"
        pids = {n: vm_pid(dcli, n) for n in names}
        assert len(set(pids.values())) == BOXES
        # All of them alive at once, each answering with its own hostname.
        hostnames = set()
        for n in names:
            p = dcli.run("exec", n, "cat", "/proc/sys/kernel/hostname", timeout=120)
            assert p.returncode == 0, f"{n}: {p.stderr.decode(errors='replace')}"
            hostnames.add(p.stdout.strip())
        assert len(hostnames) == BOXES, hostnames
        for pid in pids.values():
            with open(f"/proc/{pid}/status") as f:
                assert "State:" in f.read()
    finally:
        p = dcli.run("rm", "-f", *names, timeout=300)
    assert p.returncode == 0, p.stderr
    monitor.check(timeout=30)


def _agent_wakeups(cli, name):
    """How many times the box's agent (PID 1) has gone to sleep and been woken."""
    p = cli.run("exec", name, "--", "sh", "-c", "grep ^voluntary_ctxt_switches /proc/1/status",
                timeout=120)
    assert p.returncode == 0, p.stderr
    return int(p.stdout.split()[1])


def test_an_idle_box_leaves_its_agent_asleep(dcli):
    """A box's ports that no host uses (the box has four; a detached box's host has left
    them all) used to be polled every 20 ms: 50 wakeups of the agent a second, for ever,
    in every idle box (agent/server.h, AwaitHost). Now nothing wakes an idle agent but a
    host: over five idle seconds it wakes for the two execs that look, not 250 times."""
    p = dcli.run("run", "-d", "--name", "sleeper", "--memory", "256", BASE, "sleep", "1000",
                 timeout=300)
    assert p.returncode == 0, p.stderr
    try:
        before = _agent_wakeups(dcli, "sleeper")
        time.sleep(5)
        after = _agent_wakeups(dcli, "sleeper")
        # An exec costs the agent a handful of wakeups (its host's connection, the process,
        # the host's leaving); polling would add ~250.
        assert 0 < after - before < 60, (before, after)
    finally:
        p = dcli.run("rm", "-f", "sleeper", timeout=300)
    assert p.returncode == 0, p.stderr


# One process holding a dozen running boxes, started with a soft descriptor limit of 64.
_MANY_BOXES_SCRIPT = r"""
import asyncio, os, resource, sys
import boxlite

async def main():
    rt = boxlite.Boxlite(boxlite.Options(home_dir=sys.argv[1]))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    boxes = []
    try:
        for i in range(int(sys.argv[2])):
            box = await rt.create(boxlite.BoxOptions(image="boxlite/base", memory_mib=256),
                                  name=f"fd{i}")
            boxes.append(box)
            await box.start()
        answered = 0
        for box in boxes:
            result = await box.run("cat", "/proc/sys/kernel/hostname")
            answered += result.exit_code == 0 and bool(result.stdout.strip())
        print(soft, hard, len(os.listdir("/proc/self/fd")), answered, flush=True)
    finally:
        for box in boxes:
            await box.stop()
        rt.close()

asyncio.run(main())
"""


def test_one_process_runs_more_boxes_than_its_soft_descriptor_limit(tmp_path_factory):
    """A running box holds ~7 descriptors in the process that runs it, so the soft
    RLIMIT_NOFILE most shells give (1024) would stop a process near 140 boxes. Opening a
    runtime raises the soft limit to the hard one (src/sys/limits.h): a process started
    with a soft limit of 64 runs twelve boxes at once, more descriptors than 64, and every
    box answers."""
    import resource
    import sys

    from conftest import add_session_root

    home = tmp_path_factory.mktemp("density-fd-home")
    add_session_root(home)
    monitor = LeakMonitor({str(home)})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard > 256, hard
    p = subprocess.run([sys.executable, "-c", _MANY_BOXES_SCRIPT, str(home), "12"],
                       capture_output=True, text=True, timeout=600,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                             (64, hard)))
    assert p.returncode == 0, p.stderr
    soft, seen_hard, open_fds, answered = (int(x) for x in p.stdout.split())
    with open("/proc/sys/fs/nr_open") as f:  # What an "unlimited" hard limit allows.
        ceiling = hard if hard != resource.RLIM_INFINITY else int(f.read())
    assert (soft, seen_hard) == (ceiling, hard)
    assert open_fds > 64, open_fds  # More than the soft limit the process started with.
    assert answered == 12, p.stdout
    monitor.check(timeout=30)


async def _sh(box, script):
    """`sh -c script` in the box: (exit code, stdout)."""
    result = await box.run("sh", "-c", script)
    return result.exit_code, result.stdout


def test_a_fork_freeing_memory_leaves_its_siblings_intact(tmp_path_factory):
    """Forks map one sealed RAM file privately. Free page reporting in a fork makes QEMU try
    to punch the pages it freed out of that file; the seal must refuse it, or a sibling
    would read zeros where the source's data was. QEMU says so for every report, so a
    fork's QEMU log is capped like the console (src/runtime/console_log.h)."""
    import asyncio

    import boxlite
    from conftest import add_session_root

    home = tmp_path_factory.mktemp("density-fork-home")
    add_session_root(home)

    async def scenario():
        rt = boxlite.Boxlite(boxlite.Options(home_dir=str(home)))
        source = await rt.create(boxlite.BoxOptions(image=BASE, memory_mib=256), name="dsrc")
        await source.start()
        try:
            code, out = await _sh(source, "head -c 33554432 /dev/urandom > /dev/shm/m && "
                                          "sha256sum /dev/shm/m")
            assert code == 0, out
            digest = out.split()[0]
            a, b = await source.fork(n=2, names=["dfork-a", "dfork-b"])
            try:
                # A fork's QEMU writes one line per free-page report it cannot carry out,
                # so its messages reach its log through the capped writer (a pipe), while
                # a box of its own RAM writes its log file directly.
                for box, capped in ((a, True), (b, True), (source, False)):
                    stderr = os.readlink(f"/proc/{(await box.info()).pid}/fd/2")
                    assert stderr.startswith("pipe:") == capped, (box, stderr)
                # Fork a frees the pages holding the data (and 120 MiB more), then waits
                # past the guest's reporting delay (~2 s) for the reports to reach QEMU.
                code, out = await _sh(a, "rm /dev/shm/m && dd if=/dev/zero of=/dev/null "
                                         "bs=120M count=1 2>/dev/null && sleep 5 && echo ok")
                assert code == 0 and out.strip() == "ok", out
                for box in (b, source):
                    code, out = await _sh(box, "sha256sum /dev/shm/m")
                    assert code == 0 and out.split()[0] == digest, out
                # The fork that freed its memory still gets memory and runs.
                code, out = await _sh(a, "dd if=/dev/zero bs=120M count=1 2>/dev/null | wc -c")
                assert code == 0 and out.strip() == str(120 * MIB), out
            finally:
                await a.stop()
                await b.stop()
        finally:
            await source.stop()
            rt.close()

    asyncio.run(scenario())

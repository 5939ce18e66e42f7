"""The SimpleBox API of the SDK, call by call, against real boxes.

Adapted only in the image name (``boxlite/base`` instead of ``alpine:latest``; there is
no network access to Docker Hub here).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest

import boxlite
from conftest import IMAGE, MEMORY

pytestmark = pytest.mark.asyncio


async def test_constructor_accepts_every_documented_parameter(tmp_path: Path, no_leaks: None) -> None:
    """Every documented parameter, in its first spelling, reaches the box."""
    shared = tmp_path / "shared"
    shared.mkdir()
    async with boxlite.SimpleBox(
        IMAGE,
        cpu=2,
        memory=MEMORY,
        disk_size=2048,
        env={"GREETING": "hi", "EMPTY": ""},
        mounts=[(str(shared), "/mnt/shared", "ro")],
        ports=[(0, 8080)],
        network="nat",
        working_dir="/tmp",
        user="0",
        name="every-param",
        auto_remove=True,
        detach=False,
    ) as box:
        assert box.name == "every-param"
        assert len(box.id) >= 12
        info = await box.info()
        assert (info.cpus, info.memory_mib, info.disk_size_mib) == (2, MEMORY, 2048)
        assert info.network == "nat" and info.state == "running"
        assert info.volumes == (boxlite.VolumeMount(str(shared), "/mnt/shared", True),)
        # Host port 0 asks for a free port; info reports the one actually bound.
        [port] = info.ports
        assert port.guest_port == 8080 and 0 < port.host_port < 65536
        with socket.create_connection(("127.0.0.1", port.host_port), timeout=10):
            pass
        result = await box.exec("sh", "-c", 'echo "$GREETING[$EMPTY]"; pwd; id -u; nproc')
        assert result.stdout.split() == ["hi[]", "/tmp", "0", "2"]


async def test_constructor_accepts_the_other_spellings(no_leaks: None) -> None:
    """cpus, memory_mib, disk_size_gb, volumes with a read_only bool, env as pairs."""
    async with boxlite.SimpleBox(
        image=IMAGE,
        cpus=1,
        memory_mib=MEMORY,
        disk_size_gb=1,
        env=[("A", "1"), ("B", "two words")],
        volumes=[("/tmp", "/data", False)],
        network="none",
    ) as box:
        info = await box.info()
        assert (info.cpus, info.memory_mib, info.disk_size_mib, info.network) == (1, MEMORY, 1024, "none")
        assert info.volumes == (boxlite.VolumeMount("/tmp", "/data", False),)
        result = await box.exec("sh", "-c", 'echo "$A:$B"')
        assert result.stdout == "1:two words\n"


async def test_mounts_share_host_directories(tmp_path: Path, no_leaks: None) -> None:
    """A "ro" mount is readable and not writable; an "rw" one writes through to the host."""
    ro = tmp_path / "ro"
    rw = tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "hello.txt").write_text("from the host\n")
    if os.geteuid() == 0:
        # Started by root, the VM runs as the owner of its read-write shares, who must not
        # be root (docs/security.md): the share belongs to a local user.
        os.chown(rw, 65534, 65534)
    async with boxlite.SimpleBox(
        IMAGE, memory=MEMORY, mounts=[(str(ro), "/mnt/ro", "ro"), (str(rw), "/mnt/rw", "rw")]
    ) as box:
        assert (await box.exec("cat", "/mnt/ro/hello.txt")).stdout == "from the host\n"
        assert (await box.exec("sh", "-c", "echo x > /mnt/ro/new.txt")).exit_code != 0
        assert not (ro / "new.txt").exists()
        assert (await box.exec("sh", "-c", "echo written > /mnt/rw/out.txt")).exit_code == 0
        assert (rw / "out.txt").read_text() == "written\n"


async def test_exec_parameters(shared_box: boxlite.SimpleBox) -> None:
    """exec(cmd, *args, env=, cwd=, user=, timeout=, stdin=) as documented."""
    result = await shared_box.exec(
        "sh", "-c", 'cat; echo "[$FOO]"; pwd', env={"FOO": "bar"}, cwd="/etc", user="0",
        timeout=60, stdin=b"input bytes\n",
    )
    assert result.exit_code == 0 and result.returncode == 0
    assert result.stdout == "input bytes\n[bar]\n/etc\n"
    assert result.stderr == "" and result.timed_out is False and result.error_message is None
    assert result.duration > 0
    text = await shared_box.exec("cat", stdin="caf\u00e9 \u2615")
    assert text.stdout == "caf\u00e9 \u2615" and text.stdout_bytes == "caf\u00e9 \u2615".encode()


async def test_exec_result_bytes_are_exact_and_text_is_replaced(shared_box: boxlite.SimpleBox) -> None:
    """stdout/stderr are UTF-8 with invalid bytes replaced; *_bytes are exact."""
    result = await shared_box.exec("sh", "-c", r"printf 'ok\377\n'; printf 'e\376' >&2")
    assert result.stdout_bytes == b"ok\xff\n"
    assert result.stderr_bytes == b"e\xfe"
    assert result.stdout == "ok\ufffd\n"
    assert result.stderr == "e\ufffd"


async def test_large_output_is_complete(no_leaks: None) -> None:
    """Output far beyond the flow-control window arrives whole and in order.

    Its own box: a stress test must not take the shared box down with it.
    """
    async with boxlite.SimpleBox(IMAGE, memory=MEMORY) as box:
        result = await box.exec("sh", "-c", "seq 1 200000; seq 1 50000 >&2")
    assert result.stdout_bytes == "".join(f"{i}\n" for i in range(1, 200001)).encode()
    assert result.stderr_bytes == "".join(f"{i}\n" for i in range(1, 50001)).encode()


async def test_id_name_info_metrics(shared_box: boxlite.SimpleBox) -> None:
    """box.id, box.name, await box.info() -> BoxInfo, await box.metrics() -> BoxMetrics."""
    info = await shared_box.info()
    assert isinstance(info, boxlite.BoxInfo)
    assert info.id == shared_box.id and info.name == shared_box.name
    assert info.state == "running" and info.pid > 0 and info.image
    metrics = await shared_box.metrics()
    assert isinstance(metrics, boxlite.BoxMetrics)
    assert metrics.memory_rss_bytes > 0 and metrics.execs_run >= 0 and metrics.boot_seconds > 0


async def test_copy_in_and_out(tmp_path: Path, no_leaks: None) -> None:
    """copy_in/copy_out move a file both ways, bytes intact, and the box lives on."""
    src = tmp_path / "in.txt"
    src.write_bytes(b"payload\x00\xff")
    async with boxlite.SimpleBox(IMAGE, memory=MEMORY) as box:
        await box.copy_in(str(src), "/root/in.txt")
        assert (await box.exec("cat", "/root/in.txt")).stdout_bytes == b"payload\x00\xff"
        dst = tmp_path / "out.txt"
        await box.copy_out("/root/in.txt", str(dst))
        assert dst.read_bytes() == b"payload\x00\xff"
        assert (await box.exec("echo", "alive")).stdout == "alive\n"


async def test_stop_then_exec_is_a_state_error(no_leaks: None) -> None:
    """await box.stop() stops (and removes) the box; later commands raise BoxStateError."""
    box = boxlite.SimpleBox(IMAGE, memory=MEMORY)
    async with box:
        runtime = boxlite.Boxlite.default()
        await box.stop()
        running = len(await runtime.list_info(_state="running"))
        with pytest.raises(boxlite.BoxStateError, match="stopped|removed"):
            await box.exec("true")
        # No second VM was booted for that command, and start() really makes a new box.
        assert len(await runtime.list_info(_state="running")) == running
        old_id = box.id
        await box.start()
        assert box.id != old_id
        assert (await box.exec("echo", "again")).stdout == "again\n"


async def test_streaming(shared_box: boxlite.SimpleBox) -> None:
    """stream(): stdout()/stderr() chunks, write_stdin, close_stdin, wait()."""
    execution = await shared_box.stream("sh", "-c", "while read line; do echo \"got $line\"; echo \"err $line\" >&2; done")
    await execution.write_stdin(b"one\n")
    await execution.write_stdin("two\n")
    await execution.close_stdin()

    async def collect(stream):
        return b"".join([chunk async for chunk in stream])

    out, err = await asyncio.gather(collect(execution.stdout()), collect(execution.stderr()))
    result = await execution.wait()
    assert out == b"got one\ngot two\n" and err == b"err one\nerr two\n"
    assert result.exit_code == 0 and result.stdout == "" and result.stdout_bytes == b""


async def test_streaming_signal(shared_box: boxlite.SimpleBox) -> None:
    """execution.signal(15) ends a process: exit_code is 128 + 15."""
    execution = await shared_box.stream("sleep", "100")
    await execution.signal(signal.SIGTERM)
    result = await execution.wait()
    assert result.exit_code == 128 + signal.SIGTERM and result.signal == signal.SIGTERM


async def test_streaming_tty_and_resize(shared_box: boxlite.SimpleBox) -> None:
    """With tty=True the process has a terminal; resize changes its size."""
    execution = await shared_box.stream("sh", "-c", "read x; stty size", tty=True, rows=24, cols=80)
    await execution.resize(33, 101)
    await execution.write_stdin(b"go\n")
    output = b"".join([chunk async for chunk in execution.stdout()])
    result = await execution.wait()
    assert result.exit_code == 0
    assert b"33 101" in output


async def test_cancelled_read_loses_no_output(shared_box: boxlite.SimpleBox) -> None:
    """A read cancelled by wait_for leaves the chunk for the next read."""
    execution = await shared_box.stream("sh", "-c", "read x; echo late")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(execution.read(1), 0.5)
    await execution.write_stdin(b"\n")
    assert await execution.read(1) == b"late\n"
    assert await execution.read(1) == b""
    assert (await execution.wait()).exit_code == 0


async def test_persistent_box_outlives_async_with(no_leaks: None) -> None:
    """auto_remove=False passes through: the box outlives `async with` (stopped) and is
    found again by name until removed. (A core without persistent boxes refuses it with
    NotSupportedError, which surfaces as is.)"""
    rt = boxlite.Boxlite.default()
    try:
        async with boxlite.SimpleBox(IMAGE, memory=MEMORY, name="keep-me", auto_remove=False) as box:
            assert (await box.info()).auto_remove is False
            await box.exec("true")
    except boxlite.NotSupportedError as exc:
        assert "persistent" in str(exc)
        return
    try:
        found = await rt.get("keep-me")
        assert found is not None and found.id == box.id
        assert (await found.info()).state == "stopped"
    finally:
        await rt.remove("keep-me", force=True)
    assert await rt.get("keep-me") is None


async def test_detach_passes_through(no_leaks: None) -> None:
    """detach=True reaches the core. As in BoxLite 0.9, a detached box must not be removed
    on stop: with auto_remove (the default) it is a ConfigError; with auto_remove=False
    leaving stops the box and keeps it."""
    with pytest.raises(boxlite.ConfigError, match="remove-on-stop is incompatible with detach=true"):
        boxlite.SimpleBox(IMAGE, memory=MEMORY, name="detached", detach=True)
    rt = boxlite.Boxlite.default()
    try:
        async with boxlite.SimpleBox(IMAGE, memory=MEMORY, name="detached", detach=True,
                                     auto_remove=False) as box:
            assert (await box.info()).detach is True
        assert (await rt.get_info("detached")).state == "stopped"
    finally:
        await rt.remove("detached", force=True)
    assert await rt.get("detached") is None


async def test_rootfs_path_must_exist(tmp_path: Path) -> None:
    """rootfs_path is accepted; a missing one is a ConfigError before anything starts."""
    with pytest.raises(boxlite.ConfigError, match="does not exist"):
        boxlite.SimpleBox(rootfs_path=str(tmp_path / "missing"))
    assert os.path.isdir(tmp_path)

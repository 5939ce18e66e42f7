"""The sync twin (boxlite.sync) passes the same behavioural tests as the async API."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import pytest

import boxlite
import boxlite.sync
from conftest import IMAGE, MEMORY, process_alive, qemu_children, state_files


def test_exec_result(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """exec() with env, cwd, user, stdin returns an ExecResult."""
    result = shared_sync_box.exec(
        "sh", "-c", 'cat; echo "[$FOO]"; pwd', env=[("FOO", "bar")], cwd="/etc", user="0",
        stdin=b"in\n", timeout=60,
    )
    assert (result.exit_code, result.returncode) == (0, 0)
    assert result.stdout == "in\n[bar]\n/etc\n" and result.stderr == "" and not result.timed_out


def test_bytes_and_replacement(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """Exact bytes and replaced text."""
    result = shared_sync_box.exec("sh", "-c", r"printf '\377x'")
    assert result.stdout_bytes == b"\xffx" and result.stdout == "\ufffdx"


def test_non_zero_and_signal_exits(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """Non-zero exits and signals are results: 3 and 128 + 9."""
    assert shared_sync_box.exec("sh", "-c", "exit 3").exit_code == 3
    killed = shared_sync_box.exec("sh", "-c", "kill -9 $$")
    assert killed.exit_code == 137 and killed.signal == 9


@pytest.mark.timeout(60)
def test_timeout(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """timeout= kills the process and sets timed_out."""
    result = shared_sync_box.exec("sleep", "100", timeout=1)
    assert result.timed_out and result.exit_code == 137


def test_streaming(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """stream(): write_stdin, close_stdin, stdout() iteration, wait()."""
    execution = shared_sync_box.stream("sh", "-c", "while read l; do echo \"<$l>\"; done; echo done >&2")
    execution.write_stdin(b"a\n")
    execution.write_stdin("b\n")
    execution.close_stdin()
    assert b"".join(execution.stdout()) == b"<a>\n<b>\n"
    assert b"".join(execution.stderr()) == b"done\n"
    assert execution.wait().exit_code == 0


def test_streaming_signal(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """signal(15) gives 128 + 15."""
    execution = shared_sync_box.stream("sleep", "100")
    execution.signal(signal.SIGTERM)
    assert execution.wait().exit_code == 128 + 15


def test_info_and_metrics(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """info() and metrics()."""
    info = shared_sync_box.info()
    assert info.id == shared_sync_box.id and info.state == "running"
    assert shared_sync_box.metrics().memory_rss_bytes > 0


def test_copy_in_and_out(tmp_path: Path, no_leaks: None) -> None:
    """copy_in / copy_out move a file both ways; own box."""
    src = tmp_path / "f"
    src.write_text("x")
    with boxlite.sync.SimpleBox(IMAGE, memory=MEMORY) as box:
        box.copy_in(str(src), "/root/f")
        assert box.exec("cat", "/root/f").stdout == "x"
        box.copy_out("/root/f", str(tmp_path / "back"))
        assert (tmp_path / "back").read_text() == "x"
        assert box.exec("echo", "alive").stdout == "alive\n"


def test_leaving_with_removes_the_box(boxlite_home: Path, no_leaks: None) -> None:
    """Leaving `with` stops the VM and leaves no file behind."""
    files_before = state_files(boxlite_home)
    with boxlite.sync.SimpleBox(IMAGE, memory=MEMORY) as box:
        pid = box.info().pid
        assert process_alive(pid)
        assert box.exec("echo", "hi").stdout == "hi\n"
    assert not process_alive(pid)
    assert state_files(boxlite_home) <= files_before
    with pytest.raises(boxlite.BoxStateError):
        box.exec("true")


def test_errors(no_leaks: None) -> None:
    """Missing image, bad reference and bad arguments raise the documented types."""
    before = qemu_children()
    with pytest.raises(boxlite.RegistryError, match="127.0.0.1:1/none"):
        with boxlite.sync.SimpleBox("127.0.0.1:1/none:latest", memory=MEMORY):
            pytest.fail("the box must not start")
    with pytest.raises(boxlite.InvalidReferenceError):
        with boxlite.sync.SimpleBox("UPPER//bad::ref", memory=MEMORY):
            pytest.fail("the box must not start")
    with pytest.raises(boxlite.ConfigError, match="mount mode"):
        boxlite.sync.SimpleBox(IMAGE, volumes=[("/tmp", "/mnt", "bogus")])
    with pytest.raises(boxlite.ConfigError, match="memory"):
        with boxlite.sync.SimpleBox(IMAGE, memory=64):
            pytest.fail("the box must not start")
    assert qemu_children() == before


def test_runtime(no_leaks: None) -> None:
    """Boxlite.default(), create/get/list_info/remove and images, without await."""
    rt = boxlite.sync.Boxlite.default()
    assert rt.home_dir == boxlite.Boxlite.default().home_dir
    box = rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY), name="sync-rt")
    assert rt.get("sync-rt") is box and rt.get("nope") is None
    # A runtime's box answers 0.9's exec: an Execution, its output streamed as str.
    assert "".join(box.exec("echo", ["lazy"]).stdout()) == "lazy\n"
    assert "sync-rt" in [i.name for i in rt.list_info()]
    rt.remove("sync-rt", force=True)
    with pytest.raises(boxlite.BoxNotFoundError):
        rt.remove("sync-rt")
    assert any("boxlite/base" in i.reference for i in rt.images.list())


def test_usable_from_a_running_loops_worker_thread(no_leaks: None) -> None:
    """The sync API works in asyncio.to_thread while the loop runs."""

    def work() -> str:
        with boxlite.sync.SimpleBox(IMAGE, memory=MEMORY) as box:
            return box.exec("echo", "from a worker").stdout

    async def main() -> str:
        return await asyncio.to_thread(work)

    assert asyncio.run(main()) == "from a worker\n"


def test_usable_inside_a_coroutine(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """Called straight from a coroutine (blocking it), the sync API still works."""

    async def main() -> str:
        return shared_sync_box.exec("echo", "in a coroutine").stdout

    assert asyncio.run(main()) == "in a coroutine\n"


def test_concurrent_threads(shared_sync_box: boxlite.sync.SimpleBox) -> None:
    """Several threads exec on one sync box at once, each gets its own output."""
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = shared_sync_box.exec("sh", "-c", f"sleep 0.2; echo {i}").stdout

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"{i}\n" for i in range(6)}

"""The event-loop contract: concurrency, several loops, cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import boxlite
from conftest import IMAGE, MEMORY, process_alive, qemu_children


async def _guest_has_sleep_100(box: boxlite.SimpleBox) -> bool:
    ps = await box.exec("ps", "-o", "pid,args")
    return any(line.split(None, 1)[1:] == ["sleep 100"] for line in ps.stdout.splitlines())


@pytest.mark.asyncio
async def test_twenty_concurrent_execs_across_four_boxes(no_leaks: None) -> None:
    """20 execs over 4 boxes via asyncio.gather each return their own output."""
    boxes = [boxlite.SimpleBox(IMAGE, memory=MEMORY) for _ in range(4)]
    await asyncio.gather(*(box.start() for box in boxes))
    try:

        async def one(i: int) -> tuple[int, boxlite.ExecResult]:
            box = boxes[i % 4]
            cmd = f"sleep 0.$(( {i} % 3 )); echo out-{i}-$(hostname); echo err-{i} >&2; exit {i % 7}"
            return i, await box.exec("sh", "-c", cmd)

        results = await asyncio.gather(*(one(i) for i in range(20)))
    finally:
        await asyncio.gather(*(box.stop() for box in boxes))
    for i, result in results:
        box = boxes[i % 4]
        assert result.stdout == f"out-{i}-{box.name}\n", (i, result)
        assert result.stderr == f"err-{i}\n"
        assert result.exit_code == i % 7


@pytest.mark.asyncio
async def test_event_loop_is_never_blocked(shared_box: boxlite.SimpleBox) -> None:
    """While an exec waits in the core, the loop keeps running other tasks: the first exec
    waits in the guest for a file that only a second exec, made meanwhile from the same
    loop, creates (it gives up after about 10 s, so a blocked loop fails, never hangs)."""
    go = f"/tmp/loop-free-{os.getpid()}-{time.monotonic_ns()}"
    waiter = f"i=0; while [ ! -e {go} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; [ -e {go} ]"
    task = asyncio.create_task(shared_box.exec("sh", "-c", waiter))
    for _ in range(3):
        await asyncio.sleep(0.01)  # Would only resume after the exec if it blocked the loop.
    assert not task.done()
    assert (await shared_box.exec("touch", go)).exit_code == 0
    assert (await task).exit_code == 0


def test_box_used_and_closed_in_another_event_loop(no_leaks: None) -> None:
    """Entered in one asyncio.run(), used and closed in a second (and a third)."""
    box = boxlite.SimpleBox(IMAGE, memory=MEMORY)

    async def enter() -> int:
        await box.__aenter__()
        return (await box.info()).pid

    async def use() -> str:
        return (await box.exec("echo", "second loop")).stdout

    async def close() -> None:
        await box.__aexit__(None, None, None)

    pid = asyncio.run(enter())
    assert process_alive(pid)
    assert asyncio.run(use()) == "second loop\n"
    asyncio.run(close())
    assert not process_alive(pid)


def test_box_used_from_loops_in_other_threads(no_leaks: None) -> None:
    """A box entered in the main thread's loop serves loops running in other threads."""
    box = boxlite.SimpleBox(IMAGE, memory=MEMORY)
    asyncio.run(box.start())
    outputs: list[str] = []
    try:

        def worker(i: int) -> None:
            outputs.append(asyncio.run(box.exec("echo", f"thread-{i}")).stdout)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        asyncio.run(box.stop())
    assert sorted(outputs) == [f"thread-{i}\n" for i in range(3)]


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_cancelling_exec_kills_the_process(shared_box: boxlite.SimpleBox) -> None:
    """Cancelling a task awaiting exec("sleep 100") returns, kills it, and the box works."""
    task = asyncio.create_task(shared_box.exec("sleep", "100"))
    while not await _guest_has_sleep_100(shared_box):
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    while await _guest_has_sleep_100(shared_box):  # The kill is on its way.
        await asyncio.sleep(0.1)
    assert (await shared_box.exec("echo", "still usable")).stdout == "still usable\n"


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_wait_for_timeout_on_exec_kills_the_process(shared_box: boxlite.SimpleBox) -> None:
    """asyncio.wait_for around exec cancels it like any task. The process is seen running
    in the guest before the wait starts, so its timeout always meets a running process."""
    task = asyncio.create_task(shared_box.exec("sleep", "100"))
    while not await _guest_has_sleep_100(shared_box):
        await asyncio.sleep(0.1)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(task, timeout=0.5)
    assert task.cancelled()
    while await _guest_has_sleep_100(shared_box):
        await asyncio.sleep(0.1)
    assert (await shared_box.exec("true")).exit_code == 0


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_cancelling_execution_wait_kills_the_process(shared_box: boxlite.SimpleBox) -> None:
    """Cancelling a task awaiting Execution.wait() kills the streamed process too."""
    execution = await shared_box.stream("sleep", "100")
    task = asyncio.create_task(execution.wait())
    # Cancel once the process is seen running in the guest (the wait is then pending).
    while not await _guest_has_sleep_100(shared_box):
        await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    while await _guest_has_sleep_100(shared_box):
        await asyncio.sleep(0.1)


@pytest.mark.timeout(300)
def test_cancelling_box_start_leaves_nothing(no_leaks: None) -> None:
    """A task cancelled while its box boots does not leave the VM running. The moment is
    observed, whatever the speed of a boot: the VM is frozen (SIGSTOP) as soon as it
    exists, so the start cannot have finished when the task is cancelled; then it thaws."""
    box = boxlite.SimpleBox(IMAGE, memory=MEMORY)
    before = qemu_children()
    frozen: set[int] = set()

    async def start_then_cancel() -> None:
        task = asyncio.create_task(box.__aenter__())
        while not frozen:
            for pid in qemu_children() - before:
                os.kill(pid, signal.SIGSTOP)
                frozen.add(pid)
            assert not task.done(), "the box started before its VM was seen"
            await asyncio.sleep(0.01)
        try:
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)

    asyncio.run(start_then_cancel())
    # The boot finishes on its worker thread, then the box is stopped there.
    deadline = time.monotonic() + 240
    while qemu_children() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not qemu_children() - before

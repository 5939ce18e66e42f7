"""Leaving `async with` removes an ephemeral box: no QEMU process, no file."""

from __future__ import annotations

from pathlib import Path

import pytest

import boxlite
from conftest import IMAGE, MEMORY, process_alive, qemu_children, state_files


@pytest.mark.asyncio
async def test_leaving_async_with_removes_the_box(boxlite_home: Path, no_leaks: None) -> None:
    """The VM process ends, the runtime forgets the box, nothing stays in the home."""
    qemu_before = qemu_children()
    files_before = state_files(boxlite_home)
    async with boxlite.SimpleBox(IMAGE, memory=MEMORY) as box:
        info = await box.info()
        assert process_alive(info.pid)
        assert info.pid in qemu_children() - qemu_before
        await box.exec("sh", "-c", "echo data > /root/file")
    assert not process_alive(info.pid)
    assert qemu_children() == qemu_before
    assert state_files(boxlite_home) <= files_before
    assert await boxlite.Boxlite.default().get(info.id) is None


@pytest.mark.asyncio
async def test_leaving_on_an_exception_removes_the_box(no_leaks: None) -> None:
    """An exception inside `async with` still stops and removes the box."""
    with pytest.raises(RuntimeError, match="boom"):
        async with boxlite.SimpleBox(IMAGE, memory=MEMORY) as box:
            pid = (await box.info()).pid
            raise RuntimeError("boom")
    assert not process_alive(pid)


@pytest.mark.asyncio
async def test_reentering_creates_a_fresh_box(no_leaks: None) -> None:
    """A SimpleBox can be entered again after it was left: a new, clean box."""
    box = boxlite.SimpleBox(IMAGE, memory=MEMORY)
    async with box:
        first = box.id
        await box.exec("touch", "/root/marker")
    async with box:
        assert box.id != first
        assert (await box.exec("ls", "/root/marker")).exit_code != 0

"""The synchronous twins of the async-only boxes (boxlite.sync.ComputerBox; the
InteractiveBox twin needs a terminal and is tested with tmux in
tests/integration/cli/test_terminal.py), driven from plain, loop-free code."""

from __future__ import annotations

import pytest

import boxlite
import boxlite.sync
from test_computer import decode_png, desktop_image  # noqa: F401 (a fixture)


def test_constructor_checks_arguments_before_any_vm() -> None:
    with pytest.raises(boxlite.ConfigError):
        boxlite.sync.ComputerBox(width=10)
    with pytest.raises(boxlite.ConfigError):
        boxlite.sync.InteractiveBox(memory=-1)


def test_methods_keep_their_names_signatures_and_docs() -> None:
    for name in ("screenshot", "left_click", "type", "wait_until_ready", "exec", "stop"):
        twin, original = getattr(boxlite.sync.ComputerBox, name), getattr(boxlite.ComputerBox, name)
        assert twin.__doc__ == original.__doc__ and twin.__wrapped__ is original
    assert not hasattr(boxlite.sync.ComputerBox, "stream")
    assert "without ``await``" in (boxlite.sync.ComputerBox.__doc__ or "")


def test_refuses_a_thread_that_runs_an_event_loop() -> None:
    import asyncio

    async def inside() -> None:
        box = boxlite.sync.ComputerBox()
        with pytest.raises(boxlite.BoxStateError, match="event loop"):
            box.start()

    asyncio.run(inside())


def test_sync_twin_drives_a_desktop(desktop_image: str) -> None:  # noqa: F811
    """The same desktop calls without await; leaving the block removes the box."""
    with boxlite.sync.ComputerBox(width=800, height=600, memory=1024) as box:
        box.wait_until_ready(timeout=300)
        assert box.get_screen_size() == (800, 600)
        width, height, _ = decode_png(box.screenshot())
        assert (width, height) == (800, 600)
        box.mouse_move(123, 45)
        assert box.cursor_position() == (123, 45)
        box.left_click(200, 100)
        assert box.cursor_position() == (200, 100)
        with pytest.raises(boxlite.ConfigError):
            box.mouse_move(800, 0)
        assert box.exec("echo", "from-sync").stdout == "from-sync\n"
        box_id = box.id
    assert boxlite.sync.Boxlite.default().get(box_id) is None

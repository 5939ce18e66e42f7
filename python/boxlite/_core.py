"""Loads the ``_boxlite`` extension (the blocking C++ binding) and registers live boxes
for a clean interpreter exit.

The extension releases the GIL in every call into the core and raises the SDK's own
exceptions (built by :func:`boxlite.errors.error_from_status`).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any, Protocol

try:
    from . import _boxlite as core
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "the BoxLite extension (boxlite._boxlite) is missing or does not load: "
        f"{exc}. Install the SDK with `pip install --no-build-isolation ./python` "
        "from a BoxLite checkout (scripts/setup.sh does it)."
    ) from exc

__all__ = ["core", "register_box", "track_thread"]


class _Stoppable(Protocol):
    def _stop_at_exit(self) -> None: ...


_live_boxes: weakref.WeakSet[Any] = weakref.WeakSet()
_threads: set[threading.Thread] = set()
_lock = threading.Lock()


def register_box(box: _Stoppable) -> None:
    """Remembers a started box so that interpreter exit stops it (see _shutdown)."""
    _live_boxes.add(box)


def track_thread(thread: threading.Thread, running: bool) -> None:
    """Keeps the set of worker threads currently inside the core."""
    with _lock:
        if running:
            _threads.add(thread)
        else:
            _threads.discard(thread)


def _shutdown() -> None:
    # Runs before the interpreter finalizes. Stopping the boxes ends every blocked core
    # call (reads and waits fail with "box stopped"), so the worker threads return while
    # Python can still take them back; a worker waking up during finalization would be
    # terminated inside C++ code.
    for box in list(_live_boxes):
        try:
            box._stop_at_exit()
        except Exception:  # noqa: BLE001 - best effort at exit; the VM dies with us anyway.
            pass
    with _lock:
        pending = list(_threads)
    for thread in pending:
        thread.join(timeout=5)


atexit.register(_shutdown)

"""Snapshots and clones of a box (``box.snapshot``, ``box.clone_box``), BoxLite 0.9's API.

A disk snapshot saves the box's disk (what it wrote over its image); restoring it, on a
stopped box, puts the disk back as it was::

    info = await box.snapshot.create(name="before-upgrade")
    ...
    await box.stop()
    await box.snapshot.restore("before-upgrade")

A running box is quiesced for the copy (its file system frozen, the box ``paused``), so
what its programs wrote before the call is in the snapshot. ``memory=True`` also saves
its memory: restoring brings it back running. ``clone_box`` makes a new stopped box with
a copy of the disk. See docs/snapshots.md. Rules (names, states) live in the C++ core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _bridge

if TYPE_CHECKING:
    from .box import Box

__all__ = ["CloneOptions", "SnapshotHandle", "SnapshotInfo", "SnapshotOptions", "SyncSnapshotHandle"]


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of a box.

    Attributes:
        id: 12 Base62 characters, unique.
        box_id: The box it belongs to.
        name: Its name (1 to 255 bytes, no ``/``, ``\\`` or NUL, not starting with ``.``).
        created_at: Creation time, seconds since the epoch (an int, as in 0.9).
        container_disk_bytes: Bytes the saved disk occupies.
        size_bytes: Bytes the whole snapshot occupies.
        memory: It holds memory and device state too (``memory=True``).
        memory_bytes: Bytes the saved memory occupies (0 without).
    """

    id: str
    box_id: str
    name: str
    created_at: int
    container_disk_bytes: int = 0
    size_bytes: int = 0
    memory: bool = False
    memory_bytes: int = 0

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> SnapshotInfo:
        return cls(
            id=d["id"],
            box_id=d["box_id"],
            name=d["name"],
            created_at=int(d["created_unix"]),
            container_disk_bytes=int(d["container_disk_bytes"]),
            size_bytes=int(d["size_bytes"]),
            memory=bool(d["memory"]),
            memory_bytes=int(d["memory_bytes"]),
        )


class SnapshotOptions:
    """How a snapshot is taken (0.9's empty placeholder, plus ``memory``).

    Args:
        memory: Also save the box's memory and device state (a running box with a
            directory, ``auto_remove=False``): restoring brings it back running.
    """

    def __init__(self, memory: bool = False) -> None:
        self.memory = bool(memory)

    def __repr__(self) -> str:
        return f"SnapshotOptions(memory={self.memory})"


class CloneOptions:
    """Options of :meth:`Box.clone_box` (0.9's empty placeholder)."""

    def __repr__(self) -> str:
        return "CloneOptions()"


def _wants_memory(options: SnapshotOptions | None, memory: bool) -> bool:
    return bool(memory) or bool(options is not None and getattr(options, "memory", False))


class SnapshotHandle:
    """``box.snapshot``: create, list, get, remove and restore the box's snapshots."""

    def __init__(self, box: Box) -> None:
        self._box = box

    async def create(self, *, options: SnapshotOptions | None = None, name: str, memory: bool = False) -> SnapshotInfo:
        """Saves the box's disk (and with ``memory=True`` its memory) as ``name``.

        Raises:
            ConfigError: A name 0.9 refuses.
            BoxliteError: ``code == "already_exists"`` when the box has a snapshot of
                that name.
        """
        core = self._box._require_core()
        want_memory = _wants_memory(options, memory)
        d = await _bridge.call(lambda: core.create_snapshot(name, want_memory))
        return SnapshotInfo._from_core(d)

    async def list(self) -> list[SnapshotInfo]:
        """The box's snapshots, oldest first."""
        core = self._box._require_core()
        return [SnapshotInfo._from_core(d) for d in await _bridge.call(core.list_snapshots)]

    async def get(self, name: str) -> SnapshotInfo | None:
        """The snapshot of that name, or None."""
        core = self._box._require_core()
        d = await _bridge.call(lambda: core.get_snapshot(name))
        return None if d is None else SnapshotInfo._from_core(d)

    async def remove(self, name: str) -> None:
        """Deletes the snapshot (its files go at once)."""
        core = self._box._require_core()
        await _bridge.call(lambda: core.remove_snapshot(name))

    async def restore(self, name: str) -> None:
        """Puts the box back as the snapshot saved it. A disk snapshot needs a stopped box
        (BoxStateError otherwise, as in 0.9); a memory snapshot leaves the box running."""
        core = self._box._require_core()
        await _bridge.call(lambda: core.restore_snapshot(name))

    def __repr__(self) -> str:
        return f"SnapshotHandle({self._box!r})"


class SyncSnapshotHandle:
    """``box.snapshot`` of the synchronous API: the same calls without ``await``."""

    def __init__(self, box: Any) -> None:
        self._box = box

    def create(self, *, options: SnapshotOptions | None = None, name: str, memory: bool = False) -> SnapshotInfo:
        """See :meth:`SnapshotHandle.create`."""
        core = self._box._require_core()
        return SnapshotInfo._from_core(core.create_snapshot(name, _wants_memory(options, memory)))

    def list(self) -> list[SnapshotInfo]:
        """See :meth:`SnapshotHandle.list`."""
        return [SnapshotInfo._from_core(d) for d in self._box._require_core().list_snapshots()]

    def get(self, name: str) -> SnapshotInfo | None:
        """See :meth:`SnapshotHandle.get`."""
        d = self._box._require_core().get_snapshot(name)
        return None if d is None else SnapshotInfo._from_core(d)

    def remove(self, name: str) -> None:
        """See :meth:`SnapshotHandle.remove`."""
        self._box._require_core().remove_snapshot(name)

    def restore(self, name: str) -> None:
        """See :meth:`SnapshotHandle.restore`."""
        self._box._require_core().restore_snapshot(name)

    def __repr__(self) -> str:
        return f"SyncSnapshotHandle({self._box!r})"

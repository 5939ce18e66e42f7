"""Volumes (``runtime.volumes``): directories under the runtime's home that boxes mount.

A named volume is made with :meth:`VolumeHandle.create` and mounted by its id::

    vol = await runtime.volumes.create()
    box = await runtime.create(boxlite.BoxOptions(image="alpine", volumes=[(vol.id, "/data")]))

A mount whose host side is ``None`` or ``""`` (``(None, "/cache")``) is an anonymous
volume: made under the home for that box and removed with it. Volumes live in
``<home>/volumes/<id>`` (ids are 12 Base62 characters, like box ids).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _bridge
from .errors import ConfigError
from .images import _rfc3339

if TYPE_CHECKING:
    from .runtime import Boxlite

__all__ = ["VolumeInfo", "VolumeHandle", "SyncVolumeHandle"]


@dataclass(frozen=True)
class VolumeInfo:
    """A volume.

    Attributes:
        id: 12 Base62 characters; give it as a mount's host side.
        created_at: Creation time, RFC 3339 (UTC).
        size_bytes: Bytes its files occupy on the host.
        path: Its host directory.
        created_unix: ``created_at`` in seconds since the epoch.
    """

    id: str
    created_unix: int = 0
    size_bytes: int = 0
    path: str = ""

    @property
    def created_at(self) -> str:
        """Creation time, RFC 3339 in UTC."""
        return _rfc3339(self.created_unix)

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> VolumeInfo:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _check_volume_id(volume_id: Any) -> str:
    if not isinstance(volume_id, str) or not volume_id:
        raise ConfigError(f"a volume id must be a non-empty string, not {volume_id!r}")
    return volume_id


class VolumeHandle:
    """The runtime's volumes: ``create``, ``list``, ``get``, ``remove``."""

    def __init__(self, runtime: Boxlite) -> None:
        self._runtime = runtime

    async def create(self) -> VolumeInfo:
        """Makes a new empty named volume."""
        return VolumeInfo._from_core(await _bridge.call(self._runtime._core.create_volume))

    async def list(self) -> builtins.list[VolumeInfo]:
        """Every volume (named and anonymous), oldest first."""
        return [VolumeInfo._from_core(d) for d in await _bridge.call(self._runtime._core.list_volumes)]

    async def get(self, volume_id: str) -> VolumeInfo | None:
        """The volume with this id, or None."""
        d = await _bridge.call(self._runtime._core.get_volume, _check_volume_id(volume_id))
        return None if d is None else VolumeInfo._from_core(d)

    async def remove(self, volume_id: str, force: bool = False) -> None:
        """Removes a volume and its files. One a box still mounts is refused
        (BoxliteError with code FailedPrecondition) unless ``force=True``."""
        await _bridge.call(self._runtime._core.remove_volume, _check_volume_id(volume_id), bool(force))


class SyncVolumeHandle:
    """The synchronous twin of :class:`VolumeHandle` (``boxlite.sync.Boxlite().volumes``)."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def create(self) -> VolumeInfo:
        """Makes a new empty named volume."""
        return VolumeInfo._from_core(self._runtime._core.create_volume())

    def list(self) -> builtins.list[VolumeInfo]:
        """Every volume (named and anonymous), oldest first."""
        return [VolumeInfo._from_core(d) for d in self._runtime._core.list_volumes()]

    def get(self, volume_id: str) -> VolumeInfo | None:
        """The volume with this id, or None."""
        d = self._runtime._core.get_volume(_check_volume_id(volume_id))
        return None if d is None else VolumeInfo._from_core(d)

    def remove(self, volume_id: str, force: bool = False) -> None:
        """Removes a volume; one a box still mounts only with ``force=True``."""
        self._runtime._core.remove_volume(_check_volume_id(volume_id), bool(force))

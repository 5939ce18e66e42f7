"""The image store of a runtime (``runtime.images``) and the values it returns.

Both spellings work: BoxLite 0.9's ``ImageHandle`` with ``pull(ref) -> ImagePullResult``
(``reference``, ``config_digest``, ``layer_count``) and ``list() -> [ImageInfo]``
(``reference``, ``repository``, ``tag``, ``id``, ``cached_at``, ``size_bytes``), and ours
(``Images``, ``remove``, ``import_image``, ``ImageInfo.manifest_digest`` ...). A pull
result is also an :class:`ImageInfo`, so programs that read ``pull(...).id`` keep working.
"""

from __future__ import annotations

import builtins
import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _args, _bridge
from .errors import ConfigError

if TYPE_CHECKING:
    from .runtime import Boxlite

__all__ = ["ImageInfo", "ImagePullResult", "ImageHandle", "Images"]


def _rfc3339(unix_seconds: int) -> str:
    """Seconds since the epoch as RFC 3339 in UTC (``2026-01-02T03:04:05Z``); "" for 0."""
    if not unix_seconds:
        return ""
    moment = datetime.datetime.fromtimestamp(unix_seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ImageInfo:
    """An image in the local store.

    Attributes:
        reference: The normalized reference (``docker.io/library/alpine:latest``).
        repository: ``registry/repository`` (``docker.io/library/alpine``).
        tag: The tag (``latest``); ``""`` for a digest-only reference.
        id: The config digest (``sha256:...``).
        cached_at: When this reference was pulled or imported here, RFC 3339 (UTC).
        size_bytes: Size of the (compressed) layers.
        manifest_digest: The manifest digest.
        created_unix: Creation time from the image config, seconds since the epoch.
        cached_at_unix: ``cached_at`` in seconds since the epoch.
        layer_count: Number of layers.
    """

    reference: str
    id: str
    manifest_digest: str = ""
    size_bytes: int = 0
    created_unix: int = 0
    repository: str = ""
    tag: str = ""
    cached_at_unix: int = 0
    layer_count: int = 0

    @property
    def cached_at(self) -> str:
        """When this reference was pulled or imported here, RFC 3339 in UTC."""
        return _rfc3339(self.cached_at_unix)

    @property
    def config_digest(self) -> str:
        """The config digest (the same as :attr:`id`)."""
        return self.id

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> Any:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class ImagePullResult(ImageInfo):
    """What :meth:`ImageHandle.pull` returns: ``reference``, ``config_digest`` and
    ``layer_count`` (BoxLite 0.9), plus every :class:`ImageInfo` attribute."""


class ImageHandle:
    """The runtime's image store (``runtime.images``; also named ``Images``)."""

    def __init__(self, runtime: Boxlite) -> None:
        self._runtime = runtime

    async def pull(self, reference: str) -> ImagePullResult:
        """Pulls an image (or imports a built-in one) and prepares its root file system.

        An unqualified name (``alpine``) is looked for in the runtime's registries with
        ``search=True``, in order, then at docker.io.

        Raises:
            InvalidReferenceError: The reference is malformed.
            ImageNotFoundError: No registry has it.
            RegistryError: A registry could not be reached or failed.
            AuthenticationError: A registry refused the credentials.
        """
        ref = _args.check_reference(reference)
        return ImagePullResult._from_core(await _bridge.call(self._runtime._core.pull_image, ref))

    async def list(self) -> builtins.list[ImageInfo]:
        """The images in the local store."""
        images = await _bridge.call(self._runtime._core.list_images)
        return [ImageInfo._from_core(d) for d in images]

    async def remove(self, reference: str) -> None:
        """Removes an image from the local store (ImageNotFoundError if absent)."""
        ref = _args.check_reference(reference)
        await _bridge.call(self._runtime._core.remove_image, ref)

    async def import_image(self, path: str | os.PathLike[str], tag: str = "") -> builtins.list[ImageInfo]:
        """Imports a ``docker save`` archive or an OCI layout directory; ``tag`` names
        the image when the archive does not."""
        src = _args.host_path(path, "path")
        if not isinstance(tag, str):
            raise ConfigError(f"tag must be a string, not {type(tag).__name__}")
        images = await _bridge.call(self._runtime._core.import_image, src, tag)
        return [ImageInfo._from_core(d) for d in images]


Images = ImageHandle

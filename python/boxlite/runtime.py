"""The runtime: a state directory (images and boxes) and the boxes made in it (async)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, ClassVar

from . import _args, _bridge
from . import archive as _archive  # Import of .boxlite archives.
from .box import Box
from .errors import LATER_FEATURES, BoxStateError, ConfigError, NotSupportedError, not_in_this_build
from .images import ImageHandle, Images
from .options import BoxOptions, Options, _core_module, box_options_for
from .results import BoxInfo, RuntimeMetrics
from .volumes import VolumeHandle

__all__ = ["Boxlite", "Images"]


class _RemoteImages:
    """``Boxlite.rest(...).images``: a REST runtime has no image store (BoxLite 0.9 raises
    "unsupported" too); the server pulls what its boxes use."""

    def __getattr__(self, name: str) -> Any:
        raise NotSupportedError("unsupported: images over REST (the server pulls the images its boxes use)",
                                code="not_supported")


class Boxlite:
    """The BoxLite runtime: one state directory holding images and boxes.

    Use :meth:`default` (home ``$BOXLITE_HOME``, else ``~/.local/share/boxlite``) or
    ``Boxlite(Options(home_dir=...))``. There is no daemon: the boxes' VMs are children
    of this process.

    Several runtimes, in one process or many, may share one home: boxes and images are
    locked one by one. BoxLite 0.9 instead allowed one live runtime per home (an
    exclusive lock, a second one failed); a 0.9 program, which opens one, runs unchanged.

    Example::

        rt = boxlite.Boxlite.default()
        box = await rt.create(boxlite.BoxOptions(image="boxlite/base"), name="worker")
        async with box:
            print((await box.run("uname", "-r")).stdout)
    """

    _default: ClassVar[Boxlite | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, options: Options | None = None) -> None:
        if options is None:
            options = Options()
        elif not isinstance(options, Options):
            raise ConfigError(f"options must be boxlite.Options, not {type(options).__name__}")
        self._options = options
        self._core: Any = options._open_core()
        self._boxes: weakref.WeakValueDictionary[str, Box] = weakref.WeakValueDictionary()
        self._open = True
        self.images = ImageHandle(self)
        """The image store: ``pull``, ``list``, ``remove``, ``import_image``."""
        self.volumes = VolumeHandle(self)
        """The volumes: ``create``, ``list``, ``get``, ``remove``."""

    @classmethod
    def default(cls) -> Boxlite:
        """The process-wide runtime with default options (created on first use), or
        those given to :meth:`init_default` first."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    @classmethod
    def init_default(cls, options: Options) -> None:
        """Sets the options of the process-wide runtime (BoxLite 0.9). Call it before the
        first :meth:`default`.

        Raises:
            BoxStateError: The default runtime exists already.
        """
        with cls._default_lock:
            if cls._default is not None:
                raise BoxStateError(
                    "the default runtime exists already: call Boxlite.init_default() before "
                    "the first Boxlite.default()"
                )
            cls._default = cls(options)

    @property
    def home_dir(self) -> str:
        """The state directory."""
        return str(self._core.home_dir)

    @property
    def options(self) -> Options:
        """The options the runtime was opened with."""
        return self._options

    async def _create_core(self, options: BoxOptions) -> Any:
        return await _bridge.call(lambda: self._core.create(options._core_args()))

    async def create(self, options: BoxOptions | None = None, name: str | None = None, **kwargs: Any) -> Box:
        """Creates a box (not started yet: it boots on ``start()``, ``async with`` or
        its first command).

        Args:
            options: The box's :class:`BoxOptions`; keyword arguments (``image=...``)
                may be given instead or change some of them.
            name: A unique name (overrides ``options.name``).

        Raises:
            ConfigError: Bad options, or the name is taken.
            NotSupportedError: A persistent box (``auto_remove=False`` or
                ``detach=True``) in this build.
        """
        options = box_options_for(options, name, kwargs)
        box = Box(await self._create_core(options), options, self)
        self._boxes[box.id] = box
        return box

    async def get(self, id_or_name: str) -> Box | None:
        """The box with this id, unique id prefix (4+ characters) or name, or None."""
        key = _args.check_id(id_or_name)
        core_box = await _bridge.call(self._core.get, key)
        if core_box is None:
            return None
        known = self._boxes.get(core_box.id)
        if known is not None:
            return known
        box = Box(core_box, None, self)
        self._boxes[box.id] = box
        return box

    async def get_or_create(
        self, options: BoxOptions | None = None, name: str | None = None, **kwargs: Any
    ) -> tuple[Box, bool]:
        """The box named ``name`` (or ``options.name``) if it exists, else a new one:
        ``(box, created)``. Without a name it always creates. An existing box is adopted
        only with the same privileges (BoxStateError otherwise).

        Raises:
            ConfigError: Bad options.
            BoxStateError: The existing box has a different capability policy.
        """
        options = box_options_for(options, name, kwargs)
        core_box, created = await _bridge.call(lambda: self._core.get_or_create(options._core_args()))
        known = self._boxes.get(core_box.id)
        if known is not None:
            return known, bool(created)
        box = Box(core_box, options if created else None, self)
        self._boxes[box.id] = box
        return box, bool(created)

    async def get_info(self, id_or_name: str) -> BoxInfo | None:
        """Facts about the box with this id, unique id prefix or name, or None."""
        key = _args.check_id(id_or_name)
        core_box = await _bridge.call(self._core.get, key)
        if core_box is None:
            return None
        return BoxInfo._from_core(await _bridge.call(core_box.info))

    async def list_info(self, _state: str | None = None) -> list[BoxInfo]:
        """Facts about every box of this runtime. ``_state`` (BoxLite 0.9's keyword,
        which 0.9 ignores) keeps only the boxes in that state: ``"configured"``,
        ``"running"``, ``"stopped"``, ..."""
        if _state is not None and not isinstance(_state, str):
            raise ConfigError(f"_state must be a state name, not {type(_state).__name__}")
        infos = [BoxInfo._from_core(d) for d in await _bridge.call(self._core.list)]
        if _state is None:
            return infos
        wanted = _state.lower()
        return [i for i in infos if str(i.state).lower() == wanted]

    async def shutdown(self, timeout: int | None = None) -> None:
        """Stops every box of this runtime that is not detached, waiting up to
        ``timeout`` seconds per box for a clean stop (None: 10; -1: no limit). The
        runtime takes no new work afterwards (BoxStateError "runtime is shut down")."""
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
            raise ConfigError(f"timeout must be an int number of seconds, not {type(timeout).__name__}")
        await _bridge.call(self._core.shutdown, timeout)
        self._open = False

    # --- Remote runtimes (boxlite/credential.py, docs/remote.md) ---
    @classmethod
    def rest(cls, options: Any) -> Boxlite:
        """A runtime whose every call goes to a ``boxlite serve`` (BoxLite 0.9's REST
        runtime): ``Boxlite.rest(BoxliteRestOptions(url, credential=ApiKeyCredential(key)))``.
        Boxes, execs, files and metrics work as locally; what the API cannot do (published
        ports, images, tunnels, ...) raises NotSupportedError ("unsupported: ...").

        Raises:
            ConfigError: Bad options (the URL, the prefix, the credential).
        """
        from .credential import BoxliteRestOptions

        if not isinstance(options, BoxliteRestOptions):
            raise ConfigError(f"options must be boxlite.BoxliteRestOptions, not {type(options).__name__}")
        url, prefix, token = options._core_args()
        self = cls.__new__(cls)
        self._options = Options()
        self._rest_options = options
        self._core = _core_module().Runtime.open_remote(url, prefix, token)
        self._boxes = weakref.WeakValueDictionary()
        self._open = True
        self.images = _RemoteImages()
        self.volumes = VolumeHandle(self)
        return self

    @property
    def is_remote(self) -> bool:
        """Whether this runtime is a REST one (:meth:`rest`)."""
        return getattr(self, "_rest_options", None) is not None
    # --- end remote runtimes ---

    # --- Import of a .boxlite archive (boxlite/archive.py) ---
    async def import_box(self, archive_path: str | os.PathLike[str], name: str | None = None, *,
                         untrusted: bool = False) -> Box:
        """A new stopped box from a ``.boxlite`` archive (:meth:`Box.export`), with a new
        id and ``name`` (None: the archive's name when free, else none). The archive is
        treated as hostile: sizes bounded, checksums verified, only its two files read.
        ``untrusted=True`` also refuses archives asking for host mounts, host access,
        published ports or host paths and gives the box the secure security defaults.

        Raises:
            ConfigError: A malformed archive or options no box may have (the message says
                what is wrong with the archive).
            BoxError: A damaged archive (a checksum or the compressed stream), an option
                an untrusted archive may not ask for (code ``permission_denied``).
            BoxliteError: A name already in use (code ``already_exists``), a disk larger
                than the home's free space (code ``resource_exhausted``).
        """
        path, box_name, strict = _archive.import_args(archive_path, name, untrusted)
        core_box = await _bridge.call(lambda: self._core.import_box(path, box_name, strict))
        box = Box(core_box, None, self)
        self._boxes[box.id] = box
        return box

    def __getattr__(self, name: str) -> Any:
        # BoxLite 0.9's later features.
        if name in LATER_FEATURES:
            raise not_in_this_build("Boxlite", name, attribute=True)
        raise AttributeError(f"'Boxlite' object has no attribute {name!r}")

    def close(self) -> None:
        """Lets go of the runtime (BoxLite 0.9 spelling; boxes keep their own lifecycle)."""

    def __enter__(self) -> Boxlite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def remove(self, id_or_name: str, force: bool = False) -> None:
        """Removes a box; a running one only with ``force=True`` (it is stopped).

        Raises:
            BoxNotFoundError: No such box.
            BoxStateError: It is running and ``force`` is False.
        """
        key = _args.check_id(id_or_name)
        await _bridge.call(self._core.remove, key, bool(force))

    async def metrics(self) -> RuntimeMetrics:
        """Counters of this runtime: boxes created, failed, stopped and running, and the
        commands its boxes ran (:class:`boxlite.RuntimeMetrics`)."""
        return RuntimeMetrics._from_core(await _bridge.call(self._core.metrics))

    async def host_info(self) -> dict[str, str]:
        """Facts about the host: accelerator (and why), kernel, data directory, home."""
        return dict(await _bridge.call(self._core.host_info))

    def __repr__(self) -> str:
        return f"Boxlite(open={'true' if self._open else 'false'}, home={self.home_dir!r})"

"""The synchronous twin of the BoxLite API: the same classes and methods, no ``await``.

::

    from boxlite.sync import SimpleBox

    with SimpleBox("boxlite/base") as box:
        print(box.exec("echo", "hello").stdout)

These classes call the C++ core directly from the calling thread (which releases the
GIL while it waits); they never start or need an event loop, so they also work in a
worker thread of a program whose main thread runs asyncio. Long waits (``exec``,
``wait``, reads) stay interruptible with Ctrl-C, which kills the guest process.

A box from this module and one from :mod:`boxlite` may share a runtime:
``boxlite.sync.Boxlite.default()`` uses the same state as ``boxlite.Boxlite.default()``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import importlib
import inspect
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, ClassVar

from . import _args, _bridge
from . import runtime as _async_runtime
from ._core import core, register_box
from .errors import BoxliteError, BoxStateError, ConfigError
from .options import (
    BoxOptions,
    EnvLike,
    MountLike,
    NetworkSpec,
    Options,
    PortLike,
    box_options_for,
    box_options_from_arguments,
)
from .results import BoxInfo, BoxMetrics, ExecResult, ImageInfo

__all__ = ["Boxlite", "Box", "SimpleBox", "Execution", "Images"]

_STDOUT = 1
_STDERR = 2
# How often a blocked read returns to Python so that Ctrl-C is seen.
_POLL_SECONDS = 0.25


class Execution:
    """A process running in a box, with streaming I/O (from :meth:`Box.stream`).

    ``for chunk in execution.stdout(): ...`` reads its output; :meth:`wait` returns how
    it ended. One reader per stream at a time.
    """

    def __init__(self, core_exec: Any, argv: list[str], tty: bool) -> None:
        self._core = core_exec
        self._argv = argv
        self._tty = tty
        self._started_at = time.monotonic()
        self._consumed = {_STDOUT: False, _STDERR: False}
        self._result: ExecResult | None = None

    @property
    def pid(self) -> int:
        """The process id in the guest."""
        return int(self._core.pid)

    @property
    def argv(self) -> list[str]:
        """The command line."""
        return list(self._argv)

    @property
    def tty(self) -> bool:
        """Whether the process has a terminal (then all output arrives on stdout)."""
        return self._tty

    def stdout(self) -> Iterator[bytes]:
        """Iterates over standard output chunks (bytes) until the stream ends."""
        self._consumed[_STDOUT] = True
        return self._iterate(_STDOUT)

    def stderr(self) -> Iterator[bytes]:
        """Iterates over standard error chunks (bytes) until the stream ends."""
        self._consumed[_STDERR] = True
        return self._iterate(_STDERR)

    def _iterate(self, fd: int) -> Iterator[bytes]:
        while True:
            chunk = self.read(fd)
            if not chunk:
                return
            yield chunk

    def read(self, fd: int = _STDOUT) -> bytes:
        """The next chunk of stdout (``fd=1``) or stderr (``fd=2``); ``b""`` at the end."""
        fd = _args.check_fd(fd)
        self._consumed[fd] = True
        while True:
            # A read with a deadline consumes nothing when it expires.
            chunk = self._core.read(fd, _POLL_SECONDS)
            if chunk is not None:
                return bytes(chunk)

    def write_stdin(self, data: bytes | str) -> None:
        """Sends bytes (or UTF-8 text) to the process's stdin."""
        self._core.write_stdin(_args.stdin_bytes(data))

    def close_stdin(self) -> None:
        """Closes stdin: the process reads end-of-file."""
        self._core.close_stdin()

    def signal(self, signo: int) -> None:
        """Sends signal ``signo`` to the process."""
        self._core.signal(_args.check_signal(signo))

    def resize(self, rows: int, cols: int) -> None:
        """Sets the terminal size (only for ``tty=True``)."""
        self._core.resize(*_args.check_size(rows, cols))

    def kill(self) -> None:
        """Kills the process (and its process group) with SIGKILL."""
        self._core.kill()

    def _wait_blocking(self, timeout: float | None) -> tuple[int, int, bool, str]:
        for fd in (_STDOUT, _STDERR):
            if not self._consumed[fd]:
                self._core.discard_output(fd)
        result: tuple[int, int, bool, str] = self._core.wait(timeout)
        return result

    def wait(self, timeout: float | None = None) -> ExecResult:
        """Waits for the exit; see :meth:`boxlite.Execution.wait` (streams never read
        are discarded; ``timeout`` kills the process and sets ``timed_out``)."""
        if self._result is not None:
            return self._result
        limit = _args.check_timeout(timeout)
        exit_code, signo, timed_out, error = _bridge.call_sync(
            self._wait_blocking, limit, on_interrupt=self._core.kill
        )
        self._result = ExecResult._from_core(
            exit_code, signo, timed_out, error, duration=time.monotonic() - self._started_at,
            command=self._argv[0],
        )
        return self._result

    def __enter__(self) -> Execution:
        """Returns the execution; leaving kills the process unless it was waited for."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Kills the process unless it has already been waited for."""
        if self._result is None:
            with contextlib.suppress(BoxliteError):
                self._core.kill()

    def __repr__(self) -> str:
        return f"<Execution {' '.join(self._argv)!r} pid={self._core.pid}>"


class Box:
    """A box (synchronous API); see :class:`boxlite.Box`.

    A created box starts on :meth:`start`, on entering ``with``, or on its first
    command; leaving ``with`` stops it (and removes an ephemeral one).
    """

    def __init__(self, core_box: Any, options: BoxOptions | None, runtime: Boxlite | None) -> None:
        self._core: Any = core_box
        self._options = options
        self._runtime = runtime
        self._started = False
        self._stopped = False

    def _require_core(self) -> Any:
        if self._core is None:
            raise BoxStateError(
                "the box is not created yet: use `with SimpleBox(...) as box` or `box.start()` first"
            )
        return self._core

    @property
    def id(self) -> str:
        """The box id (hex, unique)."""
        return str(self._require_core().id)

    @property
    def name(self) -> str:
        """The box name (the id's first 12 characters unless one was given)."""
        return str(self._require_core().name)

    @property
    def options(self) -> BoxOptions | None:
        """The options the box was created with (None for a box found by ``get``)."""
        return self._options

    def start(self) -> Box:
        """Boots the box and waits for its guest; a no-op when running. Returns the box."""
        core_box = self._require_core()
        if self._started and not self._stopped:
            return self
        try:
            core_box.start()
        except BoxliteError:
            with contextlib.suppress(BoxliteError):
                core_box.stop()
            self._stopped = True
            raise
        self._started = True
        self._stopped = False
        register_box(self)
        return self

    def stop(self) -> None:
        """Stops the box (an ephemeral box is also removed). Safe to call twice."""
        if self._core is None:
            return
        self._core.stop()
        self._stopped = True

    def _stop_at_exit(self) -> None:
        if self._core is not None and not self._stopped:
            if self._options is None or not self._options.detach:
                self._core.stop()
                self._stopped = True

    def _ensure_started(self) -> Any:
        core_box = self._require_core()
        if not self._started:
            self.start()
        return core_box

    def __enter__(self) -> Box:
        """Starts the box (see :meth:`start`) and returns it."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stops the box (and removes an ephemeral one)."""
        try:
            self.stop()
        except BoxliteError:
            if exc is None:
                raise  # Otherwise the body's own exception is the one to see.

    def exec(
        self,
        cmd: str | list[str],
        *args: _args.CommandArg,
        env: EnvLike | None = None,
        cwd: str | None = None,
        user: str | int | None = None,
        timeout: float | None = None,
        stdin: _args.StdinLike | None = None,
        max_output_bytes: int | None = _args.DEFAULT_MAX_OUTPUT_BYTES,
    ) -> ExecResult:
        """Runs a command to completion; see :meth:`boxlite.Box.exec`.

        A non-zero exit is a result; ``timeout`` kills the process and sets
        ``timed_out``; ``stdin`` is fed and then closed; each output stream keeps at most
        ``max_output_bytes`` (then ``stdout_truncated`` / ``stderr_truncated``). Ctrl-C
        kills the process.
        """
        argv = _args.argv_of(cmd, args)
        spec = _args.exec_args(argv, env, cwd, user, open_stdin=stdin is not None)
        limit = _args.check_timeout(timeout)
        cap = _args.check_max_output(max_output_bytes)
        data = _args.stdin_bytes(stdin)
        core_box = self._ensure_started()
        core_exec = core_box.start_exec(**spec)
        outcome = _bridge.call_sync(core_exec.collect, data, limit, cap, on_interrupt=core_exec.kill)
        exit_code, signo, timed_out, error, out, err, duration, out_cut, err_cut = outcome
        return ExecResult._from_core(
            exit_code, signo, timed_out, error, out, err, duration, out_cut, err_cut, command=argv[0]
        )

    def stream(
        self,
        cmd: str | list[str],
        *args: _args.CommandArg,
        env: EnvLike | None = None,
        cwd: str | None = None,
        user: str | int | None = None,
        tty: bool = False,
        rows: int = 24,
        cols: int = 80,
        open_stdin: bool = True,
    ) -> Execution:
        """Starts a command for streaming I/O; see :meth:`boxlite.Box.stream`."""
        argv = _args.argv_of(cmd, args)
        spec = _args.exec_args(argv, env, cwd, user, tty=tty, rows=rows, cols=cols, open_stdin=open_stdin)
        core_box = self._ensure_started()
        return Execution(core_box.start_exec(**spec), argv, tty)

    def info(self) -> BoxInfo:
        """Returns the box's identity, configuration and state."""
        return BoxInfo._from_core(self._require_core().info())

    def metrics(self) -> BoxMetrics:
        """Returns the box's resource use (the box must be running)."""
        return BoxMetrics._from_core(self._require_core().metrics())

    def copy_in(
        self, host_path: str | bytes | os.PathLike[str], guest_path: str | bytes
    ) -> None:
        """Copies a host file or directory tree into the box (modes kept)."""
        src = _args.host_path(host_path, "host_path")
        dst = _args.guest_path(guest_path, "guest_path")
        self._ensure_started().copy_in(src, dst)

    def copy_out(
        self, guest_path: str | bytes, host_path: str | bytes | os.PathLike[str]
    ) -> None:
        """Copies a file or directory tree out of the box to the host: written beneath the
        destination, never through a symlink; modes kept without setuid/setgid/sticky."""
        src = _args.guest_path(guest_path, "guest_path")
        dst = _args.host_path(host_path, "host_path")
        self._ensure_started().copy_out(src, dst)

    def console_log(self) -> str:
        """The guest console so far (kernel messages, agent errors)."""
        return bytes(self._require_core().console_log()).decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        if self._core is None:
            return f"<{type(self).__name__} (not created)>"
        return f"<{type(self).__name__} {self._core.name} id={self._core.id[:12]}>"


class SimpleBox(Box):
    """A box you describe and enter: ``with SimpleBox(image) as box``.

    The same arguments as :class:`boxlite.SimpleBox` (``cpu``/``cpus``,
    ``memory``/``memory_mib``, ``disk_size``/``disk_size_gb``, ``mounts``/``volumes``,
    ``env``, ``ports``, ``network``, ``working_dir``, ``user``, ``name``,
    ``auto_remove``, ``detach``, ``rootfs_path``, ``runtime``), checked at construction.
    Entering creates and boots the box; leaving stops and (ephemeral) removes it.
    """

    def __init__(
        self,
        image: str = "alpine:latest",
        *,
        cpu: int = 1,
        cpus: int | None = None,
        memory: int = 1024,
        memory_mib: int | None = None,
        disk_size: int | None = None,
        disk_size_gb: float | None = None,
        env: EnvLike | None = None,
        mounts: Iterable[MountLike] | None = None,
        volumes: Iterable[MountLike] | None = None,
        ports: Iterable[PortLike] | None = None,
        network: str | NetworkSpec = "nat",
        working_dir: str | None = None,
        user: str | None = None,
        name: str | None = None,
        auto_remove: bool = True,
        detach: bool = False,
        rootfs_path: str | os.PathLike[str] | None = None,
        runtime: Boxlite | None = None,
    ) -> None:
        options = box_options_from_arguments(locals())
        super().__init__(None, options, runtime)
        self._create_lock = threading.Lock()

    @property
    def options(self) -> BoxOptions:
        """The box's options."""
        assert self._options is not None
        return self._options

    def start(self) -> SimpleBox:
        """Creates the box (again, after it was stopped) and boots it. Returns the box."""
        with self._create_lock:  # Threads starting one box at once create it once.
            if self._core is None or self._stopped:
                runtime = self._runtime or Boxlite.default()
                self._runtime = runtime
                self._core = runtime._core.create(self.options._core_args())
                self._started = False
                self._stopped = False
        super().start()
        return self

    def __enter__(self) -> SimpleBox:
        """Creates and starts the box (see :meth:`start`) and returns it."""
        return self.start()

    def _ensure_started(self) -> Any:
        if self._core is None:
            raise BoxStateError(
                "the box is not started: use `with SimpleBox(...) as box` or `box.start()` first"
            )
        return super()._ensure_started()


class Images:
    """The runtime's image store (``runtime.images``); see :class:`boxlite.Images`."""

    def __init__(self, runtime: Boxlite) -> None:
        self._runtime = runtime

    def pull(self, reference: str) -> ImageInfo:
        """Pulls an image (or imports a built-in one) and prepares its root file system."""
        return ImageInfo._from_core(self._runtime._core.pull_image(_args.check_reference(reference)))

    def list(self) -> list[ImageInfo]:
        """The images in the local store."""
        return [ImageInfo._from_core(d) for d in self._runtime._core.list_images()]

    def remove(self, reference: str) -> None:
        """Removes an image from the local store."""
        self._runtime._core.remove_image(_args.check_reference(reference))

    def import_image(self, path: str | os.PathLike[str], tag: str = "") -> builtins.list[ImageInfo]:
        """Imports a ``docker save`` archive or an OCI layout directory."""
        if not isinstance(tag, str):
            raise ConfigError(f"tag must be a string, not {type(tag).__name__}")
        images = self._runtime._core.import_image(_args.host_path(path, "path"), tag)
        return [ImageInfo._from_core(d) for d in images]


class Boxlite:
    """The BoxLite runtime (synchronous API); see :class:`boxlite.Boxlite`."""

    _default: ClassVar[Boxlite | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, options: Options | None = None, *, _core: Any = None) -> None:
        if _core is None:
            if options is None:
                options = Options()
            elif not isinstance(options, Options):
                raise ConfigError(f"options must be boxlite.Options, not {type(options).__name__}")
            _core = core.Runtime.open(
                options.home_dir, options.data_dir, list(options.image_registries), list(options.insecure_registries)
            )
        self._options = options or Options()
        self._core: Any = _core
        self._boxes: weakref.WeakValueDictionary[str, Box] = weakref.WeakValueDictionary()
        self.images = Images(self)
        """The image store: ``pull``, ``list``, ``remove``, ``import_image``."""

    @classmethod
    def default(cls) -> Boxlite:
        """The process-wide runtime (the same state as ``boxlite.Boxlite.default()``)."""
        with cls._default_lock:
            if cls._default is None:
                shared = _async_runtime.Boxlite.default()
                cls._default = cls(shared.options, _core=shared._core)
            return cls._default

    @property
    def home_dir(self) -> str:
        """The state directory."""
        return str(self._core.home_dir)

    @property
    def options(self) -> Options:
        """The options the runtime was opened with."""
        return self._options

    def create(self, options: BoxOptions | None = None, name: str | None = None, **kwargs: Any) -> Box:
        """Creates a box (not started yet); see :meth:`boxlite.Boxlite.create`."""
        options = box_options_for(options, name, kwargs)
        box = Box(self._core.create(options._core_args()), options, self)
        self._boxes[box.id] = box
        return box

    def get(self, id_or_name: str) -> Box | None:
        """The box with this id, unique id prefix or name, or None."""
        core_box = self._core.get(_args.check_id(id_or_name))
        if core_box is None:
            return None
        known = self._boxes.get(core_box.id)
        if known is not None:
            return known
        box = Box(core_box, None, self)
        self._boxes[box.id] = box
        return box

    def list_info(self) -> list[BoxInfo]:
        """Facts about every box of this runtime."""
        return [BoxInfo._from_core(d) for d in self._core.list()]

    def remove(self, id_or_name: str, force: bool = False) -> None:
        """Removes a box; a running one only with ``force=True``."""
        self._core.remove(_args.check_id(id_or_name), bool(force))

    def host_info(self) -> dict[str, str]:
        """Facts about the host: accelerator (and why), kernel, data directory, home."""
        return dict(self._core.host_info())

    def __repr__(self) -> str:
        return f"<boxlite.sync.Boxlite home={self.home_dir!r}>"



# ------------------------------------------------------------ twins of async-only boxes

def _run_here(coro: Any) -> Any:
    """Runs one coroutine of an async box to completion on a fresh event loop in the
    calling thread. Async boxes may be used from one event loop after another, so each
    call of a twin can have its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise BoxStateError(
        "boxlite.sync called from a thread that runs an event loop: await the async "
        "class (boxlite.ComputerBox, boxlite.InteractiveBox) there, or call from a "
        "worker thread"
    )


class _AsyncTwin:
    """Base of the synchronous twins of async-only box classes: the async box does the
    work; each of its coroutine methods becomes a blocking method of the same name
    (added by :func:`_twin`), and its properties read through."""

    _async_class: ClassVar[type]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Arguments are checked here, before any VM starts (ConfigError).
        self._box = self._async_class(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._box, name)

    def start(self) -> Any:
        """Boots the box (see the async class's ``start``); returns this twin."""
        _run_here(self._box.start())
        return self

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _run_here(self._box.__aexit__(exc_type, exc, tb))

    def __repr__(self) -> str:
        return f"<boxlite.sync.{type(self).__name__} of {self._box!r}>"


def _twin(name: str, module: str, skip: tuple[str, ...] = ()) -> type:
    """Builds the synchronous twin of ``boxlite.<module>.<name>``: one blocking method per
    public coroutine method, keeping its name, signature and docstring."""
    async_class = getattr(importlib.import_module(f".{module}", __package__), name)
    namespace: dict[str, Any] = {
        "_async_class": async_class,
        "__doc__": (
            f"Synchronous twin of :class:`boxlite.{name}`: the same constructor, "
            "properties and methods, without ``await``. Each call runs on a private event "
            "loop in the calling thread, so use it from plain code or a worker thread, "
            "not from a coroutine.\n\n" + (async_class.__doc__ or "")
        ),
        "__module__": __name__,
    }
    for attr, fn in inspect.getmembers(async_class, inspect.iscoroutinefunction):
        if attr.startswith("_") or attr in skip or attr == "start":
            continue

        def blocking(self: _AsyncTwin, *args: Any, __fn: Any = fn, **kwargs: Any) -> Any:
            return _run_here(__fn(self._box, *args, **kwargs))

        method = functools.wraps(fn)(blocking)
        method.__module__ = __name__
        method.__qualname__ = f"{name}.{attr}"
        namespace[attr] = method
    return type(name, (_AsyncTwin,), namespace)


# stream() hands out an async Execution bound to the coroutine world: the twins offer
# exec() (and InteractiveBox.wait()) instead.
ComputerBox = _twin("ComputerBox", "computer", skip=("stream",))
InteractiveBox = _twin("InteractiveBox", "interactivebox", skip=("stream",))
__all__ += ["ComputerBox", "InteractiveBox"]

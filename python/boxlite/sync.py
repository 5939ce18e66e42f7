"""The synchronous twin of the BoxLite API: the same classes and methods, no ``await``.

::

    from boxlite.sync import SimpleBox

    with SimpleBox("boxlite/base") as box:
        print(box.exec("echo", "hello").stdout)

These classes are also BoxLite 0.9's synchronous API under its names
(:mod:`boxlite.sync_api`: ``SyncBoxlite`` is :class:`Boxlite`, ``SyncSimpleBox`` is
:class:`SimpleBox`, ``SyncBox`` is :class:`Box`, ``SyncExecution`` is
:class:`Execution`...), without greenlet.

Box and process calls go to the C++ core directly from the calling thread (which
releases the GIL while it waits); runtime and image calls run the async API's own
coroutine to completion. Nothing needs a running event loop, and everything also works
when called from inside one (a coroutine, or a worker thread of a program whose main
thread runs asyncio): the call blocks its caller like any blocking call, and nothing it
waits for depends on the caller's loop. (BoxLite 0.9's ``sync_api`` raised
``RuntimeError`` there.) Long waits (``exec``, ``wait``, reads) stay interruptible with
Ctrl-C, which kills the guest process.

A box from this module and one from :mod:`boxlite` may share a runtime:
``boxlite.sync.Boxlite.default()`` uses the same state as ``boxlite.Boxlite.default()``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import importlib
import inspect
import os
import secrets
import threading
import time
import weakref
from collections.abc import Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from . import _args, _bridge
from . import archive as _archive  # Export and import of .boxlite archives.
from .archive import ExportOptions
from . import box as _async_box
from . import runtime as _async_runtime
from ._core import register_box
from .box import _COPY_DEFAULTS, CopyOptions
from .errors import BoxliteError, BoxStateError, ConfigError, ExecError, NotSupportedError
from .options import BoxOptions, EnvLike, Options
from .results import BoxInfo, BoxMetrics, ExecResult
from .volumes import SyncVolumeHandle
from .snapshots import CloneOptions, SyncSnapshotHandle
from .tunnels import SyncBoxTunnel, SyncNetworkHandle  # Tunnels (boxlite/tunnels.py).

__all__ = [
    "Boxlite",
    "Box",
    "SimpleBox",
    "Execution",
    "StreamExecution",
    "ExecStdin",
    "ExecStdout",
    "ExecStderr",
    "Images",
    "SyncBase",
    "SyncContextManager",
]

_STDOUT = 1
_STDERR = 2
# How often a blocked read returns to Python so that Ctrl-C is seen.
_POLL_SECONDS = 0.25

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine of the async API to completion and returns its result.

    Without a running loop in this thread it gets a fresh loop here (Ctrl-C cancels it,
    which ends the core call). Inside a running loop it gets a fresh loop on a worker
    thread while this thread waits: the caller's loop is blocked for that time, as by
    any blocking call, but never needed, so this cannot deadlock.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    return _bridge.call_sync(asyncio.run, coro)


class SyncBase:
    """Base of every class of the synchronous API (0.9's ``boxlite.sync_api.SyncBase``)."""



class SyncContextManager(SyncBase):
    """A synchronous API object used with ``with`` (0.9's
    ``boxlite.sync_api.SyncContextManager``): entering returns the object (subclasses
    start it), leaving releases what entering took (each subclass's ``_leave``)."""

    def __enter__(self) -> Any:
        """Returns the object."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Releases what entering took (see the class)."""
        self._leave(exc)

    def _leave(self, exc: BaseException | None) -> None:
        """What leaving ``with`` does, ``exc`` being the body's exception; nothing here."""


class _ExecutionId(str):
    """An execution id that also answers 0.9's call spelling: ``execution.id`` is the id,
    and so is ``execution.id()``."""

    def __call__(self) -> str:
        return str(self)


class _ExecutionBase(SyncContextManager):
    """What both kinds of execution share: the core process, blocking chunk reads that
    stay interruptible, and the controls (signal, terminal size, kill)."""

    _attached = False  # Set on an Execution from Box.attach.

    def __init__(self, core_exec: Any, argv: list[str], tty: bool, exec_id: str | None = None) -> None:
        self._core = core_exec
        self._argv = argv
        self._tty = tty
        self._id = _ExecutionId(exec_id or secrets.token_hex(8))
        self._started_at = time.monotonic()
        self._consumed = {_STDOUT: False, _STDERR: False}
        self._result: ExecResult | None = None

    @property
    def id(self) -> str:
        """The execution's id (opaque; :meth:`Box.attach` finds the execution by it).
        ``execution.id()`` returns it too, as in 0.9."""
        return self._id

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

    def _read(self, fd: int) -> bytes:
        self._consumed[fd] = True
        while True:
            # A read with a deadline consumes nothing when it expires; between reads
            # Python sees Ctrl-C.
            chunk = self._core.read(fd, _POLL_SECONDS)
            if chunk is not None:
                return bytes(chunk)

    def signal(self, signal: int) -> None:
        """Sends a signal (e.g. ``signal.SIGTERM``) to the process."""
        self._core.signal(_args.check_signal(signal))

    def resize_tty(self, rows: int, cols: int) -> None:
        """Sets the terminal size (only for executions with a terminal; otherwise
        ExecError)."""
        self._core.resize(*_args.check_size(rows, cols))

    def kill(self) -> None:
        """Kills the process (and its process group) with SIGKILL."""
        self._core.kill()

    def _wait_blocking(self, timeout: float | None) -> tuple[int, int, bool, str]:
        # Output nobody reads would stall the process on flow control: drop it (not
        # through an attachment: the process's owner may be reading it).
        for fd in (_STDOUT, _STDERR):
            if not self._consumed[fd] and not self._attached:
                self._core.discard_output(fd)
        result: tuple[int, int, bool, str] = self._core.wait(timeout)
        return result

    def _wait_core(self, timeout: float | None) -> tuple[int, int, bool, str]:
        outcome: tuple[int, int, bool, str] = _bridge.call_sync(
            self._wait_blocking, timeout, on_interrupt=self._core.kill
        )
        return outcome

    def _leave(self, exc: BaseException | None) -> None:
        # Leaving `with` kills the process unless it has already been waited for.
        if self._result is None:
            with contextlib.suppress(BoxliteError):
                self._core.kill()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {' '.join(self._argv)!r} pid={self._core.pid} id={self._id}>"


class StreamExecution(_ExecutionBase):
    """A process with byte-exact streaming I/O (from :meth:`Box.stream`); see
    :class:`boxlite.StreamExecution`. ``for chunk in execution.stdout()`` yields the
    ``bytes`` the process wrote; :meth:`wait` reports ``128 + N`` for signal N."""

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
            chunk = self._read(fd)
            if not chunk:
                return
            yield chunk

    def read(self, fd: int = _STDOUT) -> bytes:
        """The next chunk of stdout (``fd=1``) or stderr (``fd=2``); ``b""`` at the end."""
        return self._read(_args.check_fd(fd))

    def write_stdin(self, data: bytes | str) -> None:
        """Sends bytes (or UTF-8 text) to the process's stdin."""
        self._core.write_stdin(_args.stdin_bytes(data))

    def close_stdin(self) -> None:
        """Closes stdin: the process reads end-of-file."""
        self._core.close_stdin()

    def resize(self, rows: int, cols: int) -> None:
        """Sets the terminal size (only for ``tty=True``); same as :meth:`resize_tty`."""
        self.resize_tty(rows, cols)

    def wait(self, timeout: float | None = None) -> ExecResult:
        """Waits for the exit; see :meth:`boxlite.StreamExecution.wait` (streams never
        read are discarded; ``timeout`` kills the process and sets ``timed_out``)."""
        if self._result is not None:
            return self._result
        exit_code, signo, timed_out, error = self._wait_core(_args.check_timeout(timeout))
        self._result = ExecResult._from_core(
            exit_code, signo, timed_out, error, duration=time.monotonic() - self._started_at,
            command=self._argv[0],
        )
        return self._result


class _TextStream(SyncBase):
    """One output stream of an :class:`Execution` as ``str`` chunks, decoded as they come
    (see :class:`boxlite.ExecStdout`): a UTF-8 character split between two chunks is
    carried over, invalid bytes become U+FFFD."""

    _fd = _STDOUT

    def __init__(self, execution: _ExecutionBase) -> None:
        self._execution = execution
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._done = False

    def __iter__(self) -> _TextStream:
        return self

    def __next__(self) -> str:
        while not self._done:
            chunk = self._execution._read(self._fd)
            text: str = self._decoder.decode(chunk, final=not chunk)
            if not chunk:
                self._done = True
            if text:
                return text
        raise StopIteration


class ExecStdout(_TextStream):
    """Standard output of an :class:`Execution` (0.9's ``SyncExecStdout``):
    ``for chunk in execution.stdout()`` yields ``str`` chunks (not lines)."""


class ExecStderr(_TextStream):
    """Standard error of an :class:`Execution` (0.9's ``SyncExecStderr``)."""

    _fd = _STDERR


class ExecStdin(SyncBase):
    """Standard input of an :class:`Execution` (0.9's ``SyncExecStdin``)."""

    def __init__(self, core_exec: Any) -> None:
        self._core = core_exec
        self._closed = False

    def send_input(self, data: bytes | bytearray | memoryview | str) -> None:
        """Sends bytes (``str`` is sent as UTF-8); waits while the guest has not taken
        earlier ones."""
        if self._closed:
            raise BoxStateError("stdin is closed: send_input() after close()")
        self._core.write_stdin(_args.stdin_bytes(data))

    def close(self) -> None:
        """Closes stdin: the process reads end-of-file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._core.close_stdin()

    def is_closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed


class Execution(_ExecutionBase):
    """A process started by :meth:`Box.exec` (0.9's ``SyncExecution``); see
    :class:`boxlite.Execution`.

    ``stdout()``, ``stderr()`` and ``stdin()`` each hand out their stream once; output
    streams yield ``str`` chunks. :meth:`wait` returns an :class:`~boxlite.ExecResult`
    whose ``exit_code`` is ``-N`` for a process killed by signal N (0.9's convention).
    Calling :meth:`wait` without having taken :meth:`stdin` closes stdin first.
    """

    def __init__(
        self, core_exec: Any, argv: list[str], tty: bool, exec_id: str | None = None,
        timeout: float | None = None, *, attached: bool = False,
    ) -> None:
        super().__init__(core_exec, argv, tty, exec_id)
        # An attachment (Box.attach) leaves the process's stdin to its owner.
        self._attached = attached
        self._gate = _async_box.ExecGate(core_exec, timeout)
        self._take = self._gate.take

    def stdin(self) -> ExecStdin:
        """The process's standard input (once)."""
        self._take("stdin")
        return ExecStdin(self._core)

    def stdout(self) -> ExecStdout:
        """The process's standard output as ``str`` chunks (once)."""
        self._take("stdout")
        self._consumed[_STDOUT] = True
        return ExecStdout(self)

    def stderr(self) -> ExecStderr:
        """The process's standard error as ``str`` chunks (once). With a terminal
        everything arrives on stdout and this stream ends at once."""
        self._take("stderr")
        self._consumed[_STDERR] = True
        return ExecStderr(self)

    def wait(self) -> ExecResult:
        """Waits for the exit: ``exit_code`` (``-N`` when killed by signal N) and
        ``error_message``. Ctrl-C kills the process."""
        if self._result is not None:
            return self._result
        if "stdin" not in self._gate.taken and not self._attached:
            with contextlib.suppress(BoxliteError):
                self._core.close_stdin()
        try:
            exit_code, signo, timed_out, error = self._wait_core(None)
        finally:
            self._gate.cancel()
        self._result = self._gate.result(exit_code, signo, timed_out, error, self._started_at, self._argv[0])
        return self._result


class Box(SyncContextManager):
    """A box (synchronous API; 0.9's ``SyncBox``); see :class:`boxlite.Box`.

    A created box starts on :meth:`start`, on entering ``with``, or on its first
    command; leaving ``with`` stops it (and removes an ephemeral one).
    """

    def __init__(self, core_box: Any, options: BoxOptions | None, runtime: Boxlite | None) -> None:
        self._core: Any = core_box
        self._options = options
        self._runtime = runtime
        self._started = False
        self._stopped = False
        # Executions started by exec(), by id, for attach(id).
        self._executions: weakref.WeakValueDictionary[str, Execution] = weakref.WeakValueDictionary()

    def _require_core(self) -> Any:
        if self._core is None:
            raise BoxStateError(
                "the box is not created yet: use `with SimpleBox(...) as box` or `box.start()` first"
            )
        return self._core

    @property
    def id(self) -> str:
        """The box id (12 characters, unique)."""
        return str(self._require_core().id)

    @property
    def name(self) -> str:
        """The box name (the id unless one was given)."""
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
        if not self._started or self._stopped:
            # BoxLite 0.9's can_exec, decided by the core: a failed box does not start
            # for a command (BoxStateError).
            core_box.check_call("exec")
            self.start()
        return core_box

    def __enter__(self) -> Box:
        """Starts the box (see :meth:`start`) and returns it; leaving stops it (and
        removes an ephemeral one)."""
        return self.start()

    def _leave(self, exc: BaseException | None) -> None:
        try:
            self.stop()
        except BoxliteError:
            if exc is None:
                raise  # Otherwise the body's own exception is the one to see.

    def exec(
        self,
        command: str,
        args: Sequence[_args.CommandArg] | None = None,
        env: EnvLike | None = None,
        tty: bool = False,
        user: str | None = None,
        timeout_secs: float | None = None,
        cwd: str | None = None,
    ) -> Execution:
        """Starts a command and returns its :class:`Execution` at once (0.9's
        ``SyncBox.exec``; see :meth:`boxlite.Box.exec` for the arguments): iterate
        ``stdout()`` / ``stderr()`` for ``str`` chunks, feed ``stdin()``, then
        ``wait()``. A box that is not running starts first. For a finished result use
        :meth:`run` (or ``SimpleBox.exec``); for byte-exact streams, :meth:`stream`."""
        argv, spec, limit = _async_box.exec_spec(command, args, env, tty, user, timeout_secs, cwd)
        core_box = self._ensure_started()
        execution = Execution(core_box.start_exec(**spec), argv, tty, timeout=limit)
        self._executions[execution.id] = execution
        return execution

    def attach(self, execution_id: str | None = None) -> Execution:
        """Attaches to a running process of the box: its main command (None), or an
        execution this program started with :meth:`exec` (by its id); see
        :meth:`boxlite.Box.attach`."""
        core_box = self._ensure_started()
        if execution_id is None:
            attach_main = getattr(core_box, "attach_main", None)
            if attach_main is None:
                raise NotSupportedError("attaching to the box's main command is not available in this build")
            return Execution(attach_main(), ["<main>"], False, attached=True)
        if not isinstance(execution_id, str) or not execution_id:
            raise ConfigError(f"execution_id must be a non-empty string or None, not {execution_id!r}")
        known = self._executions.get(execution_id)
        if known is None or known._result is not None:
            raise ExecError(f"no execution {execution_id!r} in box {self.name}: it is finished or was never started here")
        return Execution(known._core, known._argv, known._tty, execution_id, attached=True)

    def run(
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
        """Runs a command to completion and returns its :class:`~boxlite.ExecResult`;
        see :meth:`boxlite.Box.run`.

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
    ) -> StreamExecution:
        """Starts a command for byte-exact streaming I/O; see :meth:`boxlite.Box.stream`."""
        argv = _args.argv_of(cmd, args)
        spec = _args.exec_args(argv, env, cwd, user, tty=tty, rows=rows, cols=cols, open_stdin=open_stdin)
        core_box = self._ensure_started()
        return StreamExecution(core_box.start_exec(**spec), argv, tty)

    def info(self) -> BoxInfo:
        """Returns the box's identity, configuration and state."""
        return BoxInfo._from_core(self._require_core().info())

    def fork(self, n: int = 1, names: Sequence[str] | None = None, snapshot: str | None = None) -> list[Box]:
        """Running copies of this running box; see :meth:`boxlite.Box.fork`."""
        cores = self._require_core().fork(n, list(names or []), snapshot or "")
        forks = []
        for c in cores:
            box = Box(c, None, self._runtime)
            box._started = True
            if self._runtime is not None:
                self._runtime._boxes[box.id] = box
            register_box(box)
            forks.append(box)
        return forks

    def metrics(self) -> BoxMetrics:
        """Returns the box's resource use (the box must be running)."""
        return BoxMetrics._from_core(self._require_core().metrics())

    def copy_in(
        self,
        host_path: str | bytes | os.PathLike[str],
        container_dest: str | bytes,
        copy_options: CopyOptions | None = None,
    ) -> None:
        """Copies a host file or directory tree into the box; see
        :meth:`boxlite.Box.copy_in` and :class:`~boxlite.CopyOptions`."""
        options = _async_box._copy_options(copy_options)
        src = _args.host_path(host_path, "host_path")
        dst = _args.guest_path(container_dest, "container_dest")
        self._ensure_started().copy_in(src, dst, **options)

    def copy_out(
        self,
        container_src: str | bytes,
        host_dest: str | bytes | os.PathLike[str],
        copy_options: CopyOptions | None = None,
    ) -> None:
        """Copies a file or directory tree out of the box to the host (written beneath
        the destination, never through a symlink); see :meth:`boxlite.Box.copy_out`."""
        options = _async_box._copy_options(copy_options)
        src = _args.guest_path(container_src, "container_src")
        dst = _args.host_path(host_dest, "host_dest")
        self._ensure_started().copy_out(src, dst, **options)

    def console_log(self) -> str:
        """The guest console so far (kernel messages, agent errors)."""
        return bytes(self._require_core().console_log()).decode("utf-8", errors="replace")

    # --- Tunnels (boxlite/tunnels.py) ---
    @property
    def network(self) -> SyncNetworkHandle:
        """The box's network handle (0.9's ``SyncBox.network``): ``tunnel(port)``."""
        return SyncNetworkHandle(self)

    def tunnel(self, port: int) -> SyncBoxTunnel:
        """A TCP connection to ``port`` in the running box; see :class:`boxlite.Box.tunnel`."""
        return self.network.tunnel(port)
    # --- end tunnels ---

    # --- Snapshots and clones (boxlite/snapshots.py) ---
    @property
    def snapshot(self) -> SyncSnapshotHandle:
        """The box's snapshots; see :class:`boxlite.SnapshotHandle`."""
        return SyncSnapshotHandle(self)

    def clone_box(self, *, options: CloneOptions | None = None, name: str | None = None) -> Box:
        """A new stopped box with a copy of this box's disk; see :meth:`boxlite.Box.clone_box`."""
        del options  # 0.9's placeholder.
        return Box(self._require_core().clone_box(name or ""), None, self._runtime)
    # --- end snapshots and clones ---

    # --- Export as a .boxlite archive (boxlite/archive.py) ---
    def export(self, *, options: ExportOptions | None = None, dest: str | os.PathLike[str]) -> str:
        """Writes the box to a ``.boxlite`` archive and returns its path; see
        :meth:`boxlite.Box.export`."""
        path = _archive.export_dest(options, dest)
        return str(self._require_core().export(path))

    def __repr__(self) -> str:
        if self._core is None:
            return f"<{type(self).__name__} (not created)>"
        return f"<{type(self).__name__} {self._core.name} id={self._core.id[:12]}>"


class SimpleBox(Box):
    """A box you describe and enter: ``with SimpleBox(image) as box`` (0.9's
    ``SyncSimpleBox``).

    The same arguments as :class:`boxlite.SimpleBox`, checked at construction: 0.9's
    (``image``, ``rootfs_path``, ``memory_mib``, ``cpus``, ``runtime``, ``name``,
    ``auto_remove``, ``reuse_existing``, then any :class:`~boxlite.BoxOptions` field as
    a keyword) and ours (``cpu``, ``memory``, ``mounts``, ...). Without a runtime it uses
    :meth:`Boxlite.default`. Entering creates (or, with ``reuse_existing`` and a name,
    adopts the box of that name) and boots the box; leaving stops and (ephemeral)
    removes it. ``exec`` runs a command to completion and returns an
    :class:`~boxlite.ExecResult`.
    """

    def __init__(
        self,
        image: str | None = None,
        rootfs_path: str | os.PathLike[str] | None = None,
        memory_mib: int | None = None,
        cpus: int | None = None,
        runtime: Boxlite | None = None,
        name: str | None = None,
        auto_remove: bool = True,
        reuse_existing: bool = False,
        **kwargs: Any,
    ) -> None:
        # The async class checks the arguments and builds the options: one rule for both.
        described = _async_box.SimpleBox(
            image, rootfs_path, memory_mib, cpus, None, name, auto_remove, reuse_existing, **kwargs
        )
        if runtime is not None and not isinstance(runtime, Boxlite):
            raise ConfigError(f"runtime must be a boxlite.sync.Boxlite, not {type(runtime).__name__}")
        super().__init__(None, described.options, runtime)
        self._reuse_existing = reuse_existing
        self._created: bool | None = None
        self._create_lock = threading.Lock()

    @property
    def options(self) -> BoxOptions:
        """The box's options."""
        assert self._options is not None
        return self._options

    @property
    def created(self) -> bool | None:
        """True when starting created the box, False when ``reuse_existing`` adopted an
        existing one; None before the start."""
        return self._created

    def _require_core(self) -> Any:
        if self._core is None:
            raise BoxStateError("Box not started. Use `with SimpleBox(...) as box` or `box.start()` first")
        return self._core

    def _ensure_started(self) -> Any:
        # Stopped (0.9: stop() makes it not started), it stays so until start() or `with`:
        # a command never boots a new box behind the caller's back.
        if self._stopped:
            raise BoxStateError(
                f"box {self._core.name} is stopped: start it again with `box.start()` or `with box:`"
            )
        return super()._ensure_started()

    def start(self) -> SimpleBox:
        """Creates the box (again, after an ephemeral box was stopped) and boots it.
        Returns the box."""
        with self._create_lock:  # Threads starting one box at once create it once.
            # An ephemeral box was removed by its stop: it is created again.
            ephemeral = self.options.auto_remove is not False and not self.options.detach
            if self._core is None or (self._stopped and ephemeral):
                runtime = self._runtime or Boxlite.default()
                self._runtime = runtime
                name = self.options.name or None
                if self._reuse_existing and name:
                    box, created = runtime.get_or_create(self.options, name=name)
                else:
                    box, created = runtime.create(self.options), True
                self._core = box._core
                self._created = created
                self._started = False
                self._stopped = False
                runtime._boxes[self.id] = self
        super().start()
        return self

    def __enter__(self) -> SimpleBox:
        """Creates and starts the box (see :meth:`start`) and returns it."""
        return self.start()

    def exec(  # type: ignore[override]  # 0.9: SyncSimpleBox.exec returns a finished result.
        self, cmd: str | list[str], *args: _args.CommandArg, **options: Any
    ) -> ExecResult:
        """Runs a command to completion and returns its :class:`~boxlite.ExecResult`;
        the arguments of :meth:`Box.run` (``env``, ``cwd``, ``user``, ``timeout``,
        ``stdin``, ``max_output_bytes``). 0.9's streaming ``Execution`` is
        ``Box.exec(box, ...)``."""
        return self.run(cmd, *args, **options)

    def copy_in(  # type: ignore[override]
        self,
        host_path: str | bytes | os.PathLike[str],
        container_dest: str | bytes,
        *,
        overwrite: bool = _COPY_DEFAULTS["overwrite"],
        follow_symlinks: bool = _COPY_DEFAULTS["follow_symlinks"],
        include_parent: bool = _COPY_DEFAULTS["include_parent"],
    ) -> None:
        """Copies a host file or directory tree into the box (always recursive); see
        :class:`~boxlite.CopyOptions` for the flags."""
        options = CopyOptions(overwrite=overwrite, follow_symlinks=follow_symlinks, include_parent=include_parent)
        super().copy_in(host_path, container_dest, options)

    def copy_out(  # type: ignore[override]
        self,
        container_src: str | bytes,
        host_dest: str | bytes | os.PathLike[str],
        *,
        overwrite: bool = _COPY_DEFAULTS["overwrite"],
        follow_symlinks: bool = _COPY_DEFAULTS["follow_symlinks"],
        include_parent: bool = _COPY_DEFAULTS["include_parent"],
    ) -> None:
        """Copies a file or directory tree out of the box (always recursive); see
        :meth:`Box.copy_out` and :class:`~boxlite.CopyOptions`."""
        options = CopyOptions(overwrite=overwrite, follow_symlinks=follow_symlinks, include_parent=include_parent)
        super().copy_out(container_src, host_dest, options)

    def shutdown(self) -> None:
        """Same as :meth:`stop` (0.9's spelling)."""
        self.stop()


class Images(SyncBase):
    """The runtime's image store (``runtime.images``; 0.9's ``SyncImageHandle``); the
    same methods as the async :class:`boxlite.Images`, without ``await``."""


    def __init__(self, async_images: Any) -> None:
        self._images = async_images

    def pull(self, reference: str) -> Any:
        """Pulls an image (or imports a built-in one) and prepares its root file system."""
        return _run(self._images.pull(reference))

    def list(self) -> Any:
        """The images in the local store."""
        return _run(self._images.list())

    def remove(self, reference: str) -> None:
        """Removes an image from the local store."""
        _run(self._images.remove(reference))

    def import_image(self, path: str | os.PathLike[str], tag: str = "") -> Any:
        """Imports a ``docker save`` archive or an OCI layout directory."""
        return _run(self._images.import_image(path, tag))

    def __getattr__(self, name: str) -> Any:
        # Any other coroutine method of the async image store, without await.
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._images, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return _run(attr(*args, **kwargs))

        return blocking


class Boxlite(SyncContextManager):
    """The BoxLite runtime (synchronous API; 0.9's ``SyncBoxlite``); see
    :class:`boxlite.Boxlite`.

    ``with Boxlite.default() as rt:`` and ``rt.start()`` / ``rt.stop()`` work as in 0.9,
    but nothing needs starting: the runtime is usable as soon as it exists, and
    :meth:`stop` ends no box (use :meth:`shutdown` for that).
    """


    _default: ClassVar[Boxlite | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, options: Options | None = None, *, _async: Any = None) -> None:
        if _async is None:
            _async = _async_runtime.Boxlite(options)
        self._async: Any = _async
        self._boxes: weakref.WeakValueDictionary[str, Box] = weakref.WeakValueDictionary()
        self.images = Images(_async.images)
        """The image store: ``pull``, ``list``, ``remove``, ``import_image``."""
        self.volumes = SyncVolumeHandle(self)  # Volumes (boxlite/volumes.py).
        """The volumes: ``create``, ``list``, ``get``, ``remove``."""

    @classmethod
    def default(cls) -> Boxlite:
        """The process-wide runtime (the same state as ``boxlite.Boxlite.default()``)."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(_async=_async_runtime.Boxlite.default())
            return cls._default

    @staticmethod
    def init_default(options: Options) -> None:
        """Configures the process-wide runtime before its first use; see
        :meth:`boxlite.Boxlite.init_default`."""
        _async_runtime.Boxlite.init_default(options)

    @classmethod
    def rest(cls, options: Any) -> Boxlite:
        """A runtime on a ``boxlite serve`` (remote runtimes, docs/remote.md); see
        :meth:`boxlite.Boxlite.rest`."""
        return cls(_async=_async_runtime.Boxlite.rest(options))

    @property
    def _core(self) -> Any:
        return self._async._core

    @property
    def runtime(self) -> Any:
        """The async :class:`boxlite.Boxlite` this runtime drives (0.9's
        ``SyncBoxlite.runtime``)."""
        return self._async

    @property
    def home_dir(self) -> str:
        """The state directory."""
        return str(self._async.home_dir)

    @property
    def options(self) -> Options:
        """The options the runtime was opened with."""
        options: Options = self._async.options
        return options

    def start(self) -> Boxlite:
        """Returns the runtime: it needs no starting (0.9 programs call this)."""
        return self

    def stop(self) -> None:
        """Ends this handle's use as in 0.9; no box is stopped (see :meth:`shutdown`)."""

    def __enter__(self) -> Boxlite:
        """Returns the runtime (see :meth:`start`); leaving calls :meth:`stop`."""
        return self.start()

    def _leave(self, exc: BaseException | None) -> None:
        self.stop()

    def _adopt(self, async_box: Any) -> Box:
        known = self._boxes.get(async_box.id)
        if known is not None:
            return known
        box = Box(async_box._core, getattr(async_box, "_options", None), self)
        self._boxes[box.id] = box
        return box

    def create(self, options: BoxOptions | None = None, name: str | None = None, **kwargs: Any) -> Box:
        """Creates a box (not started yet); see :meth:`boxlite.Boxlite.create`."""
        return self._adopt(_run(self._async.create(options, name, **kwargs)))

    def get_or_create(self, options: BoxOptions | None = None, name: str | None = None, **kwargs: Any) -> tuple[Box, bool]:
        """The box named ``name`` (or ``options.name``) if it exists, else a new one;
        ``(box, created)``. See :meth:`boxlite.Boxlite.get_or_create`."""
        async_box, created = _run(self._async.get_or_create(options, name, **kwargs))
        return self._adopt(async_box), bool(created)

    def get(self, id_or_name: str) -> Box | None:
        """The box with this id, unique id prefix or name, or None."""
        async_box = _run(self._async.get(id_or_name))
        return None if async_box is None else self._adopt(async_box)

    # --- Import of a .boxlite archive (boxlite/archive.py) ---
    def import_box(self, archive_path: str | os.PathLike[str], name: str | None = None, *,
                   untrusted: bool = False) -> Box:
        """A new stopped box from a ``.boxlite`` archive; see :meth:`boxlite.Boxlite.import_box`."""
        async_box = _run(self._async.import_box(archive_path, name, untrusted=untrusted))
        return self._adopt(async_box)

    def get_info(self, id_or_name: str) -> BoxInfo | None:
        """Facts about one box, or None when no box has that id or name."""
        info: BoxInfo | None = _run(self._async.get_info(id_or_name))
        return info

    def list_info(self, _state: str | None = None) -> list[BoxInfo]:
        """Facts about every box of this runtime (``_state`` as in 0.9)."""
        infos: list[BoxInfo] = _run(self._async.list_info() if _state is None else self._async.list_info(_state))
        return infos

    def metrics(self) -> Any:
        """The runtime's counters; see :meth:`boxlite.Boxlite.metrics`."""
        return _run(self._async.metrics())

    def remove(self, id_or_name: str, force: bool = False) -> None:
        """Removes a box; a running one only with ``force=True``."""
        _run(self._async.remove(id_or_name, force))

    def shutdown(self, timeout: int | None = None) -> None:
        """Stops every box of this runtime that is not detached, then refuses new
        work; see :meth:`boxlite.Boxlite.shutdown`."""
        _run(self._async.shutdown(timeout))

    def host_info(self) -> dict[str, str]:
        """Facts about the host: accelerator (and why), kernel, data directory, home."""
        facts: dict[str, str] = _run(self._async.host_info())
        return facts

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
# CodeBox (boxlite/codebox.py): run, run_script, install_package(s), reset without await.
CodeBox = _twin("CodeBox", "codebox", skip=("stream",))
__all__ += ["CodeBox"]
# SkillBox (boxlite/skillbox.py): call, install_skill, wait_until_ready without await.
SkillBox = _twin("SkillBox", "skillbox", skip=("stream",))
__all__ += ["SkillBox"]
# BrowserBox (boxlite/browserbox.py): endpoint() and playwright_endpoint() without await.
# connect() is left out: its Browser belongs to Playwright's async API; use
# playwright.sync_api's chromium.connect_over_cdp(box.endpoint()).
BrowserBox = _twin("BrowserBox", "browserbox", skip=("stream", "connect"))
__all__ += ["BrowserBox"]

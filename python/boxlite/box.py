"""Boxes and the processes that run in them (async API).

A box is a micro-VM with its own kernel, booted from an OCI image. :class:`SimpleBox`
is the everyday entry point::

    async with boxlite.SimpleBox("boxlite/base") as box:
        result = await box.exec("echo", "hello")
        print(result.stdout)

Event loops: a box keeps no loop state. Each blocking call into the C++ core runs on a
worker thread and its result is delivered to whichever loop awaits it, so a box may be
entered in one ``asyncio.run()`` and used or closed in another. Cancelling a task that
awaits :meth:`Box.exec` (or :meth:`Execution.wait`) kills the guest process and raises
``CancelledError`` at once; the box stays usable.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import math
import os
import secrets
import signal as signal_module
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _args, _bridge
from ._core import core, register_box
from .snapshots import CloneOptions, SnapshotHandle
from .errors import (
    LATER_FEATURES,
    BoxliteError,
    BoxStateError,
    ConfigError,
    ExecError,
    NotSupportedError,
    not_in_this_build,
)
from .options import BoxOptions, EnvLike, MountLike, NetworkSpec, PortLike, box_options_from_arguments
from .results import BoxInfo, BoxMetrics, ExecResult
from . import archive as _archive  # Export (boxlite/archive.py).
from .archive import ExportOptions
from .tunnels import BoxTunnel, NetworkHandle  # Tunnels (boxlite/tunnels.py).

if TYPE_CHECKING:
    from typing_extensions import Self

    from .runtime import Boxlite

__all__ = [
    "Box",
    "SimpleBox",
    "Execution",
    "StreamExecution",
    "ExecStdout",
    "ExecStderr",
    "ExecStdin",
    "CopyOptions",
]

_STDOUT = 1
_STDERR = 2


class _ExecutionBase:
    """What both kinds of execution share: the core process, chunk reads with one reader
    per stream, and the controls (signals, terminal size, kill)."""

    _attached = False  # Set on an Execution from Box.attach.

    def __init__(self, core_exec: Any, argv: list[str], tty: bool, exec_id: str | None = None) -> None:
        self._core = core_exec
        self._argv = argv
        self._tty = tty
        # A remote exec has the server's id (Box.attach finds it from any process).
        self._id = exec_id or str(getattr(core_exec, "execution_id", "") or "") or secrets.token_hex(8)
        self._started_at = time.monotonic()
        # Reads in flight (concurrent futures): a cancelled read leaves its future here
        # and the next read takes it over, so no chunk is lost and there is one reader.
        self._inflight: dict[int, Any] = {_STDOUT: None, _STDERR: None}
        self._reading = {_STDOUT: False, _STDERR: False}
        self._consumed = {_STDOUT: False, _STDERR: False}
        self._result: ExecResult | None = None

    def id(self) -> str:
        """The execution's id (opaque; :meth:`Box.attach` finds the execution by it)."""
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

    async def _read(self, fd: int) -> bytes:
        if self._reading[fd]:
            raise ExecError(f"{'stdout' if fd == 1 else 'stderr'} of {self._argv[0]} is already being read")
        self._reading[fd] = True
        try:
            cf = self._inflight[fd]
            if cf is None:
                cf = self._inflight[fd] = _bridge.submit(self._core.read, fd, None)
            try:
                chunk: bytes = await _bridge.wait(cf)
            except asyncio.CancelledError:
                raise  # The read goes on; the next one takes its result.
            except BaseException:
                self._inflight[fd] = None
                raise
            self._inflight[fd] = None
            return chunk
        finally:
            self._reading[fd] = False

    async def signal(self, signal: int) -> None:
        """Sends a signal (e.g. ``signal.SIGTERM``) to the process."""
        await _bridge.call(self._core.signal, _args.check_signal(signal))

    async def resize_tty(self, rows: int, cols: int) -> None:
        """Sets the terminal size (only for executions with a terminal)."""
        rows, cols = _args.check_size(rows, cols)
        await _bridge.call(self._core.resize, rows, cols)

    async def kill(self) -> None:
        """Kills the process (and its process group) with SIGKILL."""
        await _bridge.call(self._core.kill)

    def _wait_blocking(self, timeout: float | None) -> tuple[int, int, bool, str]:
        # Output nobody reads would stall the process on flow control: drop it (not
        # through an attachment: the process's owner may be reading it).
        for fd in (_STDOUT, _STDERR):
            if not self._consumed[fd] and not self._attached:
                self._core.discard_output(fd)
        result: tuple[int, int, bool, str] = self._core.wait(timeout)
        return result

    async def _wait_core(self, timeout: float | None) -> tuple[int, int, bool, str]:
        outcome: tuple[int, int, bool, str] = await _bridge.call(
            self._wait_blocking, timeout, on_cancel=self._core.kill
        )
        return outcome

    async def __aenter__(self) -> Self:
        """Returns the execution; leaving kills the process unless it was waited for."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Kills the process unless it has already been waited for."""
        if self._result is None:
            _bridge.fire_and_forget(self._core.kill)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {' '.join(self._argv)!r} pid={self._core.pid} id={self._id}>"


class StreamExecution(_ExecutionBase):
    """A process running in a box, with byte-exact streaming I/O (from :meth:`Box.stream`).

    Read its output with ``async for chunk in execution.stdout()`` (``bytes`` chunks,
    exactly as the process wrote them; ``stderr()`` likewise), feed it with
    :meth:`write_stdin` / :meth:`close_stdin`, and collect the exit with :meth:`wait`
    (``exit_code`` is ``128 + N`` for a process killed by signal N). Output is
    flow-controlled end to end: while nobody reads, the process is held back instead of
    filling memory.

    Each stream has one reader at a time. A read that is cancelled (for example by
    ``asyncio.wait_for``) loses nothing: the next read returns that chunk.
    """

    def stdout(self) -> AsyncIterator[bytes]:
        """Iterates over standard output chunks (bytes) until the stream ends."""
        self._consumed[_STDOUT] = True
        return self._iterate(_STDOUT)

    def stderr(self) -> AsyncIterator[bytes]:
        """Iterates over standard error chunks (bytes) until the stream ends."""
        self._consumed[_STDERR] = True
        return self._iterate(_STDERR)

    async def _iterate(self, fd: int) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.read(fd)
            if not chunk:
                return
            yield chunk

    async def read(self, fd: int = _STDOUT) -> bytes:
        """Returns the next chunk of stdout (``fd=1``) or stderr (``fd=2``); ``b""`` once
        the stream has ended."""
        fd = _args.check_fd(fd)
        self._consumed[fd] = True
        return await self._read(fd)

    async def write_stdin(self, data: bytes | str) -> None:
        """Sends bytes (or UTF-8 text) to the process's stdin. Waits while the guest
        has not accepted earlier bytes."""
        payload = _args.stdin_bytes(data)
        await _bridge.call(self._core.write_stdin, payload)

    async def close_stdin(self) -> None:
        """Closes stdin: the process reads end-of-file."""
        await _bridge.call(self._core.close_stdin)

    async def resize(self, rows: int, cols: int) -> None:
        """Sets the terminal size (only for ``tty=True``); same as :meth:`resize_tty`."""
        await self.resize_tty(rows, cols)

    async def wait(self, timeout: float | None = None) -> ExecResult:
        """Waits for the process to exit and returns how it ended.

        The result carries no output (read it with :meth:`stdout` / :meth:`stderr`).
        A stream that was never read is discarded from here on, so that a chatty
        process cannot stall: start reading before calling ``wait()`` if you want it.

        Args:
            timeout: Seconds to wait; then the process is killed and the result says
                ``timed_out``. None waits as long as it takes.

        Cancelling the awaiting task kills the process.
        """
        if self._result is not None:
            return self._result
        limit = _args.check_timeout(timeout)
        exit_code, signo, timed_out, error = await self._wait_core(limit)
        self._result = ExecResult._from_core(
            exit_code, signo, timed_out, error, duration=time.monotonic() - self._started_at,
            command=self._argv[0],
        )
        return self._result


class _TextStream:
    """One output stream of an :class:`Execution` as ``str`` chunks (BoxLite 0.9).

    Chunks are decoded as UTF-8 as they come (not line-aligned): a multibyte character
    split between two chunks is carried over to the next one, invalid bytes become
    U+FFFD, and a sequence left incomplete at the end becomes U+FFFD.
    """

    _fd = _STDOUT

    def __init__(self, read: Callable[[], Awaitable[bytes]]) -> None:
        self._read = read
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        while not self._done:
            chunk = await self._read()
            if not chunk:
                self._done = True
                tail: str = self._decoder.decode(b"", final=True)
                if tail:
                    return tail
                break
            text: str = self._decoder.decode(chunk)
            if text:
                return text
        raise StopAsyncIteration

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class ExecStdout(_TextStream):
    """Standard output of an :class:`Execution`: ``async for chunk in execution.stdout()``
    yields ``str`` chunks (see :class:`_TextStream` for the decoding)."""


class ExecStderr(_TextStream):
    """Standard error of an :class:`Execution`: ``async for chunk in execution.stderr()``
    yields ``str`` chunks."""

    _fd = _STDERR


class ExecStdin:
    """Standard input of an :class:`Execution`."""

    def __init__(self, core_exec: Any) -> None:
        self._core = core_exec
        self._closed = False

    async def send_input(self, data: bytes | bytearray | memoryview | str) -> None:
        """Sends bytes (``str`` is sent as UTF-8); waits while the guest has not taken
        earlier ones."""
        if self._closed:
            raise BoxStateError("stdin is closed: send_input() after close()")
        await _bridge.call(self._core.write_stdin, _args.stdin_bytes(data))

    async def close(self) -> None:
        """Closes stdin: the process reads end-of-file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await _bridge.call(self._core.close_stdin)

    async def is_closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed


class ExecGate:
    """BoxLite 0.9's rules for an :class:`Execution`, shared by the async and the sync
    one: each of stdin/stdout/stderr is handed out once, ``timeout_secs`` kills the
    process, and ``wait()`` reports a signal N as ``-N``."""

    def __init__(self, core_exec: Any, timeout: float | None) -> None:
        self._core = core_exec
        self.taken: set[str] = set()
        self.timed_out = False
        self._timer: threading.Timer | None = None
        if timeout:
            # A weak reference: a dropped Execution (and its gate) is not kept alive by
            # its timer (its process ends with it).
            self._timer = threading.Timer(timeout, ExecGate._time_out, args=(weakref.ref(self),))
            self._timer.daemon = True
            self._timer.start()

    @staticmethod
    def _time_out(ref: weakref.ref[ExecGate]) -> None:
        gate = ref()
        if gate is None:
            return
        gate.timed_out = True
        with contextlib.suppress(Exception):
            gate._core.kill()

    def take(self, name: str) -> None:
        """Hands out stream ``name`` (raises BoxliteError the second time)."""
        if name in self.taken:
            raise BoxliteError(
                f"{name} stream not available: Execution.{name}() hands out its stream once"
            )
        self.taken.add(name)

    def cancel(self) -> None:
        """The process is done: the timeout has nothing left to kill."""
        if self._timer is not None:
            self._timer.cancel()

    def result(
        self, exit_code: int, signo: int, timed_out: bool, error: str, started_at: float, command: str
    ) -> ExecResult:
        """The :class:`ExecResult` of ``wait()`` (no output; ``-N`` for signal N)."""
        # The timer's kill, not an exit that happened just before it.
        timed_out = timed_out or (self.timed_out and signo == signal_module.SIGKILL)
        result = ExecResult._from_core(
            exit_code, signo, timed_out, error, duration=time.monotonic() - started_at, command=command,
        )
        if signo:
            result.exit_code = -signo
        return result


class Execution(_ExecutionBase):
    """A process started by :meth:`Box.exec` (BoxLite 0.9's ``Execution``).

    ``stdout()``, ``stderr()`` and ``stdin()`` each hand out their stream once (a second
    call raises "stdout stream not available"); output streams yield ``str`` chunks.
    :meth:`wait` returns an :class:`ExecResult` whose ``exit_code`` is the exit status,
    or ``-N`` for a process killed by signal N (0.9's convention; ``box.stream()`` and
    ``SimpleBox.exec`` report ``128 + N``). Byte-exact output: use :meth:`Box.stream`.

    Calling :meth:`wait` before reading a stream discards that stream's output (the
    process never stalls on unread output); calling it without having taken
    :meth:`stdin` closes stdin, so a command that reads it gets end-of-file (not for
    an execution from :meth:`Box.attach`, whose stdin stays its owner's).
    """

    def __init__(
        self, core_exec: Any, argv: list[str], tty: bool, exec_id: str | None = None,
        timeout: float | None = None, *, attached: bool = False,
    ) -> None:
        super().__init__(core_exec, argv, tty, exec_id)
        # An attachment (Box.attach) leaves the process's stdin to its owner.
        self._attached = attached
        self._gate = ExecGate(core_exec, timeout)
        self._take = self._gate.take
        self._stdin: ExecStdin | None = None

    def stdin(self) -> ExecStdin:
        """The process's standard input (once)."""
        self._take("stdin")
        self._stdin = ExecStdin(self._core)
        return self._stdin

    def stdout(self) -> ExecStdout:
        """The process's standard output as ``str`` chunks (once)."""
        self._take("stdout")
        self._consumed[_STDOUT] = True
        return ExecStdout(lambda: self._read(_STDOUT))

    def stderr(self) -> ExecStderr:
        """The process's standard error as ``str`` chunks (once). With a terminal
        everything arrives on stdout and this stream ends at once."""
        self._take("stderr")
        self._consumed[_STDERR] = True
        return ExecStderr(lambda: self._read(_STDERR))

    async def wait(self) -> ExecResult:
        """Waits for the exit: ``exit_code`` (``-N`` when killed by signal N) and
        ``error_message`` (why the command could not start, if it did not). Cancelling
        the awaiting task kills the process."""
        if self._result is not None:
            return self._result
        if "stdin" not in self._gate.taken and not self._attached:
            with contextlib.suppress(BoxliteError):
                await _bridge.call(self._core.close_stdin)
        try:
            exit_code, signo, timed_out, error = await self._wait_core(None)
        finally:
            if self._result is None:
                self._gate.cancel()
        self._result = self._gate.result(exit_code, signo, timed_out, error, self._started_at, self._argv[0])
        return self._result


class _StartGuard:
    """Makes an exec that is cancelled while starting end in the guest too."""

    def __init__(self) -> None:
        self.cancelled = False
        self.core_exec: Any = None

    def started(self, core_exec: Any) -> Any:
        self.core_exec = core_exec
        if self.cancelled:
            core_exec.kill()
        return core_exec

    def cancel(self) -> None:
        self.cancelled = True
        if self.core_exec is not None:
            self.core_exec.kill()


_COPY_DEFAULTS: dict[str, bool] = dict(core.copy_option_defaults)


class CopyOptions:
    """How :meth:`Box.copy_in` / :meth:`Box.copy_out` treat a tree (BoxLite 0.9's
    ``CopyOptions``; the defaults are the core's, include/boxlite/options.h).

    Attributes:
        recursive: Copy a directory with everything below it (default True); False
            makes a directory source an error.
        overwrite: Replace existing files and symlinks at the destination (default
            True); False makes an existing one an error and leaves it as it was
            (directories are still merged into).
        follow_symlinks: Copy what symlinks point to instead of the links (default
            False): the host's links on ``copy_in``, the box's on ``copy_out`` (resolved
            inside the box; what arrives is still written beneath the destination).
        include_parent: A directory copied into an existing directory ``dst`` lands as
            ``dst/<name>`` (default True, like ``docker cp``); False puts its contents
            directly in ``dst``.
    """

    __slots__ = ("recursive", "overwrite", "follow_symlinks", "include_parent")

    def __init__(
        self,
        recursive: bool = _COPY_DEFAULTS["recursive"],
        overwrite: bool = _COPY_DEFAULTS["overwrite"],
        follow_symlinks: bool = _COPY_DEFAULTS["follow_symlinks"],
        include_parent: bool = _COPY_DEFAULTS["include_parent"],
    ) -> None:
        for name, value in (("recursive", recursive), ("overwrite", overwrite),
                            ("follow_symlinks", follow_symlinks), ("include_parent", include_parent)):
            if not isinstance(value, bool):
                raise ConfigError(f"CopyOptions.{name} must be a bool, not {type(value).__name__}")
        self.recursive = recursive
        self.overwrite = overwrite
        self.follow_symlinks = follow_symlinks
        self.include_parent = include_parent

    def _core_args(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CopyOptions) and self._core_args() == other._core_args()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self._core_args().items())
        return f"CopyOptions({fields})"


def _copy_options(options: Any) -> dict[str, bool]:
    if options is None:
        return CopyOptions()._core_args()
    if not isinstance(options, CopyOptions):
        raise ConfigError(f"copy_options must be boxlite.CopyOptions, not {type(options).__name__}")
    return options._core_args()


def _check_timeout_secs(timeout_secs: Any) -> float | None:
    """0.9's ``timeout_secs``: None or a finite number >= 0 (0: no limit)."""
    if timeout_secs is None:
        return None
    if isinstance(timeout_secs, bool) or not isinstance(timeout_secs, (int, float)):
        raise ConfigError(f"timeout_secs must be a number of seconds, not {type(timeout_secs).__name__}")
    if not math.isfinite(timeout_secs) or timeout_secs < 0:
        raise ConfigError(f"timeout_secs must be finite and >= 0, not {timeout_secs!r}")
    return float(timeout_secs) or None


def _host_terminal_size() -> tuple[int, int]:
    """The caller's terminal size (rows, cols) when it has one, else 24x80."""
    for stream in (0, 1, 2):
        try:
            size = os.get_terminal_size(stream)
        except OSError:
            continue
        if size.lines > 0 and size.columns > 0:
            return size.lines, size.columns
    return 24, 80


def exec_spec(
    command: Any, args: Any, env: Any, tty: Any, user: Any, timeout_secs: Any, cwd: Any
) -> tuple[list[str], dict[str, Any], float | None]:
    """Checks the arguments of 0.9's ``Box.exec`` (async and sync) and returns
    ``(argv, start_exec keyword arguments, timeout_secs or None)``."""
    if isinstance(args, (str, bytes)) or isinstance(env, (str, bytes)):
        raise ConfigError(_OLD_EXEC_HINT)
    if isinstance(command, (list, tuple)):
        if args:
            raise ConfigError("give the command either as one list or as command + args, not both")
        argv = _args.argv_of(command, ())
    else:
        if args is not None and not isinstance(args, (list, tuple)):
            raise ConfigError(f"args must be a list of strings, not {type(args).__name__}")
        argv = _args.argv_of(command, tuple(args or ()))
    if env is not None and not isinstance(env, (dict, list, tuple)):
        raise ConfigError(_OLD_EXEC_HINT)
    limit = _check_timeout_secs(timeout_secs)
    rows, cols = _host_terminal_size() if tty is True else (24, 80)
    spec = _args.exec_args(argv, env, cwd, user, tty=tty, rows=rows, cols=cols, open_stdin=True)
    return argv, spec, limit


_OLD_EXEC_HINT = (
    "Box.exec(command, args=[...], env=[(name, value)], ...) takes the arguments as one "
    "list and returns a streaming Execution; for a finished ExecResult use "
    "`await box.run(cmd, *args)` (or SimpleBox.exec(cmd, *args))"
)


class Box:
    """A box: a micro-VM booted from an image.

    Boxes come from :meth:`Boxlite.create` / :meth:`Boxlite.get`, or are made by
    :class:`SimpleBox`. A created box starts on :meth:`start`, on entering
    ``async with``, or on its first command. Leaving ``async with`` stops it and, for an
    ephemeral box (the default: ``auto_remove=True``, ``detach=False``), removes it.

    All methods may be awaited from any event loop, and concurrently.
    """

    def __init__(self, core_box: Any, options: BoxOptions | None, runtime: Boxlite | None) -> None:
        self._core: Any = core_box
        self._options = options
        self._runtime = runtime
        self._started = False
        self._stopped = False
        # Executions started by exec(), by id, for attach(id).
        self._executions: weakref.WeakValueDictionary[str, _ExecutionBase] = weakref.WeakValueDictionary()

    # Identity.

    def _require_core(self) -> Any:
        if self._core is None:
            # BoxLite 0.9's words ("Box not started"), for a SimpleBox before its start.
            raise BoxStateError(
                "Box not started. Use `async with SimpleBox(...) as box` or `await box.start()` first"
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

    # Lifecycle.

    async def start(self) -> Self:
        """Boots the box (pulling its image first when needed) and waits for its guest.
        A no-op when it is running. Returns the box.

        Cancelling the awaiting task stops the box once its boot has finished.
        """
        core = self._require_core()
        # Always the core's start: it is a no-op on a running box, and it restarts a box
        # that stopped on its own (its main command exited).
        cf = _bridge.submit(core.start)
        try:
            await _bridge.wait(cf)
        except asyncio.CancelledError:
            # Cancelled while booting: stop the box as soon as the boot is over.
            cf.add_done_callback(lambda _: _bridge.fire_and_forget(core.stop))
            raise
        except BoxliteError:
            # A box that failed to start has nothing to keep (an ephemeral one is removed).
            with contextlib.suppress(BoxliteError):
                await _bridge.call(core.stop)
            self._stopped = True
            raise
        self._started = True
        self._stopped = False
        register_box(self)
        return self

    async def stop(self) -> None:
        """Stops the box (an ephemeral box is also removed). Safe to call twice."""
        if self._core is None:
            return
        await _bridge.call(self._core.stop)
        self._stopped = True

    def _stop_at_exit(self) -> None:
        if self._core is not None and not self._stopped:
            if not self._detached():
                self._core.stop()
                self._stopped = True

    def _detached(self) -> bool:
        if self._options is not None:
            return bool(self._options.detach)
        # A box found by get (e.g. one `boxlite run -d` started, attached to here): what
        # it was created with is on record in the core; it outlives this program.
        return bool(self._core.info()["detach"])

    async def _ensure_started(self) -> Any:
        core = self._require_core()
        if not self._started or self._stopped:
            # BoxLite 0.9's can_exec, decided by the core: a configured or stopped box
            # starts for a command, a failed one does not (BoxStateError).
            await _bridge.call(core.check_call, "exec")
            # A SimpleBox stopped (and so removed) is created again: use the new core.
            await self.start()
        return self._require_core()

    async def __aenter__(self) -> Self:
        """Starts the box (see :meth:`start`) and returns it."""
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stops the box (and removes an ephemeral one)."""
        try:
            await self.stop()
        except BoxliteError:
            if exc is None:
                raise  # Otherwise the body's own exception is the one to see.

    # Commands.

    async def exec(
        self,
        command: str,
        args: Sequence[_args.CommandArg] | None = None,
        env: EnvLike | None = None,
        tty: bool = False,
        user: str | None = None,
        timeout_secs: float | None = None,
        cwd: str | None = None,
    ) -> Execution:
        """Starts a command and returns its :class:`Execution` (BoxLite 0.9's API).

        ``async for chunk in execution.stdout()`` reads its output as ``str`` chunks;
        ``await execution.wait()`` returns its :class:`ExecResult`. A box that is
        created but not started, or stopped, starts first.

        Args:
            command: The program (looked up in the box's PATH).
            args: Its arguments, one list (no shell: ``exec("sh", ["-c", "..."])``).
            env: Extra environment: a list of ``(name, value)`` pairs, or a dict.
            tty: Give the process a terminal sized like the caller's (24x80 without
                one); its output then all arrives on stdout.
            user: ``name``, ``uid`` or ``uid:gid``; default: the box's or the image's.
            timeout_secs: Kill the process after this many seconds (finite, >= 0; 0 or
                None: no limit); ``wait()`` then reports ``-9`` and ``timed_out``.
            cwd: Working directory (absolute).

        For a finished result with the output collected, use :meth:`run` (or
        ``SimpleBox.exec``); for byte-exact streams, :meth:`stream`.
        """
        argv, spec, limit = exec_spec(command, args, env, tty, user, timeout_secs, cwd)
        core = await self._ensure_started()
        guard = _StartGuard()
        core_exec = await _bridge.call(lambda: guard.started(core.start_exec(**spec)), on_cancel=guard.cancel)
        execution = Execution(core_exec, argv, tty, timeout=limit)
        self._executions[execution.id()] = execution
        return execution

    def _runtime_is_remote(self) -> bool:
        return bool(getattr(self._runtime, "is_remote", False))

    async def attach(self, execution_id: str | None = None) -> Execution:
        """Attaches to a running process of the box: its main command (None), or an
        execution this program started with :meth:`exec` (by ``execution.id()``).

        Raises:
            ExecError: No execution has that id (it was never started here, or it is
                finished and gone).
        """
        core = await self._ensure_started()
        if execution_id is None:
            attach_main = getattr(core, "attach_main", None)
            if attach_main is None:
                raise NotSupportedError("attaching to the box's main command is not available in this build")
            core_exec = await _bridge.call(attach_main)
            return Execution(core_exec, ["<main>"], False, attached=True)
        if not isinstance(execution_id, str) or not execution_id:
            raise ConfigError(f"execution_id must be a non-empty string or None, not {execution_id!r}")
        known = self._executions.get(execution_id)
        if (known is None or known._result is not None) and self._runtime_is_remote():
            # A REST runtime's server keeps the exec: attach from here, with its backlog.
            core_exec = await _bridge.call(core.attach_exec, execution_id)
            return Execution(core_exec, ["<attached>"], False, execution_id, attached=True)
        if known is None or known._result is not None:
            raise ExecError(f"no execution {execution_id!r} in box {self.name}: it is finished or was never started here")
        return Execution(known._core, known._argv, known._tty, execution_id, attached=True)

    async def run(
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
        """Runs a command to completion and returns its exit status and output.

        Args:
            cmd: The program (looked up in the box's PATH), or the whole command line
                as a list.
            *args: Its arguments (no shell: use ``exec("sh", "-c", "...")`` for one).
            env: Extra environment, a dict or a list of ``(name, value)`` pairs, on top
                of the image's and the box's.
            cwd: Working directory (absolute); default: the box's working_dir, else the
                image's, else ``/``.
            user: ``name``, ``uid`` or ``uid:gid``; default: the box's or the image's.
            timeout: Seconds; then the process is killed and the result has
                ``timed_out=True`` (and ``exit_code`` 137).
            stdin: Bytes (or text, sent as UTF-8) fed to the command's stdin, which is
                then closed. Without it stdin reads as empty.
            max_output_bytes: The most output kept per stream (default 64 MiB; ``None``
                keeps everything). Beyond it the output is still read, so the command
                never stalls, but dropped: the result's ``stdout_truncated`` /
                ``stderr_truncated`` say so.

        Returns:
            An :class:`ExecResult`. A non-zero exit is a result, not an exception
            (``exit_code`` is ``128 + N`` for a process killed by signal N).

        Raises:
            ConfigError: A bad argument.
            BoxStateError: The box is stopped.
            ExecError: The command could not be started.

        Cancelling the awaiting task kills the process in the guest.
        """
        argv = _args.argv_of(cmd, args)
        spec = _args.exec_args(argv, env, cwd, user, open_stdin=stdin is not None)
        limit = _args.check_timeout(timeout)
        cap = _args.check_max_output(max_output_bytes)
        data = _args.stdin_bytes(stdin)
        core = await self._ensure_started()
        guard = _StartGuard()

        def run() -> tuple[Any, ...]:
            core_exec = guard.started(core.start_exec(**spec))
            result: tuple[Any, ...] = core_exec.collect(data, limit, cap)
            return result

        outcome = await _bridge.call(run, on_cancel=guard.cancel)
        exit_code, signo, timed_out, error, out, err, duration, out_cut, err_cut = outcome
        return ExecResult._from_core(
            exit_code, signo, timed_out, error, out, err, duration, out_cut, err_cut, command=argv[0]
        )

    async def stream(
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
        """Starts a command and returns its :class:`StreamExecution` for byte-exact
        streaming I/O.

        Args:
            cmd, *args, env, cwd, user: As for :meth:`exec`.
            tty: Give the process a terminal (``rows`` x ``cols``); its output then all
                arrives on stdout. This is what ``InteractiveBox`` builds on.
            open_stdin: Keep stdin open for :meth:`Execution.write_stdin` until
                :meth:`Execution.close_stdin` (default). False: stdin reads as empty.
        """
        argv = _args.argv_of(cmd, args)
        spec = _args.exec_args(argv, env, cwd, user, tty=tty, rows=rows, cols=cols, open_stdin=open_stdin)
        core = await self._ensure_started()
        guard = _StartGuard()
        core_exec = await _bridge.call(lambda: guard.started(core.start_exec(**spec)), on_cancel=guard.cancel)
        return StreamExecution(core_exec, argv, tty)

    # Facts and files.

    async def info(self) -> BoxInfo:
        """Returns the box's identity, configuration and state."""
        return BoxInfo._from_core(await _bridge.call(self._require_core().info))

    async def metrics(self) -> BoxMetrics:
        """Returns the box's resource use (the box must be running)."""
        return BoxMetrics._from_core(await _bridge.call(self._require_core().metrics))

    async def copy_in(
        self,
        host_path: str | bytes | os.PathLike[str],
        container_dest: str | bytes,
        copy_options: CopyOptions | None = None,
    ) -> None:
        """Copies a host file or directory tree into the box (modes kept). An existing
        directory at ``container_dest`` receives the source inside it. Files land in
        the box's root file system: a tmpfs mounted over the destination (``/tmp``,
        ``/dev/shm``) hides them. See :class:`CopyOptions`."""
        options = _copy_options(copy_options)
        src = _args.host_path(host_path, "host_path")
        dst = _args.guest_path(container_dest, "container_dest")
        core = await self._ensure_started()
        await _bridge.call(lambda: core.copy_in(src, dst, **options))

    async def copy_out(
        self,
        container_src: str | bytes,
        host_dest: str | bytes | os.PathLike[str],
        copy_options: CopyOptions | None = None,
    ) -> None:
        """Copies a file or directory tree out of the box to the host: written beneath the
        destination, never through a symlink; modes kept without setuid/setgid/sticky.
        An existing host directory receives the source inside it. See
        :class:`CopyOptions`."""
        options = _copy_options(copy_options)
        src = _args.guest_path(container_src, "container_src")
        dst = _args.host_path(host_dest, "host_dest")
        core = await self._ensure_started()
        await _bridge.call(lambda: core.copy_out(src, dst, **options))

    # Forks (beyond BoxLite 0.9; docs/snapshots.md).

    async def fork(
        self, n: int = 1, names: Sequence[str] | None = None, snapshot: str | None = None
    ) -> list[Box]:
        """Makes ``n`` running copies of this running box: same processes, files and memory
        (shared copy-on-write), each with its own id, name (``names``, or generated),
        hostname, clock and random state. They publish no ports. Ephemeral copies of an
        ephemeral box are removed when stopped. A box with mounts cannot be forked."""
        core = self._require_core()
        cores = await _bridge.call(
            lambda: core.fork(n, list(names or []), snapshot or "")
        )
        return [_adopt_fork(Box(c, None, self._runtime)) for c in cores]

    # --- Snapshots and clones (boxlite/snapshots.py) ---
    @property
    def snapshot(self) -> SnapshotHandle:
        """The box's snapshots (0.9's ``box.snapshot``): create, list, get, remove, restore."""
        return SnapshotHandle(self)

    async def clone_box(self, *, options: CloneOptions | None = None, name: str | None = None) -> Box:
        """A new stopped box with a copy of this box's disk and its options (a running box
        is quiesced for the copy); ``name`` None: unnamed. Start it to use it."""
        del options  # 0.9's placeholder: nothing to choose yet.
        core = self._require_core()
        clone_core = await _bridge.call(lambda: core.clone_box(name or ""))
        clone = Box(clone_core, None, self._runtime)
        if self._runtime is not None:
            self._runtime._boxes[clone.id] = clone
        return clone
    # --- end snapshots and clones ---

    # --- Export as a .boxlite archive (boxlite/archive.py) ---
    async def export(self, *, options: ExportOptions | None = None, dest: str | os.PathLike[str]) -> str:
        """Writes the box (its whole disk, flattened, and its options) to a ``.boxlite``
        archive and returns the archive's path. ``dest`` is a file, or an existing
        directory that receives ``<name or id>.boxlite``. A running box is quiesced
        (its file systems flushed, its VM paused) while its disk is read; a box that was
        never started has no disk to export (BoxStateError)."""
        path = _archive.export_dest(options, dest)
        core = self._require_core()
        return str(await _bridge.call(lambda: core.export(path)))

    # --- Tunnels (boxlite/tunnels.py) ---
    @property
    def network(self) -> NetworkHandle:
        """The box's network handle (0.9's ``box.network``): ``tunnel(port)``."""
        return NetworkHandle(self)

    async def tunnel(self, port: int) -> BoxTunnel:
        """A TCP connection to ``port`` in the running box, handed out by
        ``connect()`` (see :mod:`boxlite.tunnels`). Same as ``box.network.tunnel(port)``."""
        return await self.network.tunnel(port)
    # --- end tunnels ---

    def __getattr__(self, name: str) -> Any:
        # BoxLite 0.9 names of features this build does not have yet.
        if name in LATER_FEATURES:
            raise not_in_this_build(type(self).__name__, name, attribute=True)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    async def console_log(self) -> str:
        """The guest console so far (kernel messages, agent errors)."""
        log: bytes = await _bridge.call(self._require_core().console_log)
        return log.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        if self._core is None:
            return f"<{type(self).__name__} (not created)>"
        return f"<{type(self).__name__} {self._core.name} id={self._core.id[:12]}>"


def _adopt_fork(box: Box) -> Box:
    """A fork is running when it is made: the runtime knows it, and it stops at exit."""
    box._started = True
    if box._runtime is not None:
        box._runtime._boxes[box.id] = box
    register_box(box)
    return box


class SimpleBox(Box):
    """A box you describe and enter: ``async with SimpleBox(image) as box``.

    Entering creates the box in the runtime (``runtime``, default
    :meth:`Boxlite.default`) and boots it; leaving stops it and, unless
    ``auto_remove=False`` or ``detach=True``, removes it: no process or file remains.
    Options are checked at construction (:class:`ConfigError`), before any VM starts.

    Both spellings work: ours (``cpu=``, ``memory=``, ``mounts=``) and BoxLite 0.9's
    (``SimpleBox(image, rootfs_path, memory_mib, cpus, runtime, name, auto_remove,
    reuse_existing, **kwargs)``, the keyword arguments going to :class:`BoxOptions`).
    Without an image or a rootfs_path the image is ``"alpine:latest"`` (0.9 required
    one; ours keeps a default).

    Args:
        image: An OCI reference (short names mean ``docker.io/library/...``), or a
            built-in image such as ``"boxlite/base"``.
        rootfs_path: A local OCI layout directory used instead of ``image``.
        memory_mib: MiB of guest RAM (also spelled ``memory``).
        cpus: vCPUs (also spelled ``cpu``).
        runtime: The :class:`Boxlite` runtime to create the box in.
        name: A unique name for the box.
        auto_remove: Remove the box when it stops (default True).
        reuse_existing: With a ``name``: adopt the existing box of that name instead
            of failing (``created`` then says False).
        **kwargs: Any other :class:`BoxOptions` field: ``env`` (dict or pairs),
            ``mounts``/``volumes``, ``ports``, ``network``, ``working_dir``, ``user``,
            ``detach``, ``disk_size``/``disk_size_gb``, ...

    Example::

        async with boxlite.SimpleBox("boxlite/base", memory=512) as box:
            result = await box.exec("sh", "-c", "echo $((6 * 7))")
            assert result.stdout == "42\\n"

    Subclasses (``ComputerBox``, ``InteractiveBox``) add behaviour after the boot by
    overriding :meth:`start` (call ``await super().start()`` first).
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
        if not isinstance(reuse_existing, bool):
            raise ConfigError(f"reuse_existing must be a bool, not {type(reuse_existing).__name__}")
        arguments: dict[str, Any] = dict(kwargs)
        for key, value in (("image", image), ("rootfs_path", rootfs_path), ("memory_mib", memory_mib),
                           ("cpus", cpus), ("name", name)):
            if value is not None:
                arguments[key] = value
        arguments["auto_remove"] = auto_remove
        options = box_options_from_arguments(arguments)
        super().__init__(None, options, runtime)
        self._reuse_existing = reuse_existing
        self._created: bool | None = None
        self._creating: concurrent.futures.Future[Any] | None = None

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

    @property
    def _ephemeral(self) -> bool:
        # Removed by its stop (BoxOptions' lifecycle rule: auto_remove, not detached).
        return self.options.auto_remove is not False and not self.options.detach

    async def _create(self, runtime: Boxlite) -> tuple[Box, bool]:
        name = self.options.name or None
        if self._reuse_existing and name:
            box, created = await runtime.get_or_create(self.options, name=name)
            return box, bool(created)
        return await runtime.create(self.options), True

    async def start(self) -> Self:
        """Creates the box (again, after an ephemeral box was stopped) and boots it.
        Returns the box."""
        # An ephemeral box was removed by its stop: it is created again.
        if self._core is None or (self._stopped and self._ephemeral):
            from .runtime import Boxlite

            runtime = self._runtime or Boxlite.default()
            self._runtime = runtime
            # Concurrent start() calls share one creation (a thread-safe future, so this
            # works whichever loops they run in).
            creating = self._creating
            if creating is None:
                creating = self._creating = concurrent.futures.Future()
                try:
                    created = await self._create(runtime)
                except BaseException as exc:
                    creating.set_exception(exc)
                    raise
                finally:
                    self._creating = None
                creating.set_result(created)
            box, was_created = await _bridge.wait(creating)
            if self._core is not box._core:
                self._core = box._core
                self._created = was_created
                self._started = False
                self._stopped = False
        return await super().start()

    async def _ensure_started(self) -> Any:
        self._require_core()
        if self._stopped and self._ephemeral:
            # Its stop removed it: a command must not quietly boot a new, empty box.
            raise BoxStateError(
                f"box {self.name} was stopped and removed; `await box.start()` creates it again"
            )
        return await super()._ensure_started()

    async def exec(  # type: ignore[override]
        self, cmd: str | list[str], *args: _args.CommandArg, **options: Any
    ) -> ExecResult:
        """Runs a command to completion and returns its :class:`ExecResult` (exit
        status, ``stdout``/``stderr`` as text and bytes): the same as :meth:`Box.run`,
        with the same keyword arguments (``env`` as a dict or pairs, ``cwd``, ``user``,
        ``timeout``, ``stdin``, ``max_output_bytes``). This is also BoxLite 0.9's
        ``SimpleBox.exec``. For streaming use :meth:`Box.stream`."""
        return await self.run(cmd, *args, **options)

    async def copy_in(  # type: ignore[override]
        self,
        host_path: str | bytes | os.PathLike[str],
        container_dest: str | bytes,
        *,
        overwrite: bool = _COPY_DEFAULTS["overwrite"],
        follow_symlinks: bool = _COPY_DEFAULTS["follow_symlinks"],
        include_parent: bool = _COPY_DEFAULTS["include_parent"],
    ) -> None:
        """Copies a host file or directory tree into the box (always recursive); see
        :class:`CopyOptions` for the flags."""
        options = CopyOptions(overwrite=overwrite, follow_symlinks=follow_symlinks,
                              include_parent=include_parent)
        await super().copy_in(host_path, container_dest, options)

    async def copy_out(  # type: ignore[override]
        self,
        container_src: str | bytes,
        host_dest: str | bytes | os.PathLike[str],
        *,
        overwrite: bool = _COPY_DEFAULTS["overwrite"],
        follow_symlinks: bool = _COPY_DEFAULTS["follow_symlinks"],
        include_parent: bool = _COPY_DEFAULTS["include_parent"],
    ) -> None:
        """Copies a file or directory tree out of the box (always recursive); see
        :meth:`Box.copy_out` and :class:`CopyOptions`."""
        options = CopyOptions(overwrite=overwrite, follow_symlinks=follow_symlinks,
                              include_parent=include_parent)
        await super().copy_out(container_src, host_dest, options)

    async def shutdown(self) -> None:
        """Same as :meth:`stop` (BoxLite 0.9's spelling)."""
        await self.stop()

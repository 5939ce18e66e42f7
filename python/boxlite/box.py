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
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _args, _bridge
from ._core import register_box
from .errors import BoxliteError, BoxStateError, ExecError
from .options import BoxOptions, EnvLike, MountLike, NetworkSpec, PortLike, box_options_from_arguments
from .results import BoxInfo, BoxMetrics, ExecResult

if TYPE_CHECKING:
    import os

    from typing_extensions import Self

    from .runtime import Boxlite

__all__ = ["Box", "SimpleBox", "Execution"]

_STDOUT = 1
_STDERR = 2


class Execution:
    """A process running in a box, with streaming I/O (from :meth:`Box.stream`).

    Read its output with ``async for chunk in execution.stdout()`` (and ``stderr()``),
    feed it with :meth:`write_stdin` / :meth:`close_stdin`, and collect the exit with
    :meth:`wait`. Output is flow-controlled end to end: while nobody reads, the process
    is held back instead of filling memory.

    Each stream has one reader at a time. A read that is cancelled (for example by
    ``asyncio.wait_for``) loses nothing: the next read returns that chunk.
    """

    def __init__(self, core_exec: Any, argv: list[str], tty: bool) -> None:
        self._core = core_exec
        self._argv = argv
        self._tty = tty
        self._started_at = time.monotonic()
        # Reads in flight (concurrent futures): a cancelled read leaves its future here
        # and the next read takes it over, so no chunk is lost and there is one reader.
        self._inflight: dict[int, Any] = {_STDOUT: None, _STDERR: None}
        self._reading = {_STDOUT: False, _STDERR: False}
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

    async def write_stdin(self, data: bytes | str) -> None:
        """Sends bytes (or UTF-8 text) to the process's stdin. Waits while the guest
        has not accepted earlier bytes."""
        payload = _args.stdin_bytes(data)
        await _bridge.call(self._core.write_stdin, payload)

    async def close_stdin(self) -> None:
        """Closes stdin: the process reads end-of-file."""
        await _bridge.call(self._core.close_stdin)

    async def signal(self, signo: int) -> None:
        """Sends signal ``signo`` (e.g. ``signal.SIGTERM``) to the process."""
        await _bridge.call(self._core.signal, _args.check_signal(signo))

    async def resize(self, rows: int, cols: int) -> None:
        """Sets the terminal size (only for ``tty=True``)."""
        rows, cols = _args.check_size(rows, cols)
        await _bridge.call(self._core.resize, rows, cols)

    async def kill(self) -> None:
        """Kills the process (and its process group) with SIGKILL."""
        await _bridge.call(self._core.kill)

    def _wait_blocking(self, timeout: float | None) -> tuple[int, int, bool, str]:
        # Output nobody reads would stall the process on flow control: drop it.
        for fd in (_STDOUT, _STDERR):
            if not self._consumed[fd]:
                self._core.discard_output(fd)
        result: tuple[int, int, bool, str] = self._core.wait(timeout)
        return result

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
        exit_code, signo, timed_out, error = await _bridge.call(
            self._wait_blocking, limit, on_cancel=self._core.kill
        )
        self._result = ExecResult._from_core(
            exit_code, signo, timed_out, error, duration=time.monotonic() - self._started_at,
            command=self._argv[0],
        )
        return self._result

    async def __aenter__(self) -> Execution:
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
        return f"<Execution {' '.join(self._argv)!r} pid={self._core.pid}>"


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

    # Identity.

    def _require_core(self) -> Any:
        if self._core is None:
            raise BoxStateError(
                "the box is not created yet: use `async with SimpleBox(...) as box` or "
                "`await box.start()` first"
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
            if self._options is None or not self._options.detach:
                self._core.stop()
                self._stopped = True

    async def _ensure_started(self) -> Any:
        core = self._require_core()
        if not self._started:
            await self.start()
        return core

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
            An :class:`ExecResult`. A non-zero exit is a result, not an exception.

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
    ) -> Execution:
        """Starts a command and returns its :class:`Execution` for streaming I/O.

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
        return Execution(core_exec, argv, tty)

    # Facts and files.

    async def info(self) -> BoxInfo:
        """Returns the box's identity, configuration and state."""
        return BoxInfo._from_core(await _bridge.call(self._require_core().info))

    async def metrics(self) -> BoxMetrics:
        """Returns the box's resource use (the box must be running)."""
        return BoxMetrics._from_core(await _bridge.call(self._require_core().metrics))

    async def copy_in(
        self, host_path: str | bytes | os.PathLike[str], guest_path: str | bytes
    ) -> None:
        """Copies a host file or directory tree into the box (modes kept)."""
        src = _args.host_path(host_path, "host_path")
        dst = _args.guest_path(guest_path, "guest_path")
        core = await self._ensure_started()
        await _bridge.call(core.copy_in, src, dst)

    async def copy_out(
        self, guest_path: str | bytes, host_path: str | bytes | os.PathLike[str]
    ) -> None:
        """Copies a file or directory tree out of the box to the host: written beneath the
        destination, never through a symlink; modes kept without setuid/setgid/sticky."""
        src = _args.guest_path(guest_path, "guest_path")
        dst = _args.host_path(host_path, "host_path")
        core = await self._ensure_started()
        await _bridge.call(core.copy_out, src, dst)

    async def console_log(self) -> str:
        """The guest console so far (kernel messages, agent errors)."""
        log: bytes = await _bridge.call(self._require_core().console_log)
        return log.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        if self._core is None:
            return f"<{type(self).__name__} (not created)>"
        return f"<{type(self).__name__} {self._core.name} id={self._core.id[:12]}>"


class SimpleBox(Box):
    """A box you describe and enter: ``async with SimpleBox(image) as box``.

    Entering creates the box in the runtime (``runtime``, default
    :meth:`Boxlite.default`) and boots it; leaving stops it and, unless
    ``auto_remove=False`` or ``detach=True``, removes it: no process or file remains.
    Options are checked at construction (:class:`ConfigError`), before any VM starts.

    Args:
        image: An OCI reference (short names mean ``docker.io/library/...``), or a
            built-in image such as ``"boxlite/base"``.
        cpu: vCPUs (also spelled ``cpus``).
        memory: MiB of guest RAM (also spelled ``memory_mib``).
        disk_size: MiB of writable disk; or ``disk_size_gb`` in GiB. Default: the
            image's size + 1 GiB.
        env: Box-wide environment: a dict or a list of ``(name, value)`` pairs.
        mounts: Host paths shared into the box (also spelled ``volumes``):
            ``[(host_path, guest_path, "ro"|"rw")]`` or ``(host, guest, read_only)``.
        ports: TCP ports published on 127.0.0.1: ``[(host_port, guest_port)]``.
        network: ``"nat"`` (default) or ``"none"``, or a :class:`NetworkSpec`.
        working_dir: Default working directory of commands.
        user: Default user of commands.
        name: A unique name for the box.
        auto_remove: Remove the box when it stops (default True).
        detach: Keep the box running after this process exits (default False).
        rootfs_path: A local OCI layout directory used instead of ``image``.
        runtime: The :class:`Boxlite` runtime to create the box in.

    Example::

        async with boxlite.SimpleBox("boxlite/base", memory=512) as box:
            result = await box.exec("sh", "-c", "echo $((6 * 7))")
            assert result.stdout == "42\\n"

    Subclasses (``ComputerBox``, ``InteractiveBox``) add behaviour after the boot by
    overriding :meth:`start` (call ``await super().start()`` first).
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
        self._creating: Any = None

    @property
    def options(self) -> BoxOptions:
        """The box's options."""
        assert self._options is not None
        return self._options

    async def start(self) -> Self:
        """Creates the box (again, after it was stopped) and boots it. Returns the box."""
        if self._core is None or self._stopped:
            from .runtime import Boxlite

            runtime = self._runtime or Boxlite.default()
            self._runtime = runtime
            # Concurrent start() calls share one creation (a thread-safe future, so this
            # works whichever loops they run in).
            if self._creating is None:
                args = self.options._core_args()
                self._creating = _bridge.submit(lambda: runtime._core.create(args))
            creating = self._creating
            try:
                core_box = await _bridge.wait(creating)
            finally:
                if creating.done() and self._creating is creating:
                    self._creating = None
            if self._core is not core_box:
                self._core = core_box
                self._started = False
                self._stopped = False
        return await super().start()

    async def _ensure_started(self) -> Any:
        if self._core is None:
            raise BoxStateError(
                "the box is not started: use `async with SimpleBox(...) as box` or "
                "`await box.start()` first"
            )
        return await super()._ensure_started()

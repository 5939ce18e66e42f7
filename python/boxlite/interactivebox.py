"""InteractiveBox: a box whose shell is attached to the caller's terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import tty as _tty
from collections.abc import AsyncIterator
from typing import Any

from .box import SimpleBox
from .errors import BoxliteError

__all__ = ["InteractiveBox"]


class InteractiveBox(SimpleBox):
    """A :class:`SimpleBox` with a shell attached to this process's terminal.

    ``await box.wait()`` runs ``shell`` in the box and connects it to our stdin, stdout
    and stderr until it exits, returning its exit status. With a terminal, the caller's
    terminal is put in raw mode for the duration and always restored (also when an
    exception or SIGTERM/SIGHUP ends the session); window-size changes follow the
    terminal (SIGWINCH); Ctrl-C, Ctrl-D and Ctrl-Z reach the guest program as keys.

    Args:
        image: As for :class:`SimpleBox`.
        shell: The program to run (default ``/bin/sh``).
        tty: ``None`` detects whether stdin is a terminal; ``False`` uses plain pipes
            (programmatic use: feed stdin from a pipe, read stdout/stderr separately).
        memory_mib, cpus, runtime, name, auto_remove: As for :class:`SimpleBox` (in
            BoxLite 0.9's positional order).
        **kwargs: Any other :class:`SimpleBox` option.

    Example::

        async with boxlite.InteractiveBox("boxlite/base", shell="/bin/sh") as box:
            status = await box.wait()
    """

    def __init__(
        self,
        image: str | None = None,
        shell: str = "/bin/sh",
        tty: bool | None = None,
        memory_mib: int | None = None,
        cpus: int | None = None,
        runtime: Any = None,
        name: str | None = None,
        auto_remove: bool = True,
        **kwargs: Any,
    ) -> None:
        # BoxLite 0.9's positional order; the rest as SimpleBox (no image: its default).
        super().__init__(image, memory_mib=memory_mib, cpus=cpus, runtime=runtime, name=name,
                         auto_remove=auto_remove, **kwargs)
        self._shell = shell
        self._tty = tty

    async def wait(self) -> int:
        """Attaches the terminal (or stdio) to the shell until it exits; returns its
        exit status (128 + signal when it was killed)."""
        in_fd = _stdin_fd()
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
        stdin_tty = in_fd is not None and os.isatty(in_fd)
        use_tty = stdin_tty if self._tty is None else bool(self._tty)
        rows, cols = 24, 80
        if use_tty and stdin_tty:
            size = os.get_terminal_size(in_fd)
            rows, cols = size.lines, size.columns
        execution = await self.stream(self._shell, tty=use_tty, rows=rows, cols=cols)
        loop = asyncio.get_running_loop()
        saved = None
        if use_tty and stdin_tty:
            saved = termios.tcgetattr(in_fd)
            _tty.setraw(in_fd)
        task = asyncio.current_task()
        installed: list[int] = []

        def on_winch() -> None:
            with contextlib.suppress(OSError):
                size = os.get_terminal_size(in_fd)
                asyncio.ensure_future(execution.resize(size.lines, size.columns))

        def on_terminate() -> None:
            if task is not None:
                task.cancel()

        try:
            if saved is not None:
                loop.add_signal_handler(signal.SIGWINCH, on_winch)
                installed.append(signal.SIGWINCH)
            for signo in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(signo, on_terminate)
                installed.append(signo)
            pumps = [asyncio.ensure_future(self._copy_out(execution.stdout(), out_fd))]
            if not use_tty:
                pumps.append(asyncio.ensure_future(self._copy_out(execution.stderr(), err_fd)))
            feeder = asyncio.ensure_future(self._copy_in(execution, in_fd))
            waiter = asyncio.ensure_future(execution.wait())
            try:
                await asyncio.wait({waiter, feeder}, return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done() and feeder.exception() is not None:
                    # Reading our stdin failed: the shell would wait for input forever.
                    with contextlib.suppress(Exception):
                        await execution.kill()
                    with contextlib.suppress(Exception):
                        await waiter
                    raise feeder.exception()  # type: ignore[misc]
                result = await waiter
                await asyncio.gather(*pumps)
            finally:
                waiter.cancel()
                feeder.cancel()
                for pump in pumps:
                    pump.cancel()
            return result.exit_code
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await execution.kill()
            raise
        finally:
            for signo in installed:
                loop.remove_signal_handler(signo)
            if saved is not None:
                termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)

    @staticmethod
    async def _copy_out(chunks: Any, fd: int) -> None:
        async for chunk in chunks:
            view = memoryview(chunk)
            while view:
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                    continue
                view = view[written:]

    @staticmethod
    async def _copy_in(execution: Any, fd: int | None) -> None:
        """Copies `fd` to the process's stdin until end-of-file, then closes it. Raises
        BoxliteError when reading `fd` fails. A write the process no longer takes (it
        exited, or the box failed, which its wait() reports) ends the copy quietly."""
        try:
            if fd is not None:
                async for data in _read_chunks(fd):
                    await execution.write_stdin(data)
            await execution.close_stdin()
        except BoxliteError as e:
            if e.code is None:
                raise


def _stdin_fd() -> int | None:
    """Our stdin's descriptor, or None when there is none (closed, or replaced by an
    object without one): the shell then reads end-of-file."""
    try:
        return None if sys.stdin is None else sys.stdin.fileno()
    except (OSError, ValueError, AttributeError):
        return None


async def _read_chunks(fd: int) -> AsyncIterator[bytes]:
    """Yields what `fd` gives until end-of-file. Pipes, sockets and terminals are watched
    by the event loop; regular files, directories and devices such as /dev/null cannot
    be (epoll refuses them with EPERM) and never block, so they are read in a worker
    thread. A read error raises BoxliteError."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def readable() -> None:
        try:
            data: bytes | OSError = os.read(fd, _CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            data = e
        queue.put_nowait(data)
        if not isinstance(data, bytes) or not data:
            loop.remove_reader(fd)

    try:
        loop.add_reader(fd, readable)
    except PermissionError:
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, fd, _CHUNK)
            except OSError as e:
                raise _read_error(fd, e) from e
            if not data:
                return
            yield data
    try:
        while True:
            item = await queue.get()
            if isinstance(item, OSError):
                raise _read_error(fd, item) from item
            if not item:
                return
            yield item
    finally:
        loop.remove_reader(fd)


def _read_error(fd: int, error: OSError) -> BoxliteError:
    return BoxliteError(
        f"InteractiveBox: reading stdin (fd {fd}) failed: {error.strerror or error}; "
        "the shell was stopped: give it a readable file, pipe or terminal as stdin"
    )


_CHUNK = 65536

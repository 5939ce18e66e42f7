"""CodeBox: a box that runs Python code in one kept interpreter.

::

    async with boxlite.CodeBox() as cb:
        await cb.run("import math; r = 2")
        out = await cb.run("print(math.pi * r ** 2)\\nr + 1")
        print(out)                 # '12.566370614359172\\n' (a str: the stdout, as 0.9)
        print(out.text)            # '3': the value of the last expression
        print(out.error)           # None, or CodeError(name, value, traceback)

BoxLite 0.9's API (``run``, ``run_script``, ``install_package(s)``, and
:class:`boxlite.sync_api.SyncCodeBox`), with one difference underneath: 0.9 started a new
``python -c`` for every ``run``; here every ``run`` of a box goes to one long-lived
Python process in the box, so variables, imports and open files survive between calls
(``reset()`` starts a fresh one). The interpreter is a small server of ours
(:mod:`boxlite._codebox_repl`, passed to ``python3 -c``; nothing to install in the image)
that speaks JSON lines over the exec's stdin and stdout. docs/codebox.md has the protocol
and the reasons.

What ``run`` returns is a :class:`CodeResult`: a ``str`` (the stdout, which is all 0.9
returned) that also carries stderr, the value of the last expression, rich outputs
(PNG, HTML, JSON... as :class:`Result`) and the error as a :class:`CodeError`, in the
shape of E2B's code interpreter (``results``, ``logs``, ``error``, ``text``).

Everything :class:`~boxlite.SimpleBox` offers works as usual. Runs on one box happen one at
a time, in call order, from any event loop or thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import threading
import time
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from . import _args
from .box import Box, SimpleBox, StreamExecution
from .errors import BoxliteError, ConfigError, ExecError, ParseError
from .results import ExecResult

if TYPE_CHECKING:
    from typing_extensions import Self

    from .runtime import Boxlite

__all__ = ["CodeBox", "CodeError", "CodeResult", "Logs", "Result", "DEFAULT_IMAGE"]

DEFAULT_IMAGE = "python:slim"
"""The image CodeBox boots unless told otherwise (BoxLite 0.9's default)."""

DEFAULT_MAX_OUTPUT_BYTES = _args.DEFAULT_MAX_OUTPUT_BYTES
"""The default bound of one run's answer from the interpreter (output and results)."""

_PROTOCOL = 1
# The most code one run takes (the request line stays far below the server's bound).
_MAX_CODE = 16 << 20
# The interpreter's greeting is small; anything longer is not it.
_MAX_GREETING = 4096
# How long the interpreter gets to start, and to stop after SIGINT before it is killed.
_START_SECONDS = 120.0
_INTERRUPT_GRACE = 3.0
# Starts the server: its source comes as argv[1], compiled under the name whose frames
# it leaves out of tracebacks.
_BOOT = "import sys;exec(compile(sys.argv[1],'<boxlite-codebox>','exec'))"
# pip without questions, version checks or the warning about running as root.
_PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_ROOT_USER_ACTION": "ignore"}
_FORMATS = ("text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json", "javascript")
_BINARY = ("png", "jpeg", "pdf")


def _server_source() -> str:
    return resources.files(__package__).joinpath("_codebox_repl.py").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ results


class CodeError:
    """An exception raised by the code (E2B's ``ExecutionError``).

    Attributes:
        name: The exception's class name (``"ZeroDivisionError"``); ``"TimeoutError"`` when
            the run hit its ``timeout``.
        value: Its message (``str(exc)``).
        traceback: The formatted traceback, the cell's own frames only.
    """

    __slots__ = ("name", "value", "traceback")

    def __init__(self, name: str, value: str, traceback: str) -> None:
        self.name = name
        self.value = value
        self.traceback = traceback

    @property
    def type(self) -> str:
        """Same as :attr:`name`."""
        return self.name

    @property
    def message(self) -> str:
        """Same as :attr:`value`."""
        return self.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CodeError):
            return NotImplemented
        return (self.name, self.value, self.traceback) == (other.name, other.value, other.traceback)

    def __str__(self) -> str:
        return f"{self.name}: {self.value}" if self.value else self.name

    def __repr__(self) -> str:
        return f"CodeError(name={self.name!r}, value={self.value!r})"


class Result:
    """One rich output of a run (E2B's ``Result``): the value of the last expression
    (``is_main_result``) or something shown with ``display(obj)`` or an open matplotlib
    figure. Each format the object offers is set; the others are None.

    Attributes:
        text: ``repr`` of the object.
        html, markdown, svg, latex, javascript: Text formats (``_repr_html_`` ...).
        png, jpeg, pdf: Base64 text (as E2B); :meth:`decoded` gives the bytes.
        json: The object of ``_repr_json_`` (any JSON value).
        is_main_result: Whether this is the value of the run's last expression.
    """

    __slots__ = (*_FORMATS, "is_main_result")

    def __init__(self, is_main_result: bool = False, **formats: Any) -> None:
        self.is_main_result = is_main_result
        for name in _FORMATS:
            setattr(self, name, formats.get(name))

    def formats(self) -> list[str]:
        """The formats this result has, besides ``text``."""
        return [name for name in _FORMATS[1:] if getattr(self, name) is not None]

    def decoded(self, fmt: str = "png") -> bytes:
        """The bytes of a binary format (``"png"``, ``"jpeg"``, ``"pdf"``).

        Raises:
            ConfigError: Not a binary format, or this result does not have it.
        """
        if fmt not in _BINARY:
            raise ConfigError(f"fmt must be one of {', '.join(_BINARY)}, not {fmt!r}")
        data = getattr(self, fmt)
        if data is None:
            raise ConfigError(f"this result has no {fmt} (it has: {', '.join(self.formats()) or 'text only'})")
        return base64.b64decode(data)

    def __repr__(self) -> str:
        kinds = ", ".join(self.formats())
        main = " main" if self.is_main_result else ""
        return f"<Result{main} {self.text!r}{' [' + kinds + ']' if kinds else ''}>"


class Logs:
    """What a run printed (E2B's ``Logs``): ``stdout`` and ``stderr`` as lists of
    chunks (one chunk per stream here; empty when nothing was printed)."""

    __slots__ = ("stdout", "stderr")

    def __init__(self, stdout: list[str], stderr: list[str]) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"Logs(stdout={self.stdout!r}, stderr={self.stderr!r})"


class CodeResult(str):
    """What :meth:`CodeBox.run` returns: the run's stdout as a ``str`` (BoxLite 0.9's
    return value), with everything else as attributes.

    Attributes:
        stdout, stderr: What the code and its child processes printed (UTF-8; invalid
            bytes replaced). Each stream keeps at most a quarter of the run's
            ``max_output_bytes``; ``stdout_truncated`` / ``stderr_truncated`` say when
            more was dropped.
        value: ``repr`` of the last expression's value, or None (no final expression,
            its value was None, or the run failed).
        results: The rich outputs (:class:`Result`), the main result first.
        logs: :class:`Logs` (E2B's shape of stdout/stderr).
        error: A :class:`CodeError`, or None when the code ran through.
        execution_count: The number of this run in the interpreter (1, 2, ... and from 1
            again after ``reset``).
        timed_out: The run hit its ``timeout`` and was interrupted.
        restarted: The interpreter had to be killed (it did not stop on the interrupt, or
            it answered garbage): the next run starts a fresh one, without the old state.
    """

    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    results: list[Result]
    error: CodeError | None
    execution_count: int
    timed_out: bool
    restarted: bool

    def __new__(
        cls,
        stdout: str = "",
        stderr: str = "",
        *,
        results: Sequence[Result] = (),
        error: CodeError | None = None,
        execution_count: int = 0,
        stdout_truncated: bool = False,
        stderr_truncated: bool = False,
        timed_out: bool = False,
        restarted: bool = False,
    ) -> CodeResult:
        self = super().__new__(cls, stdout)
        self.stdout = stdout
        self.stderr = stderr
        self.results = list(results)
        self.error = error
        self.execution_count = execution_count
        self.stdout_truncated = stdout_truncated
        self.stderr_truncated = stderr_truncated
        self.timed_out = timed_out
        self.restarted = restarted
        return self

    @property
    def logs(self) -> Logs:
        """E2B's ``logs``: ``logs.stdout`` and ``logs.stderr`` (lists of str)."""
        return Logs([self.stdout] if self.stdout else [], [self.stderr] if self.stderr else [])

    @property
    def value(self) -> str | None:
        """``repr`` of the last expression's value (None when there is none)."""
        for result in self.results:
            if result.is_main_result:
                return result.text
        return None

    @property
    def text(self) -> str | None:
        """E2B's ``text``: the same as :attr:`value`."""
        return self.value

    @property
    def ok(self) -> bool:
        """Whether the code ran through without an exception."""
        return self.error is None

    def __reduce__(self) -> Any:
        state = {name: getattr(self, name) for name in (
            "results", "error", "execution_count", "stdout_truncated", "stderr_truncated",
            "timed_out", "restarted")}
        return (_rebuild_result, (str(self), self.stderr, state))


def _rebuild_result(stdout: str, stderr: str, state: dict[str, Any]) -> CodeResult:
    return CodeResult(stdout, stderr, **state)


# ------------------------------------------------------------------ reading the answers


def _malformed(what: str, line: bytes | None = None) -> ParseError:
    shown = "" if line is None else f" (starts with {bytes(line[:60])!r})"
    return ParseError(
        f"the CodeBox interpreter sent {what}{shown}; it was killed and the next run "
        f"starts a fresh one (variables and imports are lost)"
    )


def _text(doc: dict[str, Any], key: str, line: bytes) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise _malformed(f"an answer whose {key!r} is not text", line)
    return value


def _result_of(item: Any, line: bytes) -> Result:
    if not isinstance(item, dict):
        raise _malformed("a result that is not an object", line)
    formats: dict[str, Any] = {}
    for name in _FORMATS:
        value = item.get(name)
        if value is None:
            continue
        if name != "json" and not isinstance(value, str):
            raise _malformed(f"a result whose {name!r} is not text", line)
        formats[name] = value
    return Result(is_main_result=item.get("is_main_result") is True, **formats)


def _answer(line: bytes, request_id: int) -> CodeResult:
    """The CodeResult of one answer line. Untrusted: any shape is checked."""
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("an answer that is not JSON", line) from None
    if not isinstance(doc, dict) or doc.get("id") != request_id:
        if isinstance(doc, dict) and isinstance(doc.get("fatal"), str):
            raise _malformed(f"a fatal error ({doc['fatal'][:200]})")
        raise _malformed("an answer to another request", line)
    results = doc.get("results", [])
    if not isinstance(results, list):
        raise _malformed("an answer whose 'results' is not a list", line)
    error = doc.get("error")
    code_error = None
    if error is not None:
        if not isinstance(error, dict):
            raise _malformed("an answer whose 'error' is not an object", line)
        code_error = CodeError(_text(error, "name", line), _text(error, "value", line),
                               _text(error, "traceback", line))
    count = doc.get("execution_count", 0)
    if isinstance(count, bool) or not isinstance(count, int):
        raise _malformed("an answer whose 'execution_count' is not a number", line)
    return CodeResult(
        _text(doc, "stdout", line), _text(doc, "stderr", line),
        results=[_result_of(item, line) for item in results],
        error=code_error,
        execution_count=count,
        stdout_truncated=doc.get("stdout_truncated") is True,
        stderr_truncated=doc.get("stderr_truncated") is True,
    )


class _Interpreter:
    """One running interpreter server: its stream and what has been read of it. Used by
    one run at a time (``CodeBox._lock``); a read cut short by a deadline or a
    cancellation loses nothing."""

    def __init__(self, execution: StreamExecution) -> None:
        self.execution = execution
        self.buffer = bytearray()
        self.next_id = 0
        self.closed = False

    async def line(self, deadline: float | None, limit: int) -> bytes | None:
        """The next line (without its newline), or None at the deadline (monotonic)."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                if end > limit:
                    break
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > limit:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                chunk = await asyncio.wait_for(self.execution.read(1), left)
            except asyncio.TimeoutError:
                return None
            if not chunk:
                self.closed = True
                raise ExecError(f"the CodeBox interpreter exited{await self.reason()}; "
                                "the next run starts a fresh one (variables and imports are lost)")
            self.buffer += chunk
        self.closed = True
        raise _malformed(f"an answer longer than {limit} bytes (max_output_bytes)",
                         bytes(self.buffer[:60]))

    async def reason(self) -> str:
        """What the interpreter said on its stderr before it ended (bounded)."""
        text = b""
        try:
            while len(text) < 4096:
                chunk = await asyncio.wait_for(self.execution.read(2), 5)
                if not chunk:
                    break
                text += chunk
            result = await asyncio.wait_for(self.execution.wait(), 5)
        except (BoxliteError, asyncio.TimeoutError):
            return ""
        said = text[:4096].decode("utf-8", "replace").strip()
        return f" (exit {result.exit_code}{': ' + said if said else ''})"

    async def send(self, request: dict[str, Any]) -> int:
        self.next_id += 1
        request["id"] = self.next_id
        await self.execution.write_stdin(json.dumps(request).encode("ascii") + b"\n")
        return self.next_id

    async def kill(self) -> None:
        self.closed = True
        try:
            await self.execution.kill()
            await asyncio.wait_for(self.execution.wait(), 10)
        except (BoxliteError, asyncio.TimeoutError):
            pass  # Gone already, or the box is stopping: nothing is left to end.


# ----------------------------------------------------------------------------- the box


class CodeBox(SimpleBox):
    """A box that runs Python code in one kept interpreter (BoxLite 0.9's ``CodeBox``).

    Args:
        image: An image with Python 3.8 or later as ``python3`` (default
            ``python:slim``, as 0.9, unless ``rootfs_path`` is given).
        memory_mib: MiB of guest RAM (also spelled ``memory``).
        cpus: vCPUs (also spelled ``cpu``).
        runtime: The :class:`~boxlite.Boxlite` runtime (a ``boxlite.sync.Boxlite`` is
            taken too, for the synchronous twin).
        name, auto_remove, **kwargs: As for :class:`~boxlite.SimpleBox` (``env``,
            ``mounts``, ``ports``, ``network``, ...).
        python: The interpreter to run (a command in the box's PATH, or a path); default
            ``python3``.

    The interpreter starts with the first :meth:`run` and lives until :meth:`reset`, or
    the box stops.
    """

    def __init__(
        self,
        image: str | None = None,
        memory_mib: int | None = None,
        cpus: int | None = None,
        runtime: Boxlite | None = None,
        name: str | None = None,
        auto_remove: bool = True,
        *,
        python: str = "python3",
        **kwargs: Any,
    ) -> None:
        if not isinstance(python, str) or not python or "\0" in python:
            raise ConfigError(f"python must be a command or path such as 'python3', not {python!r}")
        from . import sync

        if isinstance(runtime, sync.Boxlite):
            runtime = runtime._async
        rootfs_path = kwargs.pop("rootfs_path", None)
        if image is None and rootfs_path is None:
            image = DEFAULT_IMAGE
        super().__init__(image, rootfs_path, memory_mib, cpus, runtime, name, auto_remove, **kwargs)
        self._python = python
        self._interpreter: _Interpreter | None = None
        # A thread lock (not an asyncio one): runs from different event loops and threads
        # are serialised too. It is only ever tried without blocking.
        self._lock = threading.Lock()

    @property
    def python(self) -> str:
        """The interpreter command."""
        return self._python

    async def exec(  # type: ignore[override]
        self, cmd: str | list[str], *args: _args.CommandArg, **options: Any
    ) -> ExecResult:
        """Runs a command to completion (as :meth:`SimpleBox.exec`; ``run`` is Python code
        here, so this is the way to run commands)."""
        return await Box.run(self, cmd, *args, **options)

    async def stop(self) -> None:
        """Stops the box (removing an ephemeral one), and with it the interpreter."""
        self._interpreter = None
        await super().stop()

    # Runs.

    async def run(
        self,
        code: str,
        timeout: float | None = None,
        *,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> CodeResult:
        """Runs ``code`` in the box's interpreter and returns what happened.

        The code runs like a notebook cell: statements one after another in the
        interpreter's namespace (kept between runs), and the value of a final expression
        becomes the main result. ``display(obj)`` (a builtin there) adds rich outputs;
        open matplotlib figures are sent as PNGs and closed at the end of the run.

        Args:
            code: Python source.
            timeout: Seconds (None: no limit). When they are up the code gets a
                KeyboardInterrupt (SIGINT); the result then has ``timed_out`` and an
                error named ``"TimeoutError"``, and the interpreter keeps its state. Code
                that does not stop within 3 s more is killed with its interpreter
                (``restarted``).
            max_output_bytes: The most bytes of one answer accepted from the
                interpreter (default 64 MiB). Each output stream keeps a quarter of it;
                larger rich outputs make the run fail with ParseError.

        Returns:
            A :class:`CodeResult`: the stdout as a ``str``, plus ``stderr``, ``value``,
            ``results``, ``error``, ``logs``. An exception in the code is a result
            (``error``), not raised.

        Raises:
            ConfigError: A bad argument.
            ExecError: The interpreter could not be started, or it exited during the run
                (``os._exit``, killed by the kernel for memory...).
            ParseError: The interpreter answered something that is not its protocol
                (code that wrote on its channel); it is killed, the next run starts a
                fresh one.

        Cancelling the awaiting task interrupts the code.
        """
        return await self._run(code, timeout, max_output_bytes, None)

    async def run_code(self, code: str, timeout: float | None = None) -> CodeResult:
        """Same as :meth:`run` (E2B's spelling)."""
        return await self.run(code, timeout)

    async def run_script(self, script_path: str | os.PathLike[str]) -> CodeResult:
        """Reads a Python file of the host (UTF-8) and runs it as :meth:`run` does (in
        the kept interpreter; tracebacks name the file)."""
        path = _args.host_path(script_path, "script_path")
        try:
            with open(path, encoding="utf-8") as f:
                code = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the script {path}: {exc}") from None
        return await self._run(code, None, DEFAULT_MAX_OUTPUT_BYTES, path)

    async def install_package(self, package: str) -> str:
        """Installs a package with pip in the box (``python3 -m pip install PACKAGE``)
        and returns pip's stdout and stderr. ``package`` is anything pip takes: a name
        (``"requests"``, ``"numpy==1.26.4"``), a file in the box (``"/root/x.whl"``)...
        The kept interpreter sees the new package at its next run.

        Raises:
            ExecError: pip failed (0.9 returned its output instead); its exit code and
                stderr are in the error.
        """
        return await self.install_packages(package)

    async def install_packages(self, *packages: str) -> str:
        """Installs several packages with one ``pip install``; see :meth:`install_package`."""
        if not packages:
            raise ConfigError("give at least one package to install")
        for package in packages:
            if not isinstance(package, str) or not package.strip() or "\0" in package:
                raise ConfigError(f"a package must be a non-empty string, not {package!r}")
        result = await self.exec(self._python, "-m", "pip", "install", *packages, env=_PIP_ENV)
        if result.exit_code != 0:
            raise ExecError(f"pip install {' '.join(packages)}", result.exit_code, result.stderr.strip())
        return result.stdout + result.stderr

    async def reset(self) -> None:
        """Ends the interpreter: the next run starts a fresh one (no variables, imports
        or open files of earlier runs). Files written to the box's disk stay. A run in
        progress (from another task or thread) ends with ExecError."""
        interpreter, self._interpreter = self._interpreter, None
        if interpreter is not None:
            await interpreter.kill()

    # The interpreter.

    async def _acquire(self) -> None:
        pause = 0.0005
        while not self._lock.acquire(blocking=False):
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.01)

    async def _started_interpreter(self) -> _Interpreter:
        current = self._interpreter
        if current is not None and not current.closed:
            return current
        self._interpreter = None
        execution = await self.stream(self._python, "-c", _BOOT, _server_source())
        interpreter = _Interpreter(execution)
        try:
            line = await interpreter.line(time.monotonic() + _START_SECONDS, _MAX_GREETING)
            if line is None:
                raise ExecError(f"{self._python} in the box did not start CodeBox's interpreter "
                                f"within {_START_SECONDS:g} s")
            greeting = json.loads(line)
            if not isinstance(greeting, dict) or greeting.get("ready") is not True:
                raise _malformed("a greeting that is not its protocol's", line)
            if greeting.get("protocol") != _PROTOCOL:
                raise ExecError(f"the CodeBox interpreter speaks protocol {greeting.get('protocol')!r}, "
                                f"this SDK {_PROTOCOL}")
        except ExecError as exc:
            await interpreter.kill()
            raise ExecError(f"cannot start {self._python} in the box: {exc}; CodeBox needs an image "
                            f"with Python 3.8 or later (such as {DEFAULT_IMAGE})") from None
        except (ValueError, UnicodeDecodeError):
            await interpreter.kill()
            raise _malformed("a greeting that is not JSON") from None
        except BaseException:
            await interpreter.kill()
            raise
        self._interpreter = interpreter
        return interpreter

    async def _run(
        self, code: Any, timeout: Any, max_output_bytes: Any, filename: str | None
    ) -> CodeResult:
        if not isinstance(code, str):
            raise ConfigError(f"code must be a string, not {type(code).__name__}")
        if len(code) > _MAX_CODE:
            raise ConfigError(f"code is {len(code)} characters; at most {_MAX_CODE} are taken")
        limit = _check_timeout(timeout)
        cap = _check_cap(max_output_bytes)
        await self._ensure_started()
        await self._acquire()
        try:
            interpreter = await self._started_interpreter()
            request = {"op": "run", "code": code, "filename": filename or "<cell>",
                       "max_output": cap // 4}
            try:
                request_id = await interpreter.send(request)
                return await self._answer(interpreter, request_id, limit, cap)
            except asyncio.CancelledError:
                # Nobody waits for this cell any more: stop it (its answer is skipped).
                self._interrupt(interpreter)
                raise
            except BoxliteError:
                # It exited, or said something that is not its protocol: whatever state
                # it has cannot be trusted any more.
                if self._interpreter is interpreter:
                    self._interpreter = None
                await interpreter.kill()
                raise
        finally:
            self._lock.release()

    def _interrupt(self, interpreter: _Interpreter) -> None:
        from ._bridge import fire_and_forget

        fire_and_forget(interpreter.execution._core.signal, int(signal.SIGINT))

    async def _answer(
        self, interpreter: _Interpreter, request_id: int, limit: float | None, cap: int
    ) -> CodeResult:
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            line = await interpreter.line(deadline, cap)
            if line is None:
                break  # The timeout.
            if _skipped(line, request_id):
                continue
            return _answer(line, request_id)
        # Time is up: KeyboardInterrupt in the cell, then the answer (or the kill).
        await interpreter.execution.signal(signal.SIGINT)
        grace = time.monotonic() + _INTERRUPT_GRACE
        while True:
            line = await interpreter.line(grace, cap)
            if line is None:
                self._interpreter = None
                await interpreter.kill()
                return CodeResult(
                    error=CodeError(
                        "TimeoutError",
                        f"the code ran longer than {limit:g} s and did not stop within "
                        f"{_INTERRUPT_GRACE:g} s of a KeyboardInterrupt: the interpreter was "
                        "killed, and the next run starts a fresh one",
                        "",
                    ),
                    timed_out=True,
                    restarted=True,
                )
            if not _skipped(line, request_id):
                break
        result = _answer(line, request_id)
        result.timed_out = True
        if result.error is not None and result.error.name == "KeyboardInterrupt":
            result.error = CodeError(
                "TimeoutError",
                f"the code ran longer than {limit:g} s and was interrupted "
                "(KeyboardInterrupt); the interpreter keeps its state",
                result.error.traceback,
            )
        return result


def _skipped(line: bytes, request_id: int) -> bool:
    """Whether `line` answers an earlier request (one abandoned by a cancelled run)."""
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return False
    found = doc.get("id") if isinstance(doc, dict) else None
    return isinstance(found, int) and not isinstance(found, bool) and 0 < found < request_id


def _check_timeout(timeout: Any) -> float | None:
    limit = _args.check_timeout(timeout)
    return None if limit is None or math.isinf(limit) else limit


def _check_cap(cap: Any) -> int:
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 4096:
        raise ConfigError(f"max_output_bytes must be an int of at least 4096, not {cap!r}")
    return cap

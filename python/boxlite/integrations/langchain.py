"""BoxLite tools for LangChain (``langchain-core``): Python, shell and files in a box.

::

    from boxlite.integrations.langchain import BoxliteToolkit

    async with BoxliteToolkit(image="python:slim") as toolkit:   # starts and stops a CodeBox
        tools = toolkit.get_tools()      # give them to any LangChain / LangGraph agent
        python = toolkit.tool("boxlite_python")
        print(await python.ainvoke({"code": "x = 6 * 7\\nx"}))      # Out: 42

    # Or bind the tools to a box of your own (it stays yours: the toolkit never stops it).
    async with boxlite.CodeBox("python:slim") as box:
        tools = BoxliteToolkit(box).get_tools()

The tools (each with a pydantic args schema; ``invoke`` and ``ainvoke`` both work):

    boxlite_python      {code, timeout?}  Python in the box's kept interpreter (a CodeBox:
                                          variables and imports survive between calls);
                                          on another box, a fresh ``python3`` per call.
                                          The artifact is the CodeResult (rich outputs:
                                          PNG figures, HTML...).
    boxlite_shell       {command, timeout?}  ``/bin/sh -c command``: exit code, stdout, stderr
    boxlite_read_file   {path, max_bytes?}   a file's text (undecodable bytes replaced)
    boxlite_write_file  {path, content}      writes text, creating parent directories
    boxlite_list_files  {path}               a directory: type, size and name per entry

A failure the agent can act on (a missing file, a bad argument, a stopped box) comes back
as the tool's text (``handle_tool_error=True``), so the agent sees what went wrong;
outputs are cut at ``max_output_bytes`` and the text says so. A toolkit without a box
starts a :class:`~boxlite.CodeBox` on the first tool call (or on entering it) and stops
it on ``close()`` / ``aclose()`` / leaving the ``with`` block.

Needs ``pip install 'boxlite[langchain]'``.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from langchain_core.tools import BaseTool, BaseToolkit, ToolException
    from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "boxlite.integrations.langchain needs langchain-core: pip install 'boxlite[langchain]'"
    ) from exc

from .. import _boxfiles
from ..box import SimpleBox
from ..errors import BoxliteError

__all__ = [
    "BoxliteToolkit",
    "BoxlitePythonTool",
    "BoxliteShellTool",
    "BoxliteReadFileTool",
    "BoxliteWriteFileTool",
    "BoxliteListFilesTool",
]

DEFAULT_IMAGE = "python:slim"
DEFAULT_MAX_OUTPUT_BYTES = 100_000
DEFAULT_TIMEOUT = 120.0
MAX_TIMEOUT = 3600.0


class _Session:
    """The box the tools of one toolkit act on: given by the user, or owned (started on
    first use, stopped by close)."""

    def __init__(self, box: SimpleBox | None, box_kwargs: dict[str, Any],
                 max_output_bytes: int) -> None:
        self.owned = box is None
        if box is None:
            from ..codebox import CodeBox

            # Options are checked here (ConfigError), before any VM starts.
            box = CodeBox(**box_kwargs)
        self.box: SimpleBox = box
        self.max_output_bytes = max_output_bytes
        self._started = False

    async def ready(self) -> SimpleBox:
        if self.owned and not self._started:
            await self.box.start()
            self._started = True
        return self.box

    async def close(self) -> None:
        if self.owned and self._started:
            self._started = False
            await self.box.stop()


def _run_sync(coro: Any) -> Any:
    from ..sync import _run

    return _run(coro)


def _cut(data: bytes, truncated: bool, limit: int, what: str) -> str:
    text = data[:limit].decode("utf-8", errors="replace")
    if truncated or len(data) > limit:
        text += f"\n[{what} cut at {limit} bytes]"
    return text


def _timeout(value: float | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not 0 < value <= MAX_TIMEOUT:
        raise ToolException(f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds, not {value!r}")
    return float(value)


class _BoxliteTool(BaseTool):
    """Common part: the session, error mapping, sync invocation over the async one."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    session: Any = Field(exclude=True)
    handle_tool_error: Any = True

    async def _act(self, box: SimpleBox, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def _arun(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> Any:
        try:
            box = await self.session.ready()
            return await self._act(box, **kwargs)
        except _boxfiles.BoxFileError as exc:
            raise ToolException(str(exc)) from None
        except BoxliteError as exc:
            raise ToolException(f"{type(exc).__name__}: {exc}") from None

    def _run(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> Any:
        return _run_sync(self._arun(*args, **kwargs))


# The tools' argument schemas (what a model is shown).

class _Timed(BaseModel):
    timeout: float | None = Field(default=None, description="Seconds before it is stopped (default 120)")


class _CodeArgs(_Timed):
    code: str = Field(description="Python source to run; the value of a final expression is returned")


class _ShellArgs(_Timed):
    command: str = Field(description="A shell command line, run with /bin/sh -c")


class _ReadArgs(BaseModel):
    path: str = Field(description="The file's path in the sandbox")
    max_bytes: int | None = Field(default=None, description="The most bytes to return (default: the toolkit's output limit)")


class _WriteArgs(BaseModel):
    path: str = Field(description="The file's path in the sandbox (parent directories are created)")
    content: str = Field(description="The text to write (replaces the file)")


class _ListArgs(BaseModel):
    path: str = Field(default="/", description="The directory's path in the sandbox")


class BoxlitePythonTool(_BoxliteTool):
    """Runs Python in the box (the artifact is the CodeResult on a CodeBox)."""

    name: str = "boxlite_python"
    description: str = (
        "Runs Python code in a sandbox and returns its stdout, stderr, the value of the last "
        "expression and any error with its traceback. Variables, imports and files persist "
        "between calls (like notebook cells). Use print() or a final expression to see results."
    )
    args_schema: type[BaseModel] = _CodeArgs
    response_format: Any = "content_and_artifact"

    async def _act(self, box: SimpleBox, code: str, timeout: float | None = None) -> Any:
        from ..codebox import CodeBox

        limit = self.session.max_output_bytes
        if isinstance(box, CodeBox):
            result = await box.run(code, _timeout(timeout), max_output_bytes=limit)
            parts = []
            if result.stdout:
                parts.append(_cut(result.stdout.encode(), result.stdout_truncated, limit, "stdout"))
            if result.stderr:
                parts.append("stderr:\n" + _cut(result.stderr.encode(), result.stderr_truncated,
                                                limit, "stderr"))
            if result.value is not None:
                parts.append("Out: " + _cut(result.value.encode(), False, limit, "value"))
            if result.error is not None:
                parts.append(_cut(result.error.traceback.encode(), False, limit, "traceback"))
            if result.timed_out:
                parts.append(f"[interrupted after {_timeout(timeout):g} s; the state is kept]")
            formats = sorted({f for item in result.results for f in item.formats()})
            if formats:
                parts.append(f"[rich outputs: {', '.join(formats)}]")
            return "\n".join(parts) or "(no output)", result
        result = await box.exec(["python3", "-u", "-"], stdin=code.encode(),
                                timeout=_timeout(timeout), max_output_bytes=limit)
        if result.exit_code == 127 and not result.stdout_bytes:
            raise ToolException("the box has no python3: use an image with Python (e.g. python:slim)")
        return _shell_text(result, limit), result


def _shell_text(result: Any, limit: int) -> str:
    text = f"exit code: {result.exit_code}\n"
    text += _cut(result.stdout_bytes, result.stdout_truncated, limit, "stdout")
    if result.stderr_bytes:
        text += "\nstderr:\n" + _cut(result.stderr_bytes, result.stderr_truncated, limit, "stderr")
    if result.timed_out:
        text += "\n[the command ran out of time and was killed]"
    return text


class BoxliteShellTool(_BoxliteTool):
    """Runs a shell command in the box."""

    name: str = "boxlite_shell"
    description: str = (
        "Runs a shell command (/bin/sh -c) in a sandbox and returns its exit code, stdout "
        "and stderr. A non-zero exit code is a result, not an error."
    )
    args_schema: type[BaseModel] = _ShellArgs

    async def _act(self, box: SimpleBox, command: str, timeout: float | None = None) -> str:
        if not command.strip():
            raise ToolException("command is empty: give a shell command line")
        result = await box.exec(["/bin/sh", "-c", command], timeout=_timeout(timeout),
                                max_output_bytes=self.session.max_output_bytes)
        return _shell_text(result, self.session.max_output_bytes)


class BoxliteReadFileTool(_BoxliteTool):
    """Reads a file of the box as text."""

    name: str = "boxlite_read_file"
    description: str = "Reads a text file in the sandbox and returns its content."
    args_schema: type[BaseModel] = _ReadArgs

    async def _act(self, box: SimpleBox, path: str, max_bytes: int | None = None) -> str:
        limit = self.session.max_output_bytes if max_bytes is None else max_bytes
        data, truncated = await _boxfiles.read_file(box, path, limit)
        return _cut(data, truncated, limit, path)


class BoxliteWriteFileTool(_BoxliteTool):
    """Writes a text file in the box."""

    name: str = "boxlite_write_file"
    description: str = ("Writes text to a file in the sandbox, creating parent directories "
                        "and replacing any file there.")
    args_schema: type[BaseModel] = _WriteArgs

    async def _act(self, box: SimpleBox, path: str, content: str) -> str:
        data = content.encode("utf-8")
        await _boxfiles.write_file(box, path, data)
        return f"wrote {len(data)} bytes to {path}"


class BoxliteListFilesTool(_BoxliteTool):
    """Lists a directory of the box."""

    name: str = "boxlite_list_files"
    description: str = ("Lists a directory in the sandbox: one line per entry with its type, "
                        "size in bytes and name.")
    args_schema: type[BaseModel] = _ListArgs

    async def _act(self, box: SimpleBox, path: str = "/") -> str:
        entries, cut = await _boxfiles.list_dir(box, path, self.session.max_output_bytes)
        lines = [f"{e['type']}\t{e['size']}\t{e['name']}" for e in entries]
        if cut:
            lines.append(f"[only the first {len(entries)} entries are shown]")
        return "\n".join(lines) if lines else f"{path} is empty"


_TOOL_CLASSES = (BoxlitePythonTool, BoxliteShellTool, BoxliteReadFileTool,
                 BoxliteWriteFileTool, BoxliteListFilesTool)


class BoxliteToolkit(BaseToolkit):
    """The BoxLite tools, bound to one box.

    Args:
        box: A box of yours (a :class:`~boxlite.CodeBox` for a kept interpreter, or any
            SimpleBox); the toolkit neither starts nor stops it. Without one, the toolkit
            owns a CodeBox made from ``image`` and ``**box_options``.
        image: The image of the toolkit's own box (default ``python:slim``).
        max_output_bytes: The most bytes of each output a tool returns (default 100000).
        **box_options: Options of the toolkit's own box (``memory``, ``rootfs_path``,
            ``env``, ``network``, ...), checked here before anything boots.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _session: _Session = PrivateAttr()
    _tools: list[BaseTool] = PrivateAttr()

    def __init__(self, box: SimpleBox | None = None, *, image: str | None = None,
                 max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, **box_options: Any) -> None:
        super().__init__()
        if box is not None and (image is not None or box_options):
            raise ValueError("give a box, or the options of the toolkit's own box, not both")
        if not isinstance(box, (SimpleBox, type(None))):
            raise TypeError(f"box must be a boxlite box (CodeBox, SimpleBox), not {type(box).__name__}")
        if isinstance(max_output_bytes, bool) or not isinstance(max_output_bytes, int) or max_output_bytes <= 0:
            raise ValueError(f"max_output_bytes must be a positive int, not {max_output_bytes!r}")
        kwargs = dict(box_options)
        if box is None and "rootfs_path" not in kwargs:
            kwargs["image"] = image or DEFAULT_IMAGE
        self._session = _Session(box, kwargs, max_output_bytes)
        self._tools = [cls(session=self._session) for cls in _TOOL_CLASSES]

    @property
    def box(self) -> SimpleBox:
        """The box the tools act on."""
        return self._session.box

    def get_tools(self) -> list[BaseTool]:
        """The five tools (python, shell, read_file, write_file, list_files)."""
        return list(self._tools)

    def tool(self, name: str) -> BaseTool:
        """One tool by its name (``"boxlite_shell"``, ...)."""
        for t in self._tools:
            if t.name == name:
                return t
        raise KeyError(f"no tool {name!r}; the tools are: {', '.join(t.name for t in self._tools)}")

    async def astart(self) -> BoxliteToolkit:
        """Starts the toolkit's own box now (else the first tool call does)."""
        await self._session.ready()
        return self

    async def aclose(self) -> None:
        """Stops (and removes) the toolkit's own box; a box you gave is left alone."""
        await self._session.close()

    def start(self) -> BoxliteToolkit:
        """:meth:`astart` for synchronous code."""
        _run_sync(self._session.ready())
        return self

    def close(self) -> None:
        """:meth:`aclose` for synchronous code."""
        _run_sync(self._session.close())

    async def __aenter__(self) -> BoxliteToolkit:
        return await self.astart()

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.shield(self.aclose())

    def __enter__(self) -> BoxliteToolkit:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

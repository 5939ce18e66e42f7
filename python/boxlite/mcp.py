"""``boxlite mcp``: an MCP (Model Context Protocol) server that gives an agent boxes.

Run it with ``boxlite mcp`` (the CLI execs ``python3 -m boxlite.mcp``) or directly with
``python3 -m boxlite.mcp [--transport stdio|http] [--port N]``. It is built on the
official ``mcp`` package (``pip install 'boxlite[mcp]'``); the rest of the SDK never
imports it.

Tools (docs/mcp.md has their arguments):
    create_box, list_boxes, remove_box      boxes of this server
    exec, run_code                          commands, and Python in a kept interpreter
                                            (CodeBox) of a box
    write_file, read_file, list_files       files in a box
    computer_start, computer_stop, computer a desktop (ComputerBox) driven with
                                            Anthropic's computer-use actions

Every box the server starts is ephemeral and dies with the server: when the client
closes stdin, or the server gets SIGTERM, SIGINT or SIGHUP, each box is stopped and
removed before the process exits. Outputs are bounded (``--max-output-bytes``), and a
cut says so in the text. Failures come back as MCP tool errors (``isError``) with one
line saying what failed and what to do.

The streamable HTTP transport binds the loopback only (there is no authentication):
``--host`` accepts 127.0.0.1, ::1 or localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import _boxfiles
from .box import SimpleBox
from .errors import BoxliteError

if TYPE_CHECKING:
    from .computer import ComputerBox

__all__ = ["BoxManager", "build_server", "main"]

DEFAULT_IMAGE = "python:slim"
DEFAULT_MAX_OUTPUT_BYTES = 100_000
# The most a write_file call may carry (decoded): larger files belong in a mount.
MAX_WRITE_BYTES = 32 * 1024 * 1024
# Seconds a command may run when the caller gives no timeout.
DEFAULT_TIMEOUT = 120.0
MAX_TIMEOUT = 3600.0
# How long a shutdown waits for boxes still booting.
BOOT_WAIT = 120.0

_INSTALL_HINT = "pip install 'boxlite[mcp]' (the official `mcp` package, version 2 or later)"


class ToolFailure(Exception):
    """A tool call that failed for a reason the caller can act on (an MCP tool error)."""


@dataclass
class _Managed:
    box: SimpleBox
    kind: Literal["box", "computer"]
    image: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _cut(data: bytes, truncated: bool, limit: int, what: str) -> str:
    text = data.decode("utf-8", errors="replace")
    if truncated:
        text += (f"\n[{what} truncated: only the first {limit} bytes are shown; "
                 "redirect it to a file and read the file in parts]")
    return text


def _timeout(value: float | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if not 0 < value <= MAX_TIMEOUT:
        raise ToolFailure(f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds, not {value:g}")
    return float(value)


def _guest_path(path: str) -> str:
    try:
        return _boxfiles.check_path(path)
    except _boxfiles.BoxFileError as exc:
        raise ToolFailure(str(exc)) from None


class BoxManager:
    """The boxes one server started, by id. All are ephemeral (removed by their stop)."""

    def __init__(self, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
                 default_image: str = DEFAULT_IMAGE) -> None:
        self.max_output_bytes = max_output_bytes
        self.default_image = default_image
        self._boxes: dict[str, _Managed] = {}
        self._closed = False
        self._booting = 0
        self._booted = asyncio.Event()

    # Lookup and lifecycle.

    def get(self, box_id: str, kind: str | None = None) -> _Managed:
        """The box with this id, name, or unique id prefix (8+ characters)."""
        found = self._boxes.get(box_id)
        if found is None:
            matches = [m for key, m in self._boxes.items()
                       if m.box.name == box_id or (len(box_id) >= 8 and key.startswith(box_id))]
            if len(matches) == 1:
                found = matches[0]
        if found is None:
            known = ", ".join(sorted(self._boxes)) or "none"
            raise ToolFailure(f"no box {box_id!r} was started by this server (its boxes: {known}); "
                              "create one with create_box or computer_start")
        if kind is not None and found.kind != kind:
            hint = "computer_start" if kind == "computer" else "create_box"
            raise ToolFailure(f"box {box_id!r} is a {found.kind}, not a {kind}: start one with {hint}")
        return found

    async def add(self, box: SimpleBox, kind: Literal["box", "computer"], image: str) -> _Managed:
        if self._closed:
            raise ToolFailure("the server is shutting down")
        self._booting += 1
        try:
            await box.start()
            managed = _Managed(box, kind, image)
            self._boxes[box.id] = managed
        finally:
            self._booting -= 1
            self._booted.set()
        if self._closed:  # The server began shutting down while it booted.
            if self._boxes.pop(box.id, None) is not None:  # Else close_all stops it.
                await box.stop()
            raise ToolFailure("the server is shutting down")
        return managed

    async def remove(self, box_id: str) -> str:
        managed = self.get(box_id)
        self._boxes.pop(managed.box.id, None)
        await managed.box.stop()
        return managed.box.id

    async def close_all(self) -> list[str]:
        """Stops (and so removes) every box of this server; returns their ids."""
        self._closed = True
        # Boxes still booting are removed by their add() once booted: wait for them.
        deadline = asyncio.get_running_loop().time() + BOOT_WAIT
        while self._booting and asyncio.get_running_loop().time() < deadline:
            self._booted.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._booted.wait(), 1)
        boxes = list(self._boxes.values())
        self._boxes.clear()
        results = await asyncio.gather(*(m.box.stop() for m in boxes), return_exceptions=True)
        for managed, result in zip(boxes, results):
            if isinstance(result, BaseException):
                print(f"boxlite mcp: could not remove box {managed.box.id}: {result}",
                      file=sys.stderr)
        return [m.box.id for m in boxes]

    # Tools' work.

    async def describe(self, managed: _Managed) -> dict[str, Any]:
        box = managed.box
        entry: dict[str, Any] = {"id": box.id, "name": box.name, "kind": managed.kind,
                                 "image": managed.image}
        try:
            info = await box.info()
            entry["state"] = str(info.state)
            entry["cpus"] = info.cpus
            entry["memory_mib"] = info.memory_mib
        except BoxliteError as exc:
            entry["state"] = f"unknown ({exc})"
        if managed.kind == "computer":
            computer: ComputerBox = box  # type: ignore[assignment]
            entry["width"], entry["height"] = computer.width, computer.height
        return entry

    async def list(self) -> list[dict[str, Any]]:
        return [await self.describe(m) for m in list(self._boxes.values())]

    async def run(self, box_id: str, argv: list[str], *, stdin: bytes | None = None,
                  cwd: str | None = None, env: dict[str, str] | None = None,
                  timeout: float | None = None, limit: int | None = None) -> Any:
        managed = self.get(box_id)
        return await managed.box.exec(argv, cwd=cwd, env=env, stdin=stdin,
                                      timeout=_timeout(timeout),
                                      max_output_bytes=limit or self.max_output_bytes)

    def result(self, result: Any) -> dict[str, Any]:
        limit = self.max_output_bytes
        answer: dict[str, Any] = {
            "exit_code": result.exit_code,
            "stdout": _cut(result.stdout_bytes, result.stdout_truncated, limit, "stdout"),
            "stderr": _cut(result.stderr_bytes, result.stderr_truncated, limit, "stderr"),
        }
        if result.timed_out:
            answer["timed_out"] = True
            answer["stderr"] += "\n[the command ran out of time and was killed]"
        return answer


_SCROLL_DIRECTIONS = ("up", "down", "left", "right")
_COMPUTER_ACTIONS = (
    "screenshot", "mouse_move", "left_click", "right_click", "middle_click", "double_click",
    "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up", "type", "key",
    "hold_key", "scroll", "cursor_position", "wait",
)


def _code_answer(result: Any, limit: int) -> list[Any]:
    """run_code's answer for a CodeBox run: the facts (a JSON text block), then each
    image of the run's rich outputs as an image block."""
    from mcp.server.mcpserver.utilities.types import Image

    def cut(text: str, what: str, truncated: bool = False) -> str:
        data = text.encode("utf-8")
        if len(data) <= limit and not truncated:
            return text
        return _cut(data[:limit], True, limit, what)

    error = result.error
    answer: dict[str, Any] = {
        "stdout": cut(result.stdout, "stdout", result.stdout_truncated),
        "stderr": cut(result.stderr, "stderr", result.stderr_truncated),
        "value": None if result.value is None else cut(result.value, "value"),
        "error": None if error is None else {
            "name": error.name, "value": cut(error.value, "error"),
            "traceback": cut(error.traceback, "traceback")},
    }
    if result.timed_out:
        answer["timed_out"] = True
    if result.restarted:
        answer["restarted"] = True  # The interpreter was killed: its state is gone.
    images: list[Any] = []
    outputs: list[Any] = []
    for item in result.results:
        images += [Image(data=item.decoded(fmt), format=fmt) for fmt in ("png", "jpeg")
                   if getattr(item, fmt) is not None]
        rich = {fmt: getattr(item, fmt) for fmt in ("html", "markdown", "json", "svg", "latex")
                if getattr(item, fmt) is not None}
        if rich:
            text = json.dumps(rich)
            outputs.append(rich if len(text) <= limit else {"cut": cut(text, "output")})
    if outputs:
        answer["outputs"] = outputs
    return [answer, *images]


def _point(value: list[int] | None, what: str, action: str) -> tuple[int, int]:
    if value is None:
        raise ToolFailure(f"action {action} needs {what} as [x, y]")
    if len(value) != 2:
        raise ToolFailure(f"{what} must be [x, y], not {value!r}")
    return int(value[0]), int(value[1])


@contextlib.asynccontextmanager
async def _holding(computer: ComputerBox, keys: str | None) -> Any:
    """Holds ``keys`` (modifiers such as "shift" or "ctrl+alt", the ``text`` of a click or
    scroll) down around the action, and releases them whatever happens."""
    if not keys:
        yield
        return
    await computer.key_down(keys)
    try:
        yield
    finally:
        await asyncio.shield(computer.key_up(keys))


async def _computer_action(computer: ComputerBox, action: str, coordinate: list[int] | None,
                           start_coordinate: list[int] | None, text: str | None,
                           scroll_direction: str | None, scroll_amount: int | None,
                           duration: float | None) -> Any:
    from mcp.server.mcpserver.utilities.types import Image

    xy = (lambda: _point(coordinate, "coordinate", action))
    if action == "screenshot":
        return Image(data=await computer.screenshot(), format="png")
    if action == "cursor_position":
        x, y = await computer.cursor_position()
        return {"x": x, "y": y}
    if action == "wait":
        seconds = 1.0 if duration is None else float(duration)
        if not 0 <= seconds <= 60:
            raise ToolFailure(f"duration must be in 0..60 seconds, not {seconds:g}")
        await asyncio.sleep(seconds)
        return Image(data=await computer.screenshot(), format="png")
    if action in ("left_click", "right_click", "middle_click", "double_click", "triple_click"):
        x, y = xy() if coordinate is not None else (None, None)
        async with _holding(computer, text):
            await getattr(computer, action)(x, y)
    elif action == "mouse_move":
        await computer.mouse_move(*xy())
    elif action == "left_click_drag":
        end = xy()
        if start_coordinate is not None:
            start = _point(start_coordinate, "start_coordinate", action)
        else:  # The 2024-10-22 version: the drag starts at the pointer.
            start = await computer.cursor_position()
        await computer.left_click_drag(start[0], start[1], end[0], end[1])
    elif action == "left_mouse_down":
        await computer.mouse_down()
    elif action == "left_mouse_up":
        await computer.mouse_up()
    elif action == "type":
        if text is None:
            raise ToolFailure("action type needs text")
        await computer.type(text)
    elif action == "hold_key":
        if not text:
            raise ToolFailure("action hold_key needs text (the keys, e.g. \"shift\") and duration")
        seconds = 1.0 if duration is None else float(duration)
        if not 0 <= seconds <= 60:
            raise ToolFailure(f"duration must be in 0..60 seconds, not {seconds:g}")
        await computer.hold_key(text, seconds)
    elif action == "key":
        if not text:
            raise ToolFailure("action key needs text, in xdotool syntax (e.g. \"ctrl+s\", \"Return\")")
        await computer.key(text)
    elif action == "scroll":
        direction = scroll_direction or "down"
        if direction not in _SCROLL_DIRECTIONS:
            raise ToolFailure(f"scroll_direction must be one of {', '.join(_SCROLL_DIRECTIONS)}, "
                              f"not {direction!r}")
        x, y = xy() if coordinate is not None else await computer.cursor_position()
        async with _holding(computer, text):
            await computer.scroll(x, y, direction=direction,
                                  amount=3 if scroll_amount is None else scroll_amount)
    else:
        raise ToolFailure(f"unknown action {action!r}; the actions are: {', '.join(_COMPUTER_ACTIONS)}")
    return f"{action}: done"


def build_server(manager: BoxManager) -> Any:
    """The MCP server (an ``mcp.server.mcpserver.MCPServer``) whose tools act on
    ``manager``'s boxes."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    from . import __version__

    server: Any = MCPServer(
        name="boxlite",
        version=__version__,
        instructions=(
            "BoxLite runs commands and code in local micro-VM sandboxes (boxes). Create a box "
            "with create_box, then use exec, run_code and the file tools with its id; remove "
            "it when done. computer_start starts a desktop that the computer tool drives. "
            "Every box is removed when this server exits."),
        log_level="WARNING",
    )

    def tool(**annotations: Any) -> Any:
        """Registers a tool whose ToolFailure/BoxliteError become MCP tool errors."""
        def register(fn: Any) -> Any:
            import functools

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await fn(*args, **kwargs)
                except (ToolFailure, BoxliteError, ValueError) as exc:
                    raise ToolError(str(exc)) from None

            server.add_tool(wrapper, annotations=ToolAnnotations(**annotations) if annotations else None)
            return fn
        return register

    @tool(destructive_hint=False)
    async def create_box(image: str | None = None, cpus: int = 1, memory_mib: int = 1024,
                         name: str | None = None, env: dict[str, str] | None = None,
                         working_dir: str | None = None,
                         network: Literal["nat", "none"] = "nat") -> dict[str, Any]:
        """Creates and boots a box (a micro-VM from an OCI image) and returns its id.

        image: an OCI reference such as "python:slim" (the default) or "alpine:latest".
        network: "nat" (outbound network) or "none" (no network at all).
        The box lives until remove_box, or until this server exits.
        """
        from .codebox import CodeBox

        image = image or manager.default_image
        # A CodeBox: a SimpleBox whose run_code goes to one kept interpreter (started by
        # the first run_code, so a box without Python costs nothing).
        box = CodeBox(image, cpus=cpus, memory_mib=memory_mib, name=name, env=env,
                      working_dir=working_dir, network=network, auto_remove=True)
        managed = await manager.add(box, "box", image)
        return await manager.describe(managed)

    @tool(read_only_hint=True)
    async def list_boxes() -> list[dict[str, Any]]:
        """Lists the boxes (and computers) this server started: id, name, kind, image, state."""
        return await manager.list()

    @tool(destructive_hint=True)
    async def remove_box(box_id: str) -> str:
        """Stops and removes a box (or a computer) of this server, with everything in it."""
        removed = await manager.remove(box_id)
        return f"removed box {removed}"

    @tool()
    async def exec(box_id: str, command: str | list[str], cwd: str | None = None,
                   env: dict[str, str] | None = None, stdin: str | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        """Runs a command in a box and returns exit_code, stdout and stderr.

        command: a shell command line (run with /bin/sh -c), or a list [program, arg, ...]
        run without a shell. timeout: seconds (default 120), then the command is killed.
        A non-zero exit is a result, not an error. Long outputs are cut (the text says so).
        """
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        if not argv or not argv[0]:
            raise ToolFailure("command is empty: give a shell command line or [program, args...]")
        result = await manager.run(box_id, argv, cwd=cwd, env=env, timeout=timeout,
                                   stdin=stdin.encode() if stdin is not None else None)
        return manager.result(result)

    @tool()
    async def run_code(box_id: str, code: str, timeout: float | None = None) -> Any:
        """Runs Python code in a box and returns stdout, stderr, the value of the last
        expression, the error (name, value, traceback) and rich outputs (a PNG, e.g. a
        matplotlib figure, comes back as an image).

        A box from create_box keeps one interpreter: variables, imports and open files
        carry over between calls (like notebook cells). timeout (seconds, default 120)
        interrupts the code with KeyboardInterrupt and keeps the interpreter's state.
        On a computer each call runs in a fresh python3 process. The image needs python3.
        """
        from .codebox import CodeBox

        managed = manager.get(box_id)
        if isinstance(managed.box, CodeBox):
            return _code_answer(await managed.box.run(code, _timeout(timeout)),
                                manager.max_output_bytes)
        result = await manager.run(box_id, ["python3", "-u", "-"], stdin=code.encode(),
                                   timeout=timeout)
        if result.exit_code == 127 and not result.stdout_bytes:
            raise ToolFailure(f"box {box_id} has no python3: create a box from an image with "
                              "Python (e.g. python:slim) for run_code")
        return manager.result(result)

    @tool()
    async def write_file(box_id: str, path: str, content: str,
                         encoding: Literal["utf-8", "base64"] = "utf-8") -> str:
        """Writes a file in a box (creating its parent directories), replacing any file there.

        content: the text, or base64 of the bytes with encoding="base64".
        """
        path = _guest_path(path)
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise ToolFailure("content is not valid base64 (encoding=\"base64\")") from None
        else:
            data = content.encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise ToolFailure(f"content is {len(data)} bytes, more than the {MAX_WRITE_BYTES} a "
                              "write_file call takes: write it in parts (exec with >>)")
        try:
            await _boxfiles.write_file(manager.get(box_id).box, path, data)
        except _boxfiles.BoxFileError as exc:
            raise ToolFailure(str(exc)) from None
        return f"wrote {len(data)} bytes to {path}"

    @tool(read_only_hint=True)
    async def read_file(box_id: str, path: str, max_bytes: int | None = None) -> dict[str, Any]:
        """Reads a file in a box. Text comes back as is (encoding "utf-8"); a file that is
        not UTF-8 comes back as base64 (encoding "base64"). At most max_bytes (default the
        server's output limit) are returned; truncated says whether the file is longer."""
        path = _guest_path(path)
        limit = manager.max_output_bytes if max_bytes is None else max_bytes
        if limit <= 0:
            raise ToolFailure(f"max_bytes must be positive, not {limit}")
        try:
            data, truncated = await _boxfiles.read_file(manager.get(box_id).box, path, limit)
        except _boxfiles.BoxFileError as exc:
            raise ToolFailure(str(exc)) from None
        try:
            content, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            content, encoding = base64.b64encode(data).decode("ascii"), "base64"
        return {"path": path, "content": content, "encoding": encoding,
                "bytes": len(data), "truncated": truncated}

    @tool(read_only_hint=True)
    async def list_files(box_id: str, path: str = "/") -> dict[str, Any]:
        """Lists a directory in a box: each entry's name, type (file, directory, symlink,
        other) and size in bytes, sorted by name."""
        path = _guest_path(path)
        try:
            entries, cut = await _boxfiles.list_dir(manager.get(box_id).box, path,
                                                    manager.max_output_bytes)
        except _boxfiles.BoxFileError as exc:
            raise ToolFailure(str(exc)) from None
        answer: dict[str, Any] = {"path": path, "entries": entries}
        if cut:
            answer["truncated"] = True
        return answer

    @tool(destructive_hint=False)
    async def computer_start(width: int = 1024, height: int = 768, image: str | None = None,
                             timeout: float = 180) -> dict[str, Any]:
        """Starts a computer: a box running a desktop (1024x768 by default) that the
        computer tool drives. Returns its id once the desktop is ready for input."""
        from .computer import DEFAULT_IMAGE as DESKTOP_IMAGE, ComputerBox

        image = image or DESKTOP_IMAGE
        box = ComputerBox(image, width=width, height=height, auto_remove=True)
        managed = await manager.add(box, "computer", image)
        try:
            await box.wait_until_ready(timeout=_timeout(timeout))
        except BaseException:
            await manager.remove(box.id)
            raise
        return await manager.describe(managed)

    @tool(destructive_hint=True)
    async def computer_stop(computer_id: str) -> str:
        """Stops and removes a computer started with computer_start."""
        managed = manager.get(computer_id, "computer")
        return f"removed computer {await manager.remove(managed.box.id)}"

    @tool()
    async def computer(computer_id: str,
                       action: Literal["screenshot", "mouse_move", "left_click", "right_click",
                                       "middle_click", "double_click", "triple_click",
                                       "left_click_drag", "left_mouse_down", "left_mouse_up",
                                       "type", "key", "hold_key", "scroll", "cursor_position",
                                       "wait"],
                       coordinate: list[int] | None = None,
                       start_coordinate: list[int] | None = None,
                       text: str | None = None,
                       scroll_direction: Literal["up", "down", "left", "right"] | None = None,
                       scroll_amount: int | None = None,
                       duration: float | None = None) -> Any:
        """Acts on a computer's desktop with Anthropic's computer-use actions.

        screenshot (returns a PNG image), mouse_move/left_click/right_click/middle_click/
        double_click/triple_click at coordinate [x, y] (clicks without one click where the
        pointer is), left_click_drag from start_coordinate (default: the pointer) to
        coordinate, left_mouse_down, left_mouse_up, type text, key text in xdotool syntax
        ("ctrl+s", "Return"), hold_key text for duration seconds, scroll at coordinate with
        scroll_direction and scroll_amount, cursor_position (returns x, y), wait duration
        seconds (returns a screenshot). The clicks and scroll hold the keys in text
        (e.g. "shift", "ctrl") while they act.
        Coordinates are pixels from the top-left corner.
        """
        managed = manager.get(computer_id, "computer")
        async with managed.lock:
            return await _computer_action(managed.box, action, coordinate,  # type: ignore[arg-type]
                                          start_coordinate, text, scroll_direction,
                                          scroll_amount, duration)

    return server


# --- Running it ---------------------------------------------------------------------------

def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise SystemExit(f"boxlite mcp: --host {host} is not a loopback address; the HTTP "
                         "transport has no authentication, so it binds 127.0.0.1, ::1 or "
                         "localhost only")
    return host


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="boxlite mcp",
        description="An MCP server giving an agent BoxLite boxes (exec, code, files, a "
                    "desktop). Its boxes are removed when it exits.")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                        help="stdio (default) or http (streamable HTTP on the loopback)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="HTTP: the loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000,
                        help="HTTP: the port (default 8000; 0 picks a free one)")
    parser.add_argument("--path", default="/mcp", help="HTTP: the endpoint path (default /mcp)")
    parser.add_argument("--max-output-bytes", type=int, default=DEFAULT_MAX_OUTPUT_BYTES,
                        help=f"the most bytes of each output a tool returns "
                             f"(default {DEFAULT_MAX_OUTPUT_BYTES})")
    parser.add_argument("--image", default=DEFAULT_IMAGE,
                        help=f"create_box's default image (default {DEFAULT_IMAGE})")
    return parser


def _report(removed: list[str]) -> None:
    if removed:
        print(f"boxlite mcp: removed {len(removed)} box(es): {' '.join(removed)}",
              file=sys.stderr, flush=True)


async def _serve(args: argparse.Namespace) -> int:
    manager = BoxManager(max_output_bytes=args.max_output_bytes, default_image=args.image)
    server = build_server(manager)
    loop = asyncio.get_running_loop()
    http: Any = None
    sock: socket.socket | None = None
    if args.transport == "http":
        import uvicorn

        class _Server(uvicorn.Server):
            # Our own signal handlers remove the boxes: uvicorn's would re-raise the
            # signal after serving, ending the process before the cleanup.
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        host = _loopback(args.host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, args.port))
        except OSError as exc:
            sock.close()
            print(f"boxlite mcp: cannot listen on {host}:{args.port}: {exc.strerror}; "
                  "choose another --port", file=sys.stderr)
            return 1
        sock.listen(128)
        app = server.streamable_http_app(streamable_http_path=args.path, host=host)
        http = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        port = sock.getsockname()[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        print(f"boxlite mcp: serving MCP over streamable HTTP at http://{shown}:{port}{args.path}",
              file=sys.stderr, flush=True)

    async def shut_down(signo: int) -> None:
        # The stdio transport reads stdin in a thread that no cancellation reaches, so a
        # signal does not wait for the transport: remove the boxes, then leave.
        removed = await manager.close_all()
        _report(removed)
        os._exit(0)

    def on_signal(signo: int) -> None:
        if not signalled:
            signalled.append(signo)
            loop.create_task(shut_down(signo))

    signalled: list[int] = []
    for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signo, on_signal, signo)
    try:
        if http is not None:
            await http.serve(sockets=[sock])
        else:
            await server.run_stdio_async()  # Returns at stdin's EOF.
    finally:
        _report(await manager.close_all())
        if sock is not None:
            sock.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``boxlite mcp``'s entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.max_output_bytes <= 0:
        print("boxlite mcp: --max-output-bytes must be positive", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"boxlite mcp: --port must be in 0..65535, not {args.port}", file=sys.stderr)
        return 2
    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError as exc:
        print(f"boxlite mcp: the MCP server needs the `mcp` package ({exc}): {_INSTALL_HINT}",
              file=sys.stderr)
        return 1
    code = asyncio.run(_serve(args))
    sys.stdout.flush()
    sys.stderr.flush()
    # anyio's stdin reader thread may still be blocked in read(): do not wait for it.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

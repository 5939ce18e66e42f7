"""`boxlite mcp` (python/boxlite/mcp.py, docs/mcp.md) driven by the official `mcp` client
library over the real protocol: stdio (the server is a subprocess, as an MCP client
starts it) and streamable HTTP on 127.0.0.1.

One stdio server is shared by the module's box tests (one box from ``boxlite/desktop``,
which has python3, and one computer); every effect of a tool is observed from inside the
guest (through another tool's command, or the X server) or on the host (the runtime's
box list, processes). The last tests stop servers (stdin EOF, SIGTERM) and check that the
boxes they started are gone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mcp = pytest.importorskip("mcp", reason="the MCP server needs the `mcp` package (pip install 'boxlite[mcp]')")
from mcp import Client, StdioServerParameters  # noqa: E402

import boxlite  # noqa: E402

MAX_OUTPUT = 4096
TOOLS = {"create_box", "list_boxes", "remove_box", "exec", "run_code", "write_file", "read_file",
         "list_files", "computer_start", "computer_stop", "computer"}
# Anthropic's computer-use actions (computer_20250124) that the tool implements.
ACTIONS = {"screenshot", "mouse_move", "left_click", "right_click", "middle_click", "double_click",
           "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up", "type", "key",
           "hold_key",
           "scroll", "cursor_position", "wait"}


# ---------------------------------------------------------------------------- helpers

def server_params(*extra: str) -> StdioServerParameters:
    # The whole environment: BOXLITE_HOME (conftest), BOXLITE_DATA_DIR, PYTHONPATH.
    return StdioServerParameters(command=sys.executable, args=["-m", "boxlite.mcp", *extra],
                                 env=dict(os.environ))


def server_pids(marker: str) -> list[int]:
    """Live children of this process running `boxlite.mcp` with `marker` in their argv."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(errors="replace")
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if (int(fields[1]) == os.getpid() and fields[0] != "Z" and b"boxlite.mcp" in argv
                and marker.encode() in argv):
            found.append(int(entry))
    return found


def processes_naming(word: str) -> list[int]:
    """Processes whose command line contains `word`: for a box id, its VM (QEMU's
    ``-name boxlite-<id>``). An ephemeral box leaves nothing else on the host."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if word.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def wait_gone(ids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        procs = {p: Path(f"/proc/{p}/cmdline").read_bytes()[:200] for i in ids
                 for p in processes_naming(i)}
        if not procs:
            return
        assert time.monotonic() < deadline, f"processes of boxes {ids} outlived them: {procs}"
        time.sleep(0.5)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class McpSession:
    """An `mcp.Client` over stdio, kept open in a thread of its own (its anyio scopes must
    stay in one task) and called synchronously from the tests."""

    def __init__(self, params: StdioServerParameters) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.closing = asyncio.Event()
        ready: asyncio.Future[Any] = self.loop.create_future()
        self.main = asyncio.run_coroutine_threadsafe(self._main(params, ready), self.loop)
        self.client = asyncio.run_coroutine_threadsafe(self._ready(ready), self.loop).result(120)
        self.closed = False

    async def _ready(self, ready: asyncio.Future[Any]) -> Any:
        return await ready

    async def _main(self, params: StdioServerParameters, ready: asyncio.Future[Any]) -> None:
        try:
            async with Client(params, read_timeout_seconds=600) as client:
                ready.set_result(client)
                await self.closing.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    def call(self, tool: str, **arguments: Any) -> Any:
        coro = self.client.call_tool(tool, arguments)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(600)

    def ok(self, tool: str, **arguments: Any) -> Any:
        """The structured result of a call that must succeed (else its error text)."""
        result = self.call(tool, **arguments)
        assert not result.is_error, f"{tool} failed: {result.content[0].text}"
        data = result.structured_content
        if isinstance(data, dict) and set(data) == {"result"}:
            return data["result"]
        return data

    def error(self, tool: str, **arguments: Any) -> str:
        result = self.call(tool, **arguments)
        assert result.is_error, f"{tool} succeeded: {result.content}"
        text: str = result.content[0].text
        return text

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.call_soon_threadsafe(self.closing.set)
        try:
            self.main.result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


# ---------------------------------------------------------------------------- fixtures

# boxlite/desktop made resolvable in the session's home, as test_computer.py does.
from test_computer import desktop_image  # noqa: E402,F401


@pytest.fixture(scope="module")
def session(desktop_image: str) -> Iterator[McpSession]:
    s = McpSession(server_params("--max-output-bytes", str(MAX_OUTPUT), "--image", desktop_image))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def box(session: McpSession) -> str:
    created = session.ok("create_box", memory_mib=512, env={"MCP_TEST": "from-create"})
    assert created["kind"] == "box" and created["state"] == "running"
    box_id: str = created["id"]
    return box_id


@pytest.fixture(scope="module")
def computer(session: McpSession) -> str:
    started = session.ok("computer_start", width=1024, height=768)
    computer_id: str = started["id"]
    return computer_id


# ---------------------------------------------------------------------------- tests

def test_lists_every_tool(session: McpSession) -> None:
    tools = {t.name: t for t in asyncio.run_coroutine_threadsafe(
        session.client.list_tools(), session.loop).result(60).tools}
    assert set(tools) == TOOLS
    action = tools["computer"].input_schema["properties"]["action"]
    assert set(action["enum"]) == ACTIONS
    assert {"box_id", "command"} <= set(tools["exec"].input_schema["properties"])


def test_create_box_boots_the_image_with_its_options(session: McpSession, box: str) -> None:
    # The box's own view: its environment and memory (a 512 MiB guest has < 512 MiB total).
    out = session.ok("exec", box_id=box, command="echo $MCP_TEST; grep MemTotal /proc/meminfo")
    kib = int(re.search(r"MemTotal:\s+(\d+)", out["stdout"]).group(1))
    assert out["stdout"].startswith("from-create\n") and 256 * 1024 < kib <= 512 * 1024
    listed = session.ok("list_boxes")
    assert [(b["id"], b["kind"]) for b in listed if b["id"] == box] == [(box, "box")]
    assert processes_naming(box), "the box has no VM process"


def test_exec_returns_exit_code_and_both_streams(session: McpSession, box: str) -> None:
    out = session.ok("exec", box_id=box, command="echo out; echo err >&2; exit 7")
    assert (out["exit_code"], out["stdout"], out["stderr"]) == (7, "out\n", "err\n")
    # A list runs without a shell; stdin and cwd reach the process.
    out = session.ok("exec", box_id=box, command=["sh", "-c", "pwd; cat", "x"], cwd="/tmp",
                     stdin="fed")
    assert out["stdout"] == "/tmp\nfed" and out["exit_code"] == 0


def test_exec_output_is_bounded_with_a_note(session: McpSession, box: str) -> None:
    out = session.ok("exec", box_id=box, command="head -c 100000 /dev/zero | tr '\\0' a")
    text = out["stdout"]
    assert text.startswith("a" * MAX_OUTPUT) and "a" * (MAX_OUTPUT + 1) not in text
    assert f"truncated: only the first {MAX_OUTPUT} bytes" in text


def test_exec_timeout_kills_the_command(session: McpSession, box: str) -> None:
    out = session.ok("exec", box_id=box, command="echo started; sleep 60", timeout=2)
    assert out.get("timed_out") is True and out["stdout"] == "started\n"
    assert "ran out of time" in out["stderr"]


def test_write_file_lands_in_the_box(session: McpSession, box: str) -> None:
    text = "héllo\nwörld\n"
    said = session.ok("write_file", box_id=box, path="/root/new/dir/note.txt", content=text)
    assert "wrote 14 bytes" in said
    out = session.ok("exec", box_id=box, command="od -An -tx1 /root/new/dir/note.txt | tr -d ' \\n'")
    assert out["stdout"] == text.encode().hex()
    blob = bytes(range(256))
    session.ok("write_file", box_id=box, path="/root/blob.bin",
               content=base64.b64encode(blob).decode(), encoding="base64")
    out = session.ok("exec", box_id=box, command="od -An -tx1 /root/blob.bin | tr -d ' \\n'")
    assert out["stdout"] == blob.hex()


def test_read_file_returns_text_or_base64(session: McpSession, box: str) -> None:
    session.ok("exec", box_id=box, command="printf 'line1\\nline2\\n' > /root/r.txt; "
                                           "printf '\\377\\000\\001' > /root/r.bin")
    got = session.ok("read_file", box_id=box, path="/root/r.txt")
    assert (got["content"], got["encoding"], got["truncated"]) == ("line1\nline2\n", "utf-8", False)
    got = session.ok("read_file", box_id=box, path="/root/r.bin")
    assert got["encoding"] == "base64" and base64.b64decode(got["content"]) == b"\xff\x00\x01"
    got = session.ok("read_file", box_id=box, path="/root/r.txt", max_bytes=5)
    assert (got["content"], got["truncated"]) == ("line1", True)


def test_list_files_names_types_and_sizes(session: McpSession, box: str) -> None:
    session.ok("exec", box_id=box, command="mkdir -p /root/ls/sub && head -c 1234 /dev/zero > "
                                           "/root/ls/f && ln -s f /root/ls/link")
    got = session.ok("list_files", box_id=box, path="/root/ls")
    entries = {e["name"]: (e["type"], e["size"]) for e in got["entries"]}
    assert entries["f"] == ("file", 1234)
    assert entries["sub"][0] == "directory" and entries["link"][0] == "symlink"
    assert set(entries) == {"f", "sub", "link"}


# A 3x2 PNG made in the box (zlib only) and shown as the run's value (_repr_png_).
PNG_CODE = r"""
import struct, zlib
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
class Picture:
    def _repr_png_(self):
        rows = b"".join(b"\0" + b"\xff\x00\x00" * 3 for _ in range(2))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
Picture()
"""


def code(session: McpSession, box: str, source: str, **kw: Any) -> tuple[dict[str, Any], list[Any]]:
    """run_code's facts (its first block, JSON) and its other blocks."""
    result = session.call("run_code", box_id=box, code=source, **kw)
    assert not result.is_error, result.content[0].text
    first, *rest = result.content
    return json.loads(first.text), rest


def test_run_code_keeps_one_interpreter(session: McpSession, box: str) -> None:
    assert code(session, box, "import os\ncount = 1")[0]["value"] is None
    assert code(session, box, "count += 1\nprint(os.getpid() > 1)")[0]["stdout"] == "True\n"
    facts, _ = code(session, box, "count * 10")
    assert (facts["value"], facts["error"]) == ("20", None)


def test_run_code_errors_and_timeouts_keep_state(session: McpSession, box: str) -> None:
    facts, _ = code(session, box, "print('before')\nraise ValueError('boom')")
    assert facts["stdout"] == "before\n"
    assert (facts["error"]["name"], facts["error"]["value"]) == ("ValueError", "boom")
    assert "ValueError: boom" in facts["error"]["traceback"]
    facts, _ = code(session, box, "import time\nkept = 'yes'\ntime.sleep(60)", timeout=2)
    assert facts.get("timed_out") is True and facts["error"]["name"] == "TimeoutError"
    assert code(session, box, "kept")[0]["value"] == "'yes'"


def test_run_code_returns_images_as_image_blocks(session: McpSession, box: str) -> None:
    facts, blocks = code(session, box, PNG_CODE)
    assert facts["error"] is None
    (block,) = blocks
    assert block.type == "image" and block.mime_type == "image/png"
    assert png_size(base64.b64decode(block.data)) == (3, 2)


def test_run_code_on_a_computer_runs_a_fresh_python(session: McpSession, computer: str) -> None:
    got, _ = code(session, computer, "import sys\nprint(sum(range(10)))\nsys.exit(3)")
    assert (got["exit_code"], got["stdout"]) == (3, "45\n")


def test_errors_are_tool_errors(session: McpSession, box: str) -> None:
    assert "no box 'nope'" in session.error("exec", box_id="nope", command="true")
    assert "cannot read /no/such" in session.error("read_file", box_id=box, path="/no/such")
    assert "not a directory" in session.error("list_files", box_id=box, path="/etc/hostname")
    assert "not valid base64" in session.error("write_file", box_id=box, path="/root/x",
                                               content="@@", encoding="base64")
    assert "is a box, not a computer" in session.error("computer", computer_id=box,
                                                       action="screenshot")


CLICK_PROBE = r"""
import sys, tkinter
root = tkinter.Tk()
root.geometry("400x300+300+200")
log = open("/tmp/clicks", "a")
def note(line):
    log.write(line + "\n"); log.flush()
root.bind_all("<ButtonPress>", lambda e: note(f"press {e.num} {e.x_root} {e.y_root} state={e.state}"))
root.bind_all("<KeyPress>", lambda e: note(f"key {e.keysym}"))
root.bind_all("<KeyRelease>", lambda e: note(f"keyup {e.keysym}"))
root.bind("<Map>", lambda e: root.after(200, lambda: note("mapped")))
root.mainloop()
"""


def wait_for_line(session: McpSession, box_id: str, path: str, wanted: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        got = session.call("read_file", box_id=box_id, path=path)
        text = "" if got.is_error else got.structured_content["content"]
        if wanted in text:
            return text
        assert time.monotonic() < deadline, f"{wanted!r} never appeared in {path}: {text!r}"
        time.sleep(0.5)


def test_computer_screenshot_is_an_image_block(session: McpSession, computer: str) -> None:
    result = session.call("computer", computer_id=computer, action="screenshot")
    assert not result.is_error
    (block,) = result.content
    assert block.type == "image" and block.mime_type == "image/png"
    assert png_size(base64.b64decode(block.data)) == (1024, 768)


def test_computer_clicks_reach_a_window(session: McpSession, computer: str) -> None:
    session.ok("write_file", box_id=computer, path="/root/probe.py", content=CLICK_PROBE)
    session.ok("exec", box_id=computer,
               command="DISPLAY=:0 nohup python3 /root/probe.py >/dev/null 2>&1 &")
    wait_for_line(session, computer, "/tmp/clicks", "mapped")
    session.ok("computer", computer_id=computer, action="left_click", coordinate=[500, 350])
    wait_for_line(session, computer, "/tmp/clicks", "press 1 500 350")
    session.ok("computer", computer_id=computer, action="right_click", coordinate=[420, 260])
    wait_for_line(session, computer, "/tmp/clicks", "press 3 420 260")
    where = session.call("computer", computer_id=computer, action="cursor_position")
    assert json.loads(where.content[0].text) == {"x": 420, "y": 260}
    assert "needs coordinate" in session.error("computer", computer_id=computer, action="mouse_move")


def test_computer_held_keys(session: McpSession, computer: str) -> None:
    """Anthropic's modifier clicks (text= on a click or scroll) and hold_key: the probe
    window of the test above sees Shift in the click's state, then Control go down and
    up; nothing stays held."""
    session.ok("computer", computer_id=computer, action="left_click", coordinate=[510, 360],
               text="shift")
    log = wait_for_line(session, computer, "/tmp/clicks", "press 1 510 360 ")
    state = int(log.split("press 1 510 360 state=")[1].split()[0])
    assert state & 1, log  # ShiftMask
    session.ok("computer", computer_id=computer, action="hold_key", text="ctrl", duration=0.2)
    log = wait_for_line(session, computer, "/tmp/clicks", "keyup Control_L")
    assert "key Control_L\n" in log
    session.ok("computer", computer_id=computer, action="left_click", coordinate=[530, 380])
    log = wait_for_line(session, computer, "/tmp/clicks", "press 1 530 380 ")
    state = int(log.split("press 1 530 380 state=")[1].split()[0])
    assert not state & 5, log  # Neither Shift nor Control is still down.
    assert "needs text" in session.error("computer", computer_id=computer, action="hold_key")


def test_remove_box_removes_it(session: McpSession) -> None:
    created = session.ok("create_box", memory_mib=256, network="none")
    assert processes_naming(created["id"]), "the box has no VM process"
    assert session.ok("remove_box", box_id=created["id"]) == f"removed box {created['id']}"
    wait_gone([created["id"]])
    assert created["id"] not in [b["id"] for b in session.ok("list_boxes")]


def test_server_exit_removes_its_boxes(session: McpSession, box: str, computer: str) -> None:
    """Last of the shared session: the client closes the server's stdin (and, if the
    server is still there after its grace period, sends SIGTERM)."""
    ids = [b["id"] for b in session.ok("list_boxes")]
    assert set(ids) == {box, computer}
    session.close()
    wait_gone(ids)


def test_stdin_eof_removes_the_servers_boxes(boxlite_home: Path) -> None:
    """A client that just closes the server's stdin (no signal): the server removes its
    boxes and exits 0. JSON-RPC written by hand, so no client policy is involved."""
    proc = subprocess.Popen([sys.executable, "-m", "boxlite.mcp"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        def send(message: dict[str, Any]) -> None:
            proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
            proc.stdin.flush()

        def answer(request_id: int) -> dict[str, Any]:
            while True:
                line = proc.stdout.readline()
                assert line, "the server closed its stdout"
                message = json.loads(line)
                if message.get("id") == request_id:
                    return message

        send({"id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}})
        assert "result" in answer(1)
        send({"method": "notifications/initialized"})
        send({"id": 2, "method": "tools/call", "params": {"name": "create_box", "arguments": {
            "image": "boxlite/base", "memory_mib": 256, "network": "none"}}})
        result = answer(2)["result"]
        assert not result.get("isError"), result
        box_id = result["structuredContent"]["id"]
        assert processes_naming(box_id)
        proc.stdin.close()
        assert proc.wait(60) == 0
        assert f"removed 1 box(es): {box_id}" in proc.stderr.read().decode(errors="replace")
        wait_gone([box_id], timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_removes_the_servers_boxes(desktop_image: str) -> None:
    marker = f"--image={desktop_image}"
    s = McpSession(server_params(marker, "--max-output-bytes", "1001"))
    try:
        created = s.ok("create_box", memory_mib=256, network="none")
        (pid,) = [p for p in server_pids(marker) if p]
        os.kill(pid, signal.SIGTERM)
        wait_gone([created["id"]])
        deadline = time.monotonic() + 30
        while server_pids(marker):
            assert time.monotonic() < deadline, "the server did not exit on SIGTERM"
            time.sleep(0.2)
    finally:
        try:
            s.close()
        except Exception:
            pass  # The server is gone: the client's transport ends with an error.


def test_streamable_http_on_loopback() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "boxlite.mcp", "--transport", "http", "--port", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = None
        assert proc.stderr is not None
        for line in proc.stderr:
            found = re.search(r"at (http://127\.0\.0\.1:\d+/mcp)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the server did not say where it listens"

        async def one_call() -> Any:
            async with Client(url) as client:
                return await client.call_tool("list_boxes", {})

        result = asyncio.run(one_call())
        assert not result.is_error and result.structured_content == {"result": []}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_http_refuses_a_non_loopback_host() -> None:
    p = subprocess.run([sys.executable, "-m", "boxlite.mcp", "--transport", "http", "--host", "0.0.0.0"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "not a loopback address" in p.stderr


def test_missing_mcp_package_is_one_clear_line(tmp_path: Path) -> None:
    fake = tmp_path / "mcp"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('mcp hidden by the test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    p = subprocess.run([sys.executable, "-m", "boxlite.mcp"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "pip install 'boxlite[mcp]'" in p.stderr


def cli_binary() -> str | None:
    build = os.environ.get("BOXLITE_BUILD_DIR")
    if build and os.path.exists(os.path.join(build, "src", "cli", "boxlite")):
        return os.path.join(build, "src", "cli", "boxlite")
    import shutil

    return shutil.which("boxlite")


def test_cli_mcp_execs_the_server(boxlite_home: Path) -> None:
    """`boxlite mcp` runs this Python's server (BOXLITE_PYTHON) with the CLI's home."""
    cli = cli_binary()
    if cli is None:
        pytest.skip("no boxlite CLI (set BOXLITE_BUILD_DIR)")
    env = dict(os.environ, BOXLITE_PYTHON=sys.executable)

    async def tools() -> set[str]:
        params = StdioServerParameters(command=cli, args=["--home", str(boxlite_home), "mcp"],
                                       env=env)
        async with Client(params) as client:
            return {t.name for t in (await client.list_tools()).tools}

    assert asyncio.run(tools()) == TOOLS
    p = subprocess.run([cli, "mcp"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=dict(env, BOXLITE_PYTHON="/nonexistent/python3"), timeout=60)
    assert p.returncode != 0 and "cannot run /nonexistent/python3" in p.stderr

"""boxlite.integrations.langchain: the real ``langchain-core`` tool objects driven against
real boxes, as an agent's tool node calls them (no model).

One toolkit-owned CodeBox of the debian-python test image is shared by the module (it is
booted by the first tool call and stopped by the toolkit's close, which the last test
checks through the box's VM process). What the tools did is observed in the box through
a command of the test's own, or from what the tool returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="needs langchain-core (pip install 'boxlite[langchain]')")
from langchain_core.messages import ToolMessage  # noqa: E402
from langchain_core.tools import BaseTool  # noqa: E402

import boxlite  # noqa: E402
from boxlite.integrations.langchain import BoxliteToolkit  # noqa: E402

from test_openai_agents import vm_running  # noqa: E402

IMAGE = "debian-python"
MEMORY = 1024


@pytest.fixture(scope="module")
def toolkit(test_images: Any, boxlite_home: Path) -> Iterator[BoxliteToolkit]:
    kit = BoxliteToolkit(rootfs_path=test_images.layout(IMAGE), memory=MEMORY)
    try:
        yield kit
    finally:
        kit.close()


def probe(kit: BoxliteToolkit, *argv: str) -> str:
    """Runs a command in the toolkit's box (the test's own view of the guest)."""
    return asyncio.run(kit.box.exec(list(argv))).stdout


def test_tools_have_schemas(toolkit: BoxliteToolkit) -> None:
    """Five BaseTools with their argument schemas (what an LLM is shown)."""
    tools = toolkit.get_tools()
    assert all(isinstance(t, BaseTool) for t in tools)
    schemas = {t.name: t.tool_call_schema.model_json_schema() for t in tools}
    assert set(schemas) == {"boxlite_python", "boxlite_shell", "boxlite_read_file",
                            "boxlite_write_file", "boxlite_list_files"}
    assert schemas["boxlite_python"]["required"] == ["code"]
    assert schemas["boxlite_shell"]["required"] == ["command"]
    assert schemas["boxlite_write_file"]["required"] == ["path", "content"]
    assert "session" not in schemas["boxlite_shell"]["properties"]


def test_python_keeps_state_sync_and_async(toolkit: BoxliteToolkit) -> None:
    """invoke (sync) and ainvoke (async) reach one kept interpreter; errors come back as
    the traceback text, rich outputs as the artifact of a tool call."""
    python = toolkit.tool("boxlite_python")
    first = python.invoke({"code": "import os\nlc_n = 20\nprint('pid', os.getpid())"})
    pid = first.split()[1]
    second = asyncio.run(python.ainvoke({"code": "lc_n += 22\n(lc_n, os.getpid())"}))
    assert second == f"Out: (42, {pid})"
    err = python.invoke({"code": "1 / 0"})
    assert "ZeroDivisionError" in err and "Traceback" in err
    msg = python.invoke({"type": "tool_call", "id": "call-1", "name": "boxlite_python", "args": {
        "code": "class Table:\n    def _repr_html_(self):\n        return '<b>%d</b>' % lc_n\n"
                "display(Table())\nprint('shown')"}})
    assert isinstance(msg, ToolMessage) and msg.content == "shown\n\n[rich outputs: html]"
    assert [r.html for r in msg.artifact.results] == ["<b>42</b>"]


def test_shell_and_files(toolkit: BoxliteToolkit) -> None:
    tools = {t.name: t for t in toolkit.get_tools()}
    out = tools["boxlite_shell"].invoke({"command": "echo out; echo err >&2; exit 3"})
    assert out == "exit code: 3\nout\n\nstderr:\nerr\n"
    wrote = asyncio.run(tools["boxlite_write_file"].ainvoke(
        {"path": "/root/lc/dir/notes.txt", "content": "héllo\nworld\n"}))
    assert wrote == "wrote 13 bytes to /root/lc/dir/notes.txt"
    assert probe(toolkit, "cat", "/root/lc/dir/notes.txt") == "héllo\nworld\n"
    probe(toolkit, "sh", "-c", "head -c 5000 /dev/zero > /root/lc/big && mkdir /root/lc/sub")
    assert tools["boxlite_read_file"].invoke({"path": "/root/lc/dir/notes.txt"}) == "héllo\nworld\n"
    cut = tools["boxlite_read_file"].invoke({"path": "/root/lc/big", "max_bytes": 10})
    assert cut == "\0" * 10 + "\n[/root/lc/big cut at 10 bytes]"
    listing = tools["boxlite_list_files"].invoke({"path": "/root/lc"})
    rows = [line.split("\t") for line in listing.splitlines()]
    assert [(kind, name) for kind, _, name in rows] == [
        ("file", "big"), ("directory", "dir"), ("directory", "sub")]
    assert rows[0][1] == "5000"


def test_failures_come_back_as_text(toolkit: BoxliteToolkit) -> None:
    """What the agent can fix comes back as the tool's text, not an exception."""
    tools = {t.name: t for t in toolkit.get_tools()}
    missing = tools["boxlite_read_file"].invoke({"path": "/root/lc/none"})
    assert missing.startswith("cannot read /root/lc/none:") and "No such file" in missing
    assert tools["boxlite_list_files"].invoke({"path": "/root/lc/big"}).startswith(
        "cannot list /root/lc/big: not a directory")
    assert "timeout must be in" in tools["boxlite_shell"].invoke({"command": "true", "timeout": -1})


def test_user_box_is_left_running(toolkit: BoxliteToolkit, test_images: Any) -> None:
    """Tools bound to a box of the user's act on it; the toolkit does not stop it. The
    python tool on a plain SimpleBox runs a fresh python3 each call."""

    async def scenario() -> None:
        async with boxlite.SimpleBox(rootfs_path=test_images.layout(IMAGE), memory=512) as box:
            kit = BoxliteToolkit(box)
            tools = {t.name: t for t in kit.get_tools()}
            await tools["boxlite_write_file"].ainvoke({"path": "/tmp/mine", "content": "x"})
            assert (await box.exec("cat", "/tmp/mine")).stdout == "x"
            out = await tools["boxlite_python"].ainvoke({"code": "print(6 * 7)"})
            assert out == "exit code: 0\n42\n"
            await kit.aclose()
            assert vm_running(box.id)

    asyncio.run(scenario())


def test_close_stops_the_owned_box(toolkit: BoxliteToolkit) -> None:
    box_id = toolkit.box.id
    assert vm_running(box_id)
    toolkit.close()
    assert not vm_running(box_id)
    with pytest.raises(ValueError, match="not both"):
        BoxliteToolkit(toolkit.box, memory=512)

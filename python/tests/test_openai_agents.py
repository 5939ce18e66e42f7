"""boxlite.integrations.openai_agents: the OpenAI Agents SDK's sandbox interface
(``agents.sandbox``) driven directly against real boxes, as a SandboxAgent's tools and the
SDK's runner drive it (no model, no network).

Boxes boot from the built-in ``boxlite/base`` (busybox: sh, tar, cat). What the session
did is observed in the box (through a command of its own) or on the host (the box's VM
process, its snapshots).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

pytest.importorskip("agents.sandbox", reason="needs openai-agents (pip install 'boxlite[openai-agents]')")
from agents.sandbox import LocalSnapshotSpec, Manifest  # noqa: E402
from agents.sandbox.errors import WorkspaceReadNotFoundError  # noqa: E402

import boxlite  # noqa: E402
from boxlite.integrations.openai_agents import (  # noqa: E402
    BoxliteSandboxClient,
    BoxliteSandboxClientOptions,
    BoxliteSandboxSessionState,
)

pytestmark = pytest.mark.asyncio

IMAGE = "boxlite/base"
MEMORY = 256


def vm_running(box_id: str) -> bool:
    """Whether the box's VM (QEMU, ``-name boxlite-<id>``) is a live process."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                stat = Path(f"/proc/{entry}/stat").read_text(errors="replace")
            except OSError:
                continue
            if f"boxlite-{box_id}".encode() in argv and stat[stat.rfind(")") + 2] != "Z":
                return True
    return False


def options(**kw: object) -> BoxliteSandboxClientOptions:
    return BoxliteSandboxClientOptions(image=IMAGE, memory_mib=MEMORY, network="none", **kw)


async def test_exec_files_and_tar_persistence_across_boxes(tmp_path: Path) -> None:
    client = BoxliteSandboxClient()
    session = await client.create(options=options(env={"FROM_OPTIONS": "yes"}),
                                  manifest=Manifest(root="/workspace"),
                                  snapshot=LocalSnapshotSpec(base_path=tmp_path))
    first_box = session.state.box_id
    try:
        async with session:
            assert vm_running(first_box)
            # Commands run in the workspace, with the box's environment.
            result = await session.exec("pwd; echo $FROM_OPTIONS; echo hi > a.txt; id -u")
            assert result.ok() and result.stdout == b"/workspace\nyes\n0\n"
            failed = await session.exec("echo oops >&2; exit 5")
            assert (failed.exit_code, failed.stderr) == (5, b"oops\n")
            # Files: written by the session, seen by a command in the box; and back.
            await session.write(Path("dir/b.bin"), io.BytesIO(bytes(range(256))))
            seen = await session.exec("od -An -tx1 /workspace/dir/b.bin | tr -d ' \\n'")
            assert seen.stdout.decode() == bytes(range(256)).hex()
            assert (await session.read(Path("a.txt"))).read() == b"hi\n"
            with pytest.raises(WorkspaceReadNotFoundError):
                await session.read(Path("missing.txt"))
            with pytest.raises(Exception, match="escape|outside|workspace"):
                await session.read(Path("../etc/passwd"))
            # Commands as another user (the SDK's `sudo -u`: BoxLite runs as that user).
            assert (await session.exec("id -u", user="nobody")).stdout.strip() == b"65534"
        # Leaving persisted the workspace (a tar kept by the snapshot spec) and stopped
        # the box, which is kept for a resume.
        assert not vm_running(first_box)
        assert await boxlite.Boxlite.default().get(first_box) is not None
        payload = client.serialize_session_state(session.state)
    finally:
        await client.delete(session)
    assert await boxlite.Boxlite.default().get(first_box) is None

    # The box is gone: resume makes a new one and unpacks the workspace into it.
    state = client.deserialize_session_state(payload)
    assert isinstance(state, BoxliteSandboxSessionState)
    resumed = await client.resume(state)
    try:
        async with resumed:
            assert resumed.state.box_id != first_box and vm_running(resumed.state.box_id)
            listing = await resumed.exec("cat a.txt; wc -c < dir/b.bin")
            assert listing.stdout.split() == [b"hi", b"256"]
    finally:
        await client.delete(resumed)


async def test_disk_snapshot_persistence_restores_the_workspace() -> None:
    client = BoxliteSandboxClient()
    session = await client.create(options=options(workspace_persistence="snapshot"))
    try:
        async with session:
            await session.write(Path("state.txt"), io.BytesIO(b"v1"))
            ref = await session.persist_workspace()
            data = ref.read()
            box = await boxlite.Boxlite.default().get(session.state.box_id)
            assert box is not None
            names = [s.name for s in await box.snapshot.list()]
            assert len(names) == 1 and names[0].encode() in data
            await session.write(Path("state.txt"), io.BytesIO(b"v2"))
            await session.exec("touch later.txt")
            await session.hydrate_workspace(io.BytesIO(data))
            assert (await session.exec("cat state.txt")).stdout == b"v1"
            assert not (await session.exec("test -e later.txt")).ok()
    finally:
        await client.delete(session)


async def test_a_sandbox_agent_runs_its_shell_tool_in_a_box(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own Runner, with a scripted model (no LLM) that calls the sandbox's
    exec_command tool once: the command runs in a box made by our client, which the run
    removes at its end."""
    from agents import RunConfig, Runner
    from agents.sandbox import SandboxAgent, SandboxRunConfig
    from agents.testing.model import ModelStep, ScriptedModel, assistant_message, function_call

    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    made: list[str] = []

    class Recording(BoxliteSandboxClient):
        async def create(self, **kw: object):  # type: ignore[no-untyped-def,override]
            session = await super().create(**kw)  # type: ignore[arg-type]
            made.append(session.state.box_id)
            return session

    model = ScriptedModel([
        ModelStep(output=[function_call("exec_command", {"cmd": "echo $IN_BOX; pwd"}, call_id="c1")]),
        ModelStep(output=[assistant_message("done")]),
    ])
    agent = SandboxAgent(name="boxlite-test", instructions="Run the command.", model=model)
    config = RunConfig(tracing_disabled=True, sandbox=SandboxRunConfig(
        client=Recording(), options=options(env={"IN_BOX": "set-by-boxlite-options"})))
    result = await Runner.run(agent, "go", run_config=config)
    assert result.final_output == "done"
    outputs = [item["output"] for item in model.last_call.input
               if isinstance(item, dict) and item.get("type") == "function_call_output"]
    assert len(outputs) == 1 and "set-by-boxlite-options\n/workspace\n" in outputs[0]
    assert "exited with code 0" in outputs[0]
    (box_id,) = made
    assert not vm_running(box_id) and await boxlite.Boxlite.default().get(box_id) is None

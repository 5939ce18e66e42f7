"""boxlite.orchestration: two managed boxes of the debian-python test image (the host's
Python version, no network, no pip) exchanging 0.9's messages through the host.

Box ``b`` serves messages and events; box ``a`` runs a task that sends ``b`` a message,
gets its handler's result, publishes an event, then fails on purpose (so that wait_all
sees two different exit codes). What the handlers did is observed in the boxes' own
files (read with a command of the test's) and in the exit codes; leaving the runtime
must leave no VM behind.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cloudpickle", reason="needs cloudpickle (pip install 'boxlite[orchestration]')")

from boxlite.orchestration import BoxRuntime, default_image  # noqa: E402

from test_openai_agents import vm_running  # noqa: E402

pytestmark = pytest.mark.asyncio

IMAGE = "debian-python"
MEMORY = 512


# Handlers: they run in the boxes (cloudpickled by value from this module).

def b_on_message(sender: str, data: Any) -> Any:
    import boxlite_runtime

    if data == "quit":
        boxlite_runtime.stop()
        return "bye"
    if data == "boom":
        raise KeyError("no such thing")
    return {"sum": sum(data["numbers"]), "sender": sender, "me": boxlite_runtime.BOX_NAME}


def b_on_ping(data: Any) -> None:
    import json as j

    with open("/root/event.json", "w") as f:
        j.dump(data, f)


def a_task() -> None:
    import json as j

    import boxlite_runtime

    print("this print goes to stderr, not into the protocol")
    answer = boxlite_runtime.send_message("b", {"numbers": [1, 2, 3, 36]})
    errors = []
    for target, data in (("b", "boom"), ("nobody", 1)):
        try:
            boxlite_runtime.send_message(target, data)
        except RuntimeError as exc:
            errors.append(str(exc))
    with open("/root/result.json", "w") as f:
        j.dump({"answer": answer, "errors": errors}, f)
    boxlite_runtime.publish_event("ping", {"n": 7, "from": boxlite_runtime.BOX_NAME})
    bye = boxlite_runtime.send_message("b", "quit")
    with open("/root/bye.txt", "w") as f:
        f.write(bye)
    raise SystemExit(3)


async def read_json(box: Any, path: str, deadline: float = 120) -> Any:
    """A JSON file in the box, once it exists (the handlers run concurrently with us)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        r = await box.box.exec("cat", path)
        if r.exit_code == 0 and r.stdout:
            return json.loads(r.stdout)
        assert loop.time() < end, f"{path} never appeared in {box.name}; its stderr: {box.stderr}"
        await asyncio.sleep(0.2)


async def test_messages_events_task_and_shutdown(test_images: Any, boxlite_home: Path) -> None:
    layout = test_images.layout(IMAGE)
    ids = []
    async with BoxRuntime() as rt:
        b = await rt.create_box("b", rootfs_path=layout, memory=MEMORY)
        a = await rt.create_box("a", rootfs_path=layout, memory=MEMORY)
        ids = [a.box.id, b.box.id]
        assert rt.list_boxes() == ["b", "a"]
        assert b.box.name == "managed-b"
        with pytest.raises(ValueError, match="already exists"):
            await rt.create_box("a", rootfs_path=layout)

        b.on_message(b_on_message)
        b.on_event("ping")(b_on_ping)
        a.task(a_task)
        await b.run()
        await a.run(env={"EXTRA": "1"})

        codes = await rt.wait_all(timeout=300)
        assert codes == [0, 3], (a.stderr, b.stderr)
        result = await read_json(a, "/root/result.json")
        assert result["answer"] == {"sum": 42, "sender": "a", "me": "b"}
        assert result["errors"][0] == "KeyError: 'no such thing'"
        assert result["errors"][1].startswith("no running box named 'nobody'")
        assert await read_json(b, "/root/event.json") == {"n": 7, "from": "a"}
        assert (await a.box.exec("cat", "/root/bye.txt")).stdout == "bye"
        assert "this print goes to stderr" in a.stderr
        # Nothing came from the network: cloudpickle is the host's copy.
        shipped = await a.box.exec("python3", "-c", "import cloudpickle; print(cloudpickle.__file__)",
                                   env={"PYTHONPATH": "/opt/boxlite-orchestration"})
        assert shipped.stdout.startswith("/opt/boxlite-orchestration/cloudpickle/")
        assert all(vm_running(i) for i in ids)
    assert rt.list_boxes() == []
    assert not any(vm_running(i) for i in ids)


async def test_default_image_is_the_hosts_python() -> None:
    assert default_image() == f"python:{sys.version_info[0]}.{sys.version_info[1]}-slim"

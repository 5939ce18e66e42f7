"""The REST runtime (Boxlite.rest, docs/remote.md) against a real ``boxlite serve``.

One server (127.0.0.1, port 0, an API key) and one running box are shared by the
module; every test drives them through the SDK's public calls and checks what the guest
or the server's host shows. The client is the C++ RemoteRuntime behind the binding.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import boxlite
from harness.serve import Serve  # tests/integration/harness (on the path: conftest.py)

REPO = Path(__file__).resolve().parents[2]
IMAGE = "boxlite/base"
MEMORY = 512
KEY = "test-key-" + secrets.token_hex(8)


def find_cli() -> str:
    env = os.environ.get("BOXLITE_CLI")
    if env:
        return env
    built = Path(os.environ.get("BOXLITE_BUILD_DIR", REPO / "build")) / "src" / "cli" / "boxlite"
    if built.exists():
        return str(built)
    found = shutil.which("boxlite")
    if not found:
        pytest.skip("no boxlite CLI to run `boxlite serve`")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    srv = Serve(find_cli(), tmp_path_factory.mktemp("serve-home"), KEY)
    try:
        yield srv
    finally:
        srv.stop()


def rest(url: str, key: str | None = KEY) -> boxlite.Boxlite:
    cred = boxlite.ApiKeyCredential(key) if key else None
    return boxlite.Boxlite.rest(boxlite.BoxliteRestOptions(url, credential=cred))


@pytest.fixture(scope="module")
def remote_box(server: Serve) -> Iterator[str]:
    """A running box on the server (its id); removed at the end."""

    async def make() -> str:
        rt = rest(server.url)
        box = await rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, auto_remove=False))
        await box.start()
        return box.id

    box_id = asyncio.run(make())
    try:
        yield box_id
    finally:
        asyncio.run(rest(server.url).remove(box_id, force=True))


async def open_box(server: Serve, box_id: str) -> boxlite.Box:
    box = await rest(server.url).get(box_id)
    assert box is not None
    return box


def test_create_is_on_the_server(server: Serve, remote_box: str) -> None:
    async def go() -> None:
        rt = rest(server.url)
        info = await rt.get_info(remote_box)
        assert info is not None and info.state == "running"
        assert remote_box in [i.id for i in await rt.list_info()]
        # The box lives in the server's home, not in this process's.
        assert (server.home / "boxes" / remote_box).is_dir()

    asyncio.run(go())


def test_exec_streams_stdin_and_resizes_a_tty(server: Serve, remote_box: str) -> None:
    async def go() -> None:
        box = await open_box(server, remote_box)
        ex = await box.exec("sh", ["-c", "cat; echo done >&2; exit 3"])
        stdin = ex.stdin()
        await stdin.send_input(b"hello over the wire\n")
        await stdin.close()
        out = "".join([c async for c in ex.stdout()])
        err = "".join([c async for c in ex.stderr()])
        result = await ex.wait()
        assert out == "hello over the wire\n"
        assert err == "done\n"
        assert result.exit_code == 3

        tty = await box.exec("sh", ["-c", "read line; stty size"], tty=True)
        await tty.resize_tty(33, 101)
        tin = tty.stdin()
        await tin.send_input(b"go\n")
        text = "".join([c async for c in tty.stdout()])
        assert (await tty.wait()).exit_code == 0
        assert "33 101" in text

    asyncio.run(go())


def test_copy_in_and_out(server: Serve, remote_box: str, tmp_path: Path) -> None:
    payload = secrets.token_hex(64)
    src = tmp_path / "in.txt"
    src.write_text(payload)

    async def go() -> None:
        box = await open_box(server, remote_box)
        await box.copy_in(str(src), "/root/in.txt")
        seen = await box.run("cat", "/root/in.txt")
        assert seen.stdout == payload
        made = await box.run("sh", "-c", "mkdir -p /root/tree/sub && echo leaf > /root/tree/sub/f.txt")
        assert made.exit_code == 0
        out = tmp_path / "out"
        out.mkdir()
        await box.copy_out("/root/tree", str(out))
        assert (out / "tree" / "sub" / "f.txt").read_text() == "leaf\n"
        with pytest.raises(boxlite.NotSupportedError, match="unsupported"):
            await box.copy_in(str(src), "/root/in.txt", boxlite.CopyOptions(overwrite=False))

    asyncio.run(go())


def test_metrics_come_from_the_server(server: Serve, remote_box: str) -> None:
    async def go() -> None:
        box = await open_box(server, remote_box)
        assert (await box.run("true")).exit_code == 0
        m = await box.metrics()
        assert m.commands_executed_total >= 1
        assert m.memory_bytes and m.memory_bytes > 0  # The VM's RSS on the server's host.
        rm = await rest(server.url).metrics()
        assert rm.num_running_boxes >= 1

    asyncio.run(go())


def test_remove_deletes_on_the_server(server: Serve) -> None:
    async def go() -> None:
        rt = rest(server.url)
        box = await rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, auto_remove=False), name="to-remove")
        assert (server.home / "boxes" / box.id).is_dir()
        await rt.remove("to-remove")
        assert await rt.get(box.id) is None
        assert not (server.home / "boxes" / box.id).exists()
        with pytest.raises(boxlite.BoxNotFoundError):
            await rt.remove(box.id)

    asyncio.run(go())


def test_wrong_or_missing_key_is_a_clear_auth_error(server: Serve) -> None:
    for key in ("wrong-" + KEY, None):
        with pytest.raises(boxlite.ConfigError, match="auth: ") as info:
            asyncio.run(rest(server.url, key).list_info())
        assert "\n" not in str(info.value)


def test_unreachable_server_is_one_line(server: Serve) -> None:
    with pytest.raises(boxlite.BoxliteError, match="cannot reach the BoxLite server") as info:
        asyncio.run(rest("http://127.0.0.1:9").list_info())
    assert "\n" not in str(info.value)


def test_unsupported_options_give_09_errors(server: Serve, remote_box: str, tmp_path: Path) -> None:
    async def go() -> None:
        rt = rest(server.url)
        with pytest.raises(boxlite.NotSupportedError, match="unsupported: published ports"):
            await rt.create(boxlite.BoxOptions(image=IMAGE, ports=[(18080, 80)]))
        with pytest.raises(boxlite.NotSupportedError, match="unsupported: volumes"):
            await rt.create(boxlite.BoxOptions(image=IMAGE, volumes=[(str(tmp_path), "/data")]))
        with pytest.raises(boxlite.NotSupportedError, match="unsupported: images"):
            await rt.images.list()
        box = await rt.get(remote_box)
        with pytest.raises(boxlite.NotSupportedError, match="unsupported: copy_out with follow_symlinks"):
            await box.copy_out("/root", str(tmp_path), boxlite.CopyOptions(follow_symlinks=True))
        # Nothing was created by the refused calls.
        assert [i.id for i in await rt.list_info()] == [remote_box]

    asyncio.run(go())


def test_bad_rest_options() -> None:
    with pytest.raises(boxlite.ConfigError, match="BOXLITE_REST_URL not set"):
        env = dict(os.environ)
        try:
            os.environ.pop("BOXLITE_REST_URL", None)
            boxlite.BoxliteRestOptions.from_env()
        finally:
            os.environ.clear()
            os.environ.update(env)
    with pytest.raises(boxlite.ConfigError, match="bad server URL"):
        boxlite.Boxlite.rest(boxlite.BoxliteRestOptions("ftp://x"))
    cred = boxlite.ApiKeyCredential("secret-value")
    assert "secret-value" not in repr(cred) and repr(cred) == "ApiKeyCredential(***)"
    assert isinstance(cred, boxlite.Credential)
    token = cred.get_token()
    assert token.token == "secret-value" and token.expires_at is None
    assert "secret-value" not in repr(token)


CHILD = r"""
import asyncio, sys
import boxlite

async def main():
    url, key, box_id = sys.argv[1:4]
    rt = boxlite.Boxlite.rest(boxlite.BoxliteRestOptions(url, credential=boxlite.ApiKeyCredential(key)))
    box = await rt.get(box_id)
    ex = await box.exec("sh", ["-c", "echo before; while [ ! -e /root/go ]; do sleep 0.1; done; echo after; exit 7"])
    async for chunk in ex.stdout():
        if "before" in chunk:
            break
    print(ex.id(), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_killed_client_leaves_the_exec_to_a_new_one(server: Serve, remote_box: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, server.url, KEY, remote_box],
                             stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert child.stdout is not None
        execution_id = child.stdout.readline().decode().strip()
        assert execution_id, "the client did not start its exec"
    finally:
        child.kill()  # SIGKILL: the client vanishes mid-exec.
        child.wait()

    async def go() -> None:
        box = await open_box(server, remote_box)
        ex = None
        for _ in range(100):  # The server may not have seen the old connection go yet.
            try:
                ex = await box.attach(execution_id)
                break
            except (boxlite.BoxStateError, boxlite.ExecError):  # 409: still attached.
                await asyncio.sleep(0.1)
        assert ex is not None
        assert (await box.run("touch", "/root/go")).exit_code == 0
        out = "".join([c async for c in ex.stdout()])
        assert "before" in out  # From the server's backlog.
        assert "after" in out
        assert (await ex.wait()).exit_code == 7

    asyncio.run(go())


def test_twenty_clients_five_execs_each(server: Serve, remote_box: str) -> None:
    async def client(i: int) -> list[str]:
        box = await open_box(server, remote_box)
        outs = []
        for j in range(5):
            r = await box.run("echo", f"c{i}-{j}")
            assert r.exit_code == 0, r
            outs.append(r.stdout)
        return outs

    async def go() -> None:
        results = await asyncio.gather(*(client(i) for i in range(20)))
        for i, outs in enumerate(results):
            assert outs == [f"c{i}-{j}\n" for j in range(5)]

    asyncio.run(go())


def test_simplebox_and_the_sync_api_on_a_remote_runtime(server: Serve) -> None:
    async def go() -> str:
        rt = rest(server.url)
        async with boxlite.SimpleBox(IMAGE, memory=MEMORY, runtime=rt) as sb:
            r = await sb.exec("cat", "/proc/sys/kernel/hostname")
            assert r.exit_code == 0 and r.stdout.strip()
            box_id = sb.id
            info = await rt.get_info(box_id)
            assert info is not None and info.state == "running"
        # An ephemeral SimpleBox (auto_remove) is removed by the server when it stops.
        assert await rt.get(box_id) is None
        return box_id

    box_id = asyncio.run(go())
    with boxlite.sync.Boxlite.rest(boxlite.BoxliteRestOptions(server.url, credential=boxlite.ApiKeyCredential(KEY))) as rt:
        assert box_id not in [i.id for i in rt.list_info()]

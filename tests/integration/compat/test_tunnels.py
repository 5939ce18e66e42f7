"""BoxLite 0.9's tunnels on a real box: ``box.network.tunnel(port)`` / ``SimpleBox.tunnel(port)``
-> ``BoxTunnel.connect()`` -> ``BoxConnection.read/write/shutdown_write/close``.

The servers are busybox ``nc`` in the box; what they received is checked by a checksum
computed in the guest, what they sent by one computed there too. One box serves every
test, created with ``network="none"``: a tunnel rides the agent channel, not the network.
Each test runs its own event loop (``asyncio.run``).
"""
import asyncio
import hashlib
import os

import pytest

from conftest import add_session_root

import boxlite  # noqa: E402  (the SDK under test; main's install or PYTHONPATH)

BASE = "boxlite/base"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    home = tmp_path_factory.mktemp("compat-tunnels-home")
    add_session_root(home)
    runtime = boxlite.Boxlite(boxlite.Options(home_dir=str(home)))
    b = boxlite.SimpleBox(BASE, memory_mib=512, network="none", runtime=runtime)
    run(b.start())
    try:
        yield b
    finally:
        run(b.stop())


def serve(box, port, script):
    """Starts `nc -l -p port -e sh -c script` in the box, in the background."""
    quoted = script.replace("'", "'\\''")
    r = run(box.exec("sh", "-c", f"(nc -l -p {port} -e sh -c '{quoted}' >/dev/null 2>&1 &)"))
    assert r.exit_code == 0, r.stderr


async def connect(box, port, how="network"):
    """The tunnel's connection, once the server in the box listens (it starts in the
    background: a refusal before that is retried, for a bounded while)."""
    for _ in range(100):
        try:
            tunnel = await (box.network.tunnel(port) if how == "network" else box.tunnel(port))
        except boxlite.BoxliteError as exc:
            if "nothing listens" not in str(exc):
                raise
            await asyncio.sleep(0.1)
            continue
        assert isinstance(tunnel, boxlite.BoxTunnel)
        return await tunnel.connect()
    raise AssertionError(f"nothing came to listen on port {port} in the box")


async def read_all(conn, size=65536):
    chunks = []
    while True:
        chunk = await conn.read(size)
        assert isinstance(chunk, bytes) and len(chunk) <= size
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_bytes_both_ways_across_a_half_close_with_checksums(box):
    """3 MiB up, the box's checksum of them and 2 MiB of its own down: the server reads to
    the end of our half (shutdown_write), then answers on the same connection."""
    r = run(box.exec("sh", "-c", "head -c 2097152 /dev/urandom > /tmp/down && sha256sum /tmp/down"))
    down_sum = r.stdout.split()[0]
    serve(box, 9001, "cat > /tmp/up; sha256sum /tmp/up | cut -c1-64; cat /tmp/down")
    up = os.urandom(3 << 20)

    async def scenario():
        conn = await connect(box, 9001)
        assert isinstance(conn, boxlite.BoxConnection)
        assert await conn.write(up) == len(up)
        await conn.shutdown_write()
        with pytest.raises(boxlite.BoxliteError, match="shutdown_write"):
            await conn.write(b"late")
        back = await read_all(conn)
        await conn.close()
        return back

    back = run(scenario())
    assert back[:65] == hashlib.sha256(up).hexdigest().encode() + b"\n"
    assert len(back) == 65 + (2 << 20)
    assert hashlib.sha256(back[65:]).hexdigest() == down_sum


def test_simplebox_tunnel_and_the_box_closing_its_side(box):
    """SimpleBox.tunnel(port): the server answers and closes; we read it, then b"" for the
    end, and close (twice is fine)."""
    serve(box, 9002, "echo tunnel-$((6*7))")

    async def scenario():
        conn = await connect(box, 9002, how="simplebox")
        got = await read_all(conn, size=4)
        await conn.close()
        await conn.close()
        return got

    assert run(scenario()) == b"tunnel-42\n"


def test_close_reaches_the_server_in_the_box(box):
    """Our close() ends the connection in the box: the server's read ends, and what it
    read before is what we wrote."""
    serve(box, 9003, "cat > /tmp/got-9003; echo done > /tmp/done-9003")

    async def scenario():
        conn = await connect(box, 9003)
        await conn.write(b"partial")
        await conn.close()
        with pytest.raises(boxlite.BoxliteError, match="closed"):
            await conn.read(10)

    run(scenario())
    r = run(box.exec("sh", "-c", "for i in $(seq 100); do [ -e /tmp/done-9003 ] && break; sleep 0.1; done; "
                     "cat /tmp/got-9003"))
    assert r.stdout == "partial"


def test_a_port_with_nothing_listening_is_a_clear_error(box):
    async def scenario():
        with pytest.raises(boxlite.BoxliteError, match="nothing listens on TCP port 9999 in the box"):
            await box.network.tunnel(9999)
        for bad in (0, 65536, -1):
            with pytest.raises(ValueError, match="1 to 65535"):
                await box.tunnel(bad)

    run(scenario())


def test_connect_is_one_shot(box):
    serve(box, 9004, "cat")

    async def scenario():
        for _ in range(100):
            try:
                tunnel = await box.tunnel(9004)
                break
            except boxlite.BoxliteError:
                await asyncio.sleep(0.1)
        conn = await tunnel.connect()
        with pytest.raises(boxlite.BoxStateError, match="already been consumed"):
            await tunnel.connect()
        with pytest.raises(boxlite.NotSupportedError):
            tunnel.endpoint()
        await conn.write(b"echo me")
        assert await conn.read(100) == b"echo me"
        await conn.close()

    run(scenario())


def test_sync_spellings(tmp_path):
    """0.9's sync API: SyncSimpleBox.network.tunnel(port) -> SyncBoxTunnel.connect() ->
    SyncBoxConnection, and SyncSimpleBox.tunnel(port); on a box of its own."""
    from boxlite.sync_api import SyncBoxlite, SyncBoxTunnel, SyncNetworkHandle, SyncSimpleBox

    add_session_root(tmp_path / "home")
    rt = SyncBoxlite(boxlite.Options(home_dir=str(tmp_path / "home")))
    rt.start()
    try:
        with SyncSimpleBox(BASE, memory_mib=256, network="none", runtime=rt) as box:
            assert isinstance(box.network, SyncNetworkHandle)
            r = box.exec("sh", "-c", "(nc -l -p 9010 -e sh -c 'cat; echo end' >/dev/null 2>&1 &)")
            assert r.exit_code == 0, r.stderr
            for _ in range(100):
                try:
                    tunnel = box.network.tunnel(9010)
                    break
                except boxlite.BoxliteError:
                    import time
                    time.sleep(0.1)
            assert isinstance(tunnel, SyncBoxTunnel)
            with tunnel.connect() as conn:
                assert conn.write("hé") == len("hé".encode())
                conn.shutdown_write()
                got = b""
                while chunk := conn.read(3):
                    got += chunk
            assert got == "hé".encode() + b"end\n"
            with pytest.raises(boxlite.BoxliteError, match="nothing listens"):
                box.tunnel(9011)
    finally:
        rt.stop()

# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""Memory snapshots and forks of real boxes through the Python SDK (docs/snapshots.md):
a fork resumes its source's memory (a process counting in the guest keeps counting, it
does not restart), forks are independent (files, /dev/urandom, box ids, hostnames), their
clocks follow the host's, a fork of a fork (whose RAM is private, so its memory travels
in the migration stream) works too, a persistent box forks through its monitor socket, a
box with mounts is refused with one clear line, and nothing is left behind (the leak
monitor, and the home's tmp/).

Every fork goes through the restore primitive (BoxImpl::LaunchLocked with a MemoryImage),
so these tests cover memory restores as well.
"""
import asyncio
import os
import time
from pathlib import Path

import pytest

import boxlite

from conftest import add_session_root

BASE = "boxlite/base"
MEMORY = 256
# The box's main command counts in /tmp/count every 0.1 s. A main command outlives the
# host session that started it, so it survives into the forks.
COUNTER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"]


def run(coro):
    return asyncio.run(coro)


async def sh(box, script):
    """Runs `sh -c script` in the box: (exit code, stdout)."""
    execution = await box.stream("sh", "-c", script, open_stdin=False)
    out = b""
    async for chunk in execution.stdout():
        out += chunk
    result = await execution.wait()
    return result.exit_code, out.decode()


async def count(box):
    code, out = await sh(box, "cat /tmp/count")
    assert code == 0, out
    return int(out.strip())


async def rising_count(box, above):
    """The counter once it is past `above` (it keeps counting), within a minute."""
    deadline = time.monotonic() + 60
    while True:
        value = await count(box)
        if value > above or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    """A runtime of this module's own home (rt.home_dir)."""
    home = tmp_path_factory.mktemp("memsnap-home")
    add_session_root(home)
    return boxlite.Boxlite(boxlite.Options(home_dir=str(home)))


@pytest.fixture(scope="module")
def source(rt):
    """One running ephemeral box with the counter as its main command."""
    box = run(rt.create(boxlite.BoxOptions(image=BASE, memory_mib=MEMORY, cmd=COUNTER),
                        name="ms-source"))
    run(box.start())
    run(rising_count(box, 3))
    yield box
    run(box.stop())


def test_forks_resume_the_source_and_are_independent(rt, source):
    async def body():
        before = await count(source)
        forks = await source.fork(n=2, names=["ms-fork-a", "ms-fork-b"])
        try:
            a, b = forks
            # The counter went on from where it was: a restart would show a small value.
            for fork in forks:
                resumed = await count(fork)
                assert resumed >= before, (resumed, before)
                assert await rising_count(fork, resumed) > resumed
            # Identity: new ids and the names asked for, in BoxInfo and in the guest.
            infos = [await box.info() for box in (source, a, b)]
            assert len({i.id for i in infos}) == 3
            assert [i.name for i in infos[1:]] == ["ms-fork-a", "ms-fork-b"]
            assert (await sh(a, "hostname"))[1].strip() == "ms-fork-a"
            assert (await sh(b, "hostname"))[1].strip() == "ms-fork-b"
            # Independent files.
            assert (await sh(a, "echo only-a > /root/mark && sync"))[0] == 0
            assert (await sh(b, "cat /root/mark"))[0] != 0
            assert (await sh(source, "cat /root/mark"))[0] != 0
            # Different random bytes (the guest's pool was reseeded in each fork).
            randoms = [(await sh(box, "head -c 32 /dev/urandom | od -An -tx1"))[1]
                       for box in forks]
            assert randoms[0] != randoms[1]
            # Clocks follow the host's (the guest's was stepped on resume).
            for fork in forks:
                guest = int((await sh(fork, "date +%s"))[1].strip())
                assert abs(guest - time.time()) < 5, guest
        finally:
            for fork in forks:
                await fork.stop()
    run(body())
    # Ephemeral forks leave nothing in the home: no directory of theirs, no temp files.
    assert not [e for e in os.listdir(Path(rt.home_dir) / "tmp") if e.startswith("fork-")]


def test_a_fork_of_a_fork_carries_its_memory_in_the_stream(rt, source):
    async def body():
        (child,) = await source.fork()
        try:
            start = await count(child)
            (grandchild,) = await child.fork(names=["ms-grandchild"])
            try:
                resumed = await count(grandchild)
                assert resumed >= start
                assert await rising_count(grandchild, resumed) > resumed
                assert (await sh(grandchild, "hostname"))[1].strip() == "ms-grandchild"
            finally:
                await grandchild.stop()
        finally:
            await child.stop()
    run(body())


def test_a_persistent_box_forks_through_its_monitor_socket(rt):
    home = Path(rt.home_dir)

    async def body():
        box = await rt.create(boxlite.BoxOptions(image=BASE, memory_mib=MEMORY, cmd=COUNTER,
                                                 auto_remove=False), name="ms-persistent")
        await box.start()
        try:
            before = await rising_count(box, 3)
            assert (home / "boxes" / box.id / "qmp.sock").exists()
            (fork,) = await box.fork(names=["ms-persistent-fork"])
            try:
                assert await count(fork) >= before
                assert (await sh(fork, "hostname"))[1].strip() == "ms-persistent-fork"
                # The source runs on after its memory was saved.
                assert await rising_count(box, before) > before
            finally:
                await rt.remove(fork.id, force=True)
        finally:
            await rt.remove(box.id, force=True)
        assert not (home / "boxes" / box.id).exists()
    run(body())


def test_a_box_with_mounts_is_refused_with_one_clear_line(rt, tmp_path, source):
    shared = tmp_path / "shared"
    shared.mkdir()

    async def body():
        async with boxlite.SimpleBox(BASE, memory=MEMORY, volumes=[(str(shared), "/data", "ro")],
                                     runtime=rt) as box:
            with pytest.raises(boxlite.BoxliteError) as caught:
                await box.fork()
            message = str(caught.value)
            assert "has mounts" in message and "\n" not in message, message
            # Nothing was made: the runtime lists only this box and the module's source.
            names = sorted(i.name for i in await rt.list_info())
            assert names == sorted([box.name, source.name]), names
    run(body())

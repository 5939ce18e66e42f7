"""Disk snapshots and clones with BoxLite 0.9's calls (``box.snapshot.create(name=)``,
``list``, ``get``, ``remove``, ``restore``, ``box.clone_box(name=)``).

What a snapshot holds is observed from the guest (files back after a restore, gone when
written later) and from the host (the snapshot's directory and disk file under the box's
directory, gone with the box); nothing is read back from the object that set it. One
persistent box is shared by the tests that only need a running box; the ephemeral box
(0.9's default options) and the clone are booted where they are what is tested.
"""
import asyncio
import os
import re
import time

import pytest

import boxlite
from conftest import add_session_root

IMAGE = "boxlite/base"
MEMORY = 256
ID_RE = re.compile(r"^[0-9A-Za-z]{12}$")


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("snapshots-home")
    add_session_root(path)
    return path


@pytest.fixture(scope="module")
def rt(home):
    return boxlite.Boxlite(boxlite.Options(home_dir=str(home)))


@pytest.fixture(scope="module")
def box(rt):
    """A running persistent box (auto_remove=False: it can be stopped and restored)."""
    b = run(rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, network="none",
                                         auto_remove=False)))
    run(b.start())
    yield b
    try:
        run(rt.remove(b.id, force=True))
    except boxlite.BoxliteError:
        pass  # The last test removed it.


async def sh(b, script):
    """stdout of `sh -c script` in box `b` (exit code 0 asserted)."""
    execution = await b.exec("sh", ["-c", script])
    out = "".join([chunk async for chunk in execution.stdout()])
    result = await execution.wait()
    assert result.exit_code == 0, (script, result)
    return out


def snapshot_dir(home, b, name):
    return home / "boxes" / b.id / "snapshots" / name


def test_names_are_checked_as_in_09(box, home):
    """Empty, longer than 255 bytes, a leading '.', '/', '\\' or NUL: refused with
    invalid_argument (ConfigError) and nothing made; 255 bytes is fine."""
    async def main():
        for bad in ["", "x" * 256, ".hidden", "a/b", "a\\b", "a\0b", "../escape"]:
            with pytest.raises(boxlite.ConfigError) as err:
                await box.snapshot.create(name=bad)
            assert err.value.code == "invalid_argument", bad
            assert err.value.subject == "snapshot"
        assert await box.snapshot.list() == []
        long_name = "n" * 255
        info = await box.snapshot.create(name=long_name)
        assert info.name == long_name
        assert (snapshot_dir(home, box, long_name) / "disk.qcow2").is_file()
        await box.snapshot.remove(long_name)
        assert not (home / "boxes" / box.id / "snapshots").exists() or \
            os.listdir(home / "boxes" / box.id / "snapshots") == []

    run(main())


def test_list_get_remove_and_duplicates(box, home):
    """SnapshotInfo has 0.9's fields (sizes are the host file's); list is oldest first; a
    duplicate name is already_exists and keeps the first; remove deletes the files."""
    async def main():
        before = int(time.time())
        first = await box.snapshot.create(name="first")
        second = await box.snapshot.create(name="second")
        assert ID_RE.match(first.id) and first.id != second.id
        assert first.box_id == box.id and first.name == "first"
        assert isinstance(first.created_at, int) and before - 5 <= first.created_at <= time.time() + 5
        disk = snapshot_dir(home, box, "first") / "disk.qcow2"
        assert first.container_disk_bytes == os.stat(disk).st_blocks * 512 > 0
        assert first.size_bytes >= first.container_disk_bytes
        assert first.memory is False and first.memory_bytes == 0
        assert [s.name for s in await box.snapshot.list()] == ["first", "second"]

        with pytest.raises(boxlite.BoxliteError) as dup:
            await box.snapshot.create(name="first")
        assert dup.value.code == "already_exists" and dup.value.subject == "snapshot"
        assert (await box.snapshot.get("first")).id == first.id  # The first one stayed.

        await box.snapshot.remove("first")
        assert not snapshot_dir(home, box, "first").exists()
        assert await box.snapshot.get("first") is None
        with pytest.raises(boxlite.BoxliteError) as missing:
            await box.snapshot.remove("first")
        assert missing.value.code == "not_found"
        await box.snapshot.remove("second")
        assert await box.snapshot.list() == []

    run(main())


def test_a_clone_has_the_files_and_is_independent(rt, box, home):
    """clone_box copies the running source's disk (quiesced): the new box is stopped, has
    its own id and name, boots with the source's files, and writes in either are not seen
    in the other; its base is shared with the source (a hard link)."""
    async def main():
        await sh(box, "echo original > /root/shared.txt")
        clone = await box.clone_box(name="snap-clone")
        try:
            assert clone.id != box.id and clone.name == "snap-clone"
            assert (await clone.info()).state.status == "stopped"
            base = os.stat(home / "boxes" / clone.id / "base.ext4")
            assert base.st_ino == os.stat(home / "boxes" / box.id / "base.ext4").st_ino
            await clone.start()
            assert await sh(clone, "cat /root/shared.txt") == "original\n"
            await sh(clone, "echo clone > /root/shared.txt; echo c > /root/only-clone; sync")
            await sh(box, "echo source > /root/only-source")
            assert await sh(box, "cat /root/shared.txt; ls /root/only-clone 2>/dev/null || echo no") == "original\nno\n"
            assert await sh(clone, "ls /root/only-source 2>/dev/null || echo no") == "no\n"
        finally:
            await rt.remove(clone.id, force=True)
        assert not (home / "boxes" / clone.id).exists()

    run(main())


def test_an_ephemeral_box_takes_lists_and_removes_snapshots(rt, home):
    """0.9 programs snapshot boxes made with default options (auto_remove=True): create,
    list, get and remove work, a clone boots with the files, and restore is refused
    clearly (such a box cannot be stopped without being removed). Nothing is left in the
    home afterwards."""
    async def main():
        async with boxlite.SimpleBox(IMAGE, memory=MEMORY, runtime=rt) as sbox:
            await sbox.exec("sh", "-c", "echo eph > /root/e.txt")
            info = await sbox.snapshot.create(name="e1")
            assert info.box_id == sbox.id and info.container_disk_bytes > 0
            assert [s.name for s in await sbox.snapshot.list()] == ["e1"]
            assert (await sbox.snapshot.get("e1")).id == info.id
            with pytest.raises(boxlite.BoxliteError) as dup:
                await sbox.snapshot.create(name="e1")
            assert dup.value.code == "already_exists"
            with pytest.raises(boxlite.BoxStateError) as refused:
                await sbox.snapshot.restore("e1")
            assert "auto_remove" in str(refused.value)
            clone = await sbox.clone_box()
            async with clone:
                result = await clone.exec("cat", ["/root/e.txt"])
                out = "".join([chunk async for chunk in result.stdout()])
                assert (await result.wait()).exit_code == 0 and out == "eph\n"
            await sbox.snapshot.remove("e1")
            assert await sbox.snapshot.list() == []
        # No directory was ever made for these boxes.
        assert not (home / "boxes" / info.box_id).exists()

    run(main())


def test_the_sync_api_from_another_runtime(box, home):
    """boxlite.sync (0.9's SyncBox) on the same home, a second client of the running box:
    it snapshots it (freezing it through its own connection), lists, gets, removes, and
    clones it (a stopped box on the host, removed again)."""
    from boxlite import sync

    srt = sync.Boxlite(boxlite.Options(home_dir=str(home)))
    sbox = srt.get(box.id)
    info = sbox.snapshot.create(name="from-sync")
    assert info.box_id == box.id and (snapshot_dir(home, box, "from-sync") / "disk.qcow2").is_file()
    assert [s.name for s in sbox.snapshot.list()] == ["from-sync"]
    assert sbox.snapshot.get("from-sync").id == info.id
    sbox.snapshot.remove("from-sync")
    assert sbox.snapshot.get("from-sync") is None and not snapshot_dir(home, box, "from-sync").exists()
    clone = sbox.clone_box(name="sync-clone")
    assert (home / "boxes" / clone.id / "disk.qcow2").is_file()
    assert clone.info().state.status == "stopped"
    srt.remove(clone.id)
    assert not (home / "boxes" / clone.id).exists()
    # The box was thawed: it still writes.
    assert run(sh(box, "echo ok > /root/after-sync; cat /root/after-sync")) == "ok\n"


def test_restore_brings_back_the_disk_of_a_running_snapshot_and_removal_takes_them(rt, box, home):
    """A file written just before the snapshot (the test never calls sync: the box is
    quiesced) is back after a restore and a file written after it is gone; restore is
    refused while the box runs (BoxStateError, as 0.9's InvalidState). Removing the box
    removes its snapshots (they live in its directory). Last: it stops the shared box."""
    async def main():
        await sh(box, "echo kept > /root/before.txt")
        await box.snapshot.create(name="point")
        await sh(box, "echo lost > /root/after.txt; rm /root/before.txt; sync")
        with pytest.raises(boxlite.BoxStateError):
            await box.snapshot.restore("point")
        assert (await box.info()).state.status == "running"
        await box.stop()
        await box.snapshot.restore("point")
        await box.start()
        out = await sh(box, "cat /root/before.txt; ls /root/after.txt 2>/dev/null || echo absent")
        assert out == "kept\nabsent\n"
        assert snapshot_dir(home, box, "point").is_dir()
        await box.stop()
        await rt.remove(box.id)
        assert not (home / "boxes" / box.id).exists()

    run(main())

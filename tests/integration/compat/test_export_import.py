"""Export and import of boxes (BoxLite 0.9's ``box.export`` and ``runtime.import_box``):
a running box is exported to a ``.boxlite`` archive, imported into a fresh home, and the
new box boots there with the same files (no image in that home); an untrusted import of
an archive asking for a host mount, and a damaged archive, are refused and leave nothing.

Every fact is observed from inside the guest (file contents and checksums) or from the
host's real state (the archive's bytes, the homes' directories).
"""
import asyncio
import os

import pytest

import boxlite
from conftest import add_session_root

IMAGE = "boxlite/base"
MEMORY = 256
WRITE = ("mkdir -p /srv/data && echo kept-content > /srv/data/note && "
         "head -c 300000 /dev/urandom > /srv/data/blob && sha256sum /srv/data/blob")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One box with a read-only host mount writes files (no sync of its own: the export
    quiesces) and is exported while it runs. (root, archive path, the blob's sha256, the
    box's image)."""
    root = tmp_path_factory.mktemp("export")
    add_session_root(root)
    share = root / "share"
    share.mkdir()
    (share / "host-file").write_text("from the host\n")
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(root / "home1")))

    async def main():
        async with boxlite.SimpleBox(IMAGE, memory=MEMORY, name="exp-src", runtime=rt,
                                     volumes=[(str(share), "/mnt/share", "ro")]) as box:
            wrote = await box.exec("sh", "-c", WRITE)
            assert wrote.exit_code == 0, wrote.stderr
            path = await box.export(dest=str(root))
            return path, wrote.stdout.split()[0], (await box.info()).image

    path, digest, image = asyncio.run(main())
    return root, path, digest, image


def _leftovers(home):
    """What an import left in a home's boxes/ and tmp/."""
    return [p for d in ("boxes", "tmp") if (home / d).is_dir() for p in os.listdir(home / d)]


def test_an_exported_box_comes_back_in_a_fresh_home_with_its_files(exported):
    root, path, digest, image = exported
    # dest a directory: <name>.boxlite inside it, a zstd stream.
    assert path == str(root / "exp-src.boxlite")
    with open(path, "rb") as f:
        assert f.read(4) == b"\x28\xb5\x2f\xfd"
    home2 = root / "home2"
    rt2 = boxlite.Boxlite(boxlite.Options(home_dir=str(home2)))

    async def main():
        box = await rt2.import_box(path)
        info = await box.info()
        assert (box.name, info.state.status) == ("exp-src", "stopped")
        assert info.image == image
        try:
            await box.start()
            got = await box.run("sh", "-c", "cat /srv/data/note /mnt/share/host-file; "
                                 "sha256sum /srv/data/blob")
            assert got.exit_code == 0, got.stderr
            lines = got.stdout.splitlines()
            assert lines[:2] == ["kept-content", "from the host"], got.stdout
            assert lines[2].split()[0] == digest
        finally:
            await box.stop()
            await rt2.remove(box.id, force=True)

    asyncio.run(main())
    # The new home never had the image: the box ran from its own standalone disk.
    images = home2 / "images"
    assert not images.exists() or not list(images.rglob("*.ext4"))
    assert _leftovers(home2) == []


def test_untrusted_and_damaged_archives_are_refused_and_leave_nothing(exported, tmp_path):
    root, path, _, _ = exported
    home = tmp_path / "home3"
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(home)))
    damaged = tmp_path / "damaged.boxlite"
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))

    async def main():
        with pytest.raises(boxlite.BoxliteError) as refused:
            await rt.import_box(path, untrusted=True)
        assert refused.value.code == "permission_denied"
        assert "untrusted box archive asks for host mounts" in str(refused.value)
        with pytest.raises(boxlite.BoxliteError) as bad:
            await rt.import_box(str(damaged), name="never")
        assert "damaged" in str(bad.value) or "checksum" in str(bad.value), str(bad.value)
        assert await rt.list_info() == []

    asyncio.run(main())
    assert _leftovers(home) == []

"""The Runtime API of the SDK, call by call, against real boxes.

Boxes boot from the built-in image ``boxlite/base``; the tests marked ``registry`` pull
from the loopback registry of tests/integration/harness (the ``registry`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import boxlite
from conftest import IMAGE, MEMORY, process_alive

pytestmark = pytest.mark.asyncio


async def test_default_runtime_uses_boxlite_home(boxlite_home: Path) -> None:
    """rt = boxlite.Boxlite.default(): home is $BOXLITE_HOME, and it is one object."""
    rt = boxlite.Boxlite.default()
    assert rt is boxlite.Boxlite.default()
    assert Path(rt.home_dir) == boxlite_home


async def test_runtime_with_options(tmp_path: Path, no_leaks: None) -> None:
    """rt = boxlite.Boxlite(boxlite.Options(home_dir=..., image_registries=[...]))."""
    home = tmp_path / "other-home"
    # A loopback mirror that is never contacted: only Docker Hub references use it.
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(home), image_registries=["http://127.0.0.1:1"]))
    assert Path(rt.home_dir) == home and (home / "images").is_dir()
    box = await rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY))
    async with box:
        assert (await box.run("echo", "own home")).stdout == "own home\n"


async def test_create_get_list_remove(no_leaks: None) -> None:
    """create(BoxOptions(...), name=) -> Box; get by id, prefix and name; list_info; remove."""
    rt = boxlite.Boxlite.default()
    box = await rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY), name="rt-snippet")
    assert isinstance(box, boxlite.Box) and box.name == "rt-snippet"
    assert (await box.info()).state == "configured"
    assert await rt.get(box.id) is box
    assert await rt.get(box.id[:8]) is box
    assert await rt.get("rt-snippet") is box
    assert await rt.get("no-such-box") is None

    result = await box.run("echo", "lazy start")  # A created box boots on first use.
    assert result.stdout == "lazy start\n"
    infos = {info.name: info for info in await rt.list_info()}
    assert infos["rt-snippet"].state == "running"
    pid = infos["rt-snippet"].pid

    with pytest.raises(boxlite.BoxStateError, match="running"):
        await rt.remove("rt-snippet")
    await rt.remove("rt-snippet", force=True)
    assert not process_alive(pid)
    assert await rt.get("rt-snippet") is None
    with pytest.raises(boxlite.BoxNotFoundError, match="rt-snippet"):
        await rt.remove("rt-snippet")


async def test_create_with_keyword_options_and_duplicate_name(no_leaks: None) -> None:
    """create() also takes keywords; a name in use is a ConfigError."""
    rt = boxlite.Boxlite.default()
    first = await rt.create(image=IMAGE, memory=MEMORY, name="dup-name")
    try:
        with pytest.raises(boxlite.ConfigError, match="dup-name"):
            await rt.create(boxlite.BoxOptions(image=IMAGE), name="dup-name")
    finally:
        await first.stop()


async def test_box_from_create_is_a_context_manager(no_leaks: None) -> None:
    """async with box: starts it and, leaving, stops and removes it."""
    rt = boxlite.Boxlite.default()
    box = await rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY))
    async with box:
        assert (await box.info()).state == "running"
    assert await rt.get(box.id) is None


async def test_images_pull_list_remove(tmp_path: Path) -> None:
    """await rt.images.pull(ref); await rt.images.list(); await rt.images.remove(ref)."""
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / "img-home")))
    assert await rt.images.list() == []
    info = await rt.images.pull(IMAGE)
    assert isinstance(info, boxlite.ImageInfo)
    assert "boxlite/base" in info.reference and info.id.startswith("sha256:") and info.size_bytes > 0
    listed = await rt.images.list()
    assert [i.reference for i in listed] == [info.reference]
    await rt.images.remove(IMAGE)
    assert await rt.images.list() == []
    with pytest.raises(boxlite.ImageNotFoundError):
        await rt.images.remove(IMAGE)


async def test_pull_bad_reference_is_invalid_reference() -> None:
    """A malformed reference is an InvalidReferenceError (a ConfigError and an ImageError)."""
    rt = boxlite.Boxlite.default()
    with pytest.raises(boxlite.InvalidReferenceError) as caught:
        await rt.images.pull("UPPER//bad::ref")
    assert isinstance(caught.value, boxlite.ConfigError) and isinstance(caught.value, boxlite.ImageError)
    assert "UPPER//bad::ref" in str(caught.value)


async def test_pull_unreachable_registry_is_registry_error() -> None:
    """A registry that refuses connections fails fast with a RegistryError (loopback only)."""
    rt = boxlite.Boxlite.default()
    with pytest.raises(boxlite.ImageError) as caught:
        await rt.images.pull("127.0.0.1:1/none:latest")
    assert isinstance(caught.value, boxlite.RegistryError)
    assert "127.0.0.1:1/none" in str(caught.value)


@pytest.mark.registry
async def test_pull_from_loopback_registry(registry, tmp_path, monkeypatch) -> None:
    """await rt.images.pull(...) from the loopback registry, then a box of that image."""
    monkeypatch.setenv("BOXLITE_INSECURE_REGISTRIES", registry.host)
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / "home")))
    ref = registry.refs["debian-python"]
    info = await rt.images.pull(ref)
    assert info.reference == ref
    assert ref in [i.reference for i in await rt.images.list()]
    async with boxlite.SimpleBox(image=ref, runtime=rt, memory=512) as box:
        result = await box.exec("python3", "-c", "print(6*7)")
    assert result.stdout == "42\n"


@pytest.mark.registry
async def test_image_registries_mirror_short_names(registry, tmp_path, monkeypatch) -> None:
    """Options(image_registries=[mirror]) serves short names: python:slim via the mirror."""
    monkeypatch.setenv("BOXLITE_INSECURE_REGISTRIES", registry.host)
    monkeypatch.delenv("BOXLITE_REGISTRY_MIRRORS", raising=False)
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / "home"),
                                         image_registries=[registry.url]))
    async with boxlite.SimpleBox(image="python:slim", runtime=rt, memory=512) as box:
        result = await box.exec("python3", "-c", "import sys; print(sys.version_info.major)")
    assert result.stdout == "3\n"

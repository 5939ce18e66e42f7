"""The package as users meet it: exports, docstrings, typing, help()."""

from __future__ import annotations

import asyncio
import inspect
import os
import pydoc

import pytest

import boxlite
import boxlite.sync


def test_help_simplebox_reads_well() -> None:
    """help(boxlite.SimpleBox) shows the documented parameters and methods."""
    text = pydoc.render_doc(boxlite.SimpleBox, renderer=pydoc.plaintext)
    for needle in ("async with SimpleBox", "cpu", "memory_mib", "disk_size_gb", "volumes",
                   "auto_remove", "rootfs_path", "exec(self, cmd", "stream(self, cmd",
                   "copy_in", "metrics", "timed_out"):
        assert needle in text, needle


@pytest.mark.parametrize("module", [boxlite, boxlite.sync])
def test_every_public_name_has_a_docstring(module: object) -> None:
    """Every exported class, function and public method is documented."""
    for name in module.__all__:  # type: ignore[attr-defined]
        obj = getattr(module, name)
        if isinstance(obj, str):
            continue
        assert inspect.getdoc(obj), f"{module.__name__}.{name}"  # type: ignore[attr-defined]
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_public_signatures_are_typed() -> None:
    """Public methods carry type hints (the package ships py.typed)."""
    assert os.path.exists(os.path.join(os.path.dirname(boxlite.__file__), "py.typed"))
    for cls in (boxlite.Box, boxlite.SimpleBox, boxlite.Execution, boxlite.Boxlite, boxlite.Images,
                boxlite.sync.Box, boxlite.sync.SimpleBox, boxlite.sync.Execution, boxlite.sync.Boxlite):
        for attr, member in vars(cls).items():
            if attr.startswith("_") or not inspect.isfunction(member):
                continue
            assert "return" in member.__annotations__, f"{cls.__name__}.{attr}"


def test_versions() -> None:
    """The SDK and the core it was built from say their versions."""
    assert boxlite.__version__ and boxlite.core_version


def test_extension_points_for_other_boxes() -> None:
    """ComputerBox and InteractiveBox come from their own modules; absent ones say so."""
    for name in ("ComputerBox", "InteractiveBox"):
        try:
            cls = getattr(boxlite, name)
        except AttributeError as exc:
            assert "not available in this build yet" in str(exc)
        else:
            assert issubclass(cls, boxlite.SimpleBox)


def test_every_09_name_is_in_this_build() -> None:
    """No BoxLite 0.9 name is left as a placeholder; REST is here (Boxlite.rest checks its
    options), and an unknown attribute is still a plain AttributeError."""
    assert boxlite.errors.LATER_FEATURES == {}
    for name in ("BrowserBox", "SkillBox", "BoxliteRestOptions", "ApiKeyCredential"):
        assert name in boxlite.__all__ and getattr(boxlite, name)
    box = boxlite.SimpleBox("boxlite/base")  # Not started: no VM is involved.
    with pytest.raises(boxlite.ConfigError, match="BoxliteRestOptions"):  # REST is here now.
        boxlite.Boxlite.rest(None)
    with pytest.raises(AttributeError):
        box.no_such_attribute  # noqa: B018


def test_snapshot_names_of_09_are_exported() -> None:
    """box.snapshot, clone_box and 0.9's snapshot classes are there (sync too); a box not
    created yet says so instead of touching a VM."""
    for name in ("SnapshotHandle", "SnapshotInfo", "SnapshotOptions", "CloneOptions"):
        assert name in boxlite.__all__ and getattr(boxlite, name)
    assert boxlite.SnapshotOptions().memory is False and boxlite.SnapshotOptions(memory=True).memory
    box = boxlite.SimpleBox("boxlite/base")  # Not started: no VM is involved.
    assert isinstance(box.snapshot, boxlite.SnapshotHandle)
    with pytest.raises(boxlite.BoxStateError):
        asyncio.run(box.snapshot.list())
    sbox = boxlite.sync.SimpleBox("boxlite/base")
    with pytest.raises(boxlite.BoxStateError):
        sbox.snapshot.list()
    assert callable(sbox.clone_box)


def test_tunnel_names_of_09_are_there() -> None:
    """box.network.tunnel / box.tunnel and 0.9's tunnel classes exist (sync too); a box
    not created yet says so (0.9's "Box not started") instead of touching a VM."""
    assert "NetworkHandle" in boxlite.__all__ and "SyncNetworkHandle" in boxlite.__all__
    assert boxlite.BoxTunnel and boxlite.BoxConnection
    box = boxlite.SimpleBox("boxlite/base")
    assert isinstance(box.network, boxlite.NetworkHandle)
    for call in (lambda: box.network.tunnel(80), lambda: box.tunnel(80)):
        with pytest.raises(boxlite.BoxStateError, match="not started"):
            asyncio.run(call())

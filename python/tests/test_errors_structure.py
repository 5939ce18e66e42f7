"""Errors by structure: real failures of the C++ core reach Python as the class their
code and subject say (never chosen from the message), every one a RuntimeError as 0.9's
native errors were; 0.9's error constructors and names. No VM boots here."""

from __future__ import annotations

import asyncio
import builtins
import importlib

import pytest

import boxlite
import boxlite.errors
import boxlite.sync
from conftest import IMAGE, MEMORY, qemu_children


def _catch(fn, *args, **kwargs) -> BaseException:
    """Calls fn (awaiting a coroutine), returns what it raised."""
    try:
        result = fn(*args, **kwargs)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except BaseException as exc:  # noqa: BLE001 - the point of the helper.
        return exc
    pytest.fail(f"{fn.__qualname__}{args} raised nothing")


@pytest.fixture(params=["async", "sync"])
def rt(request: pytest.FixtureRequest, boxlite_home: object) -> object:
    """The default runtime, through the async and through the sync API."""
    return boxlite.Boxlite.default() if request.param == "async" else boxlite.sync.Boxlite.default()


def test_missing_box_is_box_not_found(rt: object) -> None:
    """Removing a box nobody made: BoxNotFoundError about a box, and a RuntimeError."""
    err = _catch(rt.remove, "no-such-box-anywhere")  # type: ignore[attr-defined]
    assert type(err) is boxlite.BoxNotFoundError
    assert (err.code, err.subject) == ("not_found", "box")
    assert isinstance(err, RuntimeError) and isinstance(err, boxlite.BoxError)
    assert "no-such-box-anywhere" in str(err) and "boxlite ls" in str(err)


def test_bad_reference_is_invalid_reference(rt: object) -> None:
    """A malformed reference, refused by the core's parser: InvalidReferenceError (also
    ConfigError and ValueError) about an image."""
    err = _catch(rt.images.pull, "UPPER//bad::ref")  # type: ignore[attr-defined]
    assert type(err) is boxlite.InvalidReferenceError
    assert (err.code, err.subject) == ("invalid_argument", "image")
    assert isinstance(err, boxlite.ConfigError) and isinstance(err, ValueError) and isinstance(err, RuntimeError)
    assert "UPPER//bad::ref" in str(err)


def test_image_not_in_the_store_is_image_not_found(rt: object) -> None:
    """Removing an image the store never had: ImageNotFoundError about an image."""
    err = _catch(rt.images.remove, "example.org/never/pulled:1")  # type: ignore[attr-defined]
    assert type(err) is boxlite.ImageNotFoundError
    assert (err.code, err.subject) == ("not_found", "image")
    assert "example.org/never/pulled" in str(err)


def test_unreachable_registry_is_registry_error(rt: object) -> None:
    """Nothing listens on 127.0.0.1:1: RegistryError about the registry (the image store
    passes the registry client's failure on without making it an image's)."""
    err = _catch(rt.images.pull, "127.0.0.1:1/none:latest")  # type: ignore[attr-defined]
    assert type(err) is boxlite.RegistryError
    assert (err.code, err.subject) == ("unavailable", "registry")
    assert "127.0.0.1:1" in str(err)


def test_core_option_checks_are_config_errors(rt: object, no_leaks: None) -> None:
    """What only the core checks (the memory range, a taken name) is a ConfigError."""
    before = qemu_children()
    err = _catch(lambda: rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=64)))  # type: ignore[attr-defined]
    assert type(err) is boxlite.ConfigError and isinstance(err, RuntimeError)
    assert "memory" in str(err)
    name = f"taken-{type(rt).__module__.replace('.', '-')}"
    options = boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, name=name, auto_remove=False)
    first = rt.create(options)  # type: ignore[attr-defined]
    if asyncio.iscoroutine(first):
        asyncio.run(first)
    try:
        err = _catch(rt.create, options)  # type: ignore[attr-defined]
        assert type(err) is boxlite.ConfigError
        assert (err.code, err.subject) == ("already_exists", "box")
        assert name in str(err) and "choose another name" in str(err)
    finally:
        removed = rt.remove(name)  # type: ignore[attr-defined]
        if asyncio.iscoroutine(removed):
            asyncio.run(removed)
    assert qemu_children() == before


def test_every_class_is_a_runtime_error_and_keeps_its_other_bases() -> None:
    """0.9 programs catch RuntimeError; ours catch the precise classes and builtins."""
    for name in boxlite.errors.__all__:
        obj = getattr(boxlite.errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, RuntimeError), name
            assert getattr(boxlite, name) is obj, name  # Exported at top level too.
    assert issubclass(boxlite.ConfigError, ValueError)
    assert issubclass(boxlite.ParseError, ValueError) and issubclass(boxlite.ParseError, boxlite.BoxliteError)
    assert issubclass(boxlite.TimeoutError, builtins.TimeoutError)
    assert issubclass(boxlite.InvalidReferenceError, boxlite.ImageError)


def test_09_constructors() -> None:
    """ExecError(command, exit_code, stderr), TimeoutError(message), ParseError(message)
    as 0.9 programs build them; our one-message ExecError keeps working."""
    err = boxlite.ExecError("ls /nope", 2, "No such file")
    assert (err.command, err.exit_code, err.stderr) == ("ls /nope", 2, "No such file")
    assert str(err) == "Command 'ls /nope' failed with exit code 2: No such file"
    assert isinstance(err, RuntimeError)
    kw = boxlite.errors.ExecError(command="make", exit_code=1, stderr="")
    assert str(kw) == "Command 'make' failed with exit code 1: " and kw.exit_code == 1
    ours = boxlite.ExecError("stdin was closed", code="failed_precondition", context="write")
    assert str(ours) == "write: stdin was closed" and ours.exit_code is None and ours.stderr == ""
    assert str(boxlite.TimeoutError("too slow")) == "too slow"
    assert str(boxlite.ParseError("bad JSON from the box")) == "bad JSON from the box"
    assert str(boxlite.BoxliteError("plain")) == "plain"
    with pytest.raises(TypeError):
        boxlite.ExecError("a", 1, "b", "extra")


def test_sync_api_names_and_missing_features() -> None:
    """boxlite.sync_api carries 0.9's names for boxlite.sync's classes; 0.9 names whose
    feature is missing fail as a missing import that says which feature."""
    sync_api = importlib.import_module("boxlite.sync_api")
    pairs = {
        "SyncBoxlite": boxlite.sync.Boxlite, "SyncBox": boxlite.sync.Box,
        "SyncSimpleBox": boxlite.sync.SimpleBox, "SyncExecution": boxlite.sync.Execution,
        "SyncExecStdout": boxlite.sync.ExecStdout, "SyncExecStderr": boxlite.sync.ExecStderr,
        "SyncExecStdin": boxlite.sync.ExecStdin, "SyncImageHandle": boxlite.sync.Images,
        "SyncBase": boxlite.sync.SyncBase, "SyncContextManager": boxlite.sync.SyncContextManager,
        "SyncCodeBox": boxlite.sync.CodeBox,
        "SyncSkillBox": boxlite.sync.SkillBox,  # SkillBox (boxlite/skillbox.py).
    }
    for name, cls in pairs.items():
        assert getattr(sync_api, name) is cls, name
        assert name in sync_api.__all__
    for name in ("SyncBoxlite", "SyncBox", "SyncSimpleBox", "SyncExecution", "SyncImageHandle"):
        assert getattr(boxlite, name) is pairs[name]
    assert boxlite.sync_api is sync_api
    # Tunnels (boxlite/tunnels.py).
    assert sync_api.SyncNetworkHandle is boxlite.tunnels.SyncNetworkHandle is boxlite.SyncNetworkHandle
    assert sync_api.SyncBoxTunnel is boxlite.tunnels.SyncBoxTunnel
    assert boxlite.SyncSkillBox is sync_api.SyncSkillBox
    with pytest.raises(AttributeError):
        sync_api.NoSuchThing  # noqa: B018


def test_sync_runtime_calls_work_inside_a_running_loop(boxlite_home: object) -> None:
    """The sync API's runtime calls run the async API's coroutines; from inside a running
    event loop (where 0.9's sync_api raised RuntimeError) they still work, on a loop of
    their own, and their errors arrive as the same classes."""

    async def main() -> tuple[object, BaseException]:
        rt = boxlite.sync.Boxlite.default()
        missing = rt.get("no-such-box-in-a-loop")
        return missing, _catch(rt.remove, "no-such-box-in-a-loop")

    missing, err = asyncio.run(main())
    assert missing is None
    assert type(err) is boxlite.BoxNotFoundError and err.subject == "box"

"""Results and errors: exits, signals, timeouts, bad images and bad arguments."""

from __future__ import annotations

import builtins

import pytest

import boxlite
import boxlite.sync
from boxlite.errors import error_from_status
from conftest import IMAGE, MEMORY, qemu_children


@pytest.mark.asyncio
async def test_non_zero_exit_is_a_result(shared_box: boxlite.SimpleBox) -> None:
    """A non-zero exit is an ExecResult, never an exception."""
    result = await shared_box.exec("sh", "-c", "echo partial; echo oops >&2; exit 3")
    assert (result.exit_code, result.returncode, result.signal) == (3, 3, 0)
    assert result.stdout == "partial\n" and result.stderr == "oops\n" and not result.timed_out


@pytest.mark.asyncio
async def test_signal_exit_is_128_plus_signo(shared_box: boxlite.SimpleBox) -> None:
    """A process killed by SIGKILL exits 137."""
    result = await shared_box.exec("sh", "-c", "kill -9 $$")
    assert result.exit_code == 128 + 9 and result.signal == 9


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_timeout_kills_and_reports(shared_box: boxlite.SimpleBox) -> None:
    """exec(timeout=) kills the process and returns timed_out=True."""
    result = await shared_box.exec("sh", "-c", "echo before; sleep 100; echo after", timeout=1)
    assert result.timed_out is True
    assert result.exit_code == 128 + 9
    assert result.stdout == "before\n"


@pytest.mark.asyncio
async def test_missing_command_reports_why(shared_box: boxlite.SimpleBox) -> None:
    """A command that does not exist is a result: 127 and an error_message naming it."""
    result = await shared_box.exec("no-such-command-xyz")
    assert result.exit_code == 127
    assert result.error_message is not None
    assert "no-such-command-xyz" in result.error_message and "not found" in result.error_message


@pytest.mark.asyncio
async def test_missing_image_fails_fast_and_leaves_nothing(no_leaks: None) -> None:
    """An image nobody serves: an ImageError naming it, before any VM starts."""
    before = qemu_children()
    with pytest.raises(boxlite.ImageError) as caught:
        async with boxlite.SimpleBox("127.0.0.1:1/none:latest", memory=MEMORY):
            pytest.fail("the box must not start")
    assert "127.0.0.1:1/none" in str(caught.value)
    assert isinstance(caught.value, boxlite.RegistryError)  # Connection refused.
    assert qemu_children() == before


@pytest.mark.asyncio
async def test_bad_reference_is_invalid_reference(no_leaks: None) -> None:
    """A malformed image reference is an InvalidReferenceError (ConfigError + ImageError)."""
    with pytest.raises(boxlite.InvalidReferenceError) as caught:
        async with boxlite.SimpleBox("UPPER//bad::ref", memory=MEMORY):
            pytest.fail("the box must not start")
    assert isinstance(caught.value, boxlite.ConfigError)
    assert "UPPER//bad::ref" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mounts": [("/tmp", "/mnt", "rx")]}, "mount mode"),
        ({"mounts": [("/definitely/not/here", "/mnt", "ro")]}, "does not exist"),
        ({"mounts": [("/tmp", "relative", "ro")]}, "absolute"),
        ({"mounts": "/tmp:/mnt"}, "mounts"),
        ({"memory": -5}, "memory"),
        ({"memory_mib": "512"}, "memory_mib must be an int"),
        ({"cpu": 0}, "cpus"),
        ({"cpus": 2.5}, "cpus must be an int"),
        ({"cpu": 2, "cpus": 4}, "disagree"),
        ({"disk_size": -1}, "disk_size"),
        ({"disk_size_gb": "big"}, "disk_size_gb"),
        ({"env": {"A": 1}}, "value of A"),
        ({"env": {"A=B": "c"}}, "must not contain '='"),
        ({"env": "A=B"}, "env"),
        ({"ports": [(0, 0)]}, "guest port"),
        ({"ports": [(70000, 80)]}, "host port"),
        ({"network": "bridge"}, "network"),
        ({"working_dir": "relative"}, "working_dir"),
        ({"auto_remove": "yes"}, "auto_remove"),
        ({"warm": "no"}, "warm must be a bool"),
        ({"image": 42}, "image must be a string"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict, match: str) -> None:
    """Bad options raise ConfigError with a useful message when the box is described."""
    before = qemu_children()
    with pytest.raises(boxlite.ConfigError, match=match):
        boxlite.SimpleBox(**{"image": IMAGE, **kwargs})
    with pytest.raises(boxlite.ConfigError, match=match):
        boxlite.sync.SimpleBox(**{"image": IMAGE, **kwargs})
    assert qemu_children() == before


@pytest.mark.asyncio
async def test_core_range_checks_are_config_errors(no_leaks: None) -> None:
    """What only the core checks (memory range, cpu count, names) is a ConfigError too,
    raised when the box is created, before a VM starts."""
    before = qemu_children()
    for kwargs, match in (({"memory": 64}, "memory"), ({"cpu": 99}, "cpus"), ({"name": "bad name!"}, "name")):
        with pytest.raises(boxlite.ConfigError, match=match):
            async with boxlite.SimpleBox(IMAGE, **kwargs):
                pytest.fail("the box must not start")
    assert qemu_children() == before


@pytest.mark.asyncio
async def test_bad_exec_arguments_are_config_errors(shared_box: boxlite.SimpleBox) -> None:
    """Wrong types and values in exec() are ConfigErrors."""
    with pytest.raises(boxlite.ConfigError, match="command must be a string"):
        await shared_box.exec(123)  # type: ignore[arg-type]
    with pytest.raises(boxlite.ConfigError, match="argument 1"):
        await shared_box.exec("echo", 1.5)  # type: ignore[arg-type]
    with pytest.raises(boxlite.ConfigError, match="argument 1 contains a lone surrogate"):
        await shared_box.exec("echo", "\ud800")  # Stands for no byte (bytes are accepted).
    with pytest.raises(boxlite.ConfigError, match="timeout"):
        await shared_box.exec("true", timeout=-1)
    with pytest.raises(boxlite.ConfigError, match="stdin"):
        await shared_box.exec("cat", stdin=42)  # type: ignore[arg-type]
    with pytest.raises(boxlite.ConfigError, match="cwd"):
        await shared_box.exec("pwd", cwd="relative")
    with pytest.raises(boxlite.ConfigError, match="env"):
        await shared_box.exec("env", env={"": "x"})


@pytest.mark.asyncio
async def test_exec_before_start_is_a_state_error() -> None:
    """A SimpleBox that was never entered says how to start it."""
    box = boxlite.SimpleBox(IMAGE)
    with pytest.raises(boxlite.BoxStateError, match="async with"):
        await box.exec("true")
    with pytest.raises(boxlite.BoxStateError):
        _ = box.id


def test_hierarchy() -> None:
    """The documented hierarchy, and TimeoutError is also the builtin one."""
    B = boxlite.BoxliteError
    for cls in (boxlite.ConfigError, boxlite.ImageError, boxlite.BoxError, boxlite.ExecError,
                boxlite.TimeoutError, boxlite.ResourceError):
        assert issubclass(cls, B)
    for cls in (boxlite.ImageNotFoundError, boxlite.AuthenticationError, boxlite.RegistryError):
        assert issubclass(cls, boxlite.ImageError)
    for cls in (boxlite.BoxNotFoundError, boxlite.BoxStateError, boxlite.BoxStartError):
        assert issubclass(cls, boxlite.BoxError)
    assert issubclass(boxlite.TimeoutError, builtins.TimeoutError)
    assert issubclass(B, RuntimeError)  # 0.9's native errors were RuntimeErrors.
    err = boxlite.TimeoutError("too slow", code="deadline_exceeded", context="wait")
    assert str(err) == "wait: too slow" and err.code == "deadline_exceeded"
    with pytest.raises(builtins.TimeoutError):
        raise err


@pytest.mark.parametrize(
    ("code", "subject", "domain", "expected"),
    [
        ("invalid_argument", "", "box", boxlite.ConfigError),
        ("invalid_argument", "image", "start", boxlite.InvalidReferenceError),
        ("invalid_argument", "", "image", boxlite.InvalidReferenceError),
        ("not_found", "image", "start", boxlite.ImageNotFoundError),
        ("not_found", "image", "image", boxlite.ImageNotFoundError),
        ("not_found", "", "image", boxlite.ImageNotFoundError),
        ("not_found", "box", "box", boxlite.BoxNotFoundError),
        ("not_found", "box", "runtime", boxlite.BoxNotFoundError),
        ("not_found", "", "start", boxlite.BoxStartError),
        ("not_found", "registry", "start", boxlite.RegistryError),
        ("authentication", "registry", "image", boxlite.AuthenticationError),
        ("permission_denied", "registry", "start", boxlite.AuthenticationError),
        ("permission_denied", "", "runtime", boxlite.ConfigError),
        ("unavailable", "registry", "start", boxlite.RegistryError),
        ("unavailable", "", "start", boxlite.BoxStartError),
        ("unavailable", "box", "start", boxlite.BoxStartError),
        ("unavailable", "box", "exec", boxlite.BoxStateError),
        ("unavailable", "", "exec", boxlite.ExecError),
        ("failed_precondition", "box", "exec", boxlite.BoxStateError),
        ("failed_precondition", "box", "start", boxlite.BoxStateError),
        ("failed_precondition", "exec", "exec", boxlite.ExecError),
        ("failed_precondition", "", "box", boxlite.BoxStateError),
        ("already_exists", "box", "box", boxlite.ConfigError),
        ("deadline_exceeded", "", "box", boxlite.TimeoutError),
        ("resource_exhausted", "", "start", boxlite.ResourceError),
        ("not_supported", "", "copy", boxlite.NotSupportedError),
        ("corruption", "image", "start", boxlite.ImageError),
        ("protocol_error", "box", "exec", boxlite.BoxError),
        ("protocol_error", "", "exec", boxlite.BoxError),
        ("io_error", "exec", "exec", boxlite.ExecError),
        ("internal", "", "runtime", boxlite.BoxliteError),
    ],
)
def test_error_from_status_maps_codes(code: str, subject: str, domain: str, expected: type) -> None:
    """The one translation helper picks the class from (code, subject, domain) only: the
    same message gives every class, and the message reaches the exception unchanged."""
    message = "box image registry reference stopped unexpectedly not found"
    err = error_from_status(code, message, "ctx", domain, subject)
    assert type(err) is expected
    assert err.code == code and err.context == "ctx" and message in str(err)
    assert err.subject == (subject or None)
    assert isinstance(err, RuntimeError)

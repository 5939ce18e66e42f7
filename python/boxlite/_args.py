"""Argument checks shared by the async and the sync API (ConfigError on bad input)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

from .errors import ConfigError
from .options import EnvLike, as_text, normalize_env

__all__ = [
    "CommandArg",
    "StdinLike",
    "argv_of",
    "exec_args",
    "check_timeout",
    "stdin_bytes",
    "check_fd",
    "check_signal",
    "check_size",
    "check_reference",
    "check_id",
    "host_path",
    "guest_path",
]

CommandArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
"""One word of a command line: text, or bytes (see :func:`boxlite.options.as_text`)."""

StdinLike = Union[bytes, bytearray, memoryview, str]
"""Data for a command's stdin (``str`` is encoded as UTF-8)."""


def _word(value: Any, what: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    value = as_text(what, value)
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, not {type(value).__name__} ({value!r})")
    if "\0" in value:
        raise ConfigError(f"{what} must not contain NUL bytes")
    return value


def argv_of(cmd: Any, args: Sequence[Any]) -> list[str]:
    """The command line from ``exec(cmd, *args)``.

    ``cmd`` may also be a list (the whole command line), and a single list after it is
    taken as the arguments (``exec("ls", ["-l", "/"])``, the 0.10 SDK's spelling).
    """
    if isinstance(cmd, (list, tuple)):
        if args:
            raise ConfigError("give the command either as one list or as separate words, not both")
        words = list(cmd)
    else:
        words = [cmd]
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            words += list(args[0])
        else:
            words += list(args)
    if not words:
        raise ConfigError("exec needs a command")
    argv = [_word(w, "command" if i == 0 else f"argument {i}") for i, w in enumerate(words)]
    if not argv[0]:
        raise ConfigError("exec needs a command (it is empty)")
    return argv


def exec_args(
    argv: list[str],
    env: EnvLike | None,
    cwd: Any,
    user: Any,
    *,
    tty: bool = False,
    rows: int = 24,
    cols: int = 80,
    open_stdin: bool = False,
) -> dict[str, Any]:
    """Keyword arguments of ``_boxlite.Box.start_exec``, checked."""
    if cwd is not None:
        cwd = _word(cwd, "cwd")
        if cwd and not cwd.startswith("/"):
            raise ConfigError(f"cwd must be an absolute path in the box, not {cwd!r}")
    if user is not None:
        if isinstance(user, int) and not isinstance(user, bool):
            user = str(user)
        user = _word(user, "user")
    if not isinstance(tty, bool):
        raise ConfigError(f"tty must be a bool, not {type(tty).__name__}")
    rows, cols = check_size(rows, cols)
    env_list = normalize_env(env)
    return {
        "argv": argv,
        "env": env_list,
        "cwd": cwd or "",
        "user": user or "",
        "tty": tty,
        "rows": rows,
        "cols": cols,
        "open_stdin": bool(open_stdin or tty),
    }


def check_timeout(timeout: Any) -> float | None:
    """``None`` (no limit) or a positive number of seconds."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not timeout > 0:
        raise ConfigError(f"timeout must be positive (or None for no limit), not {timeout!r}")
    return float(timeout)


DEFAULT_MAX_OUTPUT_BYTES = 64 << 20
"""What ``exec()`` keeps of each output stream unless told otherwise (64 MiB)."""


def check_max_output(limit: Any) -> int | None:
    """``None`` (keep everything) or a positive number of bytes."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ConfigError(f"max_output_bytes must be a number of bytes, not {type(limit).__name__}")
    if limit <= 0 or limit > (1 << 62):
        raise ConfigError(f"max_output_bytes must be between 1 and 2**62 (or None for no limit), not {limit!r}")
    return limit


def stdin_bytes(data: Any) -> bytes | None:
    """Data for stdin as bytes, or None."""
    if data is None:
        return None
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise ConfigError(f"stdin must be bytes or str, not {type(data).__name__}")


def check_fd(fd: Any) -> int:
    """1 (stdout) or 2 (stderr)."""
    if fd not in (1, 2) or isinstance(fd, bool):
        raise ConfigError(f"fd must be 1 (stdout) or 2 (stderr), not {fd!r}")
    return int(fd)


def check_signal(signo: Any) -> int:
    """A signal number in 1..64."""
    if isinstance(signo, bool) or not isinstance(signo, int) or not 1 <= int(signo) <= 64:
        raise ConfigError(f"signal must be a signal number in 1..64, not {signo!r}")
    return int(signo)


def check_size(rows: Any, cols: Any) -> tuple[int, int]:
    """A terminal size."""
    for name, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise ConfigError(f"{name} must be an int in 1..65535, not {value!r}")
    return int(rows), int(cols)


def check_reference(reference: Any) -> str:
    """An image reference: a non-empty string."""
    if not isinstance(reference, str):
        raise ConfigError(f"an image reference must be a string, not {type(reference).__name__}")
    if not reference.strip():
        raise ConfigError("an image reference must not be empty")
    return reference


def check_id(id_or_name: Any) -> str:
    """A box id, id prefix or name: a non-empty string."""
    if not isinstance(id_or_name, str) or not id_or_name:
        raise ConfigError(f"a box id or name must be a non-empty string, not {id_or_name!r}")
    return id_or_name


def host_path(path: Any, what: str) -> str:
    """An absolute host path."""
    return os.path.abspath(_word(path, what))


def guest_path(path: Any, what: str) -> str:
    """An absolute guest path."""
    p = _word(path, what)
    if not p.startswith("/"):
        raise ConfigError(f"{what} must be an absolute path in the box, not {p!r}")
    return p

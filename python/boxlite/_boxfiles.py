"""File operations on a running box for the agent integrations (``boxlite mcp``'s file
tools, the LangChain tools): write, read and list through the box's ``sh``, ``cat``,
``find`` and ``stat`` (present in every image these tools are meant for).

Everything read back from the guest is untrusted: outputs are bounded, listings are
parsed defensively (malformed lines are skipped) and names are decoded with replacement.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BoxFileError", "check_path", "write_file", "read_file", "list_dir", "MAX_LIST_ENTRIES"]

MAX_LIST_ENTRIES = 1000
# Seconds a file operation may take (a stuck guest command is killed).
FILE_TIMEOUT = 120.0

# Shell fragments run in the box.
_WRITE = ('case "$1" in */*) d=${1%/*}; [ -z "$d" ] || mkdir -p -- "$d" || exit; esac; '
          'cat > "$1"')
_LIST = ('[ -d "$1" ] || { echo "not a directory: $1" >&2; exit 2; }; '
         'find "$1" -mindepth 1 -maxdepth 1 -exec stat -c "%F|%s|%n" {} +')
_KINDS = {"regular file": "file", "regular empty file": "file", "directory": "directory",
          "symbolic link": "symlink"}


class BoxFileError(Exception):
    """A file operation that failed for a reason the caller can act on (one line)."""


def check_path(path: Any) -> str:
    """``path`` if it is a usable path in the box, else BoxFileError."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise BoxFileError("path must be a non-empty path in the box, without NUL characters")
    return path


def _why(result: Any) -> str:
    return result.stderr.strip() or f"exit {result.exit_code}"


async def write_file(box: Any, path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` in the box, creating its parent directories."""
    path = check_path(path)
    result = await box.exec(["/bin/sh", "-c", _WRITE, "sh", path], stdin=data,
                            timeout=FILE_TIMEOUT, max_output_bytes=4096)
    if result.exit_code != 0:
        raise BoxFileError(f"cannot write {path}: {_why(result)}")


async def read_file(box: Any, path: str, limit: int) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of ``path`` in the box, and whether the file is longer."""
    path = check_path(path)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise BoxFileError(f"max_bytes must be a positive number of bytes, not {limit!r}")
    result = await box.exec(["cat", "--", path], timeout=FILE_TIMEOUT, max_output_bytes=limit)
    if result.exit_code != 0:
        raise BoxFileError(f"cannot read {path}: {_why(result)}")
    return bytes(result.stdout_bytes), bool(result.stdout_truncated)


async def list_dir(box: Any, path: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The entries of directory ``path`` in the box, sorted by name: each a dict of
    ``name``, ``type`` (file, directory, symlink, other) and ``size`` in bytes; at most
    MAX_LIST_ENTRIES, and whether more were cut."""
    path = check_path(path)
    result = await box.exec(["/bin/sh", "-c", _LIST, "sh", path], timeout=FILE_TIMEOUT,
                            max_output_bytes=limit)
    if result.exit_code != 0:
        raise BoxFileError(f"cannot list {path}: {_why(result)}")
    entries = []
    prefix = path.rstrip("/") + "/"
    for line in result.stdout_bytes.decode("utf-8", errors="replace").splitlines():
        kind, sep1, rest = line.partition("|")
        size, sep2, full = rest.partition("|")
        if not sep1 or not sep2 or not size.isdigit():
            continue
        name = full[len(prefix):] if full.startswith(prefix) else full
        entries.append({"name": name, "type": _KINDS.get(kind, "other"), "size": int(size)})
    entries.sort(key=lambda e: e["name"])
    cut = len(entries) > MAX_LIST_ENTRIES or bool(result.stdout_truncated)
    return entries[:MAX_LIST_ENTRIES], cut

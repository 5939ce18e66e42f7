"""Fixtures of the SDK's test suite: a private BOXLITE_HOME, the guest assets, shared
boxes (each boot costs about a second under TCG) and leak checks.

Real boxes boot from the built-in image ``boxlite/base`` (busybox); tests marked
``registry`` use images from the loopback registry of tests/integration/harness.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
pytest_plugins = ["harness.fixtures"]

IMAGE = "boxlite/base"
# Guest RAM is allocated lazily; 512 MiB is plenty for busybox and keeps the host light.
MEMORY = 512


@pytest.fixture(scope="session", autouse=True)
def boxlite_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private state directory for the whole session (set before any runtime opens)."""
    home = tmp_path_factory.mktemp("boxlite-home")
    old = os.environ.get("BOXLITE_HOME")
    os.environ["BOXLITE_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("BOXLITE_HOME", None)
        else:
            os.environ["BOXLITE_HOME"] = old


def qemu_children() -> set[int]:
    """Pids of the QEMU processes this test process started (still alive)."""
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me and b"qemu-system" in cmdline and fields[0] != "Z":
            found.add(int(entry))
    return found


def process_alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def state_files(home: Path) -> set[str]:
    """Everything a box may leave in the home: tmp/ and boxes/ (not the runtime's own
    lock file, boxes/.lock, which exists once any box was created)."""
    out = set()
    for sub in ("tmp", "boxes"):
        root = home / sub
        if root.exists():
            out |= {str(p.relative_to(home)) for p in root.rglob("*")}
    out.discard("boxes/.lock")
    return out


@pytest.fixture(scope="session")
def shared_box(boxlite_home: Path) -> Iterator[object]:
    """An async SimpleBox shared by tests that do not need isolation.

    It is entered in one event loop here and used from each test's own loop: the SDK
    keeps no per-loop state, so this is also a standing cross-loop test.
    """
    import boxlite

    box = boxlite.SimpleBox(IMAGE, memory=MEMORY)
    asyncio.run(box.__aenter__())
    try:
        yield box
    finally:
        asyncio.run(box.__aexit__(None, None, None))


@pytest.fixture(scope="session")
def shared_sync_box(boxlite_home: Path) -> Iterator[object]:
    """A sync SimpleBox shared by the sync tests."""
    import boxlite.sync

    with boxlite.sync.SimpleBox(IMAGE, memory=MEMORY) as box:
        yield box


@pytest.fixture
def no_leaks(boxlite_home: Path) -> Iterator[None]:
    """Checks that a test leaves nothing behind: the suite-wide leak monitor of
    tests/integration/harness/leaks.py (box processes, files in the home's tmp/, sockets
    of this process, mounts), plus no new file under the home's boxes/ (beyond what the
    session's shared boxes had when it started)."""
    from harness.leaks import LeakMonitor

    monitor = LeakMonitor({boxlite_home})
    files_before = state_files(boxlite_home)
    yield
    monitor.check()
    assert state_files(boxlite_home) <= files_before, "a file was left under BOXLITE_HOME"

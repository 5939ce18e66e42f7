# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""Numbers given to `boxlite run/create` and to the Python SDK are never narrowed: a value
out of range, negative, overflowing or not a number is one clear error line naming the
bounds, and nothing is created. A disk larger than the free space of the file system
holding BOXLITE_HOME is refused before anything is created (the overlay is sparse, so it
would be accepted and fail later, inside the guest)."""
import os

import pytest

BASE = "boxlite/base"
KMAX_DISK_MIB = 16 << 20  # include/boxlite/options.h kMaxDiskSizeMib.


def one_error_line(p):
    lines = [l for l in p.stderr.splitlines() if not l.startswith(b"boxlite: warning:")]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(b"boxlite")
    return lines[0].decode()


def nothing_created(home):
    boxes = home / "boxes"
    assert not boxes.exists() or [p for p in boxes.iterdir() if p.is_dir()] == [], \
        list(boxes.iterdir())
    tmp = home / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == [], list(tmp.iterdir())


BAD_NUMBERS = [
    # (flag, value, text the error names)
    ("--cpus", "4294967297", "--cpus must be a whole number from 1 to 16, not 4294967297"),
    ("--cpus", "0", "from 1 to 16"),
    ("--cpus", "17", "from 1 to 16"),
    ("--cpus", "-1", "from 1 to 16"),
    ("--cpus", "99999999999999999999999", "from 1 to 16"),
    ("--cpus", "2x", "from 1 to 16"),
    ("--cpus", "1.5", "from 1 to 16"),
    ("--memory", "4294967808",
     "--memory must be a whole number from 128 to 65536 MiB, not 4294967808"),
    ("--memory", "-512", "from 128 to 65536 MiB"),
    ("--memory", "127", "from 128 to 65536 MiB"),
    ("--memory", "512M", "from 128 to 65536 MiB"),
    ("--disk-size", "-1", "--disk-size must be a whole number of GiB, or one with a unit"),
    ("--disk-size", "18446744073709551617", "at most %d GiB" % (KMAX_DISK_MIB // 1024)),
    ("--disk-size", str(KMAX_DISK_MIB // 1024 + 1), "at most %d GiB" % (KMAX_DISK_MIB // 1024)),
    ("--disk-size", "%dM" % (KMAX_DISK_MIB + 1), "at most %d GiB" % (KMAX_DISK_MIB // 1024)),
    ("--disk-size", "2T", "one with a unit (512M, 512MiB, 2G, 2GiB)"),
]


@pytest.mark.parametrize("command", ["run", "create"])
@pytest.mark.parametrize("flag,value,message", BAD_NUMBERS)
def test_bad_numbers_are_one_clear_error(cli, tmp_path, command, flag, value, message):
    from conftest import Cli
    own = Cli(cli.binary, tmp_path / "home")
    args = [command, flag, value, BASE] + (["true"] if command == "run" else [])
    p = own.run(*args, timeout=120)
    assert p.returncode == 1, p.stderr
    line = one_error_line(p)
    assert message in line, line
    nothing_created(own.home)


def _free_mib(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize // (1 << 20)


@pytest.mark.parametrize("command", ["run", "create"])
def test_disk_larger_than_free_space_is_refused(cli, tmp_path, command):
    from conftest import Cli
    own = Cli(cli.binary, tmp_path / "home")
    own.home.mkdir()
    size = _free_mib(own.home) + 1024
    if size > KMAX_DISK_MIB:
        pytest.skip("the file system has more than 16 TiB free")
    args = [command, "--disk-size", "%dM" % size, BASE] + (["true"] if command == "run" else [])
    p = own.run(*args, timeout=120)
    assert p.returncode == 1, p.stderr
    line = one_error_line(p)
    assert "disk_size %d MiB is more than the" % size in line, line
    assert "MiB free in %s" % own.home in line, line
    nothing_created(own.home)


def test_python_sdk_never_narrows(tmp_path):
    import boxlite
    for kwargs, message in [
        ({"cpus": 4294967297}, "cpus must be from 1 to 16, not 4294967297"),
        ({"cpus": -1}, "cpus must be from 1 to 16"),
        ({"memory_mib": 4294967808}, "memory_mib must be from 128 to 65536, not 4294967808"),
        ({"memory": 64}, "memory_mib must be from 128 to 65536"),
        ({"disk_size_mib": 2 ** 64 + 1}, "disk_size must be from 0 to %d" % KMAX_DISK_MIB),
        ({"disk_size": -5}, "disk_size must be from 0 to"),
    ]:
        with pytest.raises(boxlite.ConfigError) as e:
            boxlite.BoxOptions(BASE, **kwargs)
        assert message in str(e.value), (kwargs, str(e.value))


def test_python_sdk_refuses_a_disk_larger_than_free_space(tmp_path):
    import boxlite
    home = tmp_path / "home"
    home.mkdir()
    size = _free_mib(home) + 1024
    if size > KMAX_DISK_MIB:
        pytest.skip("the file system has more than 16 TiB free")
    from boxlite import sync
    rt = sync.Boxlite(boxlite.Options(home_dir=str(home)))
    with pytest.raises(boxlite.BoxliteError) as e:
        rt.create(boxlite.BoxOptions(BASE, disk_size_mib=size))
    assert "is more than the" in str(e.value) and "MiB free in" in str(e.value), str(e.value)
    nothing_created(home)

# The CLI spellings BoxLite 0.9 gave a different meaning to ours: `--disk-size` is GiB as
# a bare number (a unit spells MiB or GiB), and `ls` is `list`'s alias (running boxes;
# `-a` all). The disk size is observed from inside the guest; listings from the CLI.
import pytest

from conftest import Cli

BASE = "boxlite/base"


def one_error_line(p):
    lines = [l for l in p.stderr.decode().splitlines() if not l.startswith("boxlite: warning:")]
    assert len(lines) == 1 and lines[0].startswith("boxlite"), p.stderr
    return lines[0]


@pytest.fixture
def own(cli_binary, tmp_path):
    return Cli(cli_binary, tmp_path / "home")


def test_disk_size_bare_number_is_gib(own):
    """--disk-size 1 is 1 GiB (0.9's unit): the guest's / is about that size."""
    p = own.run("run", "--rm", "--disk-size", "1", BASE, "sh", "-c", "df -k / | tail -1",
                timeout=300)
    assert p.returncode == 0, p.stderr
    size_kib = int(p.stdout.decode().split()[1])
    assert 900 * 1024 < size_kib <= 1024 * 1024, size_kib


def test_disk_size_help_and_bad_units(own):
    """--help names the unit and the suffixes; an unknown unit is one clear error."""
    for command in ("run", "create"):
        p = own.run(command, "--help")
        assert p.returncode == 0
        help_text = p.stdout.decode()
        assert "--disk-size GB" in help_text and "512M" in help_text and "2GiB" in help_text
    p = own.run("create", "--disk-size", "512K", BASE)
    assert p.returncode == 1
    assert "--disk-size must be a whole number of GiB, or one with a unit" in one_error_line(p)
    assert not (own.home / "boxes").exists() or not list((own.home / "boxes").iterdir())


def test_ls_is_lists_alias(own):
    """`ls` lists running boxes like `list` and `ps`; `-a` adds the others."""
    p = own.run("create", "--name", "idle", BASE)
    assert p.returncode == 0, p.stderr
    box_id = p.stdout.decode().strip()
    try:
        for alias in ("ls", "list", "ps"):
            assert own.run(alias, "-q").stdout == b"", alias  # Created, not running.
            assert own.run(alias, "-a", "-q").stdout.split() == [box_id[:12].encode()], alias
        assert "alias of list" in own.run("ls", "--help").stdout.decode()
    finally:
        assert own.run("rm", "idle").returncode == 0

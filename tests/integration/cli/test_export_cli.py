"""`boxlite export` and `boxlite import-box`: a stopped box exported to a file, imported
into another home under a new name, where it boots with the file the first box wrote; a
file that is not a box archive is refused with one line and leaves nothing behind."""
import os

from conftest import Cli

BASE = "boxlite/base"


def one_error_line(p):
    lines = [l for l in p.stderr.splitlines() if not l.startswith(b"boxlite: warning:")]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(b"boxlite")
    return lines[0]


def test_export_then_import_box_into_another_home(fresh_cli, cli_binary, tmp_path):
    src = fresh_cli
    dst = Cli(cli_binary, tmp_path / "home2")
    for command in ("export", "import-box"):
        p = src.run(command, "--help")
        assert p.returncode == 0 and p.stdout.startswith(b"Usage: boxlite " + command.encode())
    try:
        src.run("create", "--name", "cli-src", "--memory", "256", BASE, check=True)
        src.run("start", "cli-src", check=True)
        src.run("exec", "cli-src", "--", "sh", "-c", "echo cli-data > /root/f", check=True)
        src.run("stop", "cli-src", check=True)
        archive = tmp_path / "out.boxlite"
        p = src.run("export", "cli-src", str(archive), check=True)
        assert p.stdout.decode().strip() == str(archive)
        assert archive.stat().st_size > 0
        p = src.run("export", "no-such-box", str(tmp_path))
        assert p.returncode == 1 and b"no-such-box" in one_error_line(p)
        assert sorted(os.listdir(tmp_path)) == ["home", "out.boxlite"]

        p = dst.run("import-box", "--name", "cli-dst", str(archive), check=True)
        new_id = p.stdout.decode().strip()
        p = dst.run("inspect", "--format", "{{.State.Status}}", "cli-dst", check=True)
        assert p.stdout.strip() == b"stopped"
        dst.run("start", "cli-dst", check=True)
        p = dst.run("exec", "cli-dst", "--", "cat", "/root/f", check=True)
        assert p.stdout == b"cli-data\n"
        p = dst.run("inspect", "--format", "{{.Id}}", "cli-dst", check=True)
        assert p.stdout.decode().strip() == new_id
    finally:
        dst.run("rm", "-f", "cli-dst")
        src.run("rm", "-f", "cli-src")


def test_import_box_refuses_what_is_not_a_box_archive(fresh_cli, tmp_path):
    junk = tmp_path / "junk.boxlite"
    junk.write_bytes(b"this is not an archive\n" * 100)
    p = fresh_cli.run("import-box", "--untrusted", str(junk))
    assert p.returncode == 1
    assert b"bad box archive" in one_error_line(p)
    home = fresh_cli.home
    for d in ("boxes", "tmp"):
        assert not (home / d).is_dir() or os.listdir(home / d) == []

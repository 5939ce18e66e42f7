"""`boxlite snapshot create|ls|rm|restore` and `boxlite clone`: the happy paths on one
box (files observed in the guest, snapshot files on the host), each with a bad input (a
one-line error, exit 1), table and JSON output, and --help."""
import json
import re

import pytest

BASE = "boxlite/base"
ID_RE = re.compile(r"^[0-9A-Za-z]{12}$")
SNAPSHOT_KEYS = {"id", "box_id", "name", "created_at", "container_disk_bytes", "size_bytes",
                 "memory", "memory_bytes"}


def one_error_line(p):
    lines = [l for l in p.stderr.splitlines() if not l.startswith(b"boxlite: warning:")]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(b"boxlite")
    return lines[0]


@pytest.mark.parametrize("command", ["snapshot", "clone"])
def test_help(cli, command):
    p = cli.run(command, "--help")
    assert p.returncode == 0
    assert p.stdout.startswith(b"Usage: boxlite " + command.encode())
    assert f"  {command} ".encode() in cli.run("--help").stdout


def test_snapshot_and_clone_commands(fresh_cli):
    cli = fresh_cli
    name = "snap-cli"
    p = cli.run("create", "--name", name, "--memory", "256", BASE)
    assert p.returncode == 0, p.stderr
    box_id = p.stdout.decode().strip()
    clone_id = None
    try:
        assert cli.run("start", name, timeout=300).returncode == 0
        assert cli.run("exec", name, "--", "sh", "-c", "echo one > /root/one").returncode == 0
        p = cli.run("snapshot", "create", "--format", "json", name, "s1")
        assert p.returncode == 0, p.stderr
        made = json.loads(p.stdout)
        assert set(made) == SNAPSHOT_KEYS and made["name"] == "s1" and made["box_id"] == box_id
        assert ID_RE.match(made["id"]) and isinstance(made["created_at"], int)
        disk = cli.home / "boxes" / box_id / "snapshots" / "s1" / "disk.qcow2"
        assert made["container_disk_bytes"] == disk.stat().st_blocks * 512 > 0
        p = cli.run("snapshot", "create", name, "s2")
        assert p.returncode == 0 and ID_RE.match(p.stdout.decode().strip())

        table = cli.run("snapshot", "ls", name).stdout.decode().splitlines()
        assert table[0].split()[:3] == ["NAME", "ID", "CREATED"]
        assert [row.split()[0] for row in table[1:]] == ["s1", "s2"]
        listed = json.loads(cli.run("snapshot", "ls", "--format", "json", name).stdout)
        assert [s["name"] for s in listed] == ["s1", "s2"] and listed[0]["id"] == made["id"]
        assert cli.run("snapshot", "ls", "-q", name).stdout == b"s1\ns2\n"

        # Bad inputs: one line each, exit 1 (2 for a usage error).
        p = cli.run("snapshot", "create", name, "s1")
        assert p.returncode == 1 and b"already has a snapshot" in one_error_line(p)
        p = cli.run("snapshot", "create", name, ".hidden")
        assert p.returncode == 1 and b"invalid snapshot name" in one_error_line(p)
        p = cli.run("snapshot", "restore", name, "s1")
        assert p.returncode == 1 and b"stop it first" in one_error_line(p)
        p = cli.run("snapshot", "rm", name, "nope")
        assert p.returncode == 1 and b"no snapshot" in one_error_line(p)
        p = cli.run("snapshot", "ls", "no-such-box")
        assert p.returncode == 1 and one_error_line(p)
        p = cli.run("snapshot", "frobnicate", name)
        assert p.returncode == 2 and one_error_line(p)

        # A clone of the running box: stopped, then started with the files.
        p = cli.run("clone", "--name", name + "-c", name)
        assert p.returncode == 0, p.stderr
        clone_id = p.stdout.decode().strip()
        assert ID_RE.match(clone_id) and clone_id != box_id
        boxes = {b["Names"]: b for b in json.loads(cli.run("ls", "-a", "--format", "json").stdout)}
        assert boxes[name + "-c"]["Status"] == "stopped"
        assert cli.run("start", name + "-c", timeout=300).returncode == 0
        assert cli.run("exec", name + "-c", "--", "cat", "/root/one").stdout == b"one\n"
        assert one_error_line(cli.run("clone", "no-such-box"))

        # Restore on the stopped box: s1's files, not those written after it.
        assert cli.run("exec", name, "--", "sh", "-c", "rm /root/one; echo two > /root/two").returncode == 0
        assert cli.run("stop", name).returncode == 0
        assert cli.run("snapshot", "restore", name, "s1").returncode == 0
        assert cli.run("start", name, timeout=300).returncode == 0
        p = cli.run("exec", name, "--", "sh", "-c", "cat /root/one; ls /root/two 2>/dev/null || echo none")
        assert p.stdout == b"one\nnone\n", p.stderr

        assert cli.run("snapshot", "rm", name, "s1", "s2").stdout == b"s1\ns2\n"
        assert not (cli.home / "boxes" / box_id / "snapshots" / "s1").exists()
        assert cli.run("snapshot", "ls", "-q", name).stdout == b""
    finally:
        cli.run("rm", "-f", name)
        if clone_id:
            cli.run("rm", "-f", clone_id)
    assert not (cli.home / "boxes" / box_id).exists()

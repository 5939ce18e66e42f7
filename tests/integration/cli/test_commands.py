"""Every CLI command: its happy path, one bad input (a one-line error and a non-zero
exit), and --help."""
import json
import re
import subprocess

import pytest

BASE = "boxlite/base"
COMMANDS = ["run", "create", "exec", "shell", "list", "ls", "ps", "start", "stop", "restart", "rm",
            "logs", "stats", "inspect", "cp", "pull", "images", "rmi", "import", "info", "version",
            "mcp", "serve"]


def one_error_line(p):
    lines = [l for l in p.stderr.splitlines() if not l.startswith(b"boxlite: warning:")]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(b"boxlite")
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(cli, command):
    p = cli.run(command, "--help")
    assert p.returncode == 0
    assert p.stdout.startswith(b"Usage: boxlite " + command.encode())


def test_top_level_help_lists_every_command(cli):
    p = cli.run("--help")
    assert p.returncode == 0
    for command in COMMANDS:
        assert f"  {command} ".encode() in p.stdout


def test_unknown_command_and_flag(cli):
    p = cli.run("frobnicate")
    assert p.returncode == 2 and b"unknown command" in one_error_line(p)
    p = cli.run("run", "--no-such-flag", BASE)
    assert p.returncode == 2 and b"unknown flag" in one_error_line(p)


def test_version_and_info(cli):
    p = cli.run("version")
    assert p.returncode == 0 and p.stdout.startswith(b"boxlite ")
    p = cli.run("info", "--format", "json")
    assert p.returncode == 0
    info = json.loads(p.stdout)
    assert info["accelerator"] in ("kvm", "tcg")
    assert info["accelerator_reason"]
    assert info["kernel"].endswith("vmlinux")
    assert info["home"] == str(cli.home)
    assert int(info["store_bytes"]) >= 0
    p = cli.run("info", "--format", "xml")
    assert p.returncode == 2 and b"--format must be" in one_error_line(p)


@pytest.mark.allow_background_vms
def test_box_commands_happy_paths_and_bad_inputs(cli, tmp_path):
    """create/start/exec/ls/ps/logs/inspect/cp/stop/rm on one box, and each with a bad
    input."""
    name = "cmd-box"
    p = cli.run("create", "--name", name, BASE)
    assert p.returncode == 0, p.stderr
    box_id = p.stdout.decode().strip()
    try:
        assert re.fullmatch(r"[0-9A-Za-z]{12}", box_id), box_id  # BoxLite 0.9's ids.
        assert one_error_line(cli.run("create", "--cpus", "99", BASE))
        ps = cli.run("ps")
        assert name.encode() not in ps.stdout  # Created, not running.
        assert name.encode() in cli.run("ps", "-a").stdout
        assert cli.run("start", name, timeout=300).returncode == 0
        assert one_error_line(cli.run("start", "no-such-box"))
        assert name.encode() in cli.run("ps").stdout
        assert box_id[:12].encode() in cli.run("ls", "-a", "-q").stdout
        p = cli.run("exec", name, "sh", "-c", "echo to-log > /dev/console; echo out")
        assert p.stdout == b"out\n"
        assert cli.run("exec", "no-such-box", "true").returncode == 1
        assert b"to-log" in cli.run("logs", name).stdout
        assert one_error_line(cli.run("logs", "no-such-box"))
        info = json.loads(cli.run("inspect", name).stdout)[0]
        assert info["id"] == box_id and info["state"] == "running"
        assert one_error_line(cli.run("inspect", "no-such-box"))
        (tmp_path / "f").write_text("copied\n")
        assert cli.run("cp", str(tmp_path / "f"), f"{name}:/root/f").returncode == 0
        assert cli.run("exec", name, "cat", "/root/f").stdout == b"copied\n"
        assert one_error_line(cli.run("cp", str(tmp_path / "f"), str(tmp_path / "g")))
        assert one_error_line(cli.run("ls", "--format", "xml"))
        p = cli.run("rm", name)
        assert p.returncode != 0 and b"running" in one_error_line(p)
        assert cli.run("stop", name).returncode == 0
        assert one_error_line(cli.run("stop", "no-such-box"))
        assert cli.run("rm", name).returncode == 0
        assert one_error_line(cli.run("rm", name))
    finally:
        cli.run("rm", "-f", name)


def test_image_commands(cli, registry, test_images, tmp_path):
    """pull/images/rmi/import with their bad inputs."""
    from conftest import Cli
    c = Cli(cli.binary, tmp_path / "home", registry.env())
    ref = registry.refs["busybox"]
    p = c.run("pull", ref, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == ref
    assert b"Digest: sha256:" in p.stderr
    assert one_error_line(c.run("pull", "BAD REF"))
    table = c.run("images").stdout.decode()
    assert table.startswith("REFERENCE") and ref in table
    assert one_error_line(c.run("images", "--format", "xml"))
    assert c.run("rmi", ref).returncode == 0
    assert one_error_line(c.run("rmi", ref))
    p = c.run("import", test_images.base_tarball, "--tag", "mine/base:7")
    assert p.returncode == 0 and b"mine/base:7" in p.stdout
    assert one_error_line(c.run("import", str(tmp_path / "no-such-file.tar")))


def test_run_without_rm_keeps_a_stopped_box(cli):
    """`run` without --rm leaves a stopped box behind, as docker does; rm removes it."""
    p = cli.run("run", "--name", "kept-run", BASE, "sh", "-c", "echo x > /root/y")
    assert p.returncode == 0, p.stderr
    try:
        states = {b["name"]: b["state"] for b in json.loads(cli.run("ls", "-a", "--format", "json").stdout)}
        assert states.get("kept-run") == "stopped"
    finally:
        assert cli.run("rm", "kept-run").returncode == 0


def test_run_timings_report_the_start_of_a_box_whose_command_ended(cli):
    """`run --timings` reads create and boot while the box runs: its command ends (and the box
    stops) before the line is printed, and a stopped box has no metrics."""
    p = cli.run("run", "--rm", "--timings", BASE, "true")
    assert p.returncode == 0, p.stderr
    err = p.stderr.decode() if isinstance(p.stderr, bytes) else p.stderr
    m = re.search(r"timings: create ([0-9.]+)s, boot ([0-9.]+)s, exec ([0-9.]+)s, total ([0-9.]+)s",
                  err)
    assert m, err
    create, boot, _exec, total = (float(v) for v in m.groups())
    assert boot > 0 and create > 0, err
    assert create + boot <= total, err


def test_shell_bad_image(cli):
    p = cli.run("shell", "127.0.0.1:1/nothing:latest")
    assert p.returncode == 1
    assert one_error_line(p)

"""BoxLite 0.9's CLI beside ours: list/restart/stats, --format json|yaml|Go template on
list/inspect/images/info/stats, exec BOX -- CMD, the one -e rule, -p with an automatic
host port, --entrypoint, --network enabled|disabled, and the exit codes 0/1/2/N/128+N.

Most checks share one detached box (booted once per module) in a home of its own, so the
counts `info` reports are exactly this module's boxes."""
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
import yaml

from conftest import Cli, qemu_processes, wait_for

BASE = "boxlite/base"
BOX = "compat-cli"
HOST_VAR = "BOXLITE_COMPAT_HOST_VAR"


def error_lines(p):
    return [l for l in p.stderr.splitlines() if not l.startswith(b"boxlite: warning:")]


def one_error_line(p):
    lines = error_lines(p)
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(b"boxlite")
    return lines[0].decode()


@pytest.fixture(scope="module")
def home_cli(cli_binary, tmp_path_factory):
    """The CLI with a home used only by this module."""
    return Cli(cli_binary, tmp_path_factory.mktemp("compat-cli-home"),
               {HOST_VAR: "from the host"})


@pytest.fixture(scope="module")
def box(home_cli):
    """One detached box: 2 CPUs, 256 MiB, guest port 8080 published on a free host port,
    and HOST_VAR copied from the CLI's environment by a bare -e."""
    p = home_cli.run("run", "-d", "--name", BOX, "--cpus", "2", "--memory", "256",
                     "-p", "8080", "-e", HOST_VAR, BASE, "sleep", "3600", timeout=300)
    assert p.returncode == 0, p.stderr
    box_id = p.stdout.decode().strip()
    yield box_id
    home_cli.run("rm", "-f", BOX)


def inspect(cli, *args):
    p = cli.run("inspect", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


# --- Command line: help and usage errors (no VM) ---------------------------------------

@pytest.mark.parametrize("command,flags", [
    ("list", ["--all", "--quiet", "--format"]),
    ("restart", []),
    ("stats", ["--format", "--stream"]),
    ("inspect", ["--format", "--latest"]),
    ("run", ["--entrypoint", "--cap-add", "--cap-drop", "--security", "--publish",
             "--network", "--detach", "--rm", "--rootfs"]),
    ("create", ["--entrypoint", "--cap-add", "--cap-drop", "--security", "--publish"]),
    ("exec", ["--detach", "--interactive", "--tty", "--env", "--workdir", "--user"]),
    ("cp", ["--follow-symlinks", "--no-overwrite", "--include-parent"]),
    ("logs", ["--tail", "--follow"]),
    ("rm", ["--all", "--force"]),
    ("images", ["--format", "--quiet", "--all"]),
    ("info", ["--format"]),
])
def test_help_lists_the_09_flags(cli, command, flags):
    p = cli.run(command, "--help")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"Usage: boxlite " + command.encode())
    for flag in flags:
        assert flag.encode() in p.stdout, flag


@pytest.mark.parametrize("args,says", [
    ([], None),
    (["frobnicate"], "unknown command"),
    (["list", "--no-such-flag"], "unknown flag"),
    (["start"], "start needs a BOX"),
    (["stop"], "stop needs a BOX"),
    (["restart"], "restart needs a BOX"),
    (["rm"], "rm needs a BOX"),
    (["rm", "-a", "x"], "not both"),
    (["stats"], "stats needs one BOX"),
    (["inspect"], "inspect needs a BOX"),
    (["exec", "box"], "exec needs a BOX and a COMMAND"),
    (["exec", "box", "--"], "exec needs a BOX and a COMMAND"),
    (["exec", "box", "-z", "--", "true"], "unknown flag: -z"),
    (["exec", "box", "-e", "A=1", "other", "--", "true"], "one BOX before --"),
    (["run"], "run needs an IMAGE"),
    (["run", "-d", "--rm", BASE], "cannot be combined"),
    (["cp", "a"], "cp takes SRC and DEST"),
    (["cp", "--include-parent=maybe", "a", "b:/c"], "takes true or false"),
    (["list", "--format", "xml"], "--format must be table, json or yaml"),
    (["images", "--format", "xml"], "--format must be table, json or yaml"),
    (["info", "--format", "xml"], "--format must be text, table, json or yaml"),
    (["stats", "--format", "xml", "box"], "--format must be"),
    (["inspect", "--format", "xml", "box"], "or a Go template"),
    (["inspect", "-f", "{{if .State.Running}}up{{end}}", "box"], "{{if .State.Running}}"),
    (["inspect", "-f", "{{.Name", "box"], "unclosed action"),
])
def test_usage_errors_exit_2_with_one_line(home_cli, args, says):
    p = home_cli.run(*args)
    assert p.returncode == 2, p.stderr
    if says is None:  # No command at all: the command list, on stdout.
        assert b"Commands:" in p.stdout
        return
    line = one_error_line(p)
    assert says in line, line


def test_tty_needs_a_terminal(cli_binary, tmp_path):
    """-t with stdin that is not a terminal fails before anything is created."""
    c = Cli(cli_binary, tmp_path / "home")
    for args in (["run", "-t", "--rm", BASE, "true"], ["run", "-it", BASE, "sh"],
                 ["exec", "-t", "any-box", "--", "true"]):
        p = c.run(*args, input=b"")
        assert p.returncode == 1, p.stderr
        assert "the input device is not a TTY." in one_error_line(p)
    assert json.loads(c.run("list", "-a", "--format", "json").stdout) == []


def test_bad_option_values_exit_1(home_cli):
    cases = [
        (["create", "-p", "80/udp", BASE], "only TCP ports can be published"),
        (["create", "-p", "300.1.1.1:80:80", BASE], "is not an IPv4 address"),
        (["create", "-p", "99999", BASE], "guest port must be a number from 1 to 65535"),
        (["create", "-e", "=value", BASE], "has no name"),
        (["create", "--security", "maybe", BASE], "--security must be enable or disable"),
        (["run", "--rm", "-e", "=x", BASE, "true"], "has no name"),
    ]
    before = home_cli.run("list", "-a", "-q").stdout
    for args, says in cases:
        p = home_cli.run(*args)
        assert p.returncode == 1, (args, p.stderr)
        assert says in one_error_line(p), args
    assert home_cli.run("list", "-a", "-q").stdout == before  # Nothing was created.
    p = home_cli.run("create", "--security", "maybe", BASE, env={"BOXLITE_SECURITY": "enable"})
    assert p.returncode == 1  # The flag wins over the environment.
    p = home_cli.run("create", BASE, env={"BOXLITE_SECURITY": "sometimes"})
    assert p.returncode == 1 and "--security must be enable or disable" in one_error_line(p)


def test_parse_port_spec_in_python():
    """The SDK reaches the CLI's -p parser through the binding (one parser)."""
    from boxlite import _boxlite as core
    from boxlite.errors import ConfigError
    assert core.parse_port_spec("8080:80") == {
        "host_port": 8080, "guest_port": 80, "host_ip": "127.0.0.1", "protocol": "tcp"}
    assert core.parse_port_spec("443/tcp")["host_port"] == 0
    with pytest.raises(ConfigError, match="only TCP ports"):
        core.parse_port_spec("53/udp")


# --- One shared box --------------------------------------------------------------------

def test_exec_forms_env_rule_and_exit_codes(home_cli, box):
    """exec BOX -- CMD (0.9) and exec BOX CMD (ours); -e NAME copies the host's value on
    exec as on run/create; -w/-u; exit N and 128+N pass through; -d runs detached."""
    p = home_cli.run("exec", BOX, "--", "sh", "-c", 'echo "$0 $1"', "a", "b")
    assert (p.returncode, p.stdout) == (0, b"a b\n"), p.stderr
    p = home_cli.run("exec", BOX, "echo", "--", "kept")  # Ours: the -- belongs to echo.
    assert p.stdout == b"-- kept\n", p.stderr
    p = home_cli.run("exec", BOX, "--", "sh", "-c", f'echo "${HOST_VAR}"')  # Set by `run -e NAME`.
    assert p.stdout == b"from the host\n", p.stderr
    p = home_cli.run("exec", "-e", HOST_VAR, "-e", "B=2", "-w", "/tmp", "-u", "1000:1000", BOX,
                     "--", "sh", "-c", f'echo "${HOST_VAR}|$B|$(pwd)|$(id -u):$(id -g)"',
                     env={HOST_VAR: "changed on the host"})
    assert p.stdout == b"changed on the host|2|/tmp|1000:1000\n", p.stderr
    p = home_cli.run("exec", BOX, "-e", "B=3", "-w", "/tmp", "--", "sh", "-c", 'echo "$B $(pwd)"')
    assert p.stdout == b"3 /tmp\n", p.stderr  # 0.9 also takes flags between BOX and --.
    assert home_cli.run("exec", BOX, "--", "sh", "-c", "exit 7").returncode == 7
    assert home_cli.run("exec", BOX, "--", "sh", "-c", "kill -TERM $$").returncode == 128 + 15
    assert home_cli.run("exec", BOX, "--", "sh", "-c", "kill -KILL $$").returncode == 128 + 9
    p = home_cli.run("exec", BOX, "--", "/no/such/program")
    assert p.returncode == 127, p.stderr
    p = home_cli.run("exec", "no-such-box", "--", "true")
    assert p.returncode == 1 and "no-such-box" in one_error_line(p)
    p = home_cli.run("exec", "-d", BOX, "--", "sh", "-c", "echo detached > /tmp/d")
    assert p.returncode == 0, p.stderr
    out = home_cli.run("exec", BOX, "--", "sh", "-c",
                       "for i in $(seq 50); do [ -s /tmp/d ] && break; sleep 0.1; done; cat /tmp/d")
    assert out.stdout == b"detached\n"


def test_list_formats_match_the_box(home_cli, box):
    table = home_cli.run("list").stdout.decode().splitlines()
    assert table[0].split()[:5] == ["ID", "IMAGE", "STATUS", "CREATED", "NAMES"]
    assert any(box[:12] in row and BOX in row and "running" in row for row in table[1:])
    real = inspect(home_cli, BOX)[0]
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        p = home_cli.run("list", "-a", "--format", fmt)
        assert p.returncode == 0, p.stderr
        rows = [r for r in load(p.stdout) if r["ID"] == box]
        assert len(rows) == 1, p.stdout
        row = rows[0]
        assert row["Names"] == BOX and row["Status"] == "running"
        assert row["Image"] == real["Image"] and row["CreatedAt"] == real["Created"]
        assert (row["id"], row["name"], row["state"]) == (box, BOX, "running")  # Ours too.
    for alias in ("ps", "ls"):
        assert box[:12].encode() in home_cli.run(alias, "-q").stdout
    assert home_cli.run("list", "-q").stdout.split() == [box[:12].encode()]


def test_inspect_formats_and_templates(home_cli, box):
    real = inspect(home_cli, BOX)[0]
    assert real["Id"] == box and real["Name"] == BOX
    assert real["State"]["Status"] == "running" and real["State"]["Running"] is True
    pid = real["State"]["Pid"]
    assert pid in qemu_processes(), "State.Pid is not the box's running VM"
    assert os.path.exists(f"/proc/{pid}")
    # Cpus and Memory as the guest sees them.
    guest = home_cli.run("exec", BOX, "--", "sh", "-c", "nproc; grep MemTotal /proc/meminfo")
    nproc, mem = guest.stdout.decode().splitlines()
    assert real["Cpus"] == int(nproc) == 2
    assert real["Memory"] == 256 and 200 * 1024 < int(mem.split()[1]) <= 256 * 1024
    assert real["id"] == box and real["state"] == "running"  # Ours beside 0.9's.

    p = home_cli.run("inspect", "--format", "yaml", BOX)
    assert yaml.safe_load(p.stdout)[0]["State"] == real["State"]
    assert yaml.safe_load(p.stdout)[0]["Created"] == real["Created"]  # Still a string.
    p = home_cli.run("inspect", "-f", "{{.State.Status}}", BOX)
    assert p.stdout == b"running\n", p.stderr
    p = home_cli.run("inspect", "-f", "name={{.Name}} cpus={{.Cpus}} pid={{.State.Pid}}", BOX)
    assert p.stdout.decode() == f"name={BOX} cpus=2 pid={pid}\n"
    p = home_cli.run("inspect", "-f", "{{json .State}}", BOX)
    assert json.loads(p.stdout) == real["State"]
    p = home_cli.run("inspect", "-l", "-f", "{{.Id}}")
    assert p.stdout.decode().strip() == box  # The only box of this home.

    p = home_cli.run("inspect", "-f", "{{.State.Nope}}", BOX)
    assert p.returncode == 2 and ".State.Nope" in one_error_line(p)
    p = home_cli.run("inspect", BOX, "no-such-box")  # The found one is printed.
    assert p.returncode == 1 and "no-such-box" in one_error_line(p)
    assert json.loads(p.stdout)[0]["Id"] == box


def test_info_and_images_formats(home_cli, box):
    version = home_cli.run("version").stdout.decode().split()[1]
    boxes = json.loads(home_cli.run("list", "-a", "--format", "json").stdout)
    images = json.loads(home_cli.run("images", "--format", "json").stdout)
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        p = home_cli.run("info", "--format", fmt)
        assert p.returncode == 0, p.stderr
        info = load(p.stdout)
        assert info["version"] == version and info["homeDir"] == str(home_cli.home)
        assert info["os"] == "linux" and info["arch"] == os.uname().machine
        assert info["virtualization"] in ("kvm", "tcg")
        assert info["boxesTotal"] == len(boxes)
        assert info["boxesRunning"] == sum(b["Status"] == "running" for b in boxes) >= 1
        assert info["boxesStopped"] == sum(b["Status"] == "stopped" for b in boxes)
        assert info["boxesConfigured"] == sum(b["Status"] in ("configured", "created")
                                              for b in boxes)
        assert info["imagesCount"] == len(images)
        assert info["home"] == str(home_cli.home)  # Ours beside 0.9's.
    assert "homeDir:" in home_cli.run("info").stdout.decode()
    as_yaml = yaml.safe_load(home_cli.run("images", "--format", "yaml").stdout)
    assert as_yaml == images
    ids = home_cli.run("images", "-q").stdout.decode().split()
    assert len(ids) == len(images)
    assert all(any(img["id"].split(":")[-1].startswith(i) for img in images) for i in ids)


def test_logs_tail_and_follow(home_cli, box):
    home_cli.run("exec", BOX, "--", "sh", "-c",
                 "echo compat-one > /dev/console; echo compat-two > /dev/console", check=True)
    # The console reaches the log through the console writer, a moment after the exec
    # returns (longer on a loaded host): poll for it.
    want = [b"compat-one", b"compat-two"]

    def tail():
        r = home_cli.run("logs", "-n", "2", BOX)
        return r if r.stdout.splitlines()[-2:] == want else None

    p = wait_for(tail, timeout=60) or home_cli.run("logs", "-n", "2", BOX)
    assert p.stdout.splitlines()[-2:] == want, p.stdout[-200:]
    assert len(p.stdout.splitlines()) <= 2
    assert home_cli.run("logs", "--tail", "x", BOX).returncode == 2
    proc = home_cli.popen("logs", "-f", "-n", "1", BOX, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().rstrip() == b"compat-two"  # Console lines end in CR LF.
        home_cli.run("exec", BOX, "--", "sh", "-c", "echo compat-three > /dev/console",
                     check=True)
        assert proc.stdout.readline().rstrip() == b"compat-three"  # Followed.
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0


def test_published_port_gets_an_automatic_host_port(home_cli, box):
    ports = inspect(home_cli, BOX)[0]["ports"]
    assert len(ports) == 1 and ports[0]["guest"] == 8080
    host_port = ports[0]["host"]
    assert host_port != 0 and ports[0]["host_ip"] == "127.0.0.1"
    home_cli.run("exec", BOX, "--", "sh", "-c",
                 "mkdir -p /www && echo served-by-the-box > /www/index.html", check=True)
    home_cli.run("exec", "-d", BOX, "--", "httpd", "-f", "-p", "8080", "-h", "/www", check=True)
    body = None
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/index.html",
                                        timeout=5) as r:
                body = r.read()
            break
        except OSError:
            time.sleep(0.1)
    assert body == b"served-by-the-box\n"


def test_stats_once_and_streamed(home_cli, box):
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        p = home_cli.run("stats", "--format", fmt, BOX)
        assert p.returncode == 0, p.stderr
        s = load(p.stdout)
        assert s["id"] == box and s["name"] == BOX
        assert s["memory_rss_bytes"] > 0 and s["cpu_seconds"] > 0
        assert 200 << 20 < s["guest_memory_total_bytes"] <= 256 << 20
    table = home_cli.run("stats", BOX).stdout.decode().splitlines()
    assert table[0].split()[:2] == ["ID", "NAME"] and box[:12] in table[1]
    p = home_cli.run("stats", "no-such-box")
    assert p.returncode == 1 and "no-such-box" in one_error_line(p)

    proc = home_cli.popen("stats", "-s", "--format", "json", BOX, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        samples = [json.loads(proc.stdout.readline()) for _ in range(2)]
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert all(s["id"] == box for s in samples)
    assert samples[1]["cpu_seconds"] >= samples[0]["cpu_seconds"]
    for line in rest.splitlines():
        json.loads(line)


@pytest.mark.allow_background_vms
def test_restart_ends_a_stream_and_boots_a_new_vm(home_cli, box):
    """restart stops and starts the box: a new VM; a stats stream on it ends by itself
    when the box stops."""
    old_pid = inspect(home_cli, BOX)[0]["State"]["Pid"]
    proc = home_cli.popen("stats", "-s", "--format", "json", BOX, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        json.loads(proc.stdout.readline())  # Streaming.
        p = home_cli.run("restart", BOX, timeout=300)
        assert p.returncode == 0 and p.stdout == f"{BOX}\n".encode(), p.stderr
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    after = inspect(home_cli, BOX)[0]
    assert after["State"]["Status"] == "running" and after["State"]["Pid"] != old_pid
    assert old_pid not in qemu_processes()
    # The box's options stay.
    p = home_cli.run("exec", BOX, "--", "sh", "-c", f'echo "${HOST_VAR}"')
    assert p.stdout == b"from the host\n"
    p = home_cli.run("restart", BOX, "no-such-box", timeout=300)
    assert p.returncode == 1 and "no-such-box" in one_error_line(p)
    assert p.stdout == f"{BOX}\n".encode()  # The good one was still restarted.


# --- Fresh boxes -----------------------------------------------------------------------

def test_run_entrypoint_env_network_rootfs_and_exit_codes(home_cli, test_images):
    """run --entrypoint EXEC replaces the image's entrypoint; a bare -e copies the host's
    value; --network disabled leaves only loopback; --rootfs boots a local OCI layout
    (then every positional is the command); the exit code passes through, 128+N for a
    signal."""
    script = f'echo "${HOST_VAR}"; ls /sys/class/net; exit 5'
    p = home_cli.run("run", "--rm", "--network", "disabled", "-e", HOST_VAR,
                     "--entrypoint", "/bin/sh", BASE, "-c", script, timeout=300)
    assert p.returncode == 5, p.stderr
    assert p.stdout.decode().splitlines() == ["from the host", "lo"]
    p = home_cli.run("run", "--rm", "--network", "enabled", "--rootfs",
                     test_images.layout("busybox"), "sh", "-c",
                     "ls /sys/class/net; kill -KILL $$", timeout=300)
    assert p.returncode == 128 + 9, p.stderr
    assert set(p.stdout.decode().split()) - {"lo"}, "no network device with --network enabled"


def test_create_rm_all_and_aggregated_errors(cli_binary, tmp_path):
    """create [IMAGE] [COMMAND] prints an id and boots nothing; rm reports every failure
    and still removes the rest; rm -a removes every box."""
    c = Cli(cli_binary, tmp_path / "home")
    before = set(qemu_processes())
    ids = []
    for name, extra in (("one", []), ("two", ["sh", "-c", "echo hi"])):
        p = c.run("create", "--name", name, "--entrypoint", "/bin/sh", "-p", "9000:90",
                  BASE, *extra)
        assert p.returncode == 0, p.stderr
        ids.append(p.stdout.decode().strip())
    assert set(qemu_processes()) == before  # Created, not started.
    listed = json.loads(c.run("list", "-a", "--format", "json").stdout)
    assert {b["ID"] for b in listed} == set(ids)
    # Never started ("stopped" until the core reports 0.9's "configured").
    assert all(b["Status"] in ("configured", "created", "stopped") for b in listed)
    assert c.run("list", "-q").stdout == b""  # None is running.

    p = c.run("rm", "one", "no-such-box", "other-missing")
    assert p.returncode == 1
    lines = error_lines(p)
    assert len(lines) == 2 and b"no-such-box" in lines[0] and b"other-missing" in lines[1]
    assert p.stdout == b"one\n"
    p = c.run("stop", "missing-a", "missing-b")
    assert p.returncode == 1 and len(error_lines(p)) == 2
    p = c.run("start", "missing-a", "missing-b")
    assert p.returncode == 1 and len(error_lines(p)) == 2

    c.run("create", "--name", "three", BASE, check=True)
    p = c.run("rm", "-a")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.split()) == 2
    assert json.loads(c.run("list", "-a", "--format", "json").stdout) == []
    assert c.run("rm", "-a").returncode == 0  # Nothing to remove is not an error.


# --- Flags whose effect lives in the core --------------------------------------------------
# The CLI passes these on (BoxOptions.security / capabilities / entrypoint / cmd and
# CopyOptions); the core enforces them, and these tests look at the effect.

def qemu_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_default_security_confines_the_vm(home_cli, box):
    pid = inspect(home_cli, BOX)[0]["State"]["Pid"]
    assert qemu_status(pid)["Seccomp"] == "2"  # A seccomp filter.


@pytest.mark.allow_background_vms
def test_security_disable_is_accepted_and_the_vm_stays_confined(cli_binary, tmp_path):
    """--security disable (0.9's preset) is accepted; BoxLite's host jail stays on anyway
    (docs/security.md): QEMU still runs under its seccomp filter, not as root."""
    c = Cli(cli_binary, tmp_path / "home")
    p = c.run("run", "-d", "--name", "open", "--security", "disable", BASE, "sleep", "600",
              timeout=300)
    assert p.returncode == 0, p.stderr
    try:
        status = qemu_status(inspect(c, "open")[0]["State"]["Pid"])
        assert status["Seccomp"] == "2"
        assert status["Uid"].split()[0] != "0"
    finally:
        c.run("rm", "-f", "open")


def test_cap_drop_all_and_cap_add_one(home_cli):
    p = home_cli.run("run", "--rm", "--cap-drop", "ALL", "--cap-add", "CHOWN", BASE, "sh", "-c",
                     "grep CapEff /proc/self/status", timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[1] == b"0000000000000001"  # CAP_CHOWN only.
    p = home_cli.run("create", "--cap-add", "NOT_A_CAPABILITY", BASE)
    assert p.returncode == 1 and "NOT_A_CAPABILITY" in one_error_line(p)


@pytest.mark.allow_background_vms
def test_create_command_is_the_main_command(cli_binary, tmp_path):
    from conftest import wait_for
    c = Cli(cli_binary, tmp_path / "home")
    c.run("create", "--name", "main", "--entrypoint", "/bin/sh", BASE, "-c", "exit 3", check=True)
    try:
        assert c.run("start", "main", timeout=300).returncode == 0
        state = wait_for(lambda: inspect(c, "main")[0]["State"]["Status"] == "stopped",
                         timeout=30, interval=0.5)
        assert state
        assert inspect(c, "main")[0]["State"]["ExitCode"] == 3
    finally:
        c.run("rm", "-f", "main")


def test_cp_copy_options(home_cli, box, tmp_path):
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("new\n")
    (tmp_path / "real").write_text("target\n")
    os.symlink(tmp_path / "real", src / "link")
    home_cli.run("exec", BOX, "--", "sh", "-c", "mkdir -p /cp && echo old > /cp/f", check=True)
    p = home_cli.run("cp", "--no-overwrite", str(src / "sub" / "f"), f"{BOX}:/cp/f")
    assert p.returncode == 1, p.stderr
    assert home_cli.run("exec", BOX, "--", "cat", "/cp/f").stdout == b"old\n"
    p = home_cli.run("cp", "--include-parent=false", "-L", str(src), f"{BOX}:/cp/flat")
    assert p.returncode == 0, p.stderr
    out = home_cli.run("exec", BOX, "--", "sh", "-c", "cat /cp/flat/sub/f /cp/flat/link; "
                       "[ -L /cp/flat/link ] || echo not-a-link")
    assert out.stdout == b"new\ntarget\nnot-a-link\n"

# Shared fixtures of the integration tests: every test boots real VMs (TCG where KVM is
# not usable) through the real `boxlite` CLI or SDK, from images built locally and served
# by loopback registries (harness/). A monitor (leak_monitor) checks after every test that
# no box process, file of an ephemeral box, socket of this process or mount is left behind.
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.leaks import LeakMonitor, live_processes, holds_file_under
from harness.waiting import wait_for  # noqa: F401 (tests import it from here)

pytest_plugins = ["harness.fixtures"]

REPO = Path(__file__).resolve().parents[2]
# Marks the CLI processes of this test session. VMs do not inherit it (they get no caller
# environment): the leak monitor knows this session's VMs by their descriptors on files
# under SESSION_ROOTS (the homes and temp roots of this session's boxes) and ignores VMs
# that other programs on the machine run.
SESSION_MARK = f"BOXLITE_TEST_SESSION={os.getpid()}-{time.time_ns()}"
SESSION_ROOTS = set()


def add_session_root(path):
    """Counts the VMs of boxes whose home (or a file) lies under `path` as this session's."""
    SESSION_ROOTS.add(os.path.realpath(str(path)).rstrip("/") + "/")


def _find_cli():
    env = os.environ.get("BOXLITE_CLI")
    if env:
        return env
    build = Path(os.environ.get("BOXLITE_BUILD_DIR", REPO / "build"))
    built = build / "src" / "cli" / "boxlite"
    if built.exists():
        return str(built)
    found = shutil.which("boxlite")
    if found:
        return found
    raise RuntimeError("no boxlite CLI: run `make test` (it builds and installs one)")


class Cli:
    """Runs the boxlite CLI with a private BOXLITE_HOME."""

    def __init__(self, binary, home, extra_env=None):
        self.binary = binary
        self.home = Path(home)
        self.env = dict(os.environ)
        self.env["BOXLITE_HOME"] = str(home)
        add_session_root(home)
        self.env.pop("BOXLITE_REGISTRY_MIRRORS", None)
        key, value = SESSION_MARK.split("=", 1)
        self.env[key] = value
        self.env.update(extra_env or {})

    def run(self, *args, input=None, timeout=180, env=None, check=False, preexec=None):
        full_env = dict(self.env)
        full_env.update(env or {})
        proc = subprocess.run([self.binary, *args], input=input, capture_output=True,
                              timeout=timeout, env=full_env, preexec_fn=preexec)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"boxlite {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    def popen(self, *args, **kwargs):
        kwargs.setdefault("env", self.env)
        return subprocess.Popen([*self.prefix(), self.binary, *args], **kwargs)

    def prefix(self):
        return []


class UnprivilegedCli(Cli):
    """The CLI run as uid/gid 65534 (nobody) with a home it owns: no root anywhere."""

    def __init__(self, binary, home):
        home = Path(home)
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, 65534, 65534)
        super().__init__(binary, home, {"HOME": str(home), "USER": "nobody"})

    def prefix(self):
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

    def run(self, *args, input=None, timeout=180, env=None, check=False, preexec=None):
        full_env = dict(self.env)
        full_env.update(env or {})
        proc = subprocess.run([*self.prefix(), self.binary, *args], input=input,
                              capture_output=True, timeout=timeout, env=full_env)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"boxlite {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc


@pytest.fixture(scope="session")
def cli_binary():
    return _find_cli()


@pytest.fixture(scope="session")
def cli(cli_binary, tmp_path_factory):
    """The CLI with one home shared by the session (images are imported once)."""
    return Cli(cli_binary, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
def nobody_cli(cli_binary):
    """The CLI as an unprivileged user (uid 65534) with a writable home of its own."""
    # pytest's temp root is private to root, so the home lives in /tmp directly.
    base = Path(tempfile.mkdtemp(prefix="boxlite-nobody-"))
    os.chmod(base, 0o755)
    yield UnprivilegedCli(cli_binary, base / "home")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["root", "unprivileged"])
def any_cli(request, cli, nobody_cli):
    """Runs a test as root and again as an unprivileged user."""
    return cli if request.param == "root" else nobody_cli


@pytest.fixture
def fresh_cli(cli_binary, tmp_path):
    """The CLI with a home of its own (for tests about the home's contents)."""
    return Cli(cli_binary, tmp_path / "home")


def qemu_processes(mine=True):
    """Live (non-zombie) QEMU processes (of this test session): pid -> command line."""
    out = {}
    for pid, _, argv in live_processes():
        cmd = b" ".join(argv).decode(errors="replace")
        if cmd.startswith("qemu-system"):
            if mine and not _holds_session_file(pid):
                continue
            out[pid] = cmd
    return out


def _holds_session_file(pid):
    """True when process `pid` has a descriptor on a file under SESSION_ROOTS (its disk,
    console or base image lives in a home of this session)."""
    return holds_file_under(pid, SESSION_ROOTS)


@pytest.fixture(scope="session", autouse=True)
def _session_roots(tmp_path_factory):
    add_session_root(tmp_path_factory.getbasetemp())


@pytest.fixture(autouse=True)
def leak_monitor(request):
    """Fails a test that leaves behind what it started (harness/leaks.py): box processes
    (VMs, network helpers, console writers) of this session, entries in a session home's
    tmp/, sockets of this test process, or mounts in the host's namespace under this
    session's roots or /tmp. Tests marked allow_background_vms may leave box processes."""
    monitor = LeakMonitor(SESSION_ROOTS)
    yield
    monitor.check(allow_processes=bool(request.node.get_closest_marker("allow_background_vms")))


def pytest_collection_modifyitems(config, items):
    """The harness's self-tests (harness/) carry the `harness_selftest` mark: they test the
    test tools (registries, image builders), not BoxLite, and are reported on their own
    (pytest_terminal_summary below; `-m harness_selftest` runs only them)."""
    harness = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness") + os.sep
    for item in items:
        if str(item.fspath).startswith(harness):
            item.add_marker(pytest.mark.harness_selftest)


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "allow_background_vms: the test leaves detached boxes on purpose")
    config.addinivalue_line("markers",
                            "harness_selftest: a test of the test harness itself, not of BoxLite")


def pytest_terminal_summary(terminalreporter):
    """The harness's self-tests' results, apart from BoxLite's: scripts/test.sh runs both
    in one session (one set of registries and images) and reports them as two lines."""
    counts = {}
    for outcome, reports in terminalreporter.stats.items():
        for r in reports:
            if getattr(r, "when", None) not in ("setup", "call", "teardown"):
                continue
            if "harness_selftest" not in r.keywords:
                continue
            if r.when == "call" or r.outcome != "passed":
                counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        terminalreporter.section("harness self-tests (the test tools: registries, image builders)")
        terminalreporter.line(", ".join(f"{n} {o}" for o, n in sorted(counts.items())) +
                              " (included in the totals below)")

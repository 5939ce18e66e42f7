"""Interactive terminals: `boxlite run -it`, `exec -it`, `shell` and the Python
InteractiveBox, driven through a real terminal emulator (tmux)."""
import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import wait_for

PY_INTERACTIVE = """
import asyncio, sys, boxlite
async def main():
    async with boxlite.InteractiveBox(image="boxlite/base", shell="/bin/sh") as box:
        return await box.wait()
code = asyncio.run(main())
print("EXIT=%d" % code)
"""

PY_SYNC_INTERACTIVE = """
import boxlite.sync
with boxlite.sync.InteractiveBox(image="boxlite/base", shell="/bin/sh") as box:
    code = box.wait()
print("EXIT=%d" % code)
"""


class Terminal:
    """A tmux session running bash, with helpers to type and read the screen."""

    def __init__(self, env, workdir):
        self.sock = "boxlite-" + uuid.uuid4().hex[:8]
        self.env = env
        self.workdir = workdir
        self._tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30",
                   "env -i PATH=/usr/local/bin:/usr/bin:/bin TERM=xterm HOME=%s bash --norc --noprofile"
                   % shlex.quote(str(workdir)))
        self._tmux("set-option", "-g", "status", "off")
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.type(f"export {exports}; PS1='host$ '; clear")
        self.wait_for_text("host$")

    def _tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True,
                              capture_output=True, text=True)

    def type(self, text, enter=True):
        self._tmux("send-keys", "-t", "t", "-l", text)
        if enter:
            self._tmux("send-keys", "-t", "t", "Enter")

    def key(self, name):
        self._tmux("send-keys", "-t", "t", name)

    def screen(self):
        return self._tmux("capture-pane", "-p", "-t", "t", "-S", "-200").stdout

    def wait_for_text(self, text, timeout=120):
        found = wait_for(lambda: text in self.screen(), timeout=timeout, interval=0.1)
        assert found, f"{text!r} did not appear; screen:\n{self.screen()}"

    def resize(self, cols, rows):
        self._tmux("resize-window", "-t", "t", "-x", str(cols), "-y", str(rows))

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


@pytest.fixture
def term(cli, cli_binary, tmp_path):
    env = {k: v for k, v in cli.env.items()
           if k.startswith("BOXLITE") or k in ("PYTHONPATH",)}
    env["PATH"] = f"{Path(cli_binary).parent}:/usr/local/bin:/usr/bin:/bin:" + \
        os.path.dirname(sys.executable)
    t = Terminal(env, tmp_path)
    yield t
    t.close()


def _session_checks(term, start_command, prompt="/ #"):
    """The three checks of an interactive session: arithmetic, resize, Ctrl-C; then exit 5
    and compare the host terminal's settings before and after."""
    before = term.workdir / "stty.before"
    after = term.workdir / "stty.after"
    term.type(f"stty -g > {before}; {start_command}; echo EXIT=$?; stty -g > {after}")
    term.wait_for_text(prompt)
    term.type("echo $((6*7))")
    term.wait_for_text("\n42")
    term.resize(120, 40)
    time.sleep(0.5)
    term.type("stty size")
    term.wait_for_text("40 120")
    term.type("sleep 100")
    time.sleep(1.5)
    term.key("C-c")
    term.type("echo still-$((1+1))-here")
    term.wait_for_text("still-2-here", timeout=30)
    term.type("exit 5")
    term.wait_for_text("EXIT=5")
    term.wait_for_text("host$")
    wait_for(lambda: after.exists() and after.read_text(), timeout=10)
    assert before.read_text() == after.read_text(), "the host terminal was not restored"


def test_run_it_session(term):
    """`boxlite run -it --rm boxlite/base sh`: 42, resize, Ctrl-C, exit 5, terminal restored."""
    _session_checks(term, "boxlite run -it --rm boxlite/base sh")


@pytest.mark.allow_background_vms
def test_exec_it_session(term, cli):
    """`boxlite exec -it BOX sh` into a background box behaves the same."""
    assert cli.run("run", "-d", "--name", "tty-box", "boxlite/base", "sleep", "600").returncode == 0
    try:
        _session_checks(term, "boxlite exec -it tty-box sh")
    finally:
        cli.run("rm", "-f", "tty-box")


def test_shell_command_session(term):
    """`boxlite shell boxlite/base` opens a throwaway box with a shell."""
    _session_checks(term, "boxlite shell boxlite/base")


def test_python_interactive_box(term):
    """The Python InteractiveBox passes the same checks."""
    script = term.workdir / "interactive.py"
    script.write_text(PY_INTERACTIVE)
    _session_checks(term, f"{shlex.quote(sys.executable)} {script}")


def test_python_sync_interactive_box(term):
    """boxlite.sync.InteractiveBox, from a plain script, passes the same checks."""
    script = term.workdir / "sync_interactive.py"
    script.write_text(PY_SYNC_INTERACTIVE)
    _session_checks(term, f"{shlex.quote(sys.executable)} {script}")


def test_python_interactive_box_without_terminal(cli, tmp_path):
    """tty=False: programmatic use with pipes."""
    code = """
import asyncio, boxlite
async def main():
    async with boxlite.InteractiveBox(image="boxlite/base", tty=False) as box:
        return await box.wait()
raise SystemExit(asyncio.run(main()))
"""
    p = subprocess.run([sys.executable, "-c", code], input=b"echo piped-$((2*3)); exit 7\n",
                       capture_output=True, env=cli.env, timeout=300)
    assert p.returncode == 7, p.stderr
    assert p.stdout == b"piped-6\n"


def test_python_sync_interactive_box_without_terminal(cli):
    """The sync twin with tty=False: stdin from a pipe, the shell's status returned."""
    code = """
import boxlite.sync
with boxlite.sync.InteractiveBox(image="boxlite/base", tty=False) as box:
    raise SystemExit(box.wait())
"""
    p = subprocess.run([sys.executable, "-c", code], input=b"echo sync-$((3*4)) >&2; exit 9\n",
                       capture_output=True, env=cli.env, timeout=300)
    assert p.returncode == 9, p.stderr
    assert p.stderr.endswith(b"sync-12\n"), p.stderr


# stdin of every kind: a regular file or /dev/null cannot be watched by the event loop
# (epoll refuses them with EPERM) and must still reach the shell; an error reading stdin
# must end wait() with an exception, never leave it waiting.
PY_STDIN_ASYNC = """
import asyncio, boxlite
async def main():
    async with boxlite.InteractiveBox(image="boxlite/base", shell=%r, tty=False) as box:
        return await box.wait()
raise SystemExit(asyncio.run(main()))
"""

PY_STDIN_SYNC = """
import boxlite.sync
with boxlite.sync.InteractiveBox(image="boxlite/base", shell=%r, tty=False) as box:
    raise SystemExit(box.wait())
"""

PY_STDIN_ERROR = """
import asyncio, sys, boxlite
async def main():
    async with boxlite.InteractiveBox(image="boxlite/base", tty=False) as box:
        try:
            await box.wait()
        except boxlite.BoxliteError as e:
            print("RAISED %s: %s" % (type(e).__name__, e), file=sys.stderr)
            return 42
    return 0
raise SystemExit(asyncio.run(main()))
"""

STDIN_TIMEOUT = 300  # Seconds: without the fix these runs never end.


def _run_with_stdin(cli, code, stdin):
    return subprocess.run([sys.executable, "-c", code], stdin=stdin, capture_output=True,
                          env=cli.env, timeout=STDIN_TIMEOUT)


@pytest.mark.parametrize("template", [PY_STDIN_ASYNC, PY_STDIN_SYNC], ids=["async", "sync"])
def test_python_interactive_box_stdin_regular_file(cli, tmp_path, template):
    """stdin a regular file: the shell reads the script in it and its status comes back."""
    script = tmp_path / "script.sh"
    script.write_bytes(b"echo file-$((6*7)); exit 4\n")
    with open(script, "rb") as stdin:
        p = _run_with_stdin(cli, template % "/bin/sh", stdin)
    assert p.returncode == 4, p.stderr
    assert p.stdout == b"file-42\n", p.stdout


@pytest.mark.parametrize("template", [PY_STDIN_ASYNC, PY_STDIN_SYNC], ids=["async", "sync"])
def test_python_interactive_box_stdin_file_content(cli, tmp_path, template):
    """A regular file of 1 MiB of arbitrary bytes reaches `cat` in the box unchanged
    (many chunks, not UTF-8)."""
    data = os.urandom(1 << 20)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    with open(src, "rb") as stdin:
        p = _run_with_stdin(cli, template % "/bin/cat", stdin)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == len(data) and p.stdout == data


@pytest.mark.parametrize("template", [PY_STDIN_ASYNC, PY_STDIN_SYNC], ids=["async", "sync"])
def test_python_interactive_box_stdin_dev_null(cli, template):
    """stdin /dev/null: the shell reads end-of-file at once and wait() returns 0."""
    with open(os.devnull, "rb") as stdin:
        p = _run_with_stdin(cli, template % "/bin/sh", stdin)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""


def test_python_interactive_box_stdin_closed(cli):
    """No stdin at all (descriptor 0 closed): the shell reads end-of-file."""
    p = subprocess.run([sys.executable, "-c", PY_STDIN_ASYNC % "/bin/sh"], stdin=None,
                       capture_output=True, env=cli.env, timeout=STDIN_TIMEOUT,
                       preexec_fn=lambda: os.close(0))
    assert p.returncode == 0, p.stderr


def test_python_interactive_box_stdin_read_error(cli, tmp_path):
    """Reading stdin fails (a file opened write-only: EBADF): wait() raises BoxliteError
    saying what failed, the shell is stopped and the box is removed (the leak check)."""
    fd = os.open(tmp_path / "write-only", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        p = _run_with_stdin(cli, PY_STDIN_ERROR, fd)
    finally:
        os.close(fd)
    assert p.returncode == 42, p.stderr
    assert b"RAISED BoxliteError: InteractiveBox: reading stdin (fd 0) failed: Bad file descriptor" \
        in p.stderr, p.stderr

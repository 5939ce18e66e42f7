"""The vertical slice: `boxlite run` boots a micro-VM from the built-in image and runs
commands in it through the guest agent (issue: a box boots and runs commands)."""
import hashlib
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import qemu_processes, wait_for

BASE = "boxlite/base"


def test_stdout_stderr_and_exit_status(any_cli):
    """stdout and stderr arrive separately and the exit status is the command's."""
    p = any_cli.run("run", "--rm", BASE, "sh", "-c", "echo hi; echo err >&2; exit 3")
    assert p.returncode == 3
    assert p.stdout == b"hi\n"
    assert b"err\n" in p.stderr


def test_env_and_working_directory(any_cli):
    """-e sets the environment and -w the working directory of the command."""
    p = any_cli.run("run", "--rm", "-e", "GREETING=hello world", "-e", "EMPTY=", "-w", "/tmp",
                BASE, "sh", "-c", 'echo "$GREETING|$EMPTY|$(pwd)"')
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello world||/tmp\n"


def test_stdin_is_piped_with_interactive(any_cli):
    """printf abc | boxlite run -i --rm boxlite/base cat prints abc."""
    p = any_cli.run("run", "-i", "--rm", BASE, "cat", input=b"abc")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"abc"


def test_stdin_without_interactive_reads_empty(cli):
    """Without -i the command's stdin is empty, as with docker."""
    p = cli.run("run", "--rm", BASE, "cat", input=b"ignored")
    assert p.returncode == 0
    assert p.stdout == b""


def test_signal_killed_command_exits_128_plus_signal(any_cli):
    """A command killed by SIGKILL exits 137."""
    p = any_cli.run("run", "--rm", BASE, "sh", "-c", "kill -9 $$")
    assert p.returncode == 137


def test_missing_command_is_127_with_a_clear_error(any_cli):
    """A command that does not exist: exit 127 and a message naming it."""
    p = any_cli.run("run", "--rm", BASE, "no-such-command", "arg")
    assert p.returncode == 127
    assert b'"no-such-command"' in p.stderr
    assert b"not found" in p.stderr


def test_ten_mib_of_random_bytes_arrive_byte_exact(any_cli):
    """10 MiB of random bytes from the guest reach the host unchanged (sha256)."""
    p = any_cli.run("run", "--rm", BASE, "sh", "-c",
                "head -c 10485760 /dev/urandom > /tmp/r; sha256sum /tmp/r >&2; cat /tmp/r")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == 10 * 1024 * 1024
    guest_digest = p.stderr.split()[-2].decode()
    assert hashlib.sha256(p.stdout).hexdigest() == guest_digest


@pytest.mark.allow_background_vms
def test_twelve_mib_from_an_exec_arrive_byte_exact_in_the_largest_frames(cli):
    """An exec's 12 MiB of random bytes reach the host unchanged (sha256). `cat` of a file
    fills the exec's 4 MiB pipe at once, so the agent sends it in data frames of the
    protocol's largest size, more than the host keeps as a main command's backlog: the
    main command's path is the test above, this is the exec's."""
    name = "twelve-mib"
    p = cli.run("run", "-d", "--name", name, BASE, "sleep", "600")
    assert p.returncode == 0, p.stderr
    try:
        p = cli.run("exec", name, "sh", "-c",
                    "head -c 12582912 /dev/urandom > /tmp/r; sha256sum /tmp/r >&2; cat /tmp/r")
        assert p.returncode == 0, p.stderr
        assert len(p.stdout) == 12 * 1024 * 1024
        guest_digest = p.stderr.split()[-2].decode()
        assert hashlib.sha256(p.stdout).hexdigest() == guest_digest
    finally:
        cli.run("rm", "-f", name)


@pytest.mark.allow_background_vms
def test_bulk_streams_at_once_a_stalled_reader_and_a_quick_exec_share_the_port(cli):
    """Bulk output shares the box's one port: three bulk streams at once (one exec's stdout
    and stderr, another's stdout), the first exec's host reader stalled until its credit is
    spent, and a quick exec meanwhile. Every byte arrives unchanged on its own stream
    (sha256 against the guest's), each exit code is right, and the stalled exec resumes
    when its reader does. The agent pauses and resumes bulk pipes without watching them
    (agent/server_exec.cc, ResumePaused): a paused pipe must neither starve the others nor
    be forgotten."""
    name = "bulk-streams"
    p = cli.run("run", "-d", "--name", name, BASE, "sleep", "600")
    assert p.returncode == 0, p.stderr
    try:
        p = cli.run("exec", name, "sh", "-c",
                    "for f in a b c; do head -c 16777216 /dev/urandom > /tmp/$f; done; "
                    "cd /tmp && sha256sum a b c")
        assert p.returncode == 0, p.stderr
        digests = {line.split()[1]: line.split()[0] for line in p.stdout.decode().splitlines()}
        # Both streams of one exec at once; nobody reads them for now.
        both = cli.popen("exec", name, "sh", "-c", "cat /tmp/a & cat /tmp/b >&2; wait; exit 3",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Another bulk stream, read as it comes.
        other = cli.popen("exec", name, "sh", "-c", "cat /tmp/c; exit 4",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        other_out, other_err = other.communicate(timeout=300)
        assert other.returncode == 4, other_err
        assert hashlib.sha256(other_out).hexdigest() == digests["c"]
        # The first exec's output is still unread (its pipes to this test hold 64 KiB each,
        # its credit and its pipe in the box 4 MiB each, of 16 MiB): a quick exec still answers.
        assert both.poll() is None
        p = cli.run("exec", name, "sh", "-c", "echo quick; exit 7")
        assert (p.returncode, p.stdout) == (7, b"quick\n"), p.stderr
        out, err = both.communicate(timeout=300)
        assert both.returncode == 3, err[-500:]
        assert hashlib.sha256(out).hexdigest() == digests["a"]
        assert hashlib.sha256(err).hexdigest() == digests["b"]
    finally:
        cli.run("rm", "-f", name)


def test_exec_cgroups_are_reused_once_empty_and_running_execs_stream(cli):
    """Each exec starts in a cgroup of its own below the box's (agent/init.cc,
    ExecCgroupDir). The agent checks that an exec's cgroup is empty once that exec's exit
    event has left (ReleaseExecCgroup), so back-to-back execs take the same cgroup without
    reading cgroup.events first; one still holding a process of an earlier exec (a
    background child that outlived it) is never handed to a new exec. A command that is
    still running after it first ran (its pipes are watched only then) streams all its
    output, and the agent answers other execs meanwhile."""
    name = "exec-cgroups"
    p = cli.run("run", "-d", "--name", name, BASE, "sleep", "600")
    assert p.returncode == 0, p.stderr

    def cgroup_of(*script):
        p = cli.run("exec", name, "sh", "-c", "cat /proc/self/cgroup" + "".join(script))
        assert p.returncode == 0, p.stderr
        line = p.stdout.decode().strip()
        assert line.startswith("0::/box/e"), line
        return line

    try:
        first = cgroup_of()
        assert cgroup_of() == first  # Known empty: taken again.
        # A background process outlives its exec and keeps that exec's cgroup populated.
        held = cgroup_of("; sleep 601 >/dev/null 2>&1 & echo $! > /tmp/bg.pid")
        others = {cgroup_of() for _ in range(3)}
        assert held not in others, (held, others)
        assert len(others) == 1, others  # Still reused among themselves.
        p = cli.run("exec", name, "sh", "-c", "kill $(cat /tmp/bg.pid)")
        assert p.returncode == 0, p.stderr
        cgroup_of()
        # A command that blocks after its first output: nothing of it may stall the agent.
        slow = cli.popen("exec", "-i", name, "sh", "-c", "echo a; read x; echo b$x; exit 5",
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert slow.stdout.readline() == b"a\n"
        p = cli.run("exec", name, "sh", "-c", "echo quick; exit 7")
        assert (p.returncode, p.stdout) == (7, b"quick\n"), p.stderr
        out, err = slow.communicate(input=b"c\n", timeout=120)
        assert (slow.returncode, out) == (5, b"b" + b"c\n"), err
    finally:
        cli.run("rm", "-f", name)


def test_binary_stdin_round_trips(cli):
    """Binary stdin (all byte values, 3 MiB) comes back unchanged."""
    data = bytes(range(256)) * (3 * 4096)
    p = cli.run("run", "-i", "--rm", BASE, "cat", input=data)
    assert p.returncode == 0
    assert p.stdout == data


@pytest.mark.allow_background_vms
@pytest.mark.parametrize("who", ["root", "unprivileged"])
def test_four_concurrent_execs_each_get_their_own_output(who, cli, nobody_cli):
    """Four execs running at once in one box each get exactly their own output."""
    cli = cli if who == "root" else nobody_cli
    name = "concurrent-execs"
    p = cli.run("run", "-d", "--name", name, BASE, "sleep", "600")
    assert p.returncode == 0, p.stderr
    try:
        script = ("for i in $(seq 1 200); do echo {tag}-$i; "
                  "[ $((i % 50)) = 0 ] && sleep 0.2; done; echo {tag}-err >&2")
        procs = [cli.popen("exec", name, "sh", "-c", script.format(tag=f"x{n}"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in range(4)]
        results = [p.communicate(timeout=120) for p in procs]
        for n, (out, err) in enumerate(results):
            assert procs[n].returncode == 0, err
            assert out.decode().split() == [f"x{n}-{i}" for i in range(1, 201)]
            assert err.endswith(f"x{n}-err\n".encode())
    finally:
        cli.run("rm", "-f", name)


def test_bad_image_name_is_a_clear_error(cli):
    """A malformed reference fails before anything boots, naming the reference."""
    p = cli.run("run", "--rm", "Not A Valid:ref", "true")
    assert p.returncode == 1
    errors = [l for l in p.stderr.splitlines() if not l.startswith(b"boxlite: warning:")]
    assert len(errors) == 1, p.stderr  # One line.
    assert b"invalid image reference" in errors[0]


def test_missing_image_is_a_clear_error(cli):
    """An image that is nowhere fails with a message naming it (loopback registry only)."""
    p = cli.run("run", "--rm", "127.0.0.1:1/nothing/here:latest", "true")
    assert p.returncode == 1
    assert b"127.0.0.1:1" in p.stderr


def test_guest_kernel_panic_is_reported_and_others_keep_working(cli):
    """A panicking guest gives a clear error; the host and another box are unharmed (the
    other box, started first, answers a line sent to it after the panic)."""
    other = cli.popen("run", "--rm", "-i", BASE, "sh", "-c", "read line; echo survivor-$line",
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p = cli.run("run", "--rm", BASE, "sh", "-c", "echo c > /proc/sysrq-trigger; sleep 30")
    assert p.returncode == 1
    assert b"Kernel panic" in p.stderr
    out, err = other.communicate(input=b"after-the-panic\n", timeout=120)
    assert other.returncode == 0, err
    assert out == b"survivor-after-the-panic\n"


def test_vm_killed_mid_exec_is_reported(cli):
    """Killing a box's QEMU mid-exec gives a clear error instead of a hang."""
    before = set(qemu_processes())
    proc = cli.popen("run", "--rm", BASE, "sleep", "300", stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    try:
        new = wait_for(lambda: set(qemu_processes()) - before, timeout=60)
        assert new, "the box's VM did not start"
        time.sleep(1.5)  # Let the exec start.
        for pid in new:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert b"stopped unexpectedly" in err
    assert b"killed by signal 9" in err


def test_sigkill_of_the_owner_leaves_no_vm_behind(cli):
    """Killing the owning process with SIGKILL takes its VM down within a second."""
    before = set(qemu_processes())
    proc = cli.popen("run", "--rm", BASE, "sleep", "300", stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    new = wait_for(lambda: set(qemu_processes()) - before, timeout=60)
    assert new
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    gone = wait_for(lambda: not (set(qemu_processes()) & new), timeout=1.0)
    assert gone, f"VM outlived its owner: {set(qemu_processes()) & new}"
    # An ephemeral box keeps no files: nothing of it is in the home.
    assert list((cli.home / "tmp").iterdir()) == []
    assert list((cli.home / "boxes").glob("*")) == []


def test_removed_box_leaves_no_process_socket_overlay_or_temp_file(fresh_cli):
    """After --rm, nothing of the box remains: no VM, no socket, no overlay, no temp file."""
    before = set(qemu_processes())
    p = fresh_cli.run("run", "--rm", BASE, "sh", "-c", "echo x > /root/file")
    assert p.returncode == 0, p.stderr
    assert not (set(qemu_processes()) - before)
    home = fresh_cli.home
    assert list((home / "tmp").iterdir()) == []
    assert list((home / "boxes").iterdir()) == []
    # The image's files and its warm-start template (docs/snapshots.md) are the image's,
    # not the box's: they stay until the image is removed.
    leftovers = [str(f) for f in home.rglob("*")
                 if f.suffix in (".qcow2", ".sock", ".console")
                 and "images" not in f.parts and "templates" not in f.parts]
    assert leftovers == []

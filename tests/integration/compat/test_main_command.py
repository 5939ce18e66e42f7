# BoxLite 0.9's `boxlite run`: COMMAND (or the image's CMD) is the box's main command, and
# the box lives exactly as long as it runs. Foreground runs stream it and exit with its
# status (128+N for a signal N); -d prints the id and leaves it running, and any process
# can attach to it later (Python's box.attach()), getting what it printed meanwhile, then
# its live output, its stdin and its exit. Real VMs from the built-in image boxlite/base
# (busybox; its CMD is ["sh"]); what the box did is read from its output, its exit status
# and `boxlite inspect`, never from the options given.
import asyncio
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import wait_for

BASE = "boxlite/base"


def inspect(cli, name):
    p = cli.run("inspect", name)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    return data[0] if isinstance(data, list) else data


def test_run_command_is_the_main_command_and_its_exit_stops_the_box(cli):
    """`run IMAGE COMMAND`: the output is streamed, run exits with the command's code,
    and the box stopped with it (a background child does not keep it up), its code in
    inspect."""
    p = cli.run("run", "--name", "mc-exit", BASE, "sh", "-c",
                "sleep 600 & echo out; echo err >&2; exit 7", timeout=300)
    try:
        assert p.returncode == 7, p.stderr
        assert p.stdout == b"out\n"
        assert p.stderr.endswith(b"err\n"), p.stderr  # after any warning of BoxLite
        state = inspect(cli, "mc-exit")["State"]
        assert state["Status"] == "stopped", state
        assert state["Running"] is False
        assert state["ExitCode"] == 7, state
    finally:
        cli.run("rm", "-f", "mc-exit")


def test_run_entrypoint_replaces_the_images_and_a_signal_gives_128_plus_n(cli):
    """--entrypoint replaces the image's ENTRYPOINT (COMMAND becomes its arguments); a
    main command killed by signal 9 makes run exit 137."""
    p = cli.run("run", "--rm", "--entrypoint", "/bin/sh", BASE, "-c",
                "echo via-entrypoint; kill -9 $$", timeout=300)
    assert p.stdout == b"via-entrypoint\n", p.stderr
    assert p.returncode == 137, p.stderr


def test_run_without_command_runs_the_images_cmd_with_stdin_only_given_by_i(cli):
    """No COMMAND: the image's CMD (sh) is the main command. Without -i its stdin is
    closed, so sh ends at once (as with docker); with -i it reads the caller's stdin."""
    p = cli.run("run", "--rm", BASE, input=b"echo must-not-run\n", timeout=300)
    assert p.returncode == 0, p.stderr
    assert b"must-not-run" not in p.stdout
    p = cli.run("run", "--rm", "-i", BASE, input=b"echo from-stdin; exit 3\n", timeout=300)
    assert p.stdout == b"from-stdin\n", p.stderr
    assert p.returncode == 3, p.stderr


def test_run_t_needs_a_terminal(cli):
    """-t with a stdin that is not a terminal fails before anything is created."""
    p = cli.run("run", "--rm", "-t", "--name", "mc-tty", BASE, "true", input=b"")
    assert p.returncode != 0
    assert b"the input device is not a TTY" in p.stderr
    assert cli.run("inspect", "mc-tty").returncode != 0, "a box was created"


ATTACH_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import boxlite

    async def main(home, name, mode):
        rt = boxlite.Boxlite(boxlite.Options(home_dir=home))
        box = await rt.get(name)
        if mode == "second":
            try:
                await box.attach()
            except Exception as e:  # noqa: BLE001 (the class is printed)
                print("REFUSED", type(e).__name__, e, flush=True)
                return
            print("ATTACHED", flush=True)
            return
        execution = await box.attach()
        stdout = execution.stdout()
        seen = ""
        while "waiting" not in seen:
            seen += await stdout.__anext__()
        print("BEFORE", repr(seen), flush=True)
        # The attacher holds the command now: a second process is turned away.
        sys.stdin.readline()
        stdin = execution.stdin()
        await stdin.send_input(b"go\\n")
        async for chunk in stdout:
            seen += chunk
        result = await execution.wait()
        print("AFTER", repr(seen), flush=True)
        print("EXIT", result.exit_code, flush=True)

    asyncio.run(main(*sys.argv[1:4]))
""")


def _python(cli, *args):
    env = dict(cli.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return [sys.executable, "-c", ATTACH_SCRIPT, str(cli.home), *args], env


def test_detached_run_is_attached_from_another_process_with_its_backlog(cli):
    """`run -d -i`: the id is printed and the box runs on after the CLI has gone. A Python
    program attaches (box.attach()): it gets what the command printed before, is the only
    attacher (a second process is refused), drives its stdin, and gets its live output and
    exit code; the box then stops with that code."""
    p = cli.run("run", "-d", "-i", "--name", "mc-detached", BASE, "sh", "-c",
                "echo early; echo waiting; read word; echo late-$word; exit 4", timeout=300)
    try:
        assert p.returncode == 0, p.stderr
        box_id = p.stdout.decode().strip()
        assert box_id and inspect(cli, "mc-detached")["Id"].startswith(box_id[:8])
        assert inspect(cli, "mc-detached")["State"]["Status"] == "running"

        argv, env = _python(cli, "mc-detached", "first")
        first = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        try:
            line = first.stdout.readline().decode()
            assert line.startswith("BEFORE"), line + first.stderr.read().decode()
            assert "'early\\nwaiting" in line, line  # repr() of what it had read

            argv2, env2 = _python(cli, "mc-detached", "second")
            second = subprocess.run(argv2, env=env2, capture_output=True, timeout=120)
            out = second.stdout.decode()
            assert out.startswith("REFUSED"), out + second.stderr.decode()
            assert "attached in another process" in out, out

            first.stdin.write(b"\n")
            first.stdin.flush()
            rest, err = first.communicate(timeout=120)
        finally:
            if first.poll() is None:
                first.kill()
        rest = rest.decode()
        assert "late-go" in rest, rest + err.decode()
        assert "EXIT 4" in rest, rest + err.decode()
        wait_for(lambda: inspect(cli, "mc-detached")["State"]["Status"] == "stopped",
                 timeout=60)
        assert inspect(cli, "mc-detached")["State"]["ExitCode"] == 4
    finally:
        cli.run("rm", "-f", "mc-detached")

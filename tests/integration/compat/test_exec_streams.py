"""BoxLite 0.9's exec, streams, copies and SimpleBox, on real boxes (issue 12, part D1).

Programs written for 0.9 call ``Box.exec(command, args, env, tty, user, timeout_secs, cwd)``
and get an ``Execution``: ``async for chunk in execution.stdout()`` yields ``str`` chunks,
``stdin().send_input()``, ``wait()``, ``kill()``, ``signal()``, ``resize_tty()``, ``id()``;
``Box.attach``; ``copy_in``/``copy_out`` with ``CopyOptions``; ``SimpleBox`` with 0.9's
constructor; and imports from ``boxlite.exec``, ``boxlite.simplebox``, ... Everything is
observed in the guest (its output, its files) or on the host's file system.

One box created from the runtime (a plain ``Box``) serves most tests; the SimpleBox tests
boot their own. Each test runs its own event loop (``asyncio.run``): a box works across
loops.
"""
import asyncio
import importlib
import os
from pathlib import Path

import pytest

from conftest import add_session_root

import boxlite  # noqa: E402  (the SDK under test; main's install or PYTHONPATH)

BASE = "boxlite/base"
MEMORY = 512


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    home = tmp_path_factory.mktemp("compat-exec-home")
    add_session_root(home)
    return boxlite.Boxlite(boxlite.Options(home_dir=str(home)))


@pytest.fixture(scope="module")
def started(runtime):
    """A box created, not started, then started by its first exec (0.9: a configured box
    starts implicitly); the states are read back from the runtime."""
    b = run(runtime.create(boxlite.BoxOptions(image=BASE, memory_mib=MEMORY, network="none")))
    try:
        states = [run(b.info()).state]
        first = run(b.exec("true"))
        states.append(run(b.info()).state)
        assert run(first.wait()).exit_code == 0
        yield b, states
    finally:
        run(b.stop())


@pytest.fixture(scope="module")
def box(started):
    return started[0]


async def drain(stream):
    return [chunk async for chunk in stream]


async def output(execution):
    """(stdout chunks, stderr chunks, ExecResult)."""
    out, err = await asyncio.gather(drain(execution.stdout()), drain(execution.stderr()))
    return out, err, await execution.wait()


def test_exec_starts_a_created_box_and_streams_str_chunks(started):
    box, states = started
    assert states[0] in ("created", "configured") and states[1] == "running"

    async def scenario():
        execution = await box.exec("sh", ["-c", "printf 'out 1\\nout 2\\n'; printf 'err\\n' >&2; exit 3"])
        assert isinstance(execution, boxlite.Execution)
        assert isinstance(execution.id(), str) and execution.id()
        out, err, result = await output(execution)
        assert all(isinstance(c, str) for c in out + err)
        assert "".join(out) == "out 1\nout 2\n"
        assert "".join(err) == "err\n"
        assert result.exit_code == 3 and result.error_message is None

    run(scenario())


def test_split_multibyte_characters_and_invalid_bytes(box):
    # The guest writes the euro sign's first two bytes, pauses, then the last one: the
    # host sees separate chunks, and the character must arrive whole. 0xff is invalid.
    script = "printf '\\342\\202'; sleep 0.5; printf '\\254 \\377 \\344\\270\\226'; sleep 0.3; printf '\\347\\225\\214!'"

    async def scenario():
        execution = await box.exec("sh", ["-c", script])
        out, _, result = await output(execution)
        assert result.exit_code == 0
        assert "".join(out) == "\u20ac \ufffd \u4e16\u754c!"
        assert "\ufffd" not in "".join(out).replace(" \ufffd ", "  ")

    run(scenario())


def test_streams_are_taken_once(box):
    async def scenario():
        execution = await box.exec("true")
        execution.stdout()
        execution.stderr()
        execution.stdin()
        for name in ("stdout", "stderr", "stdin"):
            with pytest.raises(boxlite.BoxliteError, match=f"{name} stream not available"):
                getattr(execution, name)()
        assert (await execution.wait()).exit_code == 0

    run(scenario())


def test_stdin_send_input_and_close(box):
    async def scenario():
        execution = await box.exec("sh", ["-c", "while read l; do echo \"got:$l\"; done; echo eof"])
        stdin = execution.stdin()
        reader = asyncio.ensure_future(drain(execution.stdout()))
        await stdin.send_input(b"alpha\n")
        await stdin.send_input(b"beta\n")
        assert not await stdin.is_closed()
        await stdin.close()
        assert await stdin.is_closed()
        assert "".join(await reader) == "got:alpha\ngot:beta\neof\n"
        assert (await execution.wait()).exit_code == 0

    run(scenario())


def test_wait_kill_signal_and_a_missing_command(box):
    async def scenario():
        killed = await box.exec("sleep", ["100"])
        await killed.kill()
        assert (await killed.wait()).exit_code == -9
        termed = await box.exec("sleep", ["100"])
        await termed.signal(15)
        assert (await termed.wait()).exit_code == -15
        missing = await box.exec("no-such-command-here")
        result = await missing.wait()
        assert result.exit_code == 127 and result.error_message

    run(scenario())


def test_quick_commands_arrive_whole_and_a_busy_ones_start_is_reported_while_it_runs(box):
    """The agent lets a new process run before it answers the exec (it starts it as
    SCHED_BATCH and looks once for its end), so that a quick command's response, output
    and exit leave the box together: each still arrives whole and in order. A command that
    never ends must still be reported started while it runs: its start, its first output
    and a signal reach it, and only then does it end."""
    async def scenario():
        for i in range(12):
            execution = await box.exec(
                "sh", ["-c", f"printf 'out {i}\\n'; printf 'err {i}' >&2; exit {i + 1}"])
            out, err, result = await output(execution)
            assert ("".join(out), "".join(err), result.exit_code) == (f"out {i}\n", f"err {i}", i + 1)
        # A busy loop never blocks: it gives the CPU back only when the scheduler preempts
        # it. If its start waited for its end, exec() would never return (the bound below
        # only turns that hang into a failure).
        busy = await asyncio.wait_for(
            box.exec("sh", ["-c", "echo started; while :; do :; done"]), 300)
        stdout = busy.stdout().__aiter__()
        seen = ""
        while not seen.endswith("\n"):
            seen += await asyncio.wait_for(stdout.__anext__(), 300)
        assert seen == "started\n"
        await busy.kill()
        assert (await busy.wait()).exit_code == -9

    run(scenario())


def test_tty_merges_output_and_resize_tty_reaches_the_guest(box):
    async def scenario():
        execution = await box.exec("sh", ["-c", "stty size; echo to-stderr >&2; read x; stty size"], tty=True)
        stdin = execution.stdin()
        stdout = execution.stdout()
        seen = ""
        async for chunk in stdout:
            seen += chunk
            if "to-stderr" in seen:
                break
        await execution.resize_tty(33, 101)
        await stdin.send_input(b"\n")
        seen += "".join([c async for c in stdout])
        assert "".join(await drain(execution.stderr())) == ""
        lines = [line.strip() for line in seen.splitlines() if line.strip()]
        # The first size is the caller's terminal's (24x80 without one; see the next test).
        assert lines[0] != "33 101" and len(lines[0].split()) == 2
        assert "to-stderr" in lines
        assert lines[-1] == "33 101"
        assert (await execution.wait()).exit_code == 0

    run(scenario())


def test_tty_takes_the_size_of_the_callers_terminal(box):
    """With a terminal on the caller's side (here a pty of 37x111 as our stdin), a tty
    exec starts at that size."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 37, 111, 0, 0))
    saved = os.dup(0)
    os.dup2(slave, 0)
    try:
        async def scenario():
            execution = await box.exec("stty", ["size"], tty=True)
            return "".join(await drain(execution.stdout())), await execution.wait()

        text, result = run(scenario())
    finally:
        os.dup2(saved, 0)
        for fd in (saved, master, slave):
            os.close(fd)
    assert text.strip() == "37 111" and result.exit_code == 0


def test_timeout_secs_kills_the_process(box):
    async def scenario():
        execution = await box.exec("sleep", ["100"], timeout_secs=1)
        result = await execution.wait()
        assert result.exit_code == -9 and result.timed_out
        for bad in (-1, float("inf"), float("nan"), "1"):
            with pytest.raises(boxlite.ConfigError, match="timeout_secs"):
                await box.exec("true", timeout_secs=bad)

    run(scenario())


def test_env_cwd_and_user_are_seen_in_the_guest(box):
    probe = 'echo "$ONE $TWO"; pwd; id -u'

    async def scenario():
        for env in ([("ONE", "1"), ("TWO", "zwei")], {"ONE": "1", "TWO": "zwei"}):
            execution = await box.exec("sh", ["-c", probe], env=env, cwd="/etc", user="65534")
            out, _, result = await output(execution)
            assert result.exit_code == 0
            assert "".join(out) == "1 zwei\n/etc\n65534\n"

    run(scenario())


def test_the_old_spelling_is_run_and_exec_says_so(box):
    async def scenario():
        with pytest.raises(boxlite.ConfigError, match=r"box\.run"):
            await box.exec("echo", "hello")
        result = await box.run("sh", "-c", "echo hello; kill -9 $$")
        assert isinstance(result, boxlite.ExecResult)
        assert result.stdout == "hello\n" and result.exit_code == 128 + 9
        # Our byte-exact stream stays.
        stream = await box.stream("printf", "\\377")
        assert b"".join([c async for c in stream.stdout()]) == b"\xff"
        assert (await stream.wait()).exit_code == 0

    run(scenario())


def test_attach_by_id_and_unknown_ids(box):
    async def scenario():
        execution = await box.exec("sh", ["-c", "read x; echo \"line:$x\""])
        again = await box.attach(execution.id())
        assert again.id() == execution.id()
        await again.stdin().send_input(b"through the attachment\n")
        assert "".join(await drain(again.stdout())) == "line:through the attachment\n"
        assert (await execution.wait()).exit_code == 0
        with pytest.raises(boxlite.BoxliteError, match="no execution"):
            await box.attach("no-such-execution")
        with pytest.raises(boxlite.BoxliteError, match="no execution"):
            await box.attach(execution.id())  # Finished and waited for: gone.

    run(scenario())


def test_attach_to_the_main_command(runtime):
    async def scenario():
        main = await runtime.create(boxlite.BoxOptions(
            image=BASE, memory_mib=MEMORY, network="none",
            cmd=["sh", "-c", "echo main says hi; read x; echo \"main got $x\""]))
        async with main:
            execution = await main.attach()
            await execution.stdin().send_input(b"input\n")
            text = "".join(await drain(execution.stdout()))
            assert "main got input" in text

    run(scenario())


def guest(box, script):
    result = run(box.run("sh", "-c", script))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def host_tree(root: Path) -> Path:
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("alpha")
    (src / "sub" / "b").write_text("beta")
    os.symlink("a", src / "link")
    return src


def test_copy_in_options(box, tmp_path):
    src = host_tree(tmp_path)
    guest(box, "rm -rf /cin && mkdir -p /cin/default /cin/flat /cin/follow")

    run(box.copy_in(str(src), "/cin/default"))
    run(box.copy_in(str(src), "/cin/flat", boxlite.CopyOptions(include_parent=False)))
    run(box.copy_in(str(src), "/cin/follow", boxlite.CopyOptions(follow_symlinks=True)))
    listing = guest(box, "cd /cin && for p in default/src/a default/src/sub/b flat/a flat/sub/b "
                         "follow/src/link; do echo \"$p=$(cat $p)\"; done; "
                         "readlink default/src/link; [ -L follow/src/link ] || echo follow-is-file; "
                         "[ -e flat/src ] || echo no-flat-parent")
    assert listing.splitlines() == [
        "default/src/a=alpha", "default/src/sub/b=beta", "flat/a=alpha", "flat/sub/b=beta",
        "follow/src/link=alpha", "a", "follow-is-file", "no-flat-parent"]

    with pytest.raises(boxlite.BoxliteError, match="recursive"):
        run(box.copy_in(str(src), "/cin/nonrec", boxlite.CopyOptions(recursive=False)))
    assert guest(box, "[ -e /cin/nonrec ] || echo absent") == "absent\n"

    (tmp_path / "a").write_text("new content")
    with pytest.raises(boxlite.BoxliteError, match="overwrite is off"):
        run(box.copy_in(str(tmp_path / "a"), "/cin/flat/a", boxlite.CopyOptions(overwrite=False)))
    run(box.copy_in(str(tmp_path / "a"), "/cin/flat/new", boxlite.CopyOptions(overwrite=False)))
    assert guest(box, "cat /cin/flat/a; echo; cat /cin/flat/new") == "alpha\nnew content"
    run(box.copy_in(str(tmp_path / "a"), "/cin/flat/a"))  # The default replaces.
    assert guest(box, "cat /cin/flat/a") == "new content"

    # Followed symlinks that loop are refused, not copied forever.
    loop = tmp_path / "loop"
    loop.mkdir()
    os.symlink(".", loop / "self")
    with pytest.raises(boxlite.BoxliteError, match="symlink loop"):
        run(box.copy_in(str(loop), "/cin/loop", boxlite.CopyOptions(follow_symlinks=True)))
    run(box.copy_in(str(loop), "/cin/loop2"))  # Not followed: the link itself.
    assert guest(box, "readlink /cin/loop2/self") == ".\n"


def test_copy_out_options(box, tmp_path):
    # In the box: a tree with a relative link, and an absolute link to a path that also
    # exists on the host; followed, it must bring the box's file, never the host's.
    guest(box, "rm -rf /cout && mkdir -p /cout/d/sub && printf alpha > /cout/d/a && "
               "printf beta > /cout/d/sub/b && ln -s a /cout/d/link && "
               "printf 'the box hostname' > /etc/compat-probe && ln -s /etc/compat-probe /cout/d/abs")
    Path("/etc/compat-probe").exists() and pytest.fail("the host must not have /etc/compat-probe")
    for name in ("default", "flat", "follow"):
        (tmp_path / name).mkdir()

    run(box.copy_out("/cout/d", str(tmp_path / "default")))
    run(box.copy_out("/cout/d", str(tmp_path / "flat"), boxlite.CopyOptions(include_parent=False)))
    run(box.copy_out("/cout/d", str(tmp_path / "follow"), boxlite.CopyOptions(follow_symlinks=True)))
    assert (tmp_path / "default/d/sub/b").read_text() == "beta"
    assert os.readlink(tmp_path / "default/d/link") == "a"
    assert os.readlink(tmp_path / "default/d/abs") == "/etc/compat-probe"
    assert (tmp_path / "flat/a").read_text() == "alpha" and not (tmp_path / "flat/d").exists()
    follow = tmp_path / "follow/d"
    assert not (follow / "link").is_symlink() and (follow / "link").read_text() == "alpha"
    assert not (follow / "abs").is_symlink() and (follow / "abs").read_text() == "the box hostname"

    with pytest.raises(boxlite.BoxliteError, match="recursive"):
        run(box.copy_out("/cout/d", str(tmp_path / "nonrec"), boxlite.CopyOptions(recursive=False)))
    assert not (tmp_path / "nonrec").exists()

    mine = tmp_path / "flat/a"
    mine.write_text("the host's own")
    with pytest.raises(boxlite.BoxliteError, match="overwrite is off"):
        run(box.copy_out("/cout/d/a", str(mine), boxlite.CopyOptions(overwrite=False)))
    assert mine.read_text() == "the host's own"
    assert not [p for p in (tmp_path / "flat").iterdir() if p.name.startswith(".boxlite-")]
    run(box.copy_out("/cout/d/a", str(mine)))
    assert mine.read_text() == "alpha"


def test_simplebox_with_0_9_constructor(runtime, tmp_path):
    (tmp_path / "f").write_text("from the host")

    async def scenario():
        sb = boxlite.SimpleBox(BASE, None, MEMORY, 1, runtime, "compat-simple", True, False,
                               env=[("FROM_KWARGS", "yes")], network="none")
        assert sb.created is None
        with pytest.raises(boxlite.BoxliteError, match="Box not started"):
            sb.id
        assert await sb.start() is sb
        try:
            assert sb.created is True and sb.id
            result = await sb.exec("sh", "-c", 'echo "$FROM_KWARGS $HELLO"; nproc; echo oops >&2; exit 2',
                                   env={"HELLO": "world"})
            assert (result.exit_code, result.stdout, result.stderr, result.error_message) == (
                2, "yes world\n1\n", "oops\n", None)
            assert (await sb.info()).name == "compat-simple"
            assert (await sb.metrics()).execs_run >= 1
            await sb.copy_in(str(tmp_path / "f"), "/f")
            with pytest.raises(boxlite.BoxliteError, match="overwrite is off"):
                await sb.copy_in(str(tmp_path / "f"), "/f", overwrite=False)
            await sb.copy_out("/f", str(tmp_path / "back"), include_parent=True)
            assert (tmp_path / "back").read_text() == "from the host"
        finally:
            await sb.shutdown()
        assert await runtime.get("compat-simple") is None  # auto_remove: gone.

    run(scenario())


def test_simplebox_reuse_existing(runtime):
    async def scenario():
        first = boxlite.SimpleBox(BASE, memory_mib=MEMORY, runtime=runtime, name="compat-reuse",
                                  auto_remove=False, network="none")
        await first.start()
        try:
            await first.exec("sh", "-c", "echo kept > /marker")
            adopted = boxlite.SimpleBox(BASE, memory_mib=MEMORY, runtime=runtime, name="compat-reuse",
                                        auto_remove=False, reuse_existing=True, network="none")
            await adopted.start()
            assert adopted.created is False and adopted.id == first.id
            assert (await adopted.exec("cat", "/marker")).stdout == "kept\n"
        finally:
            await first.stop()
            await runtime.remove("compat-reuse", force=True)

    run(scenario())


MODULE_NAMES = {
    "boxlite.exec": ["Execution", "ExecStdout", "ExecStderr", "ExecStdin", "ExecResult"],
    "boxlite.simplebox": ["SimpleBox"],
    "boxlite.computerbox": ["ComputerBox"],
    "boxlite.interactivebox": ["InteractiveBox"],
    "boxlite.errors": ["BoxliteError", "ExecError", "TimeoutError"],
    "boxlite.constants": [
        "DEFAULT_CPUS", "DEFAULT_MEMORY_MIB", "COMPUTERBOX_CPUS", "COMPUTERBOX_MEMORY_MIB",
        "COMPUTERBOX_IMAGE", "COMPUTERBOX_DISPLAY_NUMBER", "COMPUTERBOX_DISPLAY_WIDTH",
        "COMPUTERBOX_DISPLAY_HEIGHT", "COMPUTERBOX_GUI_HTTP_PORT", "COMPUTERBOX_GUI_HTTPS_PORT",
        "BROWSERBOX_PORT", "GUEST_IP", "SKILLBOX_IMAGE", "SKILLBOX_MEMORY_MIB",
        "SKILLBOX_DISK_SIZE_GB", "SKILLBOX_GUI_HTTP_PORT", "SKILLBOX_GUI_HTTPS_PORT",
        "DESKTOP_READY_TIMEOUT", "DESKTOP_READY_RETRY_DELAY"],
    "boxlite": ["Execution", "ExecStdout", "ExecStderr", "CopyOptions", "ExecResult", "SimpleBox",
                "Box", "ComputerBox", "InteractiveBox", "__version__"],
}


def test_module_paths_of_0_9_programs():
    for module_name, names in MODULE_NAMES.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert getattr(module, name) is not None, f"{module_name}.{name}"
    import boxlite.computerbox
    import boxlite.exec
    import boxlite.simplebox

    assert boxlite.exec.Execution is boxlite.Execution
    assert boxlite.simplebox.SimpleBox is boxlite.SimpleBox
    assert boxlite.computerbox.ComputerBox is boxlite.ComputerBox
    assert boxlite.__version__ == boxlite._core.core.version
    assert boxlite.constants.DEFAULT_MEMORY_MIB == boxlite.BoxOptions().memory_mib
    assert boxlite.constants.DEFAULT_CPUS == boxlite.BoxOptions().cpus
    assert boxlite.constants.COMPUTERBOX_IMAGE == boxlite.computer.DEFAULT_IMAGE
    defaults = boxlite.CopyOptions()
    assert (defaults.recursive, defaults.overwrite, defaults.follow_symlinks, defaults.include_parent) == (
        True, True, False, True)

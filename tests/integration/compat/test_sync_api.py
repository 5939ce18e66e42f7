"""BoxLite 0.9's synchronous API (boxlite.sync_api; docs/python.md, "Synchronous API") and
its error classes ("Errors"), against real VMs: every Sync* class's methods as 0.9 programs call them,
SyncSimpleBox in 0.9's style and ours, and every error class raised by a real failure.

One box is shared by the tests that do not need their own; the others boot the boxes
their subject needs (a reused named box, a box that is frozen and then killed).
"""

import os
import signal

import pytest

from conftest import add_session_root

import boxlite  # noqa: E402  (the SDK under test; main's install or PYTHONPATH)
import boxlite.sync  # noqa: E402
from boxlite.sync_api import (  # noqa: E402
    SyncBase,
    SyncBox,
    SyncBoxlite,
    SyncContextManager,
    SyncExecStderr,
    SyncExecStdin,
    SyncExecStdout,
    SyncExecution,
    SyncImageHandle,
    SyncSimpleBox,
)

IMAGE = "boxlite/base"
MEMORY = 512


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """A home for SyncBoxlite.default() (BOXLITE_HOME, set before its first use in this
    process, if this module is first) and one for an explicitly opened runtime."""
    base = tmp_path_factory.mktemp("sync-api")
    add_session_root(base)
    default_home, own_home = base / "default", base / "own"
    old = os.environ.get("BOXLITE_HOME")
    os.environ["BOXLITE_HOME"] = str(default_home)
    yield default_home, own_home
    if old is None:
        os.environ.pop("BOXLITE_HOME", None)
    else:
        os.environ["BOXLITE_HOME"] = old


@pytest.fixture(scope="module")
def rt(homes):
    """SyncBoxlite(options), started as 0.9 programs do."""
    runtime = SyncBoxlite(boxlite.Options(home_dir=str(homes[1])))
    assert runtime.start() is runtime
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def box(rt):
    """A running SyncBox shared by the tests that do not need their own."""
    b = rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY))
    b.start()
    yield b
    b.stop()


# --------------------------------------------------------------------- SyncBoxlite

def test_sync_boxlite_runtime_methods(rt, homes):
    """create/get/get_info/list_info/remove, images.pull/list, context manager, classes."""
    assert isinstance(rt, SyncContextManager) and isinstance(rt, SyncBase)
    with rt as entered:
        assert entered is rt
    b = rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY), name="sync-api-made")
    assert isinstance(b, SyncBox) and b.name == "sync-api-made"
    assert rt.get("sync-api-made") is b and rt.get(b.id) is b and rt.get("sync-api-none") is None
    assert "sync-api-made" in [i.name for i in rt.list_info()]
    assert "sync-api-made" in [i.name for i in rt.list_info(_state=None)]
    assert isinstance(rt.images, SyncImageHandle)
    pulled = rt.images.pull(IMAGE)
    assert IMAGE in pulled.reference
    assert any(IMAGE in i.reference for i in rt.images.list())
    # Files under the runtime's own home, not the default one.
    assert (homes[1] / "images").is_dir()
    try:
        assert rt.get_info("sync-api-made").id == b.id and rt.get_info("sync-api-none") is None
    finally:
        rt.remove("sync-api-made")
    assert rt.get("sync-api-made") is None


def test_sync_boxlite_default_is_shared_with_async(homes):
    """SyncBoxlite.default() is one runtime, over the state of boxlite.Boxlite.default()."""
    default = SyncBoxlite.default()
    assert SyncBoxlite.default() is default
    assert default.runtime is boxlite.Boxlite.default()
    assert default.home_dir == boxlite.Boxlite.default().home_dir
    with pytest.raises(RuntimeError):
        SyncBoxlite.init_default(boxlite.Options(home_dir=str(homes[1])))  # Too late: it exists.


def test_sync_boxlite_get_or_create_metrics_shutdown(homes, tmp_path):
    """get_or_create adopts a box by name; metrics(); shutdown() stops the boxes and then
    refuses new work. A runtime of its own, since it is shut down."""
    own = SyncBoxlite(boxlite.Options(home_dir=str(tmp_path / "home")))
    add_session_root(tmp_path)
    assert own.metrics().boxes_created_total == 0
    counted = own.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY), name="counted")
    assert own.metrics().boxes_created_total == 1
    own.remove(counted.id)
    opts = boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, name="goc", auto_remove=False)
    first, created = own.get_or_create(opts)
    again, created_again = own.get_or_create(opts)
    assert (created, created_again) == (True, False) and again.id == first.id
    own.remove("goc")
    own.shutdown()
    with pytest.raises(RuntimeError):
        own.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY))


# --------------------------------------------------------------------- SyncBox / SyncExecution

def test_sync_box_identity_info_metrics(box, rt):
    """id, name, info() and metrics() of a running box; with-statement on a SyncBox."""
    assert isinstance(box, SyncBox) and isinstance(box, SyncContextManager)
    assert len(box.id) >= 12 and box.name
    info = box.info()
    assert info.id == box.id
    assert os.path.exists(f"/proc/{info.pid}")  # The VM process is real.
    assert box.metrics() is not None


def test_exec_streams_str_chunks_with_split_utf8(box):
    """exec(cmd, args) -> SyncExecution; stdout()/stderr() iterate str chunks; a UTF-8
    character split across two writes arrives whole; wait() gives the exit code."""
    script = r"printf 'caf\303'; sleep 0.2; printf '\251\n'; echo err >&2; exit 3"
    execution = box.exec("sh", ["-c", script])
    assert isinstance(execution, SyncExecution)
    out = execution.stdout()
    err = execution.stderr()
    assert isinstance(out, SyncExecStdout) and isinstance(err, SyncExecStderr)
    chunks = list(out)
    assert all(isinstance(c, str) for c in chunks)
    assert "".join(chunks) == "café\n"
    assert "".join(err) == "err\n"
    assert execution.wait().exit_code == 3


def test_exec_stdin_env_cwd_user_and_ids(box):
    """stdin() -> SyncExecStdin(send_input, close); env as 0.9's list of pairs; user and
    cwd; id as an attribute and as 0.9's call; each stream is taken once."""
    execution = box.exec("sh", ["-c", 'cat; echo "[$K] $(pwd) $(id -u)"'], env=[("K", "v")],
                         cwd="/etc", user="65534")
    stdin = execution.stdin()
    assert isinstance(stdin, SyncExecStdin)
    stdin.send_input(b"fed\n")
    stdin.close()
    assert stdin.is_closed()
    assert "".join(execution.stdout()) == "fed\n[v] /etc 65534\n"
    assert execution.wait().exit_code == 0
    assert isinstance(execution.id, str) and execution.id and execution.id() == execution.id
    with pytest.raises(boxlite.BoxliteError, match="stdout stream not available") as caught:
        execution.stdout()
    assert isinstance(caught.value, RuntimeError)


def test_exec_kill_signal_timeout_and_tty(box):
    """kill() and signal(n) end a process (0.9's exit code -n); timeout_secs kills it and
    wait() says timed_out; tty=True gives a terminal whose size resize_tty() sets."""
    sleeper = box.exec("sleep", ["600"])
    sleeper.signal(signal.SIGTERM)
    assert sleeper.wait().exit_code == -signal.SIGTERM
    killed = box.exec("sleep", ["600"])
    killed.kill()
    assert killed.wait().exit_code == -signal.SIGKILL
    limited = box.exec("sleep", ["600"], timeout_secs=1)
    result = limited.wait()
    assert result.timed_out and result.exit_code == -signal.SIGKILL
    tty = box.exec("sh", ["-c", "read x; stty size"], tty=True)
    tty.resize_tty(33, 101)
    tty.stdin().send_input(b"go\r")
    assert "33 101" in "".join(tty.stdout())
    assert tty.wait().exit_code == 0


def test_attach_by_id_and_to_the_main_command(box, rt):
    """attach(id) reaches a running execution (its stdout, its stdin); attach() with no
    id reaches the box's main command (0.9's cmd=)."""
    execution = box.exec("sh", ["-c", 'read x; echo "got $x"'])
    attached = box.attach(execution.id)
    assert isinstance(attached, SyncExecution) and attached.id == execution.id
    attached.stdin().send_input(b"it\n")
    assert "".join(attached.stdout()) == "got it\n"
    assert execution.wait().exit_code == 0
    with pytest.raises(boxlite.BoxliteError, match="no execution"):
        box.attach("no-such-execution")
    main = rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, network="none",
                                        cmd=["sh", "-c", 'echo main says hi; read x; echo "main got $x"']))
    with main:
        session = main.attach()
        session.stdin().send_input(b"input\n")
        text = "".join(session.stdout())
        assert "main says hi" in text and "main got input" in text


def test_copy_in_and_out(box, tmp_path):
    """copy_in / copy_out of a real file."""
    src = tmp_path / "in.txt"
    src.write_text("across\n")
    box.copy_in(str(src), "/root/in.txt")
    assert "".join(box.exec("cat", ["/root/in.txt"]).stdout()) == "across\n"
    box.copy_out("/root/in.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "across\n"


# --------------------------------------------------------------------- SyncSimpleBox

def test_sync_simplebox_09_style_with_reuse(homes):
    """0.9's style: SyncSimpleBox(image=..., memory_mib=..., name=..., reuse_existing=...)
    on SyncBoxlite.default(); exec returns an ExecResult; a second box of that name is
    the same box (created False), with its disk."""
    rt = SyncBoxlite.default()
    try:
        with SyncSimpleBox(image=IMAGE, memory_mib=MEMORY, name="sync-reuse", auto_remove=False,
                           reuse_existing=True) as first:
            assert first.created is True
            result = first.exec("sh", "-c", "echo kept > /root/marker; cat /root/marker")
            assert (result.exit_code, result.stdout) == (0, "kept\n")
            first_id = first.id
        with SyncSimpleBox(image=IMAGE, memory_mib=MEMORY, name="sync-reuse", auto_remove=False,
                           reuse_existing=True) as again:
            assert again.created is False and again.id == first_id
            assert again.exec("cat", "/root/marker").stdout == "kept\n"
    finally:
        if rt.get("sync-reuse") is not None:
            rt.remove("sync-reuse", force=True)


def test_sync_simplebox_our_style(homes):
    """Our spelling (boxlite.sync.SimpleBox is SyncSimpleBox): cpu=, memory=, env dict,
    an explicit runtime; leaving removes the ephemeral box."""
    assert boxlite.sync.SimpleBox is SyncSimpleBox
    rt = SyncBoxlite(boxlite.Options(home_dir=str(homes[0] / "ours")))
    with boxlite.sync.SimpleBox(IMAGE, cpu=1, memory=MEMORY, env={"WHO": "ours"}, runtime=rt) as b:
        assert b.created is True
        assert b.exec("sh", "-c", "echo $WHO").stdout == "ours\n"
        box_id = b.id
    assert rt.get(box_id) is None


# --------------------------------------------------------------------- errors

def test_errors_without_a_vm(rt, registry, fault_proxy):
    """Bad option, bad reference, missing image, missing box, unauthorized registry:
    each the class its structure says, each a RuntimeError."""
    caught = []
    with pytest.raises(boxlite.ConfigError, match="bad name!") as e:
        with SyncSimpleBox(image=IMAGE, memory_mib=MEMORY, name="bad name!", runtime=rt):
            pytest.fail("the box must not start")
    caught.append(e.value)
    with pytest.raises(boxlite.InvalidReferenceError) as e:
        rt.images.pull("UPPER//bad::ref")
    caught.append(e.value)
    with pytest.raises(boxlite.ImageNotFoundError, match="no-such-tag") as e:
        with SyncSimpleBox(image=f"{registry.host}/busybox:no-such-tag", memory_mib=MEMORY, runtime=rt):
            pytest.fail("the box must not start")
    caught.append(e.value)
    with pytest.raises(boxlite.BoxNotFoundError) as e:
        rt.remove("sync-api-no-such-box")
    caught.append(e.value)
    proxy = fault_proxy()
    proxy.unauthorized()
    with pytest.raises(boxlite.AuthenticationError) as e:
        rt.images.pull(f"{proxy.host}/busybox:latest")
    caught.append(e.value)
    for err in caught:
        assert isinstance(err, RuntimeError) and err.code, err


def test_errors_of_a_running_box(box, tmp_path):
    """ExecError (the core refuses to resize an exec without a terminal), BoxStateError
    (input after close), NotSupportedError (a FIFO cannot be copied), all RuntimeErrors."""
    execution = box.exec("cat")
    with pytest.raises(boxlite.ExecError, match="no terminal") as e:
        execution.resize_tty(10, 10)
    assert (e.value.code, e.value.subject) == ("failed_precondition", "exec")
    stdin = execution.stdin()
    stdin.close()
    with pytest.raises(boxlite.BoxStateError, match="stdin is closed"):
        stdin.send_input(b"late")
    assert execution.wait().exit_code == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(boxlite.NotSupportedError, match="special file") as e:
        box.copy_in(str(fifo), "/root/fifo")
    assert isinstance(e.value, RuntimeError)


def test_errors_of_a_frozen_then_dead_box(rt):
    """A frozen VM does not answer: TimeoutError (also the builtin one). A stopped box and
    a killed VM: BoxStateError. All RuntimeErrors."""
    b = rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY))
    with b:
        pid = b.info().pid
        sleeper = b.exec("sleep", ["600"])
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(boxlite.TimeoutError) as e:
                sleeper.signal(signal.SIGTERM)
            assert isinstance(e.value, TimeoutError) and isinstance(e.value, RuntimeError)
        finally:
            os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(boxlite.BoxStateError, match="stopped unexpectedly") as e:
            b.exec("true").wait()
        assert (e.value.code, e.value.subject) == ("unavailable", "box")
    with pytest.raises(boxlite.BoxStateError) as e:
        b.exec("true")
    assert e.value.subject == "box" and isinstance(e.value, RuntimeError)

# BoxLite 0.9's box lifecycle through the Python SDK, against real VMs booted from the
# built-in image boxlite/base (busybox; its CMD is ["sh"]): BoxOptions' lifecycle fields
# (entrypoint, cmd, tty, user, working_dir, auto_remove, auto_delete, detach), the main
# command's init semantics (it starts with the box, attach reads it, its exit stops the
# box and is recorded), box ids, states, get_or_create, list_info(_state=), shutdown, and
# every validation error with its exception class. Each field is observed in the guest or
# in the runtime's state on the host, never read back from the options object.
import asyncio
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

import boxlite  # noqa: E402  (the SDK under test; main's install or PYTHONPATH)

from conftest import add_session_root, wait_for  # noqa: E402

BASE = "boxlite/base"
BASE62_ID = re.compile(r"^[0-9A-Za-z]{12}$")


def run(coro):
    return asyncio.run(coro)


def state_of(info):
    """The state name of a BoxInfo (a string, or 0.9's BoxStateInfo with .status)."""
    return getattr(info.state, "status", info.state)


async def sh(box, script, user=None):
    """Runs `sh -c script` in the box: (exit code, stdout)."""
    execution = await box.stream("sh", "-c", script, user=user, open_stdin=False)
    out = b""
    async for chunk in execution.stdout():
        out += chunk
    result = await execution.wait()
    return result.exit_code, out.decode()


def read_until(core_exec, needle, limit=60.0):
    """Reads the main command's stdout (through the binding's exec handle) until `needle`."""
    seen = b""
    deadline = time.monotonic() + limit
    while needle not in seen and time.monotonic() < deadline:
        chunk = core_exec.read(1, 1.0)
        if chunk == b"":
            break
        if chunk:
            seen += chunk
    return seen


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("lifecycle-home")
    add_session_root(path)
    return path


@pytest.fixture(scope="module")
def rt(home):
    return boxlite.Boxlite(boxlite.Options(home_dir=str(home)))


@pytest.fixture(scope="module")
def shared(rt):
    """One running box for the tests that only look: default cpus and memory, a user
    and a working directory, the image's CMD (sh) as its main command."""
    box = run(rt.create(boxlite.BoxOptions(image=BASE, user="1234:2345", working_dir="/tmp"),
                        name="lc-shared"))
    run(box.start())
    yield box
    run(box.stop())


def test_ids_are_base62_and_boxes_are_found_by_id_prefix_and_name(rt, shared):
    """0.9's ids: 12 Base62 characters; get/get_info by id, unique prefix or name."""
    assert BASE62_ID.match(shared.id), shared.id
    for key in (shared.id, shared.id[:8], "lc-shared"):
        found = run(rt.get(key))
        assert found is not None and found.id == shared.id, key
        assert run(rt.get_info(key)).id == shared.id
    assert run(rt.get("no-such-box")) is None
    assert run(rt.get_info("no-such-box")) is None
    assert shared.id in {i.id for i in run(rt.list_info())}


def test_defaults_user_and_working_dir_are_what_the_guest_sees(shared):
    """cpus 1 and memory 1024 MiB by default; user and working_dir apply to commands and to
    the main command (its /proc entry shows the uid and the cwd)."""
    code, out = run(sh(shared, "nproc; awk '/MemTotal/ {print $2}' /proc/meminfo; id -u; id -g; pwd"))
    assert code == 0, out
    nproc, mem_kib, uid, gid, cwd = out.split()
    assert nproc == "1"
    assert 900 * 1024 < int(mem_kib) <= 1024 * 1024
    assert (uid, gid, cwd) == ("1234", "2345", "/tmp")
    main = shared._core.attach_main()
    code, out = run(sh(shared, f"cat /proc/{main.pid}/cmdline | tr '\\0' ' '; echo;"
                               f" awk '/^Uid:/ {{print $2}}' /proc/{main.pid}/status;"
                               f" readlink /proc/{main.pid}/cwd"))
    assert code == 0, out
    assert out.split("\n")[:3] == ["sh ", "1234", "/tmp"], out


def test_the_images_cmd_is_the_main_command_and_attach_drives_it(shared):
    """The image's CMD (sh) runs from the start with stdin held open; attach(None) (the
    binding's attach_main) writes to it and reads its output, and the backlog replays
    what a new attach missed."""
    main = shared._core.attach_main()
    main.write_stdin(b"echo main-says-$((6*7)); echo to-stderr >&2\n")
    assert b"main-says-42" in read_until(main, b"main-says-42")
    again = shared._core.attach_main()
    assert b"main-says-42" in read_until(again, b"main-says-42")
    assert state_of(run(shared.info())) == "running"


def stopped_with_code_in(rt):
    def check(name):
        info = run(rt.get_info(name))
        return info is not None and state_of(info) == "stopped" and info.exit_code is not None
    return check


def test_the_main_commands_backlog_is_bounded(shared):
    """A late attach replays at most the newest 256 KiB of the main command's output (as
    BoxLite 0.9 does): 600 KB written, the backlog holds its end."""
    main = shared._core.attach_main()
    main.write_stdin(b"head -c 600000 /dev/zero | tr '\\0' a; echo BACKLOG-END\n")
    assert b"BACKLOG-END" in read_until(main, b"BACKLOG-END")
    late = read_until(shared._core.attach_main(), b"BACKLOG-END")
    assert late.endswith(b"a" * 1000 + b"BACKLOG-END\n")
    assert 250 * 1024 < len(late) <= 256 * 1024


def test_entrypoint_and_cmd_exit_stops_the_box_and_is_recorded(rt):
    """entrypoint + cmd replace the image's; when the command exits the box stops itself
    with exit_code; auto_remove=False keeps it; start() restarts a stopped box and an exec
    starts one implicitly; list_info(_state=) filters by state."""
    stopped_with_code = stopped_with_code_in(rt)
    box = run(rt.create(boxlite.BoxOptions(
        image=BASE, entrypoint=["sh", "-c"], cmd=["echo started; read code; exit $code"],
        auto_remove=False), name="lc-exit"))
    try:
        assert state_of(run(box.info())) == "configured"
        run(box.start())
        main = box._core.attach_main()
        assert b"started" in read_until(main, b"started")
        main.write_stdin(b"5\n")
        assert main.wait(60)[0] == 5
        assert wait_for(lambda: stopped_with_code("lc-exit"), timeout=60)
        info = run(rt.get_info("lc-exit"))
        assert info.exit_code == 5
        assert [i.id for i in run(rt.list_info(_state="stopped")) if i.id == box.id] == [box.id]
        assert box.id not in {i.id for i in run(rt.list_info(_state="running"))}
        # A stopped box starts again (its command starts over), and start() twice is one start.
        run(box.start())
        run(box.start())
        assert state_of(run(box.info())) == "running"
        assert run(box.info()).exit_code is None
        main = box._core.attach_main()
        assert b"started" in read_until(main, b"started")
        main.write_stdin(b"0\n")
        assert wait_for(lambda: state_of(run(rt.get_info("lc-exit"))) == "stopped", timeout=60)
        # An exec on a stopped box starts it first (0.9's can_exec).
        code, out = run(sh(box, "echo implicit"))
        assert (code, out) == (0, "implicit\n")
        assert state_of(run(box.info())) == "running"
    finally:
        run(rt.remove("lc-exit", force=True))
    assert run(rt.get("lc-exit")) is None


def test_auto_delete_removes_at_stop_over_auto_remove_and_tty_main(rt):
    """auto_delete=1 removes the box when it stops even with auto_remove=False; tty=True
    puts the main command on a terminal."""
    box = run(rt.create(boxlite.BoxOptions(
        image=BASE, tty=True, auto_remove=False, auto_delete=1,
        cmd=["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; read x; exit 3"])))
    box_id = box.id
    run(box.start())
    main = box._core.attach_main()
    assert b"on-a-tty" in read_until(main, b"on-a-tty")
    main.write_stdin(b"done\n")
    assert main.wait(60)[0] == 3
    assert wait_for(lambda: run(rt.get(box_id)) is None, timeout=60)
    assert box_id not in {i.id for i in run(rt.list_info())}


def test_detached_box_outlives_its_creator_and_stops_with_its_main_command(rt, home):
    """detach=True with auto_delete=0: the creating process exits, the main command goes on
    in the guest and, when it exits, the VM stops itself; another process reads the exit
    code from the box's state. stop() keeps a detached box."""
    program = textwrap.dedent(f"""
        import asyncio, boxlite
        async def main():
            rt = boxlite.Boxlite(boxlite.Options(home_dir={str(home)!r}))
            box = await rt.create(boxlite.BoxOptions(
                image={BASE!r}, detach=True, auto_delete=0,
                cmd=["sh", "-c", "read go; exit 9"]), name="lc-orphan")
            await box.start()
            print(box.id, flush=True)
        asyncio.run(main())
    """)
    stopped_with_code = stopped_with_code_in(rt)
    made = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=300,
                          env=dict(os.environ))
    assert made.returncode == 0, made.stderr.decode()
    try:
        info = run(rt.get_info("lc-orphan"))
        assert state_of(info) == "running" and info.detach
        # This process is not the box's creator: it can still run commands in it, and its
        # main command still waits for input nobody can send now.
        box = run(rt.get("lc-orphan"))
        code, out = run(sh(box, "ps -o args | grep -c '^sh -c read go; exit 9'"))
        assert code == 0 and out.strip() == "1", out
        # Ending the main command from inside: its exit powers the VM off (and ends this
        # exec with it).
        # The guest is hostile: a forged exit line on the console, one the host would read
        # if it trusted any such line, must not become the box's exit code (the agent's
        # own line, written after the main command ends, is the one read).
        _, forged = run(sh(box, "for c in /dev/console /dev/ttyS0; do [ -w $c ] && "
                                "echo 'boxlite-agent: main command exited with code 77' > $c "
                                "&& echo $c; done"))
        assert forged.split(), "the guest could not write its console: no attack was made"
        try:
            run(sh(box, """kill $(ps -o pid,args | awk '$2 == "sh" && $4 == "read" {print $1}')"""))
        except boxlite.errors.BoxStateError:
            pass  # The VM powered off before this exec's own exit event left it.
        assert wait_for(lambda: stopped_with_code("lc-orphan"), timeout=60)
        stopped = run(rt.get_info("lc-orphan"))
        assert stopped.exit_code == 128 + 15, stopped
        # stop() on a detached box keeps it (auto_delete=0).
        run(box.stop())
        kept = run(rt.get_info("lc-orphan"))
        assert kept is not None and kept.exit_code == 128 + 15
    finally:
        run(rt.remove("lc-orphan", force=True))


def test_get_or_create_both_ways_and_refuses_other_privileges(rt):
    """get_or_create creates once, then adopts the box of that name (created=False); it
    refuses to adopt a box created with other privileges. No name: always a new box."""
    opts = boxlite.BoxOptions(image=BASE)
    first, created = run(rt.get_or_create(opts, name="lc-goc"))
    try:
        assert created is True and state_of(run(first.info())) == "configured"
        again, created = run(rt.get_or_create(opts, name="lc-goc"))
        assert created is False and again.id == first.id
        with pytest.raises(boxlite.BoxStateError, match="capability policy"):
            run(rt.get_or_create(boxlite.BoxOptions(image=BASE, network=boxlite.NetworkSpec(
                mode="enabled", allow_host=True)), name="lc-goc"))
        # 0.9's rule: another capability set is another policy; the same set spelled
        # otherwise (case, CAP_ prefix) is the same one.
        def caps(add):
            return boxlite.BoxOptions(image=BASE, advanced=boxlite.AdvancedBoxOptions(
                capabilities=boxlite.ContainerCapabilities(add=add)))
        with pytest.raises(boxlite.BoxStateError, match="capability policy"):
            run(rt.get_or_create(caps(["NET_ADMIN"]), name="lc-goc"))
        run(rt.remove("lc-goc", force=True))
        capped, created = run(rt.get_or_create(caps(["net_admin"]), name="lc-goc"))
        assert created is True
        again, created = run(rt.get_or_create(caps(["CAP_NET_ADMIN"]), name="lc-goc"))
        assert created is False and again.id == capped.id
        unnamed_a, made_a = run(rt.get_or_create(opts))
        unnamed_b, made_b = run(rt.get_or_create(opts))
        assert made_a and made_b and unnamed_a.id != unnamed_b.id
        for box in (unnamed_a, unnamed_b):
            run(rt.remove(box.id))
    finally:
        run(rt.remove("lc-goc", force=True))


def test_shutdown_stops_the_runtimes_boxes_and_refuses_new_work(home):
    """shutdown(timeout) stops every non-detached box of the runtime (an ephemeral one is
    removed); afterwards creating or starting fails with "runtime is shut down"."""
    rt2 = boxlite.Boxlite(boxlite.Options(home_dir=str(home)))
    box = run(rt2.create(boxlite.BoxOptions(image=BASE)))
    waiting = run(rt2.create(boxlite.BoxOptions(image=BASE, auto_remove=False)))
    run(box.start())
    pid = run(box.info()).pid
    assert pid > 0
    run(rt2.shutdown(timeout=5))
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30)
    assert run(rt2.get(box.id)) is None
    assert repr(rt2).startswith("Boxlite(open=false")
    with pytest.raises(boxlite.BoxStateError, match="runtime is shut down"):
        run(rt2.create(boxlite.BoxOptions(image=BASE)))
    with pytest.raises(boxlite.BoxStateError, match="runtime is shut down"):
        run(waiting.start())
    other = boxlite.Boxlite(boxlite.Options(home_dir=str(home)))
    run(other.remove(waiting.id))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"cpus": 0}, "ConfigError", "cpus must be from 1 to 16"),
        ({"memory_mib": 64}, "ConfigError", "memory_mib must be from 128"),
        ({"cpus": "2"}, "ConfigError", "cpus must be an int"),
        ({"detach": True}, "ConfigError", "remove-on-stop is incompatible with detach=true"),
        ({"detach": True, "auto_remove": False, "auto_delete": 5}, "ConfigError",
         "remove-on-stop is incompatible with detach=true"),
        ({"auto_pause": 60}, "NotSupportedError", "AutoPause is only supported by REST runtimes"),
        ({"auto_delete": -1}, "ConfigError", "auto_delete"),
        ({"entrypoint": "sh"}, "ConfigError", "entrypoint must be a list"),
        ({"cmd": [""], "entrypoint": []}, "ConfigError", "cmd's program"),
        ({"user": "a:b:c"}, "ConfigError", "user must be"),
        ({"working_dir": "relative"}, "ConfigError", "working_dir"),
        ({"name": "bad name!"}, "ConfigError", "box name"),
        ({"network": "bridge"}, "ConfigError", "network must be"),
        ({"network": boxlite.NetworkSpec(mode="enabled", allow_net=["exa mple.com"])},
         "ConfigError", "allow_net pattern 'exa mple.com'"),
        ({"network": boxlite.NetworkSpec(mode="disabled", allow_net=["example.com"])},
         "ConfigError", "allow_net needs network"),
        ({"secrets": [object()]}, "ConfigError", "secrets must be boxlite.Secret objects"),
        ({"secrets": [boxlite.Secret("n" * 256, "v", ["api.test"])]}, "ConfigError",
         "secret name"),
        ({"ports": [{"guest_port": 80, "protocol": "udp"}]}, "ConfigError", "only TCP"),
        ({"ports": [(8080, 0)]}, "ConfigError", "guest port"),
        ({"network": "none", "ports": [(8080, 80)]}, "ConfigError", "published ports need"),
        ({"volumes": [("/nonexistent/lc", "/m", True)]}, "ConfigError", "does not exist"),
        ({"tty": "yes"}, "ConfigError", "tty must be a bool"),
        ({"advanced": 3}, "ConfigError", "advanced must be"),
    ],
)
def test_each_bad_option_is_refused_with_its_class(kwargs, error, message):
    """Every rule is the core's (ValidateBoxOptions); the class comes from its code."""
    with pytest.raises(getattr(boxlite, error), match=re.escape(message)):
        boxlite.BoxOptions(image=BASE, **kwargs)


def test_options_spellings_defaults_and_repr():
    """Both spellings build the same options; defaults come from the core; 0.9's repr."""
    ours = boxlite.BoxOptions(BASE, cpu=2, memory=512, disk_size=2048,
                              mounts=[("/tmp", "/m", "ro")], env={"A": "1"},
                              ports=[(8080, 80)], network="nat")
    nines = boxlite.BoxOptions(image=BASE, cpus=2, memory_mib=512, disk_size_gb=2,
                               volumes=[{"host": "/tmp", "guest": "/m", "ro": True}],
                               env=[("A", "1")], ports=[{"host_port": 8080, "guest_port": 80}],
                               network=boxlite.NetworkSpec(mode="enabled"))
    assert ours == nines
    default = boxlite.BoxOptions()
    assert (default.image, default.cpus, default.memory_mib) == ("alpine:latest", 1, 1024)
    assert default.auto_remove is True and default.detach is False and default.auto_delete is None
    assert repr(default) == ("BoxOptions(image='alpine:latest', rootfs_path=None, cpus=1, "
                             "memory_mib=1024, advanced=False)")
    assert boxlite.BoxOptions(network=boxlite.NetworkSpec(mode="Disabled")).network == "none"


def test_init_default_after_default_raises(tmp_path, monkeypatch):
    """Boxlite.init_default must come before the first default(); the runtime is a sync
    context manager with 0.9's repr."""
    saved = boxlite.Boxlite._default
    monkeypatch.setenv("BOXLITE_HOME", str(tmp_path / "default-home"))
    boxlite.Boxlite._default = None
    try:
        boxlite.Boxlite.init_default(boxlite.Options(home_dir=str(tmp_path / "init-home")))
        assert boxlite.Boxlite.default().home_dir == str(tmp_path / "init-home")
        with pytest.raises(boxlite.BoxStateError, match="init_default"):
            boxlite.Boxlite.init_default(boxlite.Options())
        with boxlite.Boxlite.default() as rt:
            assert repr(rt).startswith("Boxlite(open=true")
    finally:
        boxlite.Boxlite._default = saved

"""The jail of every box's QEMU and boxlite-net (issue 11, items 2 and 6; docs/security.md):
the real processes of a running box are read in /proc, as root and as an unprivileged user;
and the 9p setuid attack, carried out by a real guest against a read-write share as root.

Environment: BOXLITE_BUILD_DIR for the CLI (tests/integration/conftest.py)."""
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import live_processes, qemu_processes, wait_for

BASE = "boxlite/base"
NOBODY = 65534
CANARY_ENV = "BOXLITE_TEST_CANARY_SECRET"
CANARY_VALUE = "sk-canary-8d1f0c"


def _status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        return _status(pid)["State"][0] != "Z"
    except (OSError, KeyError):
        return False


def _children(ppid):
    """pid -> argv of the live children of `ppid`."""
    return {pid: argv for pid, parent, argv in live_processes() if parent == ppid}


def _box_processes(cli_pid):
    """(qemu pid, boxlite-net pid) among the CLI's children, or None until both run."""
    qemu = net = None
    for pid, argv in _children(cli_pid).items():
        name = os.path.basename(argv[0])
        if name.startswith(b"qemu-system"):
            qemu = pid
        elif name == b"boxlite-net":
            net = pid
    return (qemu, net) if qemu and net else None


def _console_writer(home):
    """The pid of the boxlite-console whose log (its stdout) is a box's console log under
    `home` (a --rm box's is an unlinked temporary file), or None. It runs in a session of
    its own, reparented to init."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "boxlite-console":
                    continue
            log = os.readlink(f"/proc/{entry}/fd/1")
        except OSError:
            continue
        if log.startswith(str(home) + "/") and "console" in os.path.basename(log):
            return int(entry)
    return None


def _writer_under_test(cli):
    """This build's console writer (beside its CLI), so the test checks this tree's."""
    built = Path(cli.binary).parent.parent / "runtime" / "boxlite-console"
    return {"BOXLITE_CONSOLE_HELPER": str(built)} if built.exists() else {}


def _userns_works_for(uid):
    cmd = ["unshare", "-Ur", "true"]
    if uid != 0:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"] + cmd
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture
def canary_file(tmp_path):
    path = tmp_path / "canary-secret"
    path.write_text("secret\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(path, 0o644)
    return path


def _check_running_box(cli, canary_file, caller_uid):
    """Starts a box with networking from a caller holding a canary variable and a canary
    descriptor (not close-on-exec), then reads its QEMU, boxlite-net and boxlite-console
    (the console log writer) in /proc."""
    fd = os.open(canary_file, os.O_RDONLY)
    env = dict(cli.env)
    env[CANARY_ENV] = CANARY_VALUE
    env.update(_writer_under_test(cli))
    proc = cli.popen("run", "--rm", "--network", "nat", BASE, "sh", "-c",
                     "echo ready; sleep 600", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     env=env, pass_fds=(fd,))
    try:
        assert os.readlink(f"/proc/{proc.pid}/fd/{fd}") == str(canary_file)
        line = proc.stdout.readline()
        assert line == b"ready\n", proc.stderr.read1(4096) if line == b"" else line
        found = wait_for(lambda: _box_processes(proc.pid), timeout=10)
        assert found, f"no QEMU and boxlite-net under the CLI: {_children(proc.pid)}"
        own_mnt = os.readlink("/proc/self/ns/mnt")
        userns = _userns_works_for(caller_uid)
        # The console writer confines itself (src/runtime/console_log.h): no namespaces,
        # but no capability, no_new_privs, its seccomp allowlist, and never root.
        writer = _console_writer(os.path.realpath(cli.env["BOXLITE_HOME"]))
        assert writer, "no boxlite-console writing the box's console log"
        st = _status(writer)
        for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            assert int(st[cap], 16) == 0, f"boxlite-console: {cap} {st[cap]}"
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", "boxlite-console"
        uids = [int(u) for u in st["Uid"].split()]
        gids = [int(g) for g in st["Gid"].split()]
        if caller_uid == 0:
            assert 0 not in uids and 0 not in gids, f"boxlite-console: Uid {uids} Gid {gids}"
            assert st["Groups"] == "", f"boxlite-console: Groups {st['Groups']}"
            assert int(st["CapBnd"], 16) == 0, f"boxlite-console: CapBnd {st['CapBnd']}"
        else:
            assert uids == [caller_uid] * 4, f"boxlite-console: Uid {uids}"
        with open(f"/proc/{writer}/environ", "rb") as f:
            assert f.read() == b"", "boxlite-console got an environment"
        assert sorted(os.listdir(f"/proc/{writer}/fd")) == ["0", "1"], "boxlite-console fds"
        for pid in found:
            st = _status(pid)
            what = f"{'qemu' if pid == found[0] else 'boxlite-net'} (pid {pid})"
            for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
                assert int(st[cap], 16) == 0, f"{what}: {cap} {st[cap]}"
            assert st["NoNewPrivs"] == "1", what
            assert st["Seccomp"] == "2", what
            uids = [int(u) for u in st["Uid"].split()]
            gids = [int(g) for g in st["Gid"].split()]
            if caller_uid == 0:
                assert 0 not in uids and 0 not in gids, f"{what}: Uid {uids} Gid {gids}"
                assert int(st["CapBnd"], 16) == 0, f"{what}: CapBnd {st['CapBnd']}"
                # Its own pid namespace, where it is the first process.
                assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
                assert st["NSpid"].split()[-1] == "1", f"{what}: NSpid {st['NSpid']}"
                # A root of its own: the host's / (with /home, /tmp, /etc/shadow) is not it.
                assert os.stat(f"/proc/{pid}/root/").st_ino != os.stat("/").st_ino or \
                    os.stat(f"/proc/{pid}/root/").st_dev != os.stat("/").st_dev, what
                assert not os.path.exists(f"/proc/{pid}/root/etc/shadow"), what
                assert not os.path.exists(f"/proc/{pid}/root{canary_file}"), what
            else:
                assert uids == [caller_uid] * 4, f"{what}: Uid {uids}"
            if caller_uid == 0 or userns:
                assert int(st["CapBnd"], 16) == 0, f"{what}: CapBnd {st['CapBnd']}"
                assert os.readlink(f"/proc/{pid}/ns/mnt") != own_mnt, f"{what}: mount ns"
                assert os.readlink(f"/proc/{pid}/ns/ipc") != os.readlink("/proc/self/ns/ipc")
                assert os.readlink(f"/proc/{pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
                # QEMU has no network of its own (boxlite-net's socket is passed to it).
                if pid == found[0]:
                    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
            assert CANARY_ENV.encode() not in environ, f"{what} got the caller's environment"
            assert CANARY_VALUE.encode() not in environ
            assert b"BOXLITE_HOME" not in environ, f"{what} got the caller's environment"
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{name}")
                except OSError:
                    continue
                assert not target.startswith(str(canary_file)), f"{what} inherited fd {name}"
        # The jail keeps the parent-death signal: killing the owner takes both down, and
        # the console writer ends with QEMU.
        proc.kill()
        proc.wait()
        found = (*found, writer)
        gone = wait_for(lambda: not any(_alive(p) for p in found), timeout=10)
        assert gone, f"the box's processes outlived their owner: {found}"
    finally:
        os.close(fd)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_qemu_and_boxlite_net_are_jailed_as_root(cli, canary_file):
    """Started by root: no capability (bounding set included), no_new_privs, seccomp, not
    uid 0, own mount/ipc/uts namespaces, none of the caller's environment or descriptors;
    the console writer: no capability (bounding set included), no_new_privs, seccomp, not
    uid 0, no supplementary group, no environment, only its pipe and log open."""
    assert os.geteuid() == 0
    _check_running_box(cli, canary_file, 0)


def test_qemu_and_boxlite_net_are_jailed_as_an_unprivileged_user(nobody_cli, canary_file):
    """Started by uid 65534: the same, running as that user."""
    _check_running_box(nobody_cli, canary_file, NOBODY)


# ------------------------------------------------------------------ 9p: no setuid file

@pytest.fixture
def user_share():
    """A directory owned by uid 65534 (a local user) with a host binary in it, reachable
    by that user (pytest's temp root is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="boxlite-share-"))
    os.chmod(base, 0o755)
    share = base / "share"
    share.mkdir()
    shutil.copy("/usr/bin/id", share / "payload")
    for p in (share, share / "payload"):
        os.chown(p, NOBODY, NOBODY)
    os.chmod(share / "payload", 0o755)
    yield share
    shutil.rmtree(base, ignore_errors=True)


ATTACK = """
cd /mnt/s || exit 9
cp payload evil && chown 0:0 evil; echo chown=$?
chmod 4755 evil; echo suid=$?
chmod 2755 evil; echo sgid=$?
cp payload evil2 && chmod 6755 evil2; echo both=$?
cp payload evil3 && chmod u+s,g+s evil3; echo plus=$?
mkdir -m 2775 sgid-dir; echo mkdir=$?
mknod -m 4755 node p; echo mknod=$?
chown 0:0 . ; echo chown_dir=$?
ls -ln /mnt/s
"""


def test_guest_root_cannot_plant_a_setuid_file_in_a_read_write_share(cli, user_share):
    """The attack of issue 11 item 2: guest root copies a binary into a read-write share,
    chowns it to 0:0 and sets the setuid/setgid bits (every spelling). On the host no file
    in the share is setuid, setgid or owned by anyone but the share's owner, and a local
    user running the files gets no privilege."""
    p = cli.run("run", "--rm", "-v", f"{user_share}:/mnt/s", BASE, "sh", "-c", ATTACK,
                timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "chown=" in out and "suid=" in out, out
    for path in [user_share, *user_share.rglob("*")]:
        st = os.lstat(path)
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), f"{path}: {oct(st.st_mode)}\n{out}"
        assert st.st_uid == NOBODY, f"{path} belongs to uid {st.st_uid}\n{out}"
    for name in ("evil", "evil2", "evil3"):
        path = user_share / name
        if not path.exists():
            continue
        for flag, want in (("-u", NOBODY), ("-g", NOBODY)):
            r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                "--clear-groups", "--", str(path), flag],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert int(r.stdout) == want, f"{name} {flag} ran as {r.stdout.strip()}"
    # Files the guest creates belong to the share's owner.
    assert (user_share / "evil").exists(), out
    assert os.stat(user_share / "evil").st_gid == NOBODY


def test_a_read_write_share_owned_by_root_is_refused_before_boot(cli, tmp_path):
    """Root's own directory cannot be shared read-write (the VM would write as another
    user into it): a clear error saying what to do, and no VM starts."""
    share = tmp_path / "rootdir"
    share.mkdir()
    os.chmod(share, 0o755)
    before = set(qemu_processes())
    p = cli.run("run", "--rm", "-v", f"{share}:/mnt/s", BASE, "true")
    assert p.returncode != 0
    assert set(qemu_processes()) == before
    err = p.stderr.decode()
    errors = [line for line in err.splitlines() if not line.startswith("boxlite: warning:")]
    assert len(errors) == 1, err
    assert str(share) in errors[0] and "chown" in errors[0] and "read-only" in errors[0], err
    # Read-only, the same directory works.
    p = cli.run("run", "--rm", "-v", f"{share}:/mnt/s:ro", BASE, "ls", "/mnt/s")
    assert p.returncode == 0, p.stderr

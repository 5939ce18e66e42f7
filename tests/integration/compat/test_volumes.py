"""Volumes (BoxLite 0.9's ``runtime.volumes`` / ``boxlite volume``), made real: named
volumes under ``<home>/volumes/<id>`` shared into boxes by id, anonymous volumes made for
one box and removed with it, in-use removal refused, and the CLI's global ``--home``.

Every fact is observed from the guest (files a box wrote, read by another box) or from
the host's real state (directories, owners), never read back from the object that set it.
"""
import asyncio
import json
import os
import re
import subprocess
import sys

import pytest

import boxlite
from conftest import Cli

IMAGE = "boxlite/base"
MEMORY = 256
ID_RE = re.compile(r"^[0-9A-Za-z]{12}$")
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def rt(home):
    return boxlite.Boxlite(boxlite.Options(home_dir=str(home)))


async def _exec(rt, volumes, script):
    """Runs `sh -c script` in a new ephemeral box with `volumes`; the result."""
    async with boxlite.SimpleBox(IMAGE, memory=MEMORY, volumes=volumes, runtime=rt) as box:
        return await box.exec("sh", "-c", script)


def test_a_named_volume_carries_data_from_one_box_to_another(rt, home):
    """Box 1 writes into the volume, box 2 (a new VM) reads it back; the host directory
    is <home>/volumes/<id> and its owner works for the VM's user (root: the jail user)."""
    async def main():
        vol = await rt.volumes.create()
        assert ID_RE.match(vol.id), vol.id
        path = home / "volumes" / vol.id
        assert path.is_dir()
        wrote = await _exec(rt, [(vol.id, "/data", False)], "echo from-box-one > /data/note && sync")
        assert wrote.exit_code == 0, wrote.stderr
        assert (path / "note").read_text() == "from-box-one\n"
        read = await _exec(rt, [(vol.id, "/mnt/v", "ro")],
                           "cat /mnt/v/note; (echo x > /mnt/v/other) 2>/dev/null || echo refused")
        assert read.stdout == "from-box-one\nrefused\n", read.stdout + read.stderr
        st = os.stat(path)
        if os.geteuid() == 0:
            assert st.st_uid != 0, "a root-owned volume would be refused by the VM jail"
        # The volume outlives its boxes and reports the bytes its files hold.
        got = await rt.volumes.get(vol.id)
        assert got.size_bytes >= 4096 and RFC3339_RE.match(got.created_at)
        await rt.volumes.remove(vol.id)
        assert not path.exists()
        assert await rt.volumes.get(vol.id) is None

    run(main())


def test_an_anonymous_volume_lives_and_dies_with_its_box(rt, home):
    """A (None, "/cache") mount gets a fresh directory under <home>/volumes that the guest
    writes into; removing the box removes it."""
    async def main():
        before = {v.id for v in await rt.volumes.list()}
        box = boxlite.SimpleBox(IMAGE, memory=MEMORY, auto_remove=False, volumes=[(None, "/cache")],
                                runtime=rt)
        async with box:
            made = [v for v in await rt.volumes.list() if v.id not in before]
            assert len(made) == 1
            anon = home / "volumes" / made[0].id
            r = await box.exec("sh", "-c", "echo anon > /cache/f && sync && mount | grep -c ' /cache '")
            assert r.exit_code == 0 and r.stdout.strip() == "1", r.stdout + r.stderr
        assert (anon / "f").read_text() == "anon\n"
        await rt.remove(box.id)
        assert not anon.exists()
        assert {v.id for v in await rt.volumes.list()} == before

    run(main())


def test_an_ephemeral_box_never_started_takes_its_anonymous_volume_along(rt, home):
    """Creating a box makes its anonymous volume; removing it before it ever ran (and
    dropping the object) leaves nothing under <home>/volumes."""
    async def main():
        box = await rt.create(boxlite.BoxOptions(image=IMAGE, volumes=[("", "/scratch")]))
        assert len(await rt.volumes.list()) == 1
        await rt.remove(box.id)
        assert await rt.volumes.list() == []
        assert not [p for p in (home / "volumes").iterdir()]

    run(main())


def test_removing_a_volume_a_box_mounts_is_refused_unless_forced(rt, home):
    async def main():
        vol = await rt.volumes.create()
        box = await rt.create(boxlite.BoxOptions(image=IMAGE, auto_remove=False, name="holder",
                                                 volumes=[(vol.id, "/data")]))
        with pytest.raises(boxlite.BoxliteError) as err:
            await rt.volumes.remove(vol.id)
        assert "in use by box holder" in str(err.value)
        assert (home / "volumes" / vol.id).is_dir()
        await rt.volumes.remove(vol.id, force=True)
        assert not (home / "volumes" / vol.id).exists()
        await rt.remove(box.id)

    run(main())


def test_bad_volume_input_is_refused_clearly(rt):
    async def main():
        with pytest.raises(boxlite.BoxliteError, match="not found"):
            await rt.create(boxlite.BoxOptions(image=IMAGE, volumes=[("AAAAAAAAAAAA", "/data")]))
        with pytest.raises(boxlite.ConfigError, match="absolute"):
            boxlite.BoxOptions(image=IMAGE, volumes=[(None, "relative")])
        with pytest.raises(boxlite.ConfigError):
            await rt.volumes.get("")
        assert await rt.volumes.get("../../etc") is None
        with pytest.raises(boxlite.BoxliteError, match="not found"):
            await rt.volumes.remove("AAAAAAAAAAAA")
        assert await rt.volumes.list() == []

    run(main())


# ---------------------------------------------------------------------------------- CLI


@pytest.fixture
def vcli(cli_binary, tmp_path):
    return Cli(cli_binary, tmp_path / "cli-home")


def test_cli_volume_commands(vcli):
    """create / ls / list -q / --format json / get / inspect / rm / delete, checked against
    the home's directories."""
    a = vcli.run("volume", "create", check=True).stdout.decode().strip()
    b = vcli.run("volume", "create", check=True).stdout.decode().strip()
    assert ID_RE.match(a) and ID_RE.match(b) and a != b
    for vid in (a, b):
        assert (vcli.home / "volumes" / vid).is_dir()
    table = vcli.run("volume", "ls", check=True).stdout.decode()
    assert table.splitlines()[0].split()[:2] == ["VOLUME", "ID"]
    assert a in table and b in table
    assert set(vcli.run("volume", "list", "-q", check=True).stdout.decode().split()) == {a, b}
    listed = json.loads(vcli.run("volume", "ls", "--format", "json", check=True).stdout)
    assert {v["id"] for v in listed} == {a, b}
    for v in listed:
        assert RFC3339_RE.match(v["created_at"]) and v["path"] == str(vcli.home / "volumes" / v["id"])
    got = json.loads(vcli.run("volume", "get", a, check=True).stdout)
    assert got["id"] == a and got["size_bytes"] >= 0
    assert json.loads(vcli.run("volume", "inspect", b, check=True).stdout)["id"] == b
    p = vcli.run("volume", "rm", a)
    assert p.returncode == 0 and p.stdout.decode().split() == [a]
    assert not (vcli.home / "volumes" / a).exists()
    assert vcli.run("volume", "delete", "-f", b).returncode == 0
    assert vcli.run("volume", "ls", "-q", check=True).stdout == b""


def test_cli_volume_bad_input_and_help(vcli):
    p = vcli.run("volume")
    assert p.returncode != 0 and b"subcommand" in p.stderr
    p = vcli.run("volume", "frob")
    assert p.returncode != 0 and b"unknown volume subcommand" in p.stderr
    p = vcli.run("volume", "rm", "nope1")
    assert p.returncode != 0 and b"volume nope1 not found" in p.stderr
    p = vcli.run("volume", "get")
    assert p.returncode != 0 and b"usage" in p.stderr
    p = vcli.run("volume", "ls", "--format", "xml")
    assert p.returncode != 0 and b"--format" in p.stderr
    # One good id among bad ones: the good one is removed, the command still fails.
    good = vcli.run("volume", "create", check=True).stdout.decode().strip()
    p = vcli.run("volume", "rm", "missing0001x", good)
    assert p.returncode != 0 and not (vcli.home / "volumes" / good).exists()
    h = vcli.run("volume", "--help")
    assert h.returncode == 0
    for word in (b"create", b"ls", b"inspect", b"rm", b"--force", b"--quiet", b"--format"):
        assert word in h.stdout
    assert b"--home" in vcli.run("--help").stdout


def test_cli_volume_id_and_anonymous_volume_in_run(vcli):
    """`run -v ID:/data` writes into the named volume; `run --rm -v /scratch` leaves no
    volume behind; a bad -v is refused before anything is made."""
    vid = vcli.run("volume", "create", check=True).stdout.decode().strip()
    p = vcli.run("run", "--rm", "-v", f"{vid}:/data", "-v", "/scratch", IMAGE, "sh", "-c",
                 "echo cli > /data/f && echo s > /scratch/s && sync && cat /data/f /scratch/s",
                 timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"cli\ns\n"
    assert (vcli.home / "volumes" / vid / "f").read_bytes() == b"cli\n"
    assert vcli.run("volume", "ls", "-q", check=True).stdout.decode().split() == [vid]
    bad = vcli.run("run", "--rm", "-v", "/a:/b:rx", IMAGE, "true")
    assert bad.returncode != 0 and b"ro or rw" in bad.stderr
    bad = vcli.run("run", "--rm", "-v", "relative", IMAGE, "true")
    assert bad.returncode != 0 and b"absolute" in bad.stderr
    assert vcli.run("volume", "ls", "-q", check=True).stdout.decode().split() == [vid]


def test_a_volume_works_for_an_unprivileged_user(nobody_cli):
    """Made and used by uid 65534: the directory belongs to that user and the box writes."""
    vid = nobody_cli.run("volume", "create", check=True).stdout.decode().strip()
    path = nobody_cli.home / "volumes" / vid
    assert os.stat(path).st_uid == 65534
    p = nobody_cli.run("run", "--rm", "-v", f"{vid}:/data", IMAGE, "sh", "-c",
                       "echo nobody > /data/n && sync", timeout=300)
    assert p.returncode == 0, p.stderr
    assert (path / "n").read_bytes() == b"nobody\n"
    assert nobody_cli.run("volume", "rm", vid).returncode == 0


def test_cli_home_flag_before_or_after_the_command(cli_binary, tmp_path):
    """--home PATH (and --home=PATH) wins over BOXLITE_HOME, before or after the command."""
    env_home = tmp_path / "env-home"
    c = Cli(cli_binary, env_home)
    flag_home = tmp_path / "flag-home"
    vid = c.run("--home", str(flag_home), "volume", "create", check=True).stdout.decode().strip()
    assert (flag_home / "volumes" / vid).is_dir()
    assert not (env_home / "volumes" / vid).exists()
    listed = c.run("volume", "ls", "-q", f"--home={flag_home}", check=True).stdout.decode().split()
    assert listed == [vid]
    assert c.run("volume", "ls", "-q", check=True).stdout == b""
    # Bad input: no value, twice.
    p = c.run("volume", "ls", "--home")
    assert p.returncode != 0 and b"--home needs a value" in p.stderr
    p = c.run("--home", "/a", "--home", "/b", "volume", "ls")
    assert p.returncode != 0 and b"more than once" in p.stderr
    p = c.run("--home", "/proc/boxlite-cannot-be-here", "volume", "create")
    assert p.returncode != 0 and b"/proc/boxlite-cannot-be-here" in p.stderr


def test_anonymous_volumes_of_a_killed_process_are_swept(vcli, tmp_path):
    """A process that made an ephemeral box with an anonymous volume and died without
    cleaning up (os._exit) leaves nothing visible: the next listing removes it."""
    script = (
        "import asyncio, json, os, boxlite\n"
        f"rt = boxlite.Boxlite(boxlite.Options(home_dir={str(vcli.home)!r}))\n"
        "box = asyncio.run(rt.create(boxlite.BoxOptions(image='boxlite/base', volumes=[(None, '/x')])))\n"
        f"print(json.dumps(os.listdir({str(vcli.home / 'volumes')!r})), flush=True)\n"
        "os._exit(0)\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    made = [n for n in json.loads(p.stdout) if not n.endswith(".json")]
    assert len(made) == 1
    assert vcli.run("volume", "ls", "-q", check=True).stdout == b""
    assert not (vcli.home / "volumes" / made[0]).exists()


def test_sync_runtime_has_the_same_volumes(home):
    """boxlite.sync.Boxlite().volumes: create/list/get/remove, seen on the host."""
    import boxlite.sync

    srt = boxlite.sync.Boxlite(boxlite.Options(home_dir=str(home)))
    vol = srt.volumes.create()
    assert (home / "volumes" / vol.id).is_dir()
    assert [v.id for v in srt.volumes.list()] == [vol.id]
    assert srt.volumes.get(vol.id).path == str(home / "volumes" / vol.id)
    srt.volumes.remove(vol.id)
    assert srt.volumes.get(vol.id) is None and not (home / "volumes" / vol.id).exists()

"""Bytes, not text (issue 11, item 4): file names, symlink targets, argv and env are bytes
that need not be UTF-8. A real guest makes files named with 0xff and other invalid
sequences; the host lists, stats and copies them with the CLI and the SDK and gets the
same bytes (or a clean error), and the box survives: the agent is still PID 1 and a later
exec works. Bytes given on the host (-e, argv, SDK arguments) reach the guest process
exactly. The CLI never aborts (exit 134)."""
import asyncio
import json
import os
import subprocess

import pytest

BASE = "boxlite/base"
ABORTED = 134

# Names that are not UTF-8: a lone 0xff, an overlong "/", a UTF-16 surrogate, a
# truncated sequence, control bytes; and one that is.
NAMES = [b"\xff", b"a\xc0\xafz", b"\xed\xa0\x80", b"e\xe2\x82", b"\x01\x1b[2J", b"caf\xc3\xa9"]
LINK = b"l\xff"
TARGET = b"../t\xfe\x01"
SUBDIR = b"\xfe\xfd"


def octal(b):
    """A shell word that expands to the bytes `b` (printf with octal escapes)."""
    return '"$(printf \'%s\')"' % "".join("\\%03o" % c for c in b)


# Creates /x: one file per name holding its own name, a symlink, a directory with a
# file in it. Uses printf escapes only, so it does not depend on argv carrying bytes.
MAKE_TREE = "set -e; mkdir -p /x; cd /x; " + "".join(
    f"printf %s {octal(n)} > {octal(n)}; " for n in NAMES) + (
    f"ln -s {octal(TARGET)} {octal(LINK)}; mkdir {octal(SUBDIR)}; "
    f"printf inner > {octal(SUBDIR)}/{octal(NAMES[0])}")

# Prints the names under a guest directory, NUL-separated (find -print0 is not in every
# busybox; a glob is).
LIST_NAMES = 'cd "$1" && for f in * .[!.]*; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\\0" "$f"; done; true'


def host_byte_tree(path):
    """Makes `path` on the host holding a file per name of NAMES (its name as content) and
    the link LINK -> TARGET; returns `path`."""
    os.mkdir(path)
    for n in NAMES:
        with open(os.path.join(path, n), "wb") as f:
            f.write(n)
    os.symlink(TARGET, os.path.join(path, LINK))
    return path


def start_box(cli, name):
    p = cli.run("run", "-d", "--name", name, BASE, "sleep", "900")
    assert p.returncode == 0, p.stderr
    return name


def pid1(cli, box):
    """PID 1's command name in the guest: the agent, as long as the box lives."""
    p = cli.run("exec", box, "cat", "/proc/1/comm")
    assert p.returncode == 0, p.stderr
    return p.stdout


def assert_one_line_error(p):
    assert p.returncode not in (0, ABORTED), p
    lines = [l for l in p.stderr.splitlines() if not l.startswith(b"boxlite: warning:")]
    assert len(lines) == 1, p.stderr


@pytest.fixture
def tree_box(cli):
    """A running box whose /x holds files named with invalid UTF-8."""
    box = start_box(cli, "bytes-tree")
    try:
        p = cli.run("exec", box, "sh", "-c", MAKE_TREE)
        assert p.returncode == 0, p.stderr
        yield box
    finally:
        cli.run("rm", "-f", box)


@pytest.mark.allow_background_vms
def test_cli_copies_out_names_and_link_targets_exactly_and_the_box_survives(cli, tree_box, tmp_path):
    """`boxlite cp BOX:/x host/` brings every name and link target over byte for byte; the
    agent (PID 1) is unharmed: on main the listing crashed it and the guest panicked."""
    agent = pid1(cli, tree_box)
    dest = tmp_path / "out"
    p = cli.run("cp", f"{tree_box}:/x", str(dest))
    assert p.returncode == 0, p.stderr
    got = set(os.listdir(bytes(dest)))
    assert got == set(NAMES) | {LINK, SUBDIR}
    for n in NAMES:
        with open(os.path.join(bytes(dest), n), "rb") as f:
            assert f.read() == n
    assert os.readlink(os.path.join(bytes(dest), LINK)) == TARGET
    with open(os.path.join(bytes(dest), SUBDIR, NAMES[0]), "rb") as f:
        assert f.read() == b"inner"
    # One file by its byte name, with the CLI's argv carrying the bytes.
    one = tmp_path / "one"
    p = cli.run("cp", f"{tree_box}:/x/".encode() + NAMES[1], str(one))
    assert p.returncode == 0, p.stderr
    assert one.read_bytes() == NAMES[1]
    # The box lives: same PID 1, and a later exec works.
    assert pid1(cli, tree_box) == agent
    p = cli.run("exec", tree_box, "sh", "-c", "echo alive")
    assert p.returncode == 0 and p.stdout == b"alive\n", p.stderr


@pytest.mark.allow_background_vms
def test_cli_copy_of_a_missing_byte_path_is_one_clean_line(cli, tree_box, tmp_path):
    """An error naming a path of bytes is one line on stderr (the bytes as they are)."""
    p = cli.run("cp", f"{tree_box}:/x/".encode() + b"missing\xff", str(tmp_path / "m"))
    assert_one_line_error(p)
    assert b"missing\xff" in p.stderr
    assert cli.run("exec", tree_box, "true").returncode == 0


@pytest.mark.allow_background_vms
def test_cli_copies_in_host_names_of_bytes_exactly(cli, tmp_path):
    """`boxlite cp host/ BOX:/in` creates exactly the host's byte names and targets."""
    src = host_byte_tree(os.path.join(bytes(tmp_path), b"src"))
    box = start_box(cli, "bytes-in")
    try:
        p = cli.run("cp", src, f"{box}:/in")
        assert p.returncode == 0, p.stderr
        p = cli.run("exec", box, "sh", "-c", LIST_NAMES, "sh", "/in")
        assert p.returncode == 0, p.stderr
        assert set(p.stdout.split(b"\0")[:-1]) == set(NAMES) | {LINK}
        p = cli.run("exec", box, "sh", "-c", f"readlink /in/{octal(LINK)}")
        assert p.stdout == TARGET + b"\n"
        p = cli.run("exec", box, "sh", "-c", f"cat /in/{octal(NAMES[2])}")
        assert p.stdout == NAMES[2]
    finally:
        cli.run("rm", "-f", box)


def test_cli_env_and_argv_bytes_reach_the_process_exactly(any_cli):
    """`boxlite run -e $'K=\\x01\\xff' ... printf %s "$K" "$1"`: the process gets exactly
    those bytes (on main the CLI aborted, exit 134), as root and as an unprivileged user."""
    p = any_cli.run("run", "--rm", "-e", b"K=\x01\xff", BASE, "sh", "-c", 'printf %s "$K" "$1"',
                "sh", b"\xfe\x02\xed\xa0\x80")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"\x01\xff\xfe\x02\xed\xa0\x80"


@pytest.mark.allow_background_vms
def test_cli_exec_env_bytes_and_json_output_never_abort(cli):
    """`boxlite exec -e` with bytes, and the JSON of `ls`/`inspect` for a box whose
    recorded options hold bytes: no abort, valid JSON."""
    p = cli.run("create", "--name", "bytes-json", "-e", b"B=\xff\x01", BASE)
    assert p.returncode == 0, p.stderr
    try:
        p = cli.run("start", "bytes-json")
        assert p.returncode == 0, p.stderr
        p = cli.run("exec", "-e", b"E=\x80", "bytes-json", "sh", "-c", 'printf %s "$B$E"')
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"\xff\x01\x80"
        for args in (("ls", "-a", "--format", "json"), ("inspect", "bytes-json")):
            p = cli.run(*args)
            assert p.returncode == 0, p.stderr
            json.loads(p.stdout)
    finally:
        cli.run("rm", "-f", "bytes-json")


def test_cli_invalid_bytes_in_a_box_name_are_one_clean_line(cli):
    """A name with bytes that are not UTF-8 is refused with one line, not an abort."""
    p = cli.run("create", "--name", b"n\xff", BASE)
    assert_one_line_error(p)


# The SDK's rule (boxlite.options.as_text): bytes are accepted wherever a name, path,
# argument or env entry is; a str holding lone surrogates U+DC80..U+DCFF stands for the
# bytes 0x80..0xFF; strings coming back never raise.

def sdk_run(tmp_path, coro_fn):
    import boxlite

    async def main():
        rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / "sdk-home")))
        async with boxlite.SimpleBox(BASE, memory=512, runtime=rt) as box:
            return await coro_fn(box)

    return asyncio.run(main())


def test_sdk_argv_env_and_copies_with_bytes(tmp_path):
    """The SDK: bytes (or surrogate-escaped str) in argv and env reach the process exactly;
    copy_out/copy_in keep byte names and targets; errors naming them raise BoxliteError
    (never UnicodeDecodeError); the box survives."""
    import boxlite

    out_dir = os.path.join(bytes(tmp_path), b"sdk-out")
    in_dir = host_byte_tree(os.path.join(bytes(tmp_path), b"sdk-in"))

    async def scenario(box):
        r = await box.exec(b"sh", b"-c", b'printf %s "$K" "$1"', b"sh", b"\xfe\x02",
                           env={b"K": b"\x01\xff"})
        assert r.exit_code == 0, r.stderr
        assert r.stdout_bytes == b"\x01\xff\xfe\x02"
        r = await box.exec("sh", "-c", 'printf %s "$K" "$1"', "sh", "\udcfe",
                           env=[("K", "\udcff\x01")])
        assert r.stdout_bytes == b"\xff\x01\xfe"

        r = await box.exec("sh", "-c", MAKE_TREE)
        assert r.exit_code == 0, r.stderr
        agent = (await box.exec("cat", "/proc/1/comm")).stdout_bytes
        await box.copy_out("/x", out_dir)
        assert set(os.listdir(out_dir)) == set(NAMES) | {LINK, SUBDIR}
        assert os.readlink(os.path.join(out_dir, LINK)) == TARGET
        await box.copy_out(b"/x/" + NAMES[0], os.path.join(bytes(tmp_path), b"single\xff"))
        with open(os.path.join(bytes(tmp_path), b"single\xff"), "rb") as f:
            assert f.read() == NAMES[0]

        await box.copy_in(in_dir, b"/in\xff")
        r = await box.exec(b"sh", b"-c", LIST_NAMES.encode(), b"sh", b"/in\xff")
        assert set(r.stdout_bytes.split(b"\0")[:-1]) == set(NAMES) | {LINK}

        with pytest.raises(boxlite.BoxliteError) as err:
            await box.copy_out(b"/x/missing\xff", os.path.join(bytes(tmp_path), b"m"))
        assert "missing\udcff" in str(err.value)

        with pytest.raises(boxlite.ConfigError):
            await box.exec("echo", "\ud800")  # A surrogate that stands for no byte.

        assert (await box.exec("cat", "/proc/1/comm")).stdout_bytes == agent
        return True

    assert sdk_run(tmp_path, scenario)


def test_cli_never_aborts_on_a_long_command_line(cli):
    """A command line too large for one request is a clean error, not an abort."""
    p = cli.run("run", "--rm", BASE, "echo", *["x" * 100000] * 12)
    assert_one_line_error(p)
    assert b"at most" in p.stderr

"""CodeBox (docs/codebox.md): Python code in one kept interpreter per box.

One box of the python-sci test image (debian-python plus numpy, matplotlib and pip;
scripts/test-images/images.py) is booted for the module, from its OCI layout
(``rootfs_path``), and shared by the tests in file order; each test uses names of its
own in the interpreter. Tests that kill or reset the interpreter come after those that
only use it. Everything is observed from inside the guest (values the code computes
there, files it wrote, its process id) or from what the SDK hands back. The checks of the
interpreter's answers that need no VM come last.
"""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import boxlite
from boxlite import codebox as codebox_module

MEMORY = 1024
IMAGE = "python-sci"
NAME = "codebox-tests"


@pytest.fixture(scope="module")
def cb(test_images: Any, boxlite_home: Path) -> Iterator[boxlite.CodeBox]:
    """The shared CodeBox, started in a loop of its own (each test runs in another)."""
    box = boxlite.CodeBox(rootfs_path=test_images.layout(IMAGE), memory=MEMORY, name=NAME)
    asyncio.run(box.__aenter__())
    try:
        yield box
    finally:
        asyncio.run(box.__aexit__(None, None, None))


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking the signature)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


# ------------------------------------------------------------------------- in the box


@pytest.mark.asyncio
async def test_state_survives_between_runs(cb: boxlite.CodeBox) -> None:
    """Variables, imports and open files live on from run to run in one process (0.9
    started a new python -c each time); the result is a str, 0.9's return value."""
    first = await cb.run("import os\nkept_n = 1\nkept_file = open('/root/kept.txt', 'w')\nos.getpid()")
    second = await cb.run("kept_n += 1\nkept_file.write('x' * kept_n)\nprint('wrote', kept_n)")
    third = await cb.run("kept_file.close()\n(kept_n, open('/root/kept.txt').read(), os.getpid())")
    assert isinstance(second, str) and second == "wrote 2\n"
    assert third.error is None, third.error
    assert third.value == f"(2, 'xx', {first.value})"
    assert third.execution_count == first.execution_count + 2


@pytest.mark.asyncio
async def test_output_value_and_structured_errors(cb: boxlite.CodeBox) -> None:
    """stdout (the code's and its child processes'), stderr and the last expression's
    value come apart; an exception is a structured error with the cell's traceback (not
    the interpreter server's frames), and what was printed before it is kept."""
    r = await cb.run(
        "import subprocess, sys\n"
        "print('from python')\n"
        "print('to stderr', file=sys.stderr)\n"
        "subprocess.run(['sh', '-c', 'echo from a child; echo child err >&2'])\n"
        "6 * 7"
    )
    assert (str(r), r.stdout, r.stderr) == ("from python\nfrom a child\n", "from python\nfrom a child\n",
                                            "to stderr\nchild err\n")
    assert (r.value, r.text, r.error, r.ok) == ("42", "42", None, True)
    assert r.logs.stdout == [r.stdout] and r.logs.stderr == [r.stderr]
    assert [(x.is_main_result, x.text) for x in r.results] == [(True, "42")]

    r = await cb.run("def divide(a, b):\n    return a / b\nprint('before')\ndivide(1, 0)")
    assert r == "before\n" and r.value is None
    assert (r.error.name, r.error.value) == ("ZeroDivisionError", "division by zero")
    assert (r.error.type, r.error.message) == (r.error.name, r.error.value)
    tb = r.error.traceback
    assert tb.startswith("Traceback (most recent call last):\n"), tb
    assert ", line 4, in <module>\n    divide(1, 0)" in tb and ", line 2, in divide\n    return a / b" in tb
    assert "boxlite-codebox" not in tb and tb.rstrip().endswith("ZeroDivisionError: division by zero")

    r = await cb.run("def broken(:\n    pass")
    assert r.error.name == "SyntaxError"
    assert "Traceback" not in r.error.traceback and "def broken(:" in r.error.traceback


@pytest.mark.asyncio
async def test_rich_outputs(cb: boxlite.CodeBox) -> None:
    """A matplotlib figure arrives as a PNG (and is closed); objects with
    _repr_html_/_repr_json_ give those formats, as the last value and through display()."""
    r = await cb.run(
        "import matplotlib.pyplot as plt\n"
        "plt.figure(figsize=(4, 3), dpi=50)\n"
        "plt.plot([1, 3, 2])\n"
        "plt.show()"
    )
    assert r.error is None, r.error
    pngs = [x for x in r.results if x.png is not None]
    assert len(pngs) == 1 and not pngs[0].is_main_result, r.results
    width, height = png_size(pngs[0].decoded("png"))
    assert 100 <= width <= 200 and 75 <= height <= 150, (width, height)
    assert (await cb.run("len(plt.get_fignums())")).value == "0"

    r = await cb.run(
        "class Card:\n"
        "    def _repr_html_(self):\n"
        "        return '<b>card</b>'\n"
        "    def _repr_json_(self):\n"
        "        return {'suit': 'hearts', 'rank': 12}\n"
        "    def __repr__(self):\n"
        "        return 'Card()'\n"
        "display(Card())\n"
        "Card()"
    )
    shown, main = sorted(r.results, key=lambda x: x.is_main_result)
    for result in (shown, main):
        assert (result.text, result.html, result.json) == ("Card()", "<b>card</b>", {"suit": "hearts", "rank": 12})
        assert result.formats() == ["html", "json"]
    assert main.is_main_result and not shown.is_main_result and r.value == "Card()"


@pytest.mark.asyncio
async def test_run_script_runs_in_the_kept_interpreter(cb: boxlite.CodeBox, tmp_path: Path) -> None:
    """run_script reads a host file and runs it in the same interpreter: what it defines
    stays, and its traceback names the file."""
    script = tmp_path / "area.py"
    script.write_text("def area(r):\n    return 3 * r * r\nscript_area = area(2)\nraise ValueError('from the script')\n")
    r = await cb.run_script(script)
    assert (r.error.name, r.error.value) == ("ValueError", "from the script")
    assert f'File "{script}", line 4' in r.error.traceback
    assert (await cb.run("script_area")).value == "12"
    with pytest.raises(boxlite.ConfigError, match="cannot read the script"):
        await cb.run_script(tmp_path / "missing.py")


@pytest.mark.asyncio
async def test_install_package_from_a_local_wheel(cb: boxlite.CodeBox, tmp_path: Path) -> None:
    """install_package installs a wheel (built here, copied in: no network) with pip, and
    the interpreter that is already running imports it."""
    src = tmp_path / "src"
    (src / "cbprobe").mkdir(parents=True)
    (src / "cbprobe" / "__init__.py").write_text("ANSWER = 6 * 7\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "cbprobe"\nversion = "1.0"\n[tool.setuptools]\npackages = ["cbprobe"]\n'
    )
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("cbprobe-1.0-*.whl")
    assert (await cb.run("import importlib.util\nimportlib.util.find_spec('cbprobe') is None")).value == "True"
    await cb.copy_in(wheel, "/root/")
    out = await cb.install_package(f"/root/{wheel.name}")
    assert "Successfully installed cbprobe-1.0" in out
    r = await cb.run("import cbprobe\ncbprobe.ANSWER")
    assert (r.value, r.error) == ("42", None)


@pytest.mark.asyncio
async def test_timeout_interrupts_and_state_survives(cb: boxlite.CodeBox) -> None:
    """A run past its timeout gets a KeyboardInterrupt: the result says timed_out with a
    TimeoutError carrying where the code was, its output so far is there, and the
    interpreter (same process, same variables) goes on."""
    before = await cb.run("import os, time\nmarker = 'kept'\nos.getpid()")
    r = await cb.run("print('started', flush=True)\nwhile True:\n    time.sleep(0.05)", timeout=1)
    assert (r.timed_out, r.restarted) == (True, False)
    assert r.error.name == "TimeoutError" and "interrupted" in r.error.value
    assert "line 3, in <module>" in r.error.traceback and "KeyboardInterrupt" in r.error.traceback
    assert r.stdout == "started\n"
    after = await cb.run("(marker, os.getpid())")
    assert after.value == f"('kept', {before.value})"


@pytest.mark.asyncio
async def test_timeout_kills_code_that_ignores_the_interrupt(cb: boxlite.CodeBox) -> None:
    """Code that ignores SIGINT is killed with its interpreter after the grace period:
    the result says restarted, and the next run has a fresh interpreter."""
    before = await cb.run("import os\nos.getpid()")
    r = await cb.run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", timeout=1)
    assert (r.timed_out, r.restarted, r.error.name) == (True, True, "TimeoutError")
    after = await cb.run("import os\n('signal' in dir(), os.getpid())")
    assert after.execution_count == 1
    assert after.value.startswith("(False, ") and after.value != f"(False, {before.value})"


@pytest.mark.asyncio
async def test_reset_starts_a_fresh_interpreter(cb: boxlite.CodeBox) -> None:
    """reset() ends the interpreter: no variables, counting starts again; files stay."""
    await cb.run("forgotten = 1\nopen('/root/after-reset.txt', 'w').write('still here')")
    await cb.reset()
    r = await cb.run("('forgotten' in dir(), open('/root/after-reset.txt').read())")
    assert (r.value, r.execution_count) == ("(False, 'still here')", 1)


# Code that writes on the interpreter's channel to the host: the pipes or sockets among
# its open files (not 0-2, which are /dev/null and the capture files during a cell).
HOSTILE = """
import os
for fd in range(3, 64):
    try:
        kind = os.readlink(f"/proc/self/fd/{{fd}}")
    except OSError:
        continue
    if kind.startswith(("pipe:", "socket:")):
        try:
            os.write(fd, {payload})
        except OSError:
            pass
"""


@pytest.mark.asyncio
async def test_hostile_interpreter_output_is_a_clear_error(cb: boxlite.CodeBox) -> None:
    """What comes back from the box is untrusted: a line that is not JSON (nor UTF-8) and
    a line past max_output_bytes each end the run with a ParseError that says what
    happened (the reader never holds more than the bound), and the next run works in a
    fresh interpreter."""
    with pytest.raises(boxlite.ParseError, match="not JSON"):
        await cb.run(HOSTILE.format(payload=r"b'\xff\xfe{garbage\n'"))
    assert (await cb.run("1 + 1")).value == "2"
    with pytest.raises(boxlite.ParseError, match="longer than 65536 bytes"):
        await cb.run(HOSTILE.format(payload="b'x' * 200000"), max_output_bytes=65536)
    r = await cb.run("2 + 2")
    assert (r.value, r.execution_count) == ("4", 1)


def test_sync_codebox(cb: boxlite.CodeBox) -> None:
    """SyncCodeBox (0.9's name in boxlite.sync_api, boxlite.sync.CodeBox) does the same
    without await. It adopts the shared box by name (reuse_existing) and is not left
    with ``with``, so the box stays for the module; its interpreter is its own."""
    from boxlite.sync_api import SyncCodeBox

    assert SyncCodeBox is boxlite.sync.CodeBox
    box = SyncCodeBox(name=NAME, reuse_existing=True, rootfs_path=cb.options.rootfs_path, memory=MEMORY)
    box.start()
    assert box.created is False and box.id == cb.id
    box.run("total = 40")
    r = box.run("total += 2\nprint(total)\ntotal")
    assert (str(r), r.value, r.execution_count) == ("42\n", "42", 2)
    assert box.exec("python3", "-c", "print(1 + 1)").stdout == "2\n"
    box.reset()  # Ends its interpreter; the box is the module's to stop.


# ------------------------------------------------------------------------- no VM


def test_answers_from_the_interpreter_are_checked() -> None:
    """Every shape of answer that is not the protocol is a ParseError naming the
    problem; a good answer becomes a CodeResult."""
    good = {"id": 3, "stdout": "o", "stderr": "e", "results": [{"text": "1", "is_main_result": True,
            "png": "iVBORw0KGgo=", "json": [1]}], "error": None, "execution_count": 3}
    r = codebox_module._answer(json.dumps(good).encode(), 3)
    assert (str(r), r.stderr, r.value, r.execution_count) == ("o", "e", "1", 3)
    assert r.results[0].decoded("png") == base64.b64decode("iVBORw0KGgo=") and r.results[0].json == [1]
    cases = {
        b"\xff\xfe": "not JSON",
        b"[1, 2]": "another request",
        json.dumps(dict(good, id=4)).encode(): "another request",
        json.dumps(dict(good, stdout=5)).encode(): "'stdout' is not text",
        json.dumps(dict(good, results={})).encode(): "'results' is not a list",
        json.dumps(dict(good, results=[7])).encode(): "result that is not an object",
        json.dumps(dict(good, results=[{"png": 5}])).encode(): "'png' is not text",
        json.dumps(dict(good, error="boom")).encode(): "'error' is not an object",
        json.dumps(dict(good, error={"name": 1})).encode(): "'name' is not text",
        json.dumps(dict(good, execution_count=True)).encode(): "'execution_count' is not a number",
        json.dumps({"id": None, "fatal": "bad request"}).encode(): "fatal error",
    }
    for line, problem in cases.items():
        with pytest.raises(boxlite.ParseError, match=problem):
            codebox_module._answer(line, 3)


def test_results_keep_0_9_and_e2b_shapes() -> None:
    """A CodeResult is the stdout str (0.9) with E2B's fields, and survives pickling."""
    main = codebox_module.Result(True, text="3", html="<i>3</i>")
    r = boxlite.CodeResult("out\n", "err\n", results=[main], execution_count=2)
    assert isinstance(r, str) and r == "out\n" and r + "x" == "out\nx"
    assert (r.text, r.logs.stdout, r.logs.stderr, r.ok) == ("3", ["out\n"], ["err\n"], True)
    copy = pickle.loads(pickle.dumps(r))
    assert (copy, copy.stderr, copy.value, copy.results[0].html, copy.execution_count) == ("out\n", "err\n", "3", "<i>3</i>", 2)
    with pytest.raises(boxlite.ConfigError, match="no png"):
        main.decoded("png")


@pytest.mark.asyncio
async def test_arguments_are_checked_before_any_vm() -> None:
    """Bad arguments raise ConfigError at once, without starting a box."""
    with pytest.raises(boxlite.ConfigError, match="python must be"):
        boxlite.CodeBox(python="")
    box = boxlite.CodeBox("python:slim", 512, 1)
    assert (box.options.image, box.python) == ("python:slim", "python3")
    sync_rt = boxlite.sync.Boxlite.default()  # The twin's runtime: its async one is used.
    assert boxlite.CodeBox(runtime=sync_rt)._runtime is sync_rt._async
    for call, problem in (
        (box.run(b"1"), "code must be a string"),
        (box.run("1", timeout=-1), "timeout must be positive"),
        (box.run("1", max_output_bytes=10), "max_output_bytes must be"),
        (box.install_packages(), "at least one package"),
        (box.install_package(""), "non-empty string"),
    ):
        with pytest.raises(boxlite.ConfigError, match=problem):
            await call
    assert box._core is None


def test_interpreter_server_semantics_on_the_host() -> None:
    """The interpreter server (boxlite/_codebox_repl.py), started as the SDK starts it but
    by this host's Python: SystemExit and SIGINT between runs leave it running, input()
    reads end-of-file, classes defined in a run pickle (the namespace stands as
    __main__), fd-level writes are captured, and _repr_mimebundle_ gives its formats."""
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-c", codebox_module._BOOT, codebox_module._server_source()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        greeting = json.loads(proc.stdout.readline())
        assert (greeting["ready"], greeting["protocol"], greeting["pid"]) == (True, 1, proc.pid)
        ids = iter(range(1, 100))

        def run(code: str) -> boxlite.CodeResult:
            request_id = next(ids)
            proc.stdin.write(json.dumps({"id": request_id, "op": "run", "code": code}).encode() + b"\n")
            proc.stdin.flush()
            return codebox_module._answer(proc.stdout.readline().rstrip(b"\n"), request_id)

        assert run("import sys\nsys.exit(3)").error.name == "SystemExit"
        proc.send_signal(signal.SIGINT)  # Between runs: ignored.
        assert run("input()").error.name == "EOFError"
        r = run("import os, pickle\nclass Point:\n    pass\nos.write(1, b'raw\\n')\nlen(pickle.dumps(Point())) > 0")
        assert (r.value, r.stdout, r.error) == ("True", "raw\n", None)
        r = run("class Both:\n    def _repr_mimebundle_(self, **kw):\n"
                "        return {'text/markdown': '**b**', 'image/png': b'\\x89PNG'}\nBoth()")
        assert (r.results[0].markdown, r.results[0].decoded("png")) == ("**b**", b"\x89PNG")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

"""The ComputerBox API (docs/computerbox.md) against a real desktop box (boxlite/desktop).

One desktop box is booted for the module (a boot plus the desktop costs seconds under
TCG) and shared by the tests, in file order. A probe window (Tk, started with
``stream``) prints every input event it receives as a JSON line, so each test can check
that an action arrived as exactly that action. Actions are separated by marks: a press of
the Pause key sent through the same XTest path, so it reaches the window after every
event of the action before it, whatever the timing (X delivers a client's events in
order).

The image comes from ``$BOXLITE_DATA_DIR/images/desktop.tar`` when installed there
(``scripts/test-images/build.sh --only desktop-tar``); otherwise the desktop layout is
built (cached) and imported into the session's private home as ``boxlite/desktop``.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import boxlite

pytestmark = pytest.mark.asyncio

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "scripts" / "test-images" / "build.sh"
IMAGE = "boxlite/desktop"
WIDTH, HEIGHT = 1024, 768
# Generous: the guest is emulated (TCG) and the host is shared. Nothing waits for this
# long unless something is broken.
EVENT_TIMEOUT = 120

PROBE = r"""
import json, sys, tkinter
root = tkinter.Tk()
root.title("boxlite-input-probe")
root.geometry("400x300+560+380")
canvas = tkinter.Canvas(root, background="#F0E0C0", highlightthickness=0)
canvas.pack(fill="both", expand=True)
def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()
def button(kind):
    return lambda e: emit(ev=kind, num=e.num, x=e.x_root, y=e.y_root, state=e.state)
root.bind_all("<ButtonPress>", button("press"))
root.bind_all("<ButtonRelease>", button("release"))
# On the canvas's own tag, so that the "all" tag's <ButtonPress> still reports the press.
canvas.bind("<Double-ButtonPress-1>", button("double"))
canvas.bind("<Triple-ButtonPress-1>", button("triple"))
root.bind_all("<B1-Motion>", lambda e: emit(ev="motion1", x=e.x_root, y=e.y_root))
def key(kind):
    def report(e):
        emit(ev=kind, keysym=e.keysym, char=e.char, state=e.state)
        return "break"  # Tk's own bindings (Tab moves the focus) never see the key.
    return report
canvas.bind("<KeyPress>", key("key"))
canvas.bind("<KeyRelease>", key("keyup"))
def on_stdin(_f, _mask):
    line = sys.stdin.readline()
    if not line:
        root.destroy()
        return
    root.winfo_pointerxy()  # A round trip: every event sent before it is now queued...
    root.update()           # ... and handled.
    word, _, arg = line.strip().partition(" ")
    if word == "where":
        root.update_idletasks()
        emit(ev="where", id=arg, x=canvas.winfo_rootx(), y=canvas.winfo_rooty(),
             w=canvas.winfo_width(), h=canvas.winfo_height())
    elif word == "focus":
        root.focus_force()
        canvas.focus_set()
        root.update()
        emit(ev="focused", id=arg)
root.tk.createfilehandler(sys.stdin, tkinter.READABLE, on_stdin)
root.after_idle(lambda: emit(ev="started"))
root.mainloop()
"""

SHIFT_MASK = 0x1
CONTROL_MASK = 0x4


# ---------------------------------------------------------------------------- helpers

def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decodes an 8-bit RGB/RGBA PNG (no interlace) with zlib only: (width, height, rows of
    RGB bytes). Checks the signature, every chunk's CRC and the exact data length."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, ihdr, idat = 8, None, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert ihdr is not None
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    assert len(raw) == height * (stride + 1), "PNG data does not match its size"
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        base = y * (stride + 1)
        kind = raw[base]
        line = bytearray(raw[base + 1 : base + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        prev = line
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
    return width, height, rows


def region(rows: list[bytes], x: int, y: int, w: int, h: int) -> bytes:
    return b"".join(row[x * 3 : (x + w) * 3] for row in rows[y : y + h])


MARK_KEY = "Pause"


class Probe:
    """The probe window: its events as dicts, read in order from its stdout."""

    def __init__(self, desktop: boxlite.ComputerBox, execution: boxlite.Execution) -> None:
        self.desktop = desktop
        self.execution = execution
        self.buf = b""
        self.serial = 0

    async def next_event(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            chunk = await asyncio.wait_for(self.execution.read(1), EVENT_TIMEOUT)
            if not chunk:
                err = await asyncio.wait_for(self.execution.read(2), 10)
                raise AssertionError(f"the probe window exited: {err.decode(errors='replace')}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        event: dict[str, Any] = json.loads(line)
        return event

    async def command(self, word: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Sends a command; returns the events received before its answer, and the answer."""
        self.serial += 1
        tag = str(self.serial)
        await self.execution.write_stdin(f"{word} {tag}\n")
        before = []
        while True:
            event = await self.next_event()
            if event.get("id") == tag:
                return before, event
            before.append(event)

    async def mark(self) -> list[dict[str, Any]]:
        """The events since the previous mark: presses Pause (the window has the keyboard
        focus) and returns what arrived before that press, marks left out."""
        await self.desktop.key(MARK_KEY)
        events = []
        while True:
            event = await self.next_event()
            if event.get("keysym") == MARK_KEY:
                if event["ev"] == "key":
                    return events
                continue  # The previous mark's release.
            events.append(event)

    async def collect(self, count: int, kind: str = "release") -> list[dict[str, Any]]:
        """Events of the following marks until ``count`` events of ``kind`` arrived. For
        wheel buttons, which Tk delivers late (after later key events: it converts them
        into its own wheel events)."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + EVENT_TIMEOUT
        while sum(1 for e in events if e["ev"] == kind) < count:
            assert time.monotonic() < deadline, f"expected {count} {kind} events, got {events}"
            events += await self.mark()
        return events

    async def area(self) -> tuple[int, int, int, int]:
        answer = (await self.command("where"))[1]
        return answer["x"], answer["y"], answer["w"], answer["h"]


def presses(events: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    return [(e["ev"], e["num"], e["x"], e["y"]) for e in events
            if e["ev"] in ("press", "release", "double", "triple")]


# ---------------------------------------------------------------------------- fixtures

def _data_dir_has_desktop() -> bool:
    data_dir = os.environ.get("BOXLITE_DATA_DIR", "")
    return bool(data_dir) and os.path.exists(os.path.join(data_dir, "images", "desktop.tar"))


@pytest.fixture(scope="module")
def desktop_image(boxlite_home: Path) -> str:
    """Makes boxlite/desktop resolvable in this session's home."""
    if not _data_dir_has_desktop():
        p = subprocess.run([str(BUILD_SH), "--only", "desktop", "--json"], stdout=subprocess.PIPE,
                           text=True, timeout=3600)
        assert p.returncode == 0, "scripts/test-images/build.sh --only desktop failed"
        layout = json.loads(p.stdout)["images"]["desktop"]["layout"]
        rt = boxlite.Boxlite.default()
        asyncio.run(rt.images.import_image(layout, tag=IMAGE + ":latest"))
    return IMAGE


@pytest.fixture(scope="module")
def desktop(desktop_image: str) -> Iterator[boxlite.ComputerBox]:
    """The shared desktop, ready for input."""
    box = boxlite.ComputerBox(env={"PROBE_ENV": "present"})
    asyncio.run(box.__aenter__())
    try:
        asyncio.run(box.wait_until_ready(timeout=300))
        yield box
    finally:
        asyncio.run(box.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def probe(desktop: boxlite.ComputerBox) -> Iterator[Probe]:
    """The probe window, mapped, with its canvas area known."""

    async def start() -> Probe:
        execution = await desktop.stream("python3", "-u", "-c", PROBE)
        p = Probe(desktop, execution)
        first = await p.next_event()
        assert first["ev"] == "started", first
        await _focus(desktop, p)
        return p

    p = asyncio.run(start())
    try:
        yield p
    finally:
        asyncio.run(p.execution.kill())


async def _inside(probe: Probe, fx: float, fy: float) -> tuple[int, int]:
    """A point at fractions (fx, fy) of the probe's canvas, in screen coordinates."""
    x, y, w, h = await probe.area()
    assert w > 50 and h > 50, (w, h)
    return x + int(w * fx), y + int(h * fy)


async def _focus(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """Gives the probe the keyboard focus (which its marks need)."""
    x, y = await _inside(probe, 0.5, 0.5)
    await desktop.left_click(x, y)
    await probe.command("focus")
    await probe.mark()


# ---------------------------------------------------------------------------- tests

async def test_constructor_checks_its_arguments() -> None:
    """Bad sizes, ports and disagreeing spellings are ConfigErrors before any VM starts."""
    with pytest.raises(boxlite.ConfigError):
        boxlite.ComputerBox(width=10)
    with pytest.raises(boxlite.ConfigError):
        boxlite.ComputerBox(height=100000)
    with pytest.raises(boxlite.ConfigError):
        boxlite.ComputerBox(viewer_port=0)
    with pytest.raises(boxlite.ConfigError):
        boxlite.ComputerBox(cpu=2, cpus=4)
    with pytest.raises(boxlite.ConfigError):
        boxlite.ComputerBox(width="wide")
    box = boxlite.ComputerBox(cpus=3, memory_mib=1536, width=800, height=600, viewer_port=6081)
    assert (box.options.cpus, box.options.memory_mib) == (3, 1536)
    assert [(p.host_port, p.guest_port) for p in box.options.ports] == [(6081, 6080)]
    assert box.viewer_url == "http://127.0.0.1:6081/vnc.html?autoconnect=1&resize=scale"
    with pytest.raises(boxlite.ConfigError):
        boxlite.ComputerBox(viewer_port=6081, gui_http_port=6082)
    both = boxlite.ComputerBox(gui_http_port=6083, gui_https_port=0)
    assert both.gui_http_port == both.viewer_port == 6083 and both.gui_https_port not in (None, 0)
    assert [(p.host_port, p.guest_port) for p in both.options.ports] == [
        (6083, 6080), (both.gui_https_port, 6081)]
    assert both.viewer_https_url == f"https://127.0.0.1:{both.gui_https_port}/vnc.html?autoconnect=1&resize=scale"
    default = boxlite.ComputerBox()
    assert (default.options.cpus, default.options.memory_mib) == (2, 2048)
    assert default.gui_http_port is None and default.gui_https_port is None
    assert default.options.image == IMAGE and default.viewer_url is None


async def test_screenshot_is_a_png_of_the_screen(desktop: boxlite.ComputerBox) -> None:
    """After wait_until_ready the PNG decodes to get_screen_size() and is not blank."""
    assert await desktop.get_screen_size() == (WIDTH, HEIGHT)
    png = await desktop.screenshot()
    width, height, rows = decode_png(png)
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(rows) == HEIGHT and all(len(r) == WIDTH * 3 for r in rows)
    # The desktop draws: the panel and the background are not one colour.
    colours = {rows[y][x * 3 : x * 3 + 3] for y in range(0, HEIGHT, 16) for x in range(0, WIDTH, 16)}
    assert len(colours) > 1


async def test_mouse_move_then_left_click_lands_there(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """mouse_move(x, y) + left_click() gives one press and one release of button 1 at (x, y)."""
    x, y = await _inside(probe, 0.3, 0.4)
    await probe.mark()
    await desktop.mouse_move(x, y)
    await desktop.left_click()
    assert presses(await probe.mark()) == [("press", 1, x, y), ("release", 1, x, y)]
    assert await desktop.cursor_position() == (x, y)


async def test_click_with_coordinates_moves_first(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """left_click(x, y), right_click(x, y) and middle_click(x, y) land at (x, y)."""
    x, y = await _inside(probe, 0.7, 0.6)
    await probe.mark()
    await desktop.left_click(x, y)
    await desktop.right_click(x + 5, y)
    await desktop.middle_click(x, y + 5)
    assert presses(await probe.mark()) == [
        ("press", 1, x, y), ("release", 1, x, y),
        ("press", 3, x + 5, y), ("release", 3, x + 5, y),
        ("press", 2, x, y + 5), ("release", 2, x, y + 5),
    ]


async def test_double_and_triple_click(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """double_click arrives as a double click, triple_click as a triple click."""
    x, y = await _inside(probe, 0.5, 0.3)
    await probe.mark()
    await desktop.double_click(x, y)
    assert presses(await probe.mark()) == [
        ("press", 1, x, y), ("release", 1, x, y),
        ("double", 1, x, y), ("press", 1, x, y), ("release", 1, x, y)]
    x2, y2 = await _inside(probe, 0.2, 0.7)  # Elsewhere, so this is not a fourth click.
    await desktop.triple_click(x2, y2)
    events = presses(await probe.mark())
    assert [e[0] for e in events].count("press") == 3
    assert ("triple", 1, x2, y2) in events and ("double", 1, x2, y2) in events


async def test_left_click_drag(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """left_click_drag presses at the start, moves with the button held, releases at the end."""
    x1, y1 = await _inside(probe, 0.2, 0.2)
    x2, y2 = await _inside(probe, 0.8, 0.7)
    await probe.mark()
    await desktop.left_click_drag(x1, y1, x2, y2)
    events = await probe.mark()
    assert presses(events) == [("press", 1, x1, y1), ("release", 1, x2, y2)]
    motion = [(e["x"], e["y"]) for e in events if e["ev"] == "motion1"]
    assert motion and motion[-1] == (x2, y2)
    assert len(set(motion)) > 1  # Intermediate positions, as a hand would drag.


async def test_mouse_down_and_up(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """mouse_down/mouse_up press and release where the pointer is."""
    x, y = await _inside(probe, 0.6, 0.5)
    await desktop.mouse_move(x, y)
    await probe.mark()
    # Collected over marks: when the window manager is starved of CPU, its replay of a
    # frozen press can come after the mark's key (the daemon waits for it, within bounds).
    await desktop.mouse_down()
    assert presses(await probe.collect(1, "press")) == [("press", 1, x, y)]
    await desktop.mouse_up()
    assert presses(await probe.collect(1, "release")) == [("release", 1, x, y)]
    await desktop.mouse_down("right")
    await desktop.mouse_up("right")
    assert presses(await probe.collect(1, "release")) == [("press", 3, x, y), ("release", 3, x, y)]


async def test_scroll(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """scroll(x, y, direction, amount) moves there and sends that many wheel clicks
    (X buttons 4 up, 5 down, 6 left, 7 right; Tk 8.6 reports 6 and 7 as 4 and 5 with
    Shift, its horizontal wheel)."""
    x, y = await _inside(probe, 0.4, 0.5)
    for direction, button, shift, amount in (("down", 5, 0, 3), ("up", 4, 0, 2),
                                             ("left", 4, 1, 1), ("right", 5, 1, 2)):
        await probe.mark()
        await desktop.scroll(x, y, direction=direction, amount=amount)
        got = [(e["num"], e["x"], e["y"], e["state"] & SHIFT_MASK)
               for e in await probe.collect(amount) if e["ev"] == "press"]
        assert got == [(button, x, y, shift)] * amount, direction
    assert await desktop.cursor_position() == (x, y)


async def test_type_delivers_exactly_the_text(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """type("Hello World!") gives exactly those characters, in order."""
    await _focus(desktop, probe)
    await desktop.type("Hello World!")
    keys = [e for e in await probe.mark() if e["ev"] == "key"]
    assert "".join(e["char"] for e in keys) == "Hello World!"
    # Shift only for the capitals and "!", nothing else pressed.
    assert {e["keysym"] for e in keys if not e["char"]} <= {"Shift_L"}


async def test_type_unicode(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """Characters outside the keymap (é, €, ß, Ж) are typed through spare keycodes."""
    await _focus(desktop, probe)
    await desktop.type("é€ßЖ")
    keys = [e for e in await probe.mark() if e["ev"] == "key" and e["char"]]
    assert "".join(e["char"] for e in keys) == "é€ßЖ"


async def test_key_combos(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """key("ctrl+a") presses Control then a (with Control held) and releases both;
    chords in a sequence come one after the other."""
    await _focus(desktop, probe)
    await desktop.key("ctrl+a")
    events = [e for e in await probe.mark() if e["ev"] in ("key", "keyup")]
    assert [(e["ev"], e["keysym"]) for e in events] == [
        ("key", "Control_L"), ("key", "a"), ("keyup", "a"), ("keyup", "Control_L")]
    assert events[1]["state"] & CONTROL_MASK
    await desktop.key("shift+Tab Return BackSpace")
    downs = [e["keysym"] for e in await probe.mark() if e["ev"] == "key"]
    assert downs in (["Shift_L", "ISO_Left_Tab", "Return", "BackSpace"],
                     ["Shift_L", "Tab", "Return", "BackSpace"])
    with pytest.raises(boxlite.ConfigError):
        await desktop.key("ctrl+nosuchkey")
    with pytest.raises(boxlite.ConfigError):
        await desktop.key("")


async def test_held_keys_modify_clicks(desktop: boxlite.ComputerBox, probe: Probe) -> None:
    """key_down/key_up hold modifiers across other actions (the MCP tool's clicks with
    text=, Anthropic's hold_key); hold_key presses, waits, releases."""
    x, y = await _inside(probe, 0.3, 0.3)
    await _focus(desktop, probe)
    await desktop.key_down("shift")
    try:
        await desktop.left_click(x, y)
        clicks = [e for e in await probe.mark() if e["ev"] == "press"]
    finally:
        await desktop.key_up("shift")
    assert [(e["num"], e["x"], e["y"]) for e in clicks] == [(1, x, y)]
    assert clicks[0]["state"] & SHIFT_MASK
    await desktop.left_click(x, y)
    plain = [e for e in await probe.mark() if e["ev"] == "press"]
    assert len(plain) == 1 and not plain[0]["state"] & SHIFT_MASK
    await _focus(desktop, probe)
    await desktop.hold_key("ctrl", 0.2)
    keys = [(e["ev"], e["keysym"]) for e in await probe.mark() if e["ev"] in ("key", "keyup")]
    assert keys == [("key", "Control_L"), ("keyup", "Control_L")]
    with pytest.raises(boxlite.ConfigError):
        await desktop.hold_key("ctrl", 61)


async def test_screenshot_answers_09_dict_keys(desktop: boxlite.ComputerBox) -> None:
    """0.9 returned {"data": base64, "width", "height", "format"}; ours is the PNG bytes
    answering those keys too."""
    shot = await desktop.screenshot()
    assert isinstance(shot, bytes)
    width, height, _ = decode_png(bytes(shot))
    assert base64.b64decode(shot["data"]) == bytes(shot)
    assert (shot["width"], shot["height"], shot["format"]) == (width, height, "png") == (WIDTH, HEIGHT, "png")
    assert shot.as_dict()["width"] == WIDTH and sorted(shot.keys()) == ["data", "format", "height", "width"]
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"


async def test_cursor_position_is_the_last_move(desktop: boxlite.ComputerBox) -> None:
    """cursor_position() equals the last mouse_move, corners included."""
    for x, y in ((0, 0), (WIDTH - 1, HEIGHT - 1), (123, 456)):
        await desktop.mouse_move(x, y)
        assert await desktop.cursor_position() == (x, y)


async def test_points_outside_the_screen_are_config_errors(desktop: boxlite.ComputerBox) -> None:
    """Every call that takes coordinates refuses points off the screen (and half points)."""
    calls = [
        lambda: desktop.mouse_move(WIDTH, 0),
        lambda: desktop.mouse_move(-1, 10),
        lambda: desktop.left_click(0, HEIGHT),
        lambda: desktop.right_click(5000, 5),
        lambda: desktop.double_click(10, -3),
        lambda: desktop.left_click_drag(10, 10, WIDTH, 10),
        lambda: desktop.scroll(WIDTH + 1, 0),
        lambda: desktop.left_click(10),
        lambda: desktop.scroll(10, 10, direction="sideways"),
        lambda: desktop.mouse_move(1.5, 2),
    ]
    before = await desktop.cursor_position()
    for call in calls:
        with pytest.raises(boxlite.ConfigError):
            await call()
    assert await desktop.cursor_position() == before


async def test_simplebox_features_remain(desktop: boxlite.ComputerBox, tmp_path: Path) -> None:
    """exec (with the box's env and DISPLAY), copy_in and copy_out work as in SimpleBox."""
    result = await desktop.exec("sh", "-c", 'echo "$PROBE_ENV $DISPLAY"; xdotool getdisplaygeometry')
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["present", ":0", str(WIDTH), str(HEIGHT)]
    src = tmp_path / "in.txt"
    src.write_text("to the desktop\n")
    await desktop.copy_in(str(src), "/tmp/in.txt")
    await desktop.copy_out("/tmp/in.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "to the desktop\n"


async def test_typing_into_xterm_changes_its_pixels(desktop: boxlite.ComputerBox) -> None:
    """Text typed into an xterm shows up in the screenshot, inside the xterm's area."""
    started = await desktop.exec(
        "sh", "-c", "setsid -f xterm -geometry 60x12+20+20 -title boxlite-xterm "
        "</dev/null >/dev/null 2>&1; "
        "xwininfo -id $(xdotool search --sync --onlyvisible --name boxlite-xterm | head -n1)",
        timeout=EVENT_TIMEOUT)
    assert started.exit_code == 0, started.stderr
    geo = dict(line.strip().split(":", 1) for line in started.stdout.splitlines() if ":" in line)
    x, y, w, h = (int(geo[k]) for k in ("Absolute upper-left X", "Absolute upper-left Y",
                                         "Width", "Height"))
    assert w > 100 and h > 50 and x + w <= WIDTH and y + h <= HEIGHT, geo
    await desktop.left_click(x + w // 2, y + h // 2)
    deadline = time.monotonic() + EVENT_TIMEOUT
    while True:  # The click gave it the keyboard focus (the window manager did).
        focus = await desktop.exec("xdotool", "getwindowfocus", "getwindowname")
        if focus.stdout.strip() == "boxlite-xterm":
            break
        assert time.monotonic() < deadline, f"the xterm never got the focus: {focus.stdout!r}"
    # Then until it has redrawn: two equal screenshots in a row.
    previous = None
    while True:
        _, _, rows = decode_png(await desktop.screenshot())
        before = region(rows, x, y, w, h)
        if before == previous or time.monotonic() > deadline:
            break
        previous = before
    await desktop.type("echo boxlite typed this")
    while True:
        _, _, rows = decode_png(await desktop.screenshot())
        if region(rows, x, y, w, h) != before:
            break
        assert time.monotonic() < deadline, "the xterm's pixels did not change after typing"


async def _fresh_screenshot(desktop: boxlite.ComputerBox) -> bytes:
    """A screenshot from a new boxlite-desktopd process (nothing cached)."""
    result = await desktop.exec("sh", "-c", "echo '1 screenshot' | boxlite-desktopd")
    assert result.exit_code == 0, result.stderr
    out = result.stdout_bytes
    for _ in range(2):  # The greeting, then the answer.
        head, _, out = out.partition(b"\n")
        size = int(head.split()[2])
        body, out = out[:size], out[size:]
    return body


async def test_screenshots_of_a_changing_screen_stay_exact(desktop: boxlite.ComputerBox) -> None:
    """The daemon reuses the compressed bands of unchanged rows: after the screen changes,
    its screenshot decodes to exactly what a fresh daemon sees."""
    await desktop.left_click(60, 70)  # Into the xterm of the previous test.
    for line in ("echo one", "echo two; ls /"):
        await desktop.type(line + "\n")
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:  # Until the screen did not change while the fresh daemon looked.
            before = await desktop.screenshot()
            fresh = await _fresh_screenshot(desktop)
            after = await desktop.screenshot()
            if before == after:
                break
            assert time.monotonic() < deadline, "the screen never settled"
        assert decode_png(after)[2] == decode_png(fresh)[2]


async def test_daemon_restarts_after_dying(desktop: boxlite.ComputerBox) -> None:
    """If boxlite-desktopd dies, at most one call fails (ExecError) and the next ones work."""
    assert (await desktop.exec("sh", "-c", "kill $(pidof boxlite-desktopd)")).exit_code == 0
    failures = 0
    for _ in range(3):
        try:
            assert await desktop.get_screen_size() == (WIDTH, HEIGHT)
            break
        except boxlite.ExecError:
            failures += 1
    assert failures <= 1
    assert await desktop.cursor_position() is not None


async def test_wait_until_ready_times_out_without_window_manager(desktop: boxlite.ComputerBox) -> None:
    """With the window manager gone, wait_until_ready raises TimeoutError naming it;
    starting the desktop again (idempotent) brings it back."""
    assert (await desktop.exec("sh", "-c", "kill $(cat /tmp/boxlite-desktop/jwm.pid)")).exit_code == 0
    with pytest.raises(boxlite.TimeoutError) as info:
        await desktop.wait_until_ready(timeout=3)
    assert isinstance(info.value, TimeoutError)
    assert "window manager" in str(info.value)
    restart = await desktop.exec("boxlite-desktop-start", str(WIDTH), str(HEIGHT))
    assert restart.exit_code == 0, restart.stderr
    await desktop.wait_until_ready(timeout=EVENT_TIMEOUT)
    again = await desktop.exec("boxlite-desktop-start", "800", "600")
    assert again.exit_code == 3 and "already runs at 1024x768" in again.stderr


async def test_image_without_desktop_fails_to_start(no_leaks: None) -> None:
    """A ComputerBox on an image without the desktop fails at start with BoxStartError."""
    box = boxlite.ComputerBox("boxlite/base", memory=256, cpu=1)
    with pytest.raises(boxlite.BoxStartError) as info:
        async with box:
            pass
    assert "boxlite-desktop-start" in str(info.value)
    await box.stop()


# ---------------------------------------------------------------------------- viewer

class _Cdp:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fds 3/4)."""

    def __init__(self, proc: subprocess.Popen[bytes], to_chrome: int, from_chrome: int) -> None:
        self.proc, self.w, self.r = proc, to_chrome, from_chrome
        self.buf = b""
        self.next_id = 0

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Sends one command and returns its result; an error answer fails the test."""
        reply = self.send(method, session, **params)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Sends one command and returns the whole answer (result or error)."""
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.r, 1 << 20)
                assert chunk, "Chromium closed the DevTools pipe"
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply: dict[str, Any] = json.loads(raw)
            if reply.get("id") == self.next_id:
                return reply


def _start_chromium(chromium: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    """Headless Chromium with its DevTools pipe on fds 3 (commands) and 4 (replies);
    returns the process and our ends of the two pipes."""
    r_to, w_to = os.pipe()
    r_from, w_from = os.pipe()
    # Above 4, so that moving one to its place cannot clobber the other.
    hi_r = fcntl.fcntl(r_to, fcntl.F_DUPFD, 10)
    hi_w = fcntl.fcntl(w_from, fcntl.F_DUPFD, 10)
    for fd in (r_to, w_from):
        os.close(fd)
    argv = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--remote-debugging-pipe", "--window-size=1100,900",
            f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}", "about:blank"]
    place = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
             "os.execvp(sys.argv[3], sys.argv[3:])")
    proc = subprocess.Popen([sys.executable, "-c", place, str(hi_r), str(hi_w), *argv],
                            pass_fds=(hi_r, hi_w), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(hi_r)
    os.close(hi_w)
    return proc, w_to, r_from


async def test_viewer_page_shows_the_desktop(desktop_image: str, tmp_path: Path) -> None:
    """With viewer_port, the noVNC page on the host's 127.0.0.1 loads in headless Chromium
    and shows the desktop (a screenshot of the browser that is not blank)."""
    chromium = shutil.which("chromium")
    assert chromium, "the host needs Chromium for this test: apt-get install -y chromium"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with boxlite.ComputerBox(viewer_port=port, gui_https_port=0) as viewer_box:
        await viewer_box.wait_until_ready(timeout=300)
        # The HTTPS viewer presents this box's own certificate (verified against it).
        https = ssl.create_default_context(cadata=viewer_box.viewer_certificate)
        url = viewer_box.viewer_https_url
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url, context=https, timeout=60).read())
        assert b"noVNC" in page
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            await asyncio.to_thread(urllib.request.urlopen, url, timeout=60)
        proc, w_to, r_from = _start_chromium(chromium, tmp_path)
        try:
            cdp = _Cdp(proc, w_to, r_from)
            target = cdp.call("Target.createTarget", url=viewer_box.viewer_url)["targetId"]
            session = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            # Wait until noVNC has drawn the remote screen into its canvas.
            probe_js = ("(() => { const c = document.querySelector('#noVNC_container canvas, canvas');"
                        " if (!c || c.width < 100) return 0; const d = c.getContext('2d')"
                        ".getImageData(0, 0, c.width, c.height).data; const s = new Set();"
                        " for (let i = 0; i < d.length; i += 4 * 997) s.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);"
                        " return s.size; })()")
            deadline = time.monotonic() + EVENT_TIMEOUT
            reload_at = time.monotonic() + 20
            while True:
                # Errors while the page loads (no execution context yet) mean "not yet".
                reply = cdp.send("Runtime.evaluate", session, expression=probe_js,
                                 returnByValue=True)
                value = reply.get("result", {}).get("result", {}).get("value", 0)
                if value and value > 1:
                    break
                assert time.monotonic() < deadline, f"noVNC never drew the desktop: {reply}"
                if time.monotonic() > reload_at:  # A first load that failed is retried.
                    cdp.send("Page.navigate", session, url=viewer_box.viewer_url)
                    reload_at = time.monotonic() + 20
                await asyncio.sleep(0.5)
            shot = cdp.call("Page.captureScreenshot", session, format="png")["data"]
        finally:
            proc.kill()
            proc.wait()
            os.close(w_to)
            os.close(r_from)
    width, height, rows = decode_png(base64.b64decode(shot))
    colours = {rows[y][x * 3 : x * 3 + 3] for y in range(0, height, 8) for x in range(0, width, 8)}
    assert len(colours) > 2, "the browser's screenshot is blank"


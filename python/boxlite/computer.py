"""ComputerBox: a box with a desktop, driven by mouse, keyboard and screenshots.

::

    async with boxlite.ComputerBox() as desktop:
        await desktop.wait_until_ready()
        png = await desktop.screenshot()
        await desktop.left_click(100, 200)
        await desktop.type("Hello World!")
        await desktop.key("ctrl+a Delete")

The box boots the desktop image (``boxlite/desktop``: Xvfb, the JWM window manager and
panel, xterm, Chromium). Entering the box starts the display at ``width`` x ``height``
(``boxlite-desktop-start``); the first desktop call then starts ``boxlite-desktopd``, one
long-lived process in the guest that performs every action on the X display and answers
over its stdin/stdout, so an action costs one round trip on an open stream instead of a
process spawn in the guest. The protocol is in docs/computerbox.md.

Everything :class:`~boxlite.SimpleBox` offers (``exec``, ``stream``, files, ``env``,
mounts, ports) works as usual. ``gui_http_port`` (also spelled ``viewer_port``) publishes
a noVNC page of the screen on the host's 127.0.0.1 (``viewer_url``); ``gui_https_port``
serves it over HTTPS with a self-signed certificate made for the box on the host
(``viewer_https_url``, ``viewer_certificate``).

BoxLite 0.9's ComputerBox API works as documented there: ``screenshot()`` answers
``shot["data"]`` (base64), ``["width"]``, ``["height"]``, ``["format"]`` besides being
the PNG bytes, ``key(text)``, ``scroll(x, y, direction, amount)``,
``left_click_drag(start_x, start_y, end_x, end_y)``, ``cursor_position()``,
``get_screen_size()``, ``wait_until_ready(timeout)``. Unlike 0.9 the GUI ports are not
published unless asked for (0.9 took host ports 3000 and 3001 by default, so a second
box failed).

Concurrency: desktop calls on one box run one at a time, in call order (from any event
loop or thread); a call cancelled while waiting for its answer leaves the stream in step.
"""

from __future__ import annotations

import asyncio
import base64
import operator
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from .box import SimpleBox, StreamExecution
from .errors import BoxliteError, BoxStartError, ConfigError, ExecError, ParseError
from .errors import TimeoutError as BoxliteTimeoutError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ComputerBox", "DEFAULT_IMAGE", "Screenshot", "VIEWER_GUEST_PORT", "VIEWER_TLS_GUEST_PORT"]

DEFAULT_IMAGE = "boxlite/desktop"
"""The desktop image ComputerBox boots unless told otherwise."""

VIEWER_GUEST_PORT = 6080
"""The guest port websockify serves the viewer on (published as ``viewer_port``)."""

VIEWER_TLS_GUEST_PORT = 6081
"""The guest port of the viewer over HTTPS (published as ``gui_https_port``)."""

_TLS_STATE = "/tmp/boxlite-desktop"
# Starts websockify with TLS only on $1 (the viewer's x11vnc already runs), and returns
# once it listens. The certificate and key (PEM) come on stdin.
_TLS_VIEWER = r"""
set -eu
port=$1
state=%(state)s
umask 077
cat > "$state/viewer-tls.pem"
if ! { [ -s "$state/websockify-tls.pid" ] && kill -0 "$(cat "$state/websockify-tls.pid")" 2>/dev/null; }; then
  setsid -f sh -c 'echo $$ > "$1"; shift; exec "$@"' tls "$state/websockify-tls.pid"     websockify --cert "$state/viewer-tls.pem" --ssl-only --web /usr/share/novnc "$port" 127.0.0.1:5900     </dev/null >"$state/websockify-tls.log" 2>&1
fi
hexport=$(printf '%%04X' "$port")
i=0
until awk -v p=":$hexport" '$2 ~ p"$" && $4 == "0A" {found=1} END {exit !found}' /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 1200 ]; then
    echo "websockify (TLS) is not listening on port $port; its log:" >&2
    tail -n 20 "$state/websockify-tls.log" >&2
    exit 1
  fi
  sleep 0.1
done
""" % {"state": _TLS_STATE}

_DAEMON = "boxlite-desktopd"
_START = "boxlite-desktop-start"
_VIEWER = "boxlite-desktop-viewer"
_PROTOCOL_VERSION = 1
_MAX_SIDE = 8192
# Text is sent in pieces of at most this many bytes (the daemon takes up to 1 MiB).
_TYPE_CHUNK = 64 * 1024
_BUTTONS = {"left": 1, "middle": 2, "right": 3}
_DIRECTIONS = ("up", "down", "left", "right")


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an int, not {type(value).__name__} ({value!r})") from None


def _gui_port(name: str, value: Any) -> int | None:
    """A host port to publish on; 0 means a free one; None, none."""
    if value is None:
        return None
    port = _int(name, value)
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be in 1..65535 (or 0 for a free port), not {port}")
    return port


def _self_signed_certificate() -> bytes:
    """A fresh self-signed certificate and key (PEM) for 127.0.0.1 and localhost, made
    with the host's openssl."""
    with tempfile.TemporaryDirectory(prefix="boxlite-viewer-") as tmp:
        key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
        try:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "825", "-subj", "/CN=BoxLite ComputerBox viewer",
                 "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
                 "-keyout", key, "-out", cert],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        except FileNotFoundError:
            raise BoxStartError("gui_https_port needs the openssl command on the host "
                                "(apt-get install openssl)") from None
        except subprocess.CalledProcessError as exc:
            raise BoxStartError(f"openssl could not make the viewer's certificate: "
                                f"{exc.stderr.decode(errors='replace').strip()}") from None
        with open(cert, "rb") as c, open(key, "rb") as k:
            return c.read() + k.read()


class Screenshot(bytes):
    """A screenshot: the PNG bytes, which also answer BoxLite 0.9's dict keys
    (``shot["data"]``: base64 text, ``["width"]``, ``["height"]``, ``["format"]``:
    ``"png"``)."""

    _KEYS = ("data", "width", "height", "format")

    @property
    def width(self) -> int:
        """The width in pixels (from the PNG header)."""
        return int(struct.unpack(">I", bytes(self[16:20]))[0])

    @property
    def height(self) -> int:
        """The height in pixels (from the PNG header)."""
        return int(struct.unpack(">I", bytes(self[20:24]))[0])

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            if key == "data":
                return base64.b64encode(self).decode("ascii")
            if key == "width":
                return self.width
            if key == "height":
                return self.height
            if key == "format":
                return "png"
            raise KeyError(key)
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        """0.9's keys: data, width, height, format."""
        return list(self._KEYS)

    def get(self, key: str, default: Any = None) -> Any:
        """``shot.get("width")`` as on 0.9's dict."""
        return self[key] if key in self._KEYS else default

    def as_dict(self) -> dict[str, Any]:
        """0.9's dict itself."""
        return {k: self[k] for k in self._KEYS}


def _resolve(name: str, value: Any, alias: str, alias_value: Any, default: int) -> int:
    if value is not None and alias_value is not None and value != alias_value:
        raise ConfigError(f"{name}={value!r} and {alias}={alias_value!r} disagree: give one")
    chosen = value if value is not None else alias_value
    return default if chosen is None else chosen


class _Channel:
    """The request/answer stream of one boxlite-desktopd process.

    Answers are parsed only once complete in the buffer, so a read cancelled half-way
    loses nothing; answers to abandoned requests are recognised by their id and skipped.
    Callers serialise requests with ``ComputerBox._lock``.
    """

    def __init__(self, execution: StreamExecution) -> None:
        self.execution = execution
        self._buf = bytearray()
        self._next_id = 0
        self.closed = False

    def _frame(self) -> tuple[int, str, bytes] | None:
        """Pops one complete answer from the buffer, or returns None."""
        nl = self._buf.find(b"\n")
        if nl < 0:
            if len(self._buf) > 4096:
                raise ExecError(f"{_DAEMON} sent a malformed answer: {bytes(self._buf[:80])!r}")
            return None
        parts = bytes(self._buf[:nl]).split(b" ")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            raise ExecError(f"{_DAEMON} sent a malformed answer: {bytes(self._buf[:nl])!r}")
        size = int(parts[2])
        if len(self._buf) < nl + 1 + size:
            return None
        body = bytes(self._buf[nl + 1 : nl + 1 + size])
        del self._buf[: nl + 1 + size]
        return int(parts[0]), parts[1].decode("ascii", "replace"), body

    async def receive(self, want_id: int) -> tuple[str, bytes]:
        """Returns the (status, body) of answer ``want_id``, skipping older answers."""
        while True:
            frame = self._frame()
            if frame is not None:
                got, status, body = frame
                if got == want_id:
                    return status, body
                continue
            chunk = await self.execution.read(1)
            if not chunk:
                self.closed = True
                raise ExecError(f"{_DAEMON} exited{await self._reason()}")
            self._buf += chunk

    async def send(self, line: str, payload: bytes = b"") -> int:
        self._next_id += 1
        await self.execution.write_stdin(f"{self._next_id} {line}\n".encode() + payload)
        return self._next_id

    async def _reason(self) -> str:
        try:
            err = b""
            while len(err) < 4096:
                chunk = await asyncio.wait_for(self.execution.read(2), 5)
                if not chunk:
                    break
                err += chunk
            text = err.decode("utf-8", "replace").strip()
            return f": {text}" if text else ""
        except (BoxliteError, asyncio.TimeoutError):
            return ""


class ComputerBox(SimpleBox):
    """A box running a desktop that you drive with the mouse, the keyboard and
    screenshots (the computer-use interface).

    Args:
        image: The desktop image (default ``boxlite/desktop``). Another image works if it
            provides ``boxlite-desktop-start`` and ``boxlite-desktopd``.
        cpu: vCPUs (also spelled ``cpus``). Default 2.
        memory: MiB of guest RAM (also spelled ``memory_mib``). Default 2048.
        width, height: The screen size in pixels (64..8192). Default 1024 x 768.
        gui_http_port: Publish a noVNC viewer of the screen on this port of the host's
            127.0.0.1 (``viewer_url``); 0 picks a free port; None (default) publishes
            none. Also spelled ``viewer_port``.
        gui_https_port: The same viewer over HTTPS (``viewer_https_url``), with a
            self-signed certificate made for this box (``viewer_certificate``).
        **kwargs: Everything :class:`~boxlite.SimpleBox` accepts (``env``, ``mounts``,
            ``ports``, ``name``, ``runtime``, ...).

    Coordinates are pixels from the top-left corner; a point outside the screen raises
    :class:`~boxlite.ConfigError`. Every desktop method is a coroutine.
    """

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        cpu: int | None = None,
        cpus: int | None = None,
        memory: int | None = None,
        memory_mib: int | None = None,
        width: int = 1024,
        height: int = 768,
        viewer_port: int | None = None,
        gui_http_port: int | None = None,
        gui_https_port: int | None = None,
        ports: Any = None,
        **kwargs: Any,
    ) -> None:
        self._width = _int("width", width)
        self._height = _int("height", height)
        for name, side in (("width", self._width), ("height", self._height)):
            if not 64 <= side <= _MAX_SIDE:
                raise ConfigError(f"{name} must be in 64..{_MAX_SIDE} pixels, not {side}")
        if isinstance(ports, (str, bytes)):
            raise ConfigError("ports must be a list of (host_port, guest_port) tuples")
        all_ports = list(ports) if ports is not None else []
        if viewer_port is not None:
            viewer_port = _int("viewer_port", viewer_port)
            if not 1 <= viewer_port <= 65535:
                raise ConfigError(f"viewer_port must be in 1..65535, not {viewer_port}")
            if gui_http_port is not None and gui_http_port != viewer_port:
                raise ConfigError(f"viewer_port={viewer_port} and gui_http_port={gui_http_port!r} "
                                  "disagree: give one")
        else:
            viewer_port = _gui_port("gui_http_port", gui_http_port)
        https_port = _gui_port("gui_https_port", gui_https_port)
        if viewer_port is not None:
            all_ports.append((viewer_port, VIEWER_GUEST_PORT))
        if https_port is not None:
            all_ports.append((https_port, VIEWER_TLS_GUEST_PORT))
        self._viewer_port = viewer_port
        self._https_port = https_port
        self._certificate: bytes | None = None
        super().__init__(
            image,
            cpu=_resolve("cpu", cpu, "cpus", cpus, 2),
            memory=_resolve("memory", memory, "memory_mib", memory_mib, 2048),
            ports=all_ports or None,
            **kwargs,
        )
        self._channel: _Channel | None = None
        self._desktop_started = False
        # A thread lock (not an asyncio one) so that calls from different event loops and
        # threads are serialised too; it is only ever taken without blocking.
        self._lock = threading.Lock()
        self._screen = (self._width, self._height)

    # Lifecycle.

    @property
    def width(self) -> int:
        """The screen width asked for."""
        return self._width

    @property
    def height(self) -> int:
        """The screen height asked for."""
        return self._height

    @property
    def viewer_port(self) -> int | None:
        """The host port of the viewer, or None."""
        return self._viewer_port

    @property
    def gui_http_port(self) -> int | None:
        """The host port of the viewer over HTTP (0.9's name of ``viewer_port``)."""
        return self._viewer_port

    @property
    def gui_https_port(self) -> int | None:
        """The host port of the viewer over HTTPS, or None."""
        return self._https_port

    @property
    def viewer_https_url(self) -> str | None:
        """The noVNC page over HTTPS (when ``gui_https_port`` was given)."""
        if self._https_port is None:
            return None
        return f"https://127.0.0.1:{self._https_port}/vnc.html?autoconnect=1&resize=scale"

    @property
    def viewer_certificate(self) -> str | None:
        """The PEM certificate the HTTPS viewer presents (self-signed, for 127.0.0.1 and
        localhost; trust it, e.g. as ``ssl.create_default_context(cadata=...)``), once
        the box started."""
        if self._certificate is None:
            return None
        pem = self._certificate.decode("ascii")
        end = "-----END CERTIFICATE-----"
        return pem[: pem.index(end) + len(end)] + "\n"

    @property
    def viewer_url(self) -> str | None:
        """The noVNC page of the screen on the host (when ``viewer_port`` was given)."""
        if self._viewer_port is None:
            return None
        return f"http://127.0.0.1:{self._viewer_port}/vnc.html?autoconnect=1&resize=scale"

    async def start(self) -> Self:
        """Boots the box and starts the display (and the viewer when asked for); the
        window manager may still be starting: see :meth:`wait_until_ready`.

        Raises:
            BoxStartError: The image has no desktop, or the display did not start.
        """
        await super().start()
        if not self._desktop_started:
            try:
                await self._start_desktop()
            except BaseException:
                # A box without its desktop is of no use: do not leave it running.
                await super().stop()
                raise
        return self

    async def stop(self) -> None:
        """Stops the box (removing an ephemeral one), and with it the desktop."""
        self._channel = None
        self._desktop_started = False
        await super().stop()

    async def _start_desktop(self) -> None:
        try:
            result = await self.exec(_START, str(self._width), str(self._height))
        except ExecError as exc:
            raise BoxStartError(
                f"cannot run {_START} ({exc}): ComputerBox needs a desktop image such as "
                f"{DEFAULT_IMAGE}"
            ) from exc
        if result.exit_code == 127:
            raise BoxStartError(
                f"the image has no {_START}: ComputerBox needs a desktop image such as "
                f"{DEFAULT_IMAGE}"
            )
        if result.exit_code != 0:
            raise BoxStartError(f"{_START} failed (exit {result.exit_code}): {result.stderr.strip()}")
        if self._viewer_port is not None or self._https_port is not None:
            result = await self.exec(_VIEWER, str(VIEWER_GUEST_PORT))
            if result.exit_code != 0:
                raise BoxStartError(f"{_VIEWER} failed (exit {result.exit_code}): {result.stderr.strip()}")
        if self._https_port is not None:
            if self._certificate is None:
                self._certificate = await asyncio.to_thread(_self_signed_certificate)
            result = await self.exec("sh", "-c", _TLS_VIEWER, "sh", str(VIEWER_TLS_GUEST_PORT),
                                     stdin=self._certificate)
            if result.exit_code != 0:
                raise BoxStartError(f"the HTTPS viewer did not start (exit {result.exit_code}): "
                                    f"{result.stderr.strip()}")
        self._desktop_started = True

    async def wait_until_ready(self, timeout: float = 60) -> None:
        """Waits until the desktop accepts input and draws: the window manager and its
        panel are up, injected pointer motion moves the pointer, and the screen is not a
        single colour.

        Raises:
            TimeoutError: Not ready within ``timeout`` seconds (the message says what is
                missing); ``boxlite.TimeoutError``, also a builtin ``TimeoutError``.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
        deadline = time.monotonic() + timeout
        await self._ensure_started()
        state = "the desktop daemon did not answer"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BoxliteTimeoutError(
                    f"the desktop was not ready after {timeout:g} s ({state}); its logs are "
                    f"in /tmp/boxlite-desktop/ in the box"
                )
            try:
                body = await asyncio.wait_for(self._call("ready"), left)
            except asyncio.TimeoutError:
                continue
            flags = dict(item.split("=", 1) for item in body.decode().split() if "=" in item)
            missing = [k for k in ("wm", "panel", "input", "drawn") if flags.get(k) != "1"]
            if not missing:
                return
            names = {"wm": "window manager", "panel": "panel", "input": "input", "drawn": "drawing"}
            state = "waiting for: " + ", ".join(names[m] for m in missing)
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    # The daemon.

    async def _acquire(self) -> None:
        delay = 0.0005
        while not self._lock.acquire(blocking=False):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)

    async def _open_channel(self) -> _Channel:
        if self._channel is not None and not self._channel.closed:
            return self._channel
        await self._ensure_started()
        if self._channel is not None or not self._desktop_started:
            # The daemon died (did the X server go away?): start the display again; what
            # still runs is left alone.
            self._channel = None
            await self._start_desktop()
        execution = await self.stream(_DAEMON, "--wait", "60")
        channel = _Channel(execution)
        try:
            status, body = await channel.receive(0)
        except BaseException:
            await execution.__aexit__(None, None, None)  # Kills it without waiting.
            raise
        words = body.decode("utf-8", "replace").split()
        if status != "ok" or len(words) != 4 or words[0] != _DAEMON:
            raise ExecError(f"{_DAEMON} did not start: {body.decode('utf-8', 'replace')}")
        if int(words[1]) != _PROTOCOL_VERSION:
            raise ExecError(f"{_DAEMON} speaks protocol {words[1]}, this SDK {_PROTOCOL_VERSION}")
        self._screen = (int(words[2]), int(words[3]))
        self._channel = channel
        return channel

    async def _call(self, line: str, payload: bytes = b"") -> bytes:
        """Sends one request and returns the answer's body; maps errors to exceptions."""
        await self._acquire()
        try:
            channel = await self._open_channel()
            try:
                request_id = await channel.send(line, payload)
                status, body = await channel.receive(request_id)
            except BoxliteError:
                channel.closed = True  # The next call starts a new daemon.
                raise
        finally:
            self._lock.release()
        if status == "ok":
            return body
        message = body.decode("utf-8", "replace")
        if status in ("range", "invalid"):
            raise ConfigError(message)
        raise ExecError(f"{line.split(' ', 1)[0]}: {message}")

    def _check_point(self, x: Any, y: Any) -> tuple[int, int]:
        xi = _int("x", x)
        yi = _int("y", y)
        w, h = self._screen
        if not (0 <= xi < w and 0 <= yi < h):
            raise ConfigError(f"({xi}, {yi}) is outside the {w}x{h} screen")
        return xi, yi

    def _optional_point(self, x: Any, y: Any) -> str:
        if x is None and y is None:
            return ""
        if x is None or y is None:
            raise ConfigError("give both x and y, or neither")
        xi, yi = self._check_point(x, y)
        return f" {xi} {yi}"

    async def _click(self, button: int, count: int, x: Any, y: Any) -> None:
        where = self._optional_point(x, y)
        await self._call(f"click {button} {count}{where}")

    # The desktop interface.

    async def screenshot(self) -> Screenshot:
        """Returns a PNG of the whole screen (8-bit RGB, the real screen size): bytes
        that also answer 0.9's keys ``["data"]`` (base64), ``["width"]``,
        ``["height"]`` and ``["format"]``."""
        png = await self._call("screenshot")
        if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
            raise ParseError(f"{_DAEMON} sent a screenshot that is not a PNG")
        return Screenshot(png)

    async def mouse_move(self, x: int, y: int) -> None:
        """Moves the pointer to (x, y)."""
        xi, yi = self._check_point(x, y)
        await self._call(f"move {xi} {yi}")

    async def left_click(self, x: int | None = None, y: int | None = None) -> None:
        """Clicks the left button (at (x, y) when given: the pointer moves there first)."""
        await self._click(1, 1, x, y)

    async def right_click(self, x: int | None = None, y: int | None = None) -> None:
        """Clicks the right button (at (x, y) when given)."""
        await self._click(3, 1, x, y)

    async def middle_click(self, x: int | None = None, y: int | None = None) -> None:
        """Clicks the middle button (at (x, y) when given)."""
        await self._click(2, 1, x, y)

    async def double_click(self, x: int | None = None, y: int | None = None) -> None:
        """Double-clicks the left button (at (x, y) when given)."""
        await self._click(1, 2, x, y)

    async def triple_click(self, x: int | None = None, y: int | None = None) -> None:
        """Triple-clicks the left button (at (x, y) when given)."""
        await self._click(1, 3, x, y)

    async def left_click_drag(self, start_x: int, start_y: int, end_x: int, end_y: int) -> None:
        """Presses the left button at (start_x, start_y), moves to (end_x, end_y) in
        steps, releases."""
        a = self._check_point(start_x, start_y)
        b = self._check_point(end_x, end_y)
        await self._call(f"drag {a[0]} {a[1]} {b[0]} {b[1]}")

    async def mouse_down(self, button: str = "left") -> None:
        """Presses a button (``"left"``, ``"middle"`` or ``"right"``) where the pointer is."""
        await self._call(f"down {self._button(button)}")

    async def mouse_up(self, button: str = "left") -> None:
        """Releases a button where the pointer is."""
        await self._call(f"up {self._button(button)}")

    @staticmethod
    def _button(button: Any) -> int:
        if button not in _BUTTONS:
            raise ConfigError(f"button must be one of {', '.join(_BUTTONS)}, not {button!r}")
        return _BUTTONS[button]

    async def type(self, text: str) -> None:
        """Types ``text`` (any Unicode; newlines press Return, tabs Tab)."""
        if not isinstance(text, str):
            raise ConfigError(f"text must be a string, not {type(text).__name__}")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigError(f"text is not valid Unicode: {exc}") from None
        while data:
            piece = data[:_TYPE_CHUNK]
            # Never split a character: back off to the start of a UTF-8 sequence.
            if len(data) > _TYPE_CHUNK:
                while piece and (piece[-1] & 0xC0) == 0x80:
                    piece = piece[:-1]
                if piece and piece[-1] >= 0xC0:
                    piece = piece[:-1]
            await self._call(f"type {len(piece)}", piece)
            data = data[len(piece) :]

    async def key(self, text: str) -> None:
        """Presses keys in xdotool syntax: chords separated by spaces, keys of a chord
        joined by ``+`` (``"ctrl+a Delete"``, ``"Return"``, ``"shift+Tab"``, ``"F5"``)."""
        await self._call(f"key {_check_keys(text)}")

    async def key_down(self, text: str) -> None:
        """Presses and holds keys (xdotool syntax, ``"shift"``, ``"ctrl+alt"``) until
        :meth:`key_up`: clicks and scrolls meanwhile carry those modifiers."""
        await self._xdotool("keydown", _check_keys(text))

    async def key_up(self, text: str) -> None:
        """Releases keys held with :meth:`key_down`."""
        await self._xdotool("keyup", _check_keys(text))

    async def hold_key(self, text: str, duration: float) -> None:
        """Holds keys down for ``duration`` seconds (0..60), then releases them."""
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration <= 60:
            raise ConfigError(f"duration must be in 0..60 seconds, not {duration!r}")
        keys = _check_keys(text)
        await self._xdotool("keydown", keys)
        try:
            await asyncio.sleep(duration)
        finally:
            await asyncio.shield(self._xdotool("keyup", keys))

    async def _xdotool(self, verb: str, keys: str) -> None:
        # Under the desktop lock, so that the keys are down before the next action.
        await self._acquire()
        try:
            result = await self.exec("xdotool", verb, "--", *keys.split())
        finally:
            self._lock.release()
        if result.exit_code != 0:
            raise ExecError(f"xdotool {verb} {keys}: {result.stderr.strip() or f'exit {result.exit_code}'}")

    async def scroll(self, x: int, y: int, direction: str = "down", amount: int = 3) -> None:
        """Scrolls at (x, y): ``amount`` wheel clicks ``"up"``, ``"down"``, ``"left"`` or
        ``"right"``."""
        xi, yi = self._check_point(x, y)
        if direction not in _DIRECTIONS:
            raise ConfigError(f"direction must be one of {', '.join(_DIRECTIONS)}, not {direction!r}")
        n = _int("amount", amount)
        if not 0 <= n <= 1000:
            raise ConfigError(f"amount must be in 0..1000, not {n}")
        await self._call(f"scroll {xi} {yi} {direction} {n}")

    async def cursor_position(self) -> tuple[int, int]:
        """Returns the pointer's position (x, y)."""
        return _pair(await self._call("cursor"), "cursor position")

    async def get_screen_size(self) -> tuple[int, int]:
        """Returns the screen size (width, height) in pixels."""
        self._screen = _pair(await self._call("size"), "screen size")
        return self._screen


def _pair(body: bytes, what: str) -> tuple[int, int]:
    words = body.split()
    if len(words) != 2 or not all(w.isdigit() and len(w) < 8 for w in words):
        raise ParseError(f"{_DAEMON} sent an unreadable {what}: {body[:40]!r}")
    return int(words[0]), int(words[1])


def _check_keys(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"keys must be a non-empty string such as \"ctrl+a\", not {text!r}")
    if "\n" in text or "\r" in text:
        raise ConfigError("keys must be on one line (use \"Return\" for the Enter key)")
    return text.strip()

"""BrowserBox: a headless Chromium in a box, driven over CDP or a Playwright server.

::

    async with boxlite.BrowserBox() as box:
        browser = await box.connect()            # a Playwright Browser (connect_over_cdp)
        page = await browser.new_page()
        await page.goto("https://example.com")
        print(await page.title())

The box boots the browser image (``boxlite/browser``: Debian's Chromium and fonts, no X).
Nothing runs in it until an endpoint is asked for:

- :meth:`BrowserBox.endpoint` starts Chromium headless with its DevTools port on the
  guest's loopback and returns its CDP WebSocket URL on the host
  (``ws://127.0.0.1:PORT/devtools/browser/ID``), for ``connect_over_cdp`` or any CDP
  client (Puppeteer, chromedp).
- :meth:`BrowserBox.playwright_endpoint` runs a Playwright server instead: the Node.js
  driver of the host's ``playwright`` wheel, shared into the box read-only, launches the
  image's Chromium; the URL (``ws://127.0.0.1:PORT/ID``) is for
  ``playwright.chromium.connect``.

The two are mutually exclusive on one box (RuntimeError), as in BoxLite 0.9.

How the host reaches the browser: through the box's agent channel (the tunnels of
:mod:`boxlite.tunnels`), not its network. A listener on the host's 127.0.0.1 (port
``cdp_port``/``port`` of :class:`BrowserBoxOptions`, a free one by default) carries each
accepted connection to the port in the box over a tunnel. Nothing listens on the guest's
network and the box needs no network of its own: ``network="none"`` works (pages the
browser loads still need one, of course). The listener closes when the box stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import os
import re
import secrets
import socket
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from .box import SimpleBox
from .computer import _int
from .errors import BoxliteError, BoxStartError, ConfigError
from .errors import TimeoutError as BoxliteTimeoutError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BrowserBox", "BrowserBoxOptions", "DEFAULT_IMAGE", "CDP_GUEST_PORT", "PLAYWRIGHT_GUEST_PORT"]

DEFAULT_IMAGE = "boxlite/browser"
"""The image BrowserBox boots unless told otherwise (Debian's Chromium, headless)."""

CDP_GUEST_PORT = 9222
"""Chromium's DevTools port on the guest's loopback."""

PLAYWRIGHT_GUEST_PORT = 3000
"""The Playwright server's port on the guest's loopback."""

BROWSERS = ("chromium", "firefox", "webkit")

# Where the host's Playwright driver (node + its package) is shared into the box.
DRIVER_GUEST_DIR = "/opt/boxlite/playwright-driver"
_STATE = "/tmp/boxlite-browser"
# Chromium's names in the images people use (Debian, Ubuntu, Chrome's own packages).
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                   "headless_shell")
# Flags for a browser in a box: no GPU, no display; as root (the default user of a box)
# Chromium runs only without its sandbox: the micro-VM is the boundary. No background
# traffic of its own (component updates, sync, crash reports): the box's network, and its
# allow-list, see only what the pages fetch.
_CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                   "--password-store=basic", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--disable-default-apps",
                   "--disable-extensions", "--disable-breakpad", "--mute-audio")

# Starts "$@" in its own session, its output in $STATE/NAME.log and its pid in
# $STATE/NAME.pid, and prints the pid. Exit 127 when the program is not in the image.
_LAUNCH = r"""
state=$1 name=$2; shift 2
command -v "$1" >/dev/null 2>&1 || { echo "$1: not found in the image" >&2; exit 127; }
mkdir -p "$state" && rm -f "$state/$name.pid" || exit 1
setsid -f sh -c 'echo $$ >"$0.pid"; exec "$@"' "$state/$name" "$@" </dev/null >"$state/$name.log" 2>&1
i=0
while [ ! -s "$state/$name.pid" ]; do
  i=$((i + 1)); [ $i -gt 200 ] && { echo "$name did not start" >&2; exit 1; }
  sleep 0.05
done
cat "$state/$name.pid"
"""

# The path of the browser target in Chromium's /json/version (all that is taken from it).
_CDP_PATH = re.compile(r"/devtools/browser/[0-9A-Za-z-]{1,64}")

# The first Chromium of _CHROMIUM_NAMES on the PATH, else the one of Playwright's own
# images (BoxLite 0.9's default, mcr.microsoft.com/playwright, keeps it off the PATH in
# /ms-playwright); exit 127 when there is none.
_FIND_CHROMIUM = "for n in " + " ".join(_CHROMIUM_NAMES) + r"""; do
  p=$(command -v "$n" 2>/dev/null) && { echo "$p"; exit 0; }
done
for p in /ms-playwright/chromium-*/chrome-linux*/chrome; do
  [ -x "$p" ] && { echo "$p"; exit 0; }
done
exit 127
"""

# The Playwright server, run by the driver's node: argv is PACKAGE_DIR BROWSER_PATH PORT
# WS_PATH. launchServer (not `run-server`) so that the server launches the image's browser,
# not one Playwright would download.
_PLAYWRIGHT_SERVER = r"""
const [pkg, executablePath, port, wsPath] = process.argv.slice(1);
require(pkg).chromium.launchServer({
  executablePath, host: '127.0.0.1', port: Number(port), wsPath,
  args: ['--disable-gpu', '--disable-dev-shm-usage'],
}).then((s) => console.log('listening ' + s.wsEndpoint()),
        (e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def _host_driver_dir() -> str | None:
    """The driver directory of the host's ``playwright`` wheel (node + package), if any."""
    try:
        import playwright
    except ImportError:
        return None
    driver = os.path.join(os.path.dirname(os.path.abspath(playwright.__file__)), "driver")
    if os.path.isfile(os.path.join(driver, "node")) and os.path.isdir(os.path.join(driver, "package")):
        return driver
    return None


def _optional_port(name: str, value: Any) -> int | None:
    if value is None:
        return None
    port = _int(name, value)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be in 0..65535 (0: any free port), not {port}")
    return port


def _positive_int(name: str, value: Any) -> int:
    number = _int(name, value)
    if number <= 0:
        raise ConfigError(f"{name} must be positive, not {number}")
    return number


def _first_given(kwargs: dict[str, Any], name: str, alias: str, default: int) -> Any:
    """Pops ``name`` and its 0.9 spelling ``alias`` from kwargs: the one given (they
    must agree when both are), else ``default``."""
    value, alias_value = kwargs.pop(name, None), kwargs.pop(alias, None)
    if value is not None and alias_value is not None and value != alias_value:
        raise ConfigError(f"{name}={value!r} and {alias}={alias_value!r} disagree: give one")
    if value is not None:
        return value
    return default if alias_value is None else alias_value


def _check_timeout(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


@dataclasses.dataclass
class BrowserBoxOptions:
    """BrowserBox's options (BoxLite 0.9's dataclass).

    Attributes:
        browser: ``"chromium"`` (the default and, with ``boxlite/browser``, the only
            one: ``"firefox"`` and ``"webkit"`` raise :class:`ConfigError` naming what
            the image lacks).
        memory: MiB of guest RAM (default 2048).
        cpu: vCPUs (default 2).
        port: The host port (on 127.0.0.1) of :meth:`BrowserBox.playwright_endpoint`;
            None or 0 (default) picks a free one. 0.9 published 3000.
        cdp_port: The host port (on 127.0.0.1) of :meth:`BrowserBox.endpoint`; None or
            0 (default) picks a free one. 0.9 published 9222.
    """

    browser: str = "chromium"
    memory: int = 2048
    cpu: int = 2
    port: int | None = None
    cdp_port: int | None = None

    def _checked(self) -> BrowserBoxOptions:
        if self.browser not in BROWSERS:
            raise ConfigError(f"browser must be one of {', '.join(BROWSERS)}, not {self.browser!r}")
        return BrowserBoxOptions(
            browser=self.browser,
            memory=_positive_int("memory", self.memory),
            cpu=_positive_int("cpu", self.cpu),
            port=_optional_port("port", self.port),
            cdp_port=_optional_port("cdp_port", self.cdp_port),
        )


class _HostForward:
    """A listener on the host's 127.0.0.1 whose connections go to one TCP port in the box
    over its agent channel. Thread-based, so it serves whichever event loop (or none) the
    client runs on. :meth:`close` stops it and cuts its connections."""

    def __init__(self, core: Any, guest_port: int, host_port: int) -> None:
        self._core = core
        self._guest_port = guest_port
        self._lock = threading.Lock()
        self._open: set[Any] = set()  # Sockets and tunnel connections to close.
        self._closed = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", host_port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on 127.0.0.1:{host_port} ({exc.strerror}): "
                              f"choose another port, or 0 for any free one") from None
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        threading.Thread(target=self._accept, name=f"boxlite-browser-{self.port}", daemon=True).start()

    def _track(self, obj: Any) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._open.add(obj)
            return True

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return  # Closed.
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if not self._track(client):
            client.close()
            return
        try:
            conn = self._core.tunnel(self._guest_port)
        except Exception:  # noqa: BLE001 - nothing listens yet, or the box stopped.
            self._drop(client)
            return
        if not self._track(conn):
            conn.close()
            self._drop(client)
            return
        up = threading.Thread(target=self._upstream, args=(client, conn), daemon=True)
        up.start()
        try:
            while True:
                data = conn.read(65536)
                if not data:
                    break
                client.sendall(data)
            client.shutdown(socket.SHUT_WR)
        except Exception:  # noqa: BLE001 - either side went away: end both.
            pass
        up.join()
        self._drop(conn)
        self._drop(client)

    @staticmethod
    def _upstream(client: socket.socket, conn: Any) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    conn.shutdown_write()
                    return
                conn.write(data)
        except Exception:  # noqa: BLE001 - either side went away: end both.
            with contextlib.suppress(Exception):
                conn.close()
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    def _drop(self, obj: Any) -> None:
        with self._lock:
            self._open.discard(obj)
        with contextlib.suppress(Exception):
            obj.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            items, self._open = list(self._open), set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # Wakes the accepting thread.
        self._sock.close()
        for obj in items:
            if isinstance(obj, socket.socket):
                with contextlib.suppress(OSError):
                    obj.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                obj.close()


class BrowserBox(SimpleBox):
    """A box running a headless browser you drive from the host with Playwright or any
    CDP client (BoxLite 0.9's BrowserBox).

    Args:
        options: :class:`BrowserBoxOptions` (browser, memory, cpu, port, cdp_port).
        runtime: The :class:`~boxlite.Boxlite` runtime to create the box in.
        image: The image (default ``boxlite/browser``). Another image works if it has a
            Chromium on its PATH (``chromium``, ``chromium-browser``, ``google-chrome``).
        **kwargs: Everything :class:`~boxlite.SimpleBox` accepts (``env``, ``mounts``,
            ``ports``, ``network``, ``name``, ...); ``memory``/``cpu`` (or
            ``memory_mib``/``cpus``) given here win over ``options``.

    Raises:
        ConfigError: Bad options; ``browser="firefox"``/``"webkit"`` (the images
            BrowserBox runs have Chromium only), before anything boots.
    """

    def __init__(
        self,
        options: BrowserBoxOptions | None = None,
        runtime: Any = None,
        *,
        image: str = DEFAULT_IMAGE,
        **kwargs: Any,
    ) -> None:
        if options is None:
            options = BrowserBoxOptions()
        if not isinstance(options, BrowserBoxOptions):
            raise ConfigError(f"options must be a BrowserBoxOptions, not {type(options).__name__}")
        opts = options._checked()
        if opts.browser != "chromium":
            where = "boxlite/browser has" if image == DEFAULT_IMAGE else "BrowserBox starts"
            raise ConfigError(
                f"browser={opts.browser!r} is not available: {where} Chromium only (no "
                f"{'Firefox' if opts.browser == 'firefox' else 'WebKit'}, and Playwright's own "
                f"builds of it are a download); use browser='chromium'"
            )
        memory = _first_given(kwargs, "memory", "memory_mib", opts.memory)
        cpu = _first_given(kwargs, "cpu", "cpus", opts.cpu)
        driver = _host_driver_dir()
        if driver is not None:
            given = [kwargs.pop(key, None) or [] for key in ("mounts", "volumes")]
            if any(isinstance(m, (str, bytes)) for m in given):
                raise ConfigError("mounts must be a list of mounts")
            kwargs["mounts"] = [*given[0], *given[1], (driver, DRIVER_GUEST_DIR, "ro")]
        super().__init__(image, memory=memory, cpu=cpu, runtime=runtime, **kwargs)
        self._browser_options = opts
        self._driver = driver
        self._mode: str | None = None  # "cdp" or "playwright" once an endpoint was asked for.
        self._url: str | None = None
        self._forward: _HostForward | None = None
        self._pid: int | None = None
        self._starting = asyncio.Lock()
        self._playwright: Any = None
        self._playwright_loop: asyncio.AbstractEventLoop | None = None
        self._browser: Any = None

    # Properties.

    @property
    def browser_options(self) -> BrowserBoxOptions:
        """The browser options (checked)."""
        return self._browser_options

    @property
    def browser(self) -> Any:
        """The Playwright ``Browser`` of :meth:`connect`, or None before it."""
        return self._browser

    # Lifecycle.

    async def stop(self) -> None:
        """Disconnects Playwright, closes the host listener and stops the box (removing
        an ephemeral one), and with it the browser."""
        browser, self._browser = self._browser, None
        playwright, self._playwright = self._playwright, None
        if self._playwright_loop is not asyncio.get_running_loop():
            # Playwright's objects live on the loop connect() ran on: from another loop
            # they cannot be awaited; stopping the box ends the connection anyway.
            browser = playwright = None
        self._playwright_loop = None
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.close()
        if playwright is not None:
            with contextlib.suppress(Exception):
                await playwright.stop()
        self._reset()
        await super().stop()

    def _reset(self) -> None:
        forward, self._forward = self._forward, None
        if forward is not None:
            forward.close()
        self._mode = self._url = self._pid = None

    # Endpoints.

    async def endpoint(self, timeout: float = 60) -> str:
        """Starts Chromium (once) and returns its CDP WebSocket URL on the host,
        ``ws://127.0.0.1:PORT/devtools/browser/ID``.

        Raises:
            RuntimeError: :meth:`playwright_endpoint` was used on this box.
            BoxStartError: The image has no Chromium, or it exited (its log says why).
            TimeoutError: Chromium did not answer within ``timeout`` seconds (the
                builtin ``TimeoutError``; ``boxlite.TimeoutError`` too).
        """
        return await self._endpoint("cdp", _check_timeout(timeout))

    async def playwright_endpoint(self, timeout: float = 60) -> str:
        """Starts a Playwright server (once) and returns its WebSocket URL on the host,
        ``ws://127.0.0.1:PORT/ID``, for ``playwright.chromium.connect(url)``.

        The server is the Node.js driver of the host's ``playwright`` wheel (shared into
        the box read-only at creation), launching the image's Chromium.

        Raises:
            RuntimeError: :meth:`endpoint` was used on this box.
            BoxStartError: No ``playwright`` wheel on the host when the box was made, the
                image has no Chromium, or the server exited (its log says why).
            TimeoutError: The server did not answer within ``timeout`` seconds.
        """
        return await self._endpoint("playwright", _check_timeout(timeout))

    async def connect(self, timeout: float = 60) -> Any:
        """Returns a Playwright ``Browser`` connected to the box's browser (also
        :attr:`browser`): ``chromium.connect_over_cdp(await endpoint())``, or
        ``chromium.connect`` when :meth:`playwright_endpoint` was used. It is closed with
        the box. Needs the ``playwright`` package (``pip install boxlite[browser]``)."""
        if self._browser is not None:
            return self._browser
        try:
            from playwright.async_api import async_playwright
        except ImportError:
            raise BoxliteError(
                "BrowserBox.connect() needs the playwright package: pip install "
                "'boxlite[browser]' (no browser download is needed)"
            ) from None
        limit = _check_timeout(timeout)
        if self._mode == "playwright":
            url = await self.playwright_endpoint(limit)
        else:
            url = await self.endpoint(limit)
        playwright = await async_playwright().start()
        try:
            if self._mode == "playwright":
                browser = await playwright.chromium.connect(url, timeout=limit * 1000)
            else:
                browser = await playwright.chromium.connect_over_cdp(url, timeout=limit * 1000)
        except BaseException:
            await playwright.stop()
            raise
        self._playwright, self._browser = playwright, browser
        self._playwright_loop = asyncio.get_running_loop()
        return browser

    async def _endpoint(self, mode: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        async with self._starting:
            if self._mode is not None and self._mode != mode:
                used, other = ("endpoint", "playwright_endpoint") if self._mode == "cdp" else (
                    "playwright_endpoint", "endpoint")
                raise RuntimeError(
                    f"this BrowserBox already serves {used}(); {other}() is not available on "
                    f"the same box (use another BrowserBox)"
                )
            if self._url is not None:
                return self._url
            await self._ensure_started()
            try:
                self._url = await self._start(mode, deadline, timeout)
            except BaseException:
                pid = self._pid
                self._reset()
                if pid is not None:
                    # What was started goes, so that a later call starts afresh.
                    await asyncio.shield(self._kill(pid))
                raise
            return self._url

    async def _kill(self, pid: int) -> None:
        with contextlib.suppress(BoxliteError):
            await self.exec("sh", "-c", 'kill -9 "-$1" 2>/dev/null; true', "sh", str(pid))

    async def _start(self, mode: str, deadline: float, timeout: float) -> str:
        chromium = await self._find_chromium()
        if mode == "cdp":
            guest_port, host_port = CDP_GUEST_PORT, self._browser_options.cdp_port or 0
            argv = [chromium, *_CHROMIUM_FLAGS, "--remote-debugging-address=127.0.0.1",
                    f"--remote-debugging-port={guest_port}", f"--user-data-dir={_STATE}/profile",
                    "about:blank"]
            what = "chromium"
        else:
            if self._driver is None:
                raise BoxStartError(
                    "playwright_endpoint() needs the playwright package on the host when the "
                    "BrowserBox is made (its Node.js driver runs the server in the box): pip "
                    "install 'boxlite[browser]'"
                )
            guest_port, host_port = PLAYWRIGHT_GUEST_PORT, self._browser_options.port or 0
            ws_path = "/" + secrets.token_hex(16)
            argv = ["env", "PLAYWRIGHT_SKIP_VALIDATE_HOST_REQUIREMENTS=1", "HOME=" + _STATE,
                    f"{DRIVER_GUEST_DIR}/node", "-e", _PLAYWRIGHT_SERVER,
                    f"{DRIVER_GUEST_DIR}/package", chromium, str(guest_port), ws_path]
            what = "playwright"
        self._mode = mode
        self._forward = _HostForward(self._require_core(), guest_port, host_port)
        result = await self.exec("sh", "-c", _LAUNCH, "sh", _STATE, what, *argv)
        if result.exit_code != 0:
            raise BoxStartError(f"cannot start {what} in the box (exit {result.exit_code}): "
                                f"{result.stderr.strip()[:500]}")
        pid = result.stdout.strip()
        if not pid.isdigit() or len(pid) > 10:
            raise BoxStartError(f"cannot start {what} in the box: its launcher printed {pid[:80]!r}, not a pid")
        self._pid = int(pid)
        await self._wait_listening(what, guest_port, deadline, timeout)
        port = self._forward.port
        if mode == "playwright":
            return f"ws://127.0.0.1:{port}{ws_path}"
        info = await asyncio.to_thread(self._http_json, port, "/json/version", max(1.0, deadline - time.monotonic()))
        url = info.get("webSocketDebuggerUrl") if isinstance(info, dict) else None
        if not isinstance(url, str) or not url.startswith("ws://"):
            raise BoxliteError(f"chromium's /json/version has no webSocketDebuggerUrl: {str(info)[:200]}")
        path = urllib.parse.urlsplit(url).path
        if not _CDP_PATH.fullmatch(path):
            raise BoxliteError(f"chromium's webSocketDebuggerUrl is not a browser target: {url[:200]!r}")
        return f"ws://127.0.0.1:{port}{path}"

    async def _find_chromium(self) -> str:
        result = await self.exec("sh", "-c", _FIND_CHROMIUM)
        path = result.stdout.strip()
        if result.exit_code != 0 or not path:
            raise BoxStartError(
                f"the image has no Chromium ({', '.join(_CHROMIUM_NAMES)} on the PATH): "
                f"BrowserBox needs an image with one, such as {DEFAULT_IMAGE}"
            )
        return path

    async def _wait_listening(self, what: str, guest_port: int, deadline: float, timeout: float) -> None:
        """Waits until the program listens on ``guest_port`` in the box; fails early when
        it exits."""
        core = self._require_core()
        next_check = time.monotonic() + 1
        while True:
            try:
                conn = await asyncio.to_thread(core.tunnel, guest_port)
            except BoxliteError:
                pass
            else:
                conn.close()
                return
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1
                alive = await self.exec("sh", "-c", 'kill -0 "$1"', "sh", str(self._pid))
                if alive.exit_code != 0:
                    raise BoxStartError(f"{what} exited in the box: {await self._log_tail(what)}")
            if now >= deadline:
                raise BoxliteTimeoutError(
                    f"{what} did not listen on port {guest_port} in the box within {timeout:g} s; "
                    f"its log is {_STATE}/{what}.log in the box: {await self._log_tail(what)}"
                )
            await asyncio.sleep(0.2)

    async def _log_tail(self, what: str) -> str:
        result = await self.exec("tail", "-c", "1500", f"{_STATE}/{what}.log")
        return result.stdout.strip() or "(no output)"

    @staticmethod
    def _http_json(port: int, path: str, timeout: float) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read(1 << 20)
        finally:
            conn.close()
        if response.status != 200:
            raise BoxliteError(f"chromium answered {path} with HTTP {response.status}")
        try:
            return json.loads(body)
        except ValueError:
            raise BoxliteError(f"chromium's {path} is not JSON: {body[:200]!r}") from None

    def __repr__(self) -> str:
        return f"<BrowserBox {self._url or 'with no endpoint yet'}>"

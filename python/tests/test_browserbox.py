"""BrowserBox (docs/browserbox.md) against real boxes of the browser image (boxlite/browser).

One BrowserBox is booted for the module and serves its CDP endpoint to the tests in file
order (Chromium's start costs tens of seconds under TCG); a second one, with no network,
serves the Playwright server, as the two endpoints are exclusive on one box. Pages come
from an HTTP server on the host's 127.0.0.1 that the first box reaches as
``host.boxlite.internal:PORT`` (its allow-list names that port only).

The image comes from ``$BOXLITE_DATA_DIR/images/browser.tar`` when installed there (setup
does it); otherwise the browser layout is built (cached) and imported into the session's
private home as ``boxlite/browser``.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import boxlite
import boxlite.sync
from conftest import qemu_children
from boxlite.browserbox import CDP_GUEST_PORT, PLAYWRIGHT_GUEST_PORT


REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "scripts" / "test-images" / "build.sh"
IMAGE = "boxlite/browser"
# Generous: the guest is emulated (TCG) and the host is shared. Nothing waits this long
# unless something is broken.
START_TIMEOUT = 300
TITLE = "BoxLite page " + secrets.token_hex(4)

playwright_api = pytest.importorskip("playwright.async_api")


# ---------------------------------------------------------------------------- fixtures

class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name.
        body = f"<html><head><title>{TITLE}</title></head><body>{self.path}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_server() -> Iterator[int]:
    """An HTTP server on the host's 127.0.0.1; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser_image(boxlite_home: Path) -> str:
    """Makes boxlite/browser resolvable in this session's home."""
    data_dir = os.environ.get("BOXLITE_DATA_DIR", "")
    if not (data_dir and os.path.exists(os.path.join(data_dir, "images", "browser.tar"))):
        p = subprocess.run([str(BUILD_SH), "--only", "browser", "--json"], stdout=subprocess.PIPE,
                           text=True, timeout=3600)
        assert p.returncode == 0, "scripts/test-images/build.sh --only browser failed"
        layout = json.loads(p.stdout)["images"]["browser"]["layout"]
        asyncio.run(boxlite.Boxlite.default().images.import_image(layout, tag=IMAGE + ":latest"))
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CDP_PORT = free_port()
MEMORY = 1536


@pytest.fixture(scope="module")
def cdp_box(browser_image: str, page_server: int) -> Iterator[boxlite.BrowserBox]:
    """The shared box (its CDP endpoint on CDP_PORT, MEMORY MiB); the host's page server
    is the only place it may reach."""
    box = boxlite.BrowserBox(
        boxlite.BrowserBoxOptions(memory=MEMORY, cdp_port=CDP_PORT),
        network=boxlite.NetworkSpec(allow_net=[f"host.boxlite.internal:{page_server}"]))
    asyncio.run(box.__aenter__())
    try:
        yield box
    finally:
        asyncio.run(box.__aexit__(None, None, None))


async def guest_processes(box: boxlite.SimpleBox, word: str) -> list[str]:
    """Command lines of the processes in the box that mention ``word``."""
    result = await box.exec("sh", "-c", 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " <"$f"; '
                            'echo; done 2>/dev/null')
    return [line for line in result.stdout.splitlines() if word in line and "/proc/" not in line]


async def guest_listeners(box: boxlite.SimpleBox, port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    result = await box.exec("cat", "/proc/net/tcp", "/proc/net/tcp6")
    found = []
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
            found.append(fields[1].rsplit(":", 1)[0])
    return found


def port_refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# ---------------------------------------------------------------------------- no VM

def test_options_are_0_9s() -> None:
    """BrowserBoxOptions has 0.9's fields and defaults, and bad values fail at once."""
    options = boxlite.BrowserBoxOptions()
    assert (options.browser, options.memory, options.cpu, options.port, options.cdp_port) == (
        "chromium", 2048, 2, None, None)
    with pytest.raises(boxlite.ConfigError, match="browser must be one of chromium, firefox, webkit"):
        boxlite.BrowserBox(boxlite.BrowserBoxOptions(browser="opera"))
    with pytest.raises(boxlite.ConfigError, match="cdp_port must be in 0..65535"):
        boxlite.BrowserBox(boxlite.BrowserBoxOptions(cdp_port=70000))
    with pytest.raises(boxlite.ConfigError, match="memory must be positive"):
        boxlite.BrowserBox(boxlite.BrowserBoxOptions(memory=0))


@pytest.mark.parametrize("browser, lacks", [("firefox", "Firefox"), ("webkit", "WebKit")])
def test_firefox_and_webkit_fail_before_booting(browser: str, lacks: str) -> None:
    """browser="firefox"/"webkit": a ValueError naming what the image lacks, raised by
    the constructor, so no VM starts."""
    with pytest.raises(ValueError, match=f"boxlite/browser has Chromium only \\(no {lacks}"):
        boxlite.BrowserBox(boxlite.BrowserBoxOptions(browser=browser))


def test_sync_twin_has_the_endpoints() -> None:
    """boxlite.sync.BrowserBox offers endpoint() and playwright_endpoint() as blocking
    methods; connect() (an async Playwright Browser) is not among them."""
    box = boxlite.sync.BrowserBox()
    assert callable(box.endpoint) and callable(box.playwright_endpoint)
    assert not asyncio.iscoroutinefunction(type(box).endpoint)
    assert "connect" not in vars(type(box))


def test_image_key_follows_its_package_list(tmp_path: Path) -> None:
    """The browser image is cached by its inputs: a change to browser/packages.txt gives
    boxlite/browser (and its tarball) a new key and leaves the desktop's alone."""
    daemon = tmp_path / "boxlite-desktopd"  # Any ELF file stands in for the desktop daemon.
    daemon.write_bytes(Path("/bin/true").read_bytes())
    copy = tmp_path / "test-images"
    subprocess.run(["cp", "-r", str(BUILD_SH.parent), str(copy)], check=True)

    def keys() -> dict[str, str]:
        p = subprocess.run([sys.executable, str(copy / "build.py"), "--cache", str(tmp_path / "c"),
                            "--keys", "--desktopd", str(daemon), "--only",
                            "browser,browser-tar,desktop"],
                           stdout=subprocess.PIPE, text=True, check=True)
        return dict(line.split("\t") for line in p.stdout.splitlines())

    before = keys()
    with open(copy / "browser" / "packages.txt", "a") as f:
        f.write("fonts-noto-core\n")
    after = keys()
    assert after["browser"] != before["browser"] and after["browser-tar"] != before["browser-tar"]
    assert after["desktop"] == before["desktop"]


# ---------------------------------------------------------------------------- the CDP box

@pytest.mark.asyncio
async def test_nothing_runs_until_an_endpoint_is_asked_for(cdp_box: boxlite.BrowserBox) -> None:
    """A started BrowserBox runs no browser and listens on nothing until asked."""
    assert await guest_processes(cdp_box, "chromium") == []
    assert await guest_listeners(cdp_box, CDP_GUEST_PORT) == []
    assert cdp_box.browser is None
    assert port_refuses(CDP_PORT)


@pytest.mark.asyncio
async def test_memory_and_cpu_options_reach_the_guest(cdp_box: boxlite.BrowserBox) -> None:
    """BrowserBoxOptions' memory (MEMORY) and cpu (default 2) are the guest's."""
    result = await cdp_box.exec("sh", "-c", "grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo")
    mem_kib, cpus = int(result.stdout.split()[1]), int(result.stdout.split()[3])
    assert (MEMORY - 128) * 1024 < mem_kib <= MEMORY * 1024
    assert cpus == 2


@pytest.mark.asyncio
async def test_endpoint_is_a_cdp_url_on_the_hosts_loopback(cdp_box: boxlite.BrowserBox) -> None:
    """endpoint() answers ws://127.0.0.1:PORT/devtools/browser/ID; the port is the host
    listener's, Chromium listens on the guest's loopback only, and a second call answers
    the same URL without starting a second browser."""
    url = await cdp_box.endpoint(timeout=START_TIMEOUT)
    match = re.fullmatch(r"ws://127\.0\.0\.1:(\d+)/devtools/browser/[0-9a-f-]{36}", url)
    assert match, url
    assert int(match.group(1)) == CDP_PORT  # BrowserBoxOptions.cdp_port.
    # The host side: bound to 127.0.0.1 only (a wildcard bind would answer on 127.0.0.2).
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", int(match.group(1))), timeout=5).close()
    # The guest side: 127.0.0.1:9222, nothing on the box's network address.
    assert await guest_listeners(cdp_box, CDP_GUEST_PORT) == ["0100007F"]
    assert await cdp_box.endpoint() == url
    browsers = [p for p in await guest_processes(cdp_box, "--remote-debugging-port")
                if "--type=" not in p]
    assert len(browsers) == 1, browsers


@pytest.mark.asyncio
async def test_playwright_reads_the_title_of_a_page_from_the_host(
        cdp_box: boxlite.BrowserBox, page_server: int) -> None:
    """connect() gives a Playwright Browser (connect_over_cdp) that loads a page from the
    host's HTTP server, through the box's network, and reads its title."""
    browser = await cdp_box.connect(timeout=START_TIMEOUT)
    try:
        assert cdp_box.browser is browser
        assert browser.version.split(".")[0].isdigit()
        page = await browser.new_page()
        await page.goto(f"http://host.boxlite.internal:{page_server}/from-the-box",
                        timeout=START_TIMEOUT * 1000)
        assert await page.title() == TITLE
        assert await page.evaluate("document.body.textContent") == "/from-the-box"
    finally:
        await browser.close()


@pytest.mark.asyncio
async def test_playwright_endpoint_is_exclusive_with_endpoint(cdp_box: boxlite.BrowserBox) -> None:
    """After endpoint(), playwright_endpoint() raises RuntimeError (0.9's rule)."""
    with pytest.raises(RuntimeError, match="already serves endpoint"):
        await cdp_box.playwright_endpoint()


@pytest.mark.asyncio
async def test_exit_stops_the_browser_and_closes_the_listener(cdp_box: boxlite.BrowserBox) -> None:
    """Leaving the box removes it and closes the host listener (runs last on this box)."""
    url = await cdp_box.endpoint()
    port = int(url.split(":")[2].split("/")[0])
    box_id = cdp_box.id
    runtime = boxlite.Boxlite.default()
    qemu = (await cdp_box.info()).pid
    assert qemu in qemu_children()
    await cdp_box.__aexit__(None, None, None)
    assert port_refuses(port)
    assert await runtime.get(box_id) is None
    assert qemu not in qemu_children()


# ---------------------------------------------------------------------------- other boxes

@pytest.mark.asyncio
async def test_playwright_server_without_network(browser_image: str, no_leaks: None) -> None:
    """playwright_endpoint() runs the Playwright server of the host's wheel in the box;
    playwright.chromium.connect() drives the box's Chromium with it, in a box without a
    network. A too short timeout raises the builtin TimeoutError and leaves nothing
    running, so the next call starts afresh. The box leaves nothing behind."""
    port = free_port()
    async with boxlite.BrowserBox(boxlite.BrowserBoxOptions(port=port), network="none") as box:
        with pytest.raises(TimeoutError, match="did not listen on port 3000"):
            await box.playwright_endpoint(timeout=0.01)
        assert await guest_processes(box, "playwright") == []
        url = await box.playwright_endpoint(timeout=START_TIMEOUT)
        assert re.fullmatch(rf"ws://127\.0\.0\.1:{port}/[0-9a-f]{{32}}", url), url
        assert await guest_listeners(box, PLAYWRIGHT_GUEST_PORT) == ["0100007F"]
        with pytest.raises(RuntimeError, match="already serves playwright_endpoint"):
            await box.endpoint()
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.connect(url, timeout=START_TIMEOUT * 1000)
            page = await browser.new_page()
            await page.set_content(f"<title>{TITLE}</title>")
            assert await page.title() == TITLE
            await browser.close()


@pytest.mark.asyncio
async def test_image_without_chromium_is_a_clear_error(no_leaks: None) -> None:
    """On an image without Chromium, endpoint() raises BoxStartError saying so."""
    async with boxlite.BrowserBox(image="boxlite/base", memory=256, cpu=1) as box:
        with pytest.raises(boxlite.BoxStartError, match="the image has no Chromium"):
            await box.endpoint()

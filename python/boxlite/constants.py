"""BoxLite 0.9's ``boxlite.constants``, with this build's values.

The names are 0.9's. Where 0.9 names something this project does not ship, the value is
this project's own and says so:

- ``COMPUTERBOX_IMAGE`` is our desktop image ``boxlite/desktop`` (0.9: a webtop image we
  do not ship); ``COMPUTERBOX_GUI_HTTP_PORT``/``_HTTPS_PORT`` keep 0.9's numbers for
  programs that read them, while our desktop's viewer listens on
  ``boxlite.computer.VIEWER_GUEST_PORT``.
- ``SKILLBOX_IMAGE``: 0.9's value.
- ``BROWSERBOX_PORT``: 0.9's number (3000, its Playwright server's host port). Our
  BrowserBox serves its endpoints on a free host port unless ``BrowserBoxOptions.port``
  or ``cdp_port`` names one (docs/browserbox.md).
- ``COMPUTERBOX_DISPLAY_NUMBER`` is our desktop's display ``":0"`` (0.9: ``":1"``).
- ``GUEST_IP`` is the address a box has on its network here (``10.0.2.15``; 0.9:
  ``192.168.127.2``).
- ``DEFAULT_CPUS`` and ``DEFAULT_MEMORY_MIB`` are the defaults of ``BoxOptions``.
"""

from __future__ import annotations

from .computer import DEFAULT_IMAGE as _DESKTOP_IMAGE

__all__ = [
    "DEFAULT_CPUS",
    "DEFAULT_MEMORY_MIB",
    "COMPUTERBOX_CPUS",
    "COMPUTERBOX_MEMORY_MIB",
    "COMPUTERBOX_IMAGE",
    "COMPUTERBOX_DISPLAY_NUMBER",
    "COMPUTERBOX_DISPLAY_WIDTH",
    "COMPUTERBOX_DISPLAY_HEIGHT",
    "COMPUTERBOX_GUI_HTTP_PORT",
    "COMPUTERBOX_GUI_HTTPS_PORT",
    "BROWSERBOX_PORT",
    "GUEST_IP",
    "SKILLBOX_IMAGE",
    "SKILLBOX_MEMORY_MIB",
    "SKILLBOX_DISK_SIZE_GB",
    "SKILLBOX_GUI_HTTP_PORT",
    "SKILLBOX_GUI_HTTPS_PORT",
    "DESKTOP_READY_TIMEOUT",
    "DESKTOP_READY_RETRY_DELAY",
]

DEFAULT_CPUS = 1
DEFAULT_MEMORY_MIB = 1024

COMPUTERBOX_CPUS = 2
COMPUTERBOX_MEMORY_MIB = 2048
COMPUTERBOX_IMAGE = _DESKTOP_IMAGE
COMPUTERBOX_DISPLAY_NUMBER = ":0"
COMPUTERBOX_DISPLAY_WIDTH = 1024
COMPUTERBOX_DISPLAY_HEIGHT = 768
COMPUTERBOX_GUI_HTTP_PORT = 3000
COMPUTERBOX_GUI_HTTPS_PORT = 3001

BROWSERBOX_PORT = 3000
GUEST_IP = "10.0.2.15"

SKILLBOX_IMAGE = "ghcr.io/boxlite-ai/boxlite-skillbox:0.1.0"
SKILLBOX_MEMORY_MIB = 4096
SKILLBOX_DISK_SIZE_GB = 10
SKILLBOX_GUI_HTTP_PORT = 3000
SKILLBOX_GUI_HTTPS_PORT = 3001

DESKTOP_READY_TIMEOUT = 60
DESKTOP_READY_RETRY_DELAY = 0.5

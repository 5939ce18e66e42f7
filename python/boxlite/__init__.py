"""BoxLite: local sandboxes, each a micro-VM with its own kernel booted from an OCI image.

Async is primary::

    import asyncio, boxlite

    async def main():
        async with boxlite.SimpleBox("boxlite/base") as box:
            result = await box.exec("echo", "hello")
            print(result.exit_code, result.stdout)

    asyncio.run(main())

The synchronous twin lives in :mod:`boxlite.sync` (same names, no ``await``).

Main names:
    SimpleBox, Box, Execution     boxes and their processes (StreamExecution: byte streams)
    CopyOptions, ExecStdout, ExecStderr, ExecStdin   BoxLite 0.9's exec and copy names
    Boxlite, Options, Images      the runtime (state directory, image store)
    BoxOptions, NetworkSpec, VolumeMount, PortForward
    ExecResult, BoxInfo, BoxMetrics, ImageInfo
    BoxliteError and its subclasses (see :mod:`boxlite.errors`)

Guest assets (kernel, initramfs, built-in images) are found through
``$BOXLITE_DATA_DIR`` or the installed ``share/boxlite``; state lives in
``$BOXLITE_HOME`` (default ``~/.local/share/boxlite``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from . import errors as _errors_module
from ._core import core as _core_module
from .box import Box, Execution, SimpleBox
from .errors import (
    AuthenticationError,
    BoxError,
    BoxliteError,
    BoxNotFoundError,
    BoxStartError,
    BoxStateError,
    ConfigError,
    ExecError,
    ImageError,
    ImageNotFoundError,
    InvalidReferenceError,
    NotSupportedError,
    ParseError,
    RegistryError,
    ResourceError,
    TimeoutError,
)
from .options import BoxOptions, NetworkSpec, Options, PortForward, VolumeMount
from .results import BoxInfo, BoxMetrics, ExecResult
from .runtime import Boxlite

# Registries, images and volumes (boxlite/images.py, boxlite/volumes.py).
from .images import ImageHandle, ImageInfo, ImagePullResult, Images
from .options import ImageRegistry
from .volumes import VolumeHandle, VolumeInfo

# Exec, streams and copies (BoxLite 0.9's names beside ours).
from .box import CopyOptions, ExecStderr, ExecStdin, ExecStdout, StreamExecution

__version__: str = _core_module.version
"""The version, from the C++ core the extension was built from (include/boxlite/boxlite.h)."""
# Security, capabilities, health checks and 0.9's info/metrics classes.
from .advanced import AdvancedBoxOptions, ContainerCapabilities, HealthCheckOptions, SecurityOptions
from .results import BoxStateInfo, HealthState, HealthStatus, NetworkInfo, PublishedPort, RuntimeMetrics

core_version: str = _core_module.version
"""Same as ``__version__``."""

__all__ = [
    "__version__",
    "AuthenticationError",
    "Box",
    "BoxError",
    "BoxInfo",
    "BoxMetrics",
    "BoxNotFoundError",
    "BoxOptions",
    "BoxStartError",
    "BoxStateError",
    "Boxlite",
    "BoxliteError",
    "ConfigError",
    "ExecError",
    "ExecResult",
    "Execution",
    "ImageError",
    "ImageInfo",
    "ImageNotFoundError",
    "Images",
    "InvalidReferenceError",
    "NetworkSpec",
    "NotSupportedError",
    "Options",
    "ParseError",
    "PortForward",
    "RegistryError",
    "ResourceError",
    "SimpleBox",
    "TimeoutError",
    "VolumeMount",
    # Exec, streams and copies.
    "CopyOptions",
    "ExecStderr",
    "ExecStdin",
    "ExecStdout",
    "StreamExecution",
    # Registries, images and volumes.
    "ImageHandle",
    "ImagePullResult",
    "ImageRegistry",
    "VolumeHandle",
    "VolumeInfo",
]

# Security, capabilities, health checks and 0.9's info/metrics classes.
__all__ += [
    "AdvancedBoxOptions",
    "BoxStateInfo",
    "ContainerCapabilities",
    "HealthCheckOptions",
    "HealthState",
    "HealthStatus",
    "NetworkInfo",
    "PublishedPort",
    "RuntimeMetrics",
    "SecurityOptions",
]

# Snapshots and clones (boxlite/snapshots.py): BoxLite 0.9's names.
from .snapshots import CloneOptions, SnapshotHandle, SnapshotInfo, SnapshotOptions

__all__ += ["CloneOptions", "SnapshotHandle", "SnapshotInfo", "SnapshotOptions"]

# Secrets (boxlite/secret.py): values substituted by the network gateway, never in the box.
from .secret import Secret

__all__ += ["Secret"]

# Export and import of boxes as .boxlite archives (boxlite/archive.py).
from .archive import ExportOptions

__all__ += ["ExportOptions"]

# --- Remote runtimes (boxlite/credential.py): Boxlite.rest(BoxliteRestOptions(...)) ---
from .credential import AccessToken, ApiKeyCredential, BoxliteRestOptions, Credential

__all__ += ["AccessToken", "ApiKeyCredential", "BoxliteRestOptions", "Credential"]
# --- end remote runtimes ---

# Tunnels (boxlite/tunnels.py): BoxLite 0.9's box.network.tunnel(port). As in 0.9,
# BoxTunnel and BoxConnection are importable but not in __all__.
from .tunnels import BoxConnection, BoxTunnel, NetworkHandle

__all__ += ["NetworkHandle", "SyncNetworkHandle"]

# Boxes built on SimpleBox by their own modules. Each module defines the class of the
# same name; it is imported on first use, so a missing one fails only when asked for:
#   boxlite/computer.py       ComputerBox(SimpleBox): a desktop (screenshots, mouse, keys)
#   boxlite/interactivebox.py InteractiveBox(SimpleBox): a terminal on stream(tty=True)
_EXTENSIONS = {
    "ComputerBox": "computer",
    "InteractiveBox": "interactivebox",
}
# CodeBox (boxlite/codebox.py): Python in a kept interpreter, and its result classes.
_EXTENSIONS.update({name: "codebox" for name in ("CodeBox", "CodeResult", "CodeError")})
__all__ += ["SyncCodeBox"]
# Agents (boxlite/skillbox.py): SkillBox, Claude Code with skills in a box.
_EXTENSIONS["SkillBox"] = "skillbox"
__all__ += ["SyncSkillBox"]
# BrowserBox (boxlite/browserbox.py): a headless Chromium driven over CDP or Playwright.
_EXTENSIONS.update({name: "browserbox" for name in ("BrowserBox", "BrowserBoxOptions")})
__all__ += [name for name, mod in _EXTENSIONS.items() if importlib.util.find_spec(f"{__name__}.{mod}")]


# --- Errors and the synchronous API: boxlite.sync (ours) and boxlite.sync_api (0.9's
# names for the same classes) load on first use, as do the Sync* names at top level.
_SYNC_NAMES = (
    "SyncBox", "SyncBoxlite", "SyncExecStderr", "SyncExecStdout", "SyncExecution",
    "SyncImageHandle", "SyncSimpleBox",
)
__all__ += _SYNC_NAMES


def _sync_attribute(name: str) -> Any:
    if name in ("sync", "sync_api"):
        return importlib.import_module(f".{name}", __name__)
    sync_api = importlib.import_module(".sync_api", __name__)
    if name in sync_api.MISSING:
        raise sync_api.missing(__name__, name)
    return getattr(sync_api, name)


def __getattr__(name: str) -> Any:
    if name in _SYNC_NAMES or name in ("sync", "sync_api", "SyncCodeBox", "SyncSkillBox", "SyncNetworkHandle"):
        return _sync_attribute(name)
    module_name = _EXTENSIONS.get(name)
    if module_name is None and name in _errors_module.LATER_FEATURES and name[0].isupper():
        raise _errors_module.not_in_this_build("boxlite", name)
    if module_name is None:
        raise AttributeError(f"module 'boxlite' has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module_name}":
            raise
        raise AttributeError(
            f"boxlite.{name} is not available in this build yet (boxlite/{module_name}.py)"
        ) from None
    value = getattr(module, name)
    globals()[name] = value
    return value

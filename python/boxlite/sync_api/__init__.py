"""BoxLite 0.9's synchronous API under its own names, without greenlet.

::

    from boxlite.sync_api import SyncSimpleBox

    with SyncSimpleBox(image="alpine:latest") as box:
        print(box.exec("echo", "hello").stdout)

Each class here *is* the class of :mod:`boxlite.sync` (``SyncSimpleBox is
boxlite.sync.SimpleBox``, ``SyncBoxlite is boxlite.sync.Boxlite``, ...), so the two
spellings mix freely. Unlike 0.9's, these classes need no dispatcher and also work when
called from inside a running event loop (they block their caller like any blocking
call); see :mod:`boxlite.sync`.

A 0.9 name whose feature is not in this build raises an ``ImportError`` that is also a
:class:`boxlite.NotSupportedError` and names the missing feature (none at the moment).
"""

from __future__ import annotations

from typing import Any

from ..errors import FeatureNotAvailableError
from ..sync import Box as SyncBox
from ..sync import Boxlite as SyncBoxlite
from ..sync import Execution as SyncExecution
from ..sync import ExecStderr as SyncExecStderr
from ..sync import ExecStdin as SyncExecStdin
from ..sync import ExecStdout as SyncExecStdout
from ..sync import Images as SyncImageHandle
from ..sync import SimpleBox as SyncSimpleBox
from ..sync import CodeBox as SyncCodeBox  # CodeBox (boxlite/codebox.py).
from ..sync import SyncBase, SyncContextManager
from ..sync import SkillBox as SyncSkillBox  # SkillBox (boxlite/skillbox.py).
from ..tunnels import SyncBoxConnection, SyncBoxTunnel, SyncNetworkHandle  # Tunnels.

__all__ = [
    "SyncBase",
    "SyncBox",
    "SyncBoxlite",
    "SyncContextManager",
    "SyncExecStderr",
    "SyncExecStdin",
    "SyncExecStdout",
    "SyncExecution",
    "SyncImageHandle",
    "SyncSimpleBox",
    "SyncCodeBox",
    "SyncSkillBox",  # SkillBox (boxlite/skillbox.py).
    # Tunnels (boxlite/tunnels.py).
    "SyncBoxConnection",
    "SyncBoxTunnel",
    "SyncNetworkHandle",
]

# 0.9's synchronous names whose feature this build does not have yet.
MISSING: dict[str, str] = {}


def missing(module: str, name: str) -> FeatureNotAvailableError:
    """The error for a 0.9 synchronous name whose feature is not in this build."""
    return FeatureNotAvailableError(
        f"{module}.{name} is not available: this build of BoxLite does not have "
        f"{MISSING[name]} yet; use the classes in boxlite.sync_api.__all__",
        code="not_supported",
    )


def __getattr__(name: str) -> Any:
    if name in MISSING:
        raise missing(__name__, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

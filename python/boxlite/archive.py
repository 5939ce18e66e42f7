"""Boxes as ``.boxlite`` archives: :meth:`Box.export <boxlite.Box.export>` writes one,
:meth:`Boxlite.import_box <boxlite.Boxlite.import_box>` reads one back as a new stopped
box (docs/snapshots.md, "Export format"). The archive's rules (sizes, names, checksums,
what an untrusted archive may ask for) live in the C++ core
(src/runtime/box_archive.h, src/runtime/box_import.cc)."""

from __future__ import annotations

from typing import Any

from . import _args
from .errors import ConfigError


class ExportOptions:
    """Options of :meth:`Box.export <boxlite.Box.export>`: BoxLite 0.9's placeholder, with
    no fields yet."""

    def __repr__(self) -> str:
        return "ExportOptions()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExportOptions)

    __hash__ = object.__hash__


def export_dest(options: Any, dest: Any) -> str:
    """The absolute host path ``dest`` of an export, after checking ``options``."""
    if options is not None and not isinstance(options, ExportOptions):
        raise ConfigError(f"options must be an ExportOptions, not {type(options).__name__}")
    return _args.host_path(dest, "dest")


def import_args(archive_path: Any, name: Any, untrusted: Any) -> tuple[str, str, bool]:
    """The core's arguments of an import: the archive's absolute path, the name ("" for
    the archive's own), untrusted."""
    path = _args.host_path(archive_path, "archive_path")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"name must be a str or None, not {type(name).__name__}")
    if not isinstance(untrusted, bool):
        raise ConfigError(f"untrusted must be a bool, not {type(untrusted).__name__}")
    return path, name or "", untrusted


__all__ = ["ExportOptions", "export_dest", "import_args"]

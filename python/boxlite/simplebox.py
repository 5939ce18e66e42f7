"""``from boxlite.simplebox import SimpleBox`` (BoxLite 0.9's module path): the same class
as ``boxlite.SimpleBox`` (defined in :mod:`boxlite.box`)."""

from __future__ import annotations

from .box import SimpleBox

__all__ = ["SimpleBox"]

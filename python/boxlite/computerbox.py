"""``from boxlite.computerbox import ComputerBox`` (BoxLite 0.9's module path): the same
class as ``boxlite.ComputerBox`` (defined in :mod:`boxlite.computer`)."""

from __future__ import annotations

from .computer import ComputerBox

__all__ = ["ComputerBox"]

"""Executions and their streams, where BoxLite 0.9 programs import them from.

``from boxlite.exec import Execution, ExecStdout, ExecStderr, ExecStdin, ExecResult``:
the same classes as ``boxlite.Execution`` etc. (defined in :mod:`boxlite.box` and
:mod:`boxlite.results`).
"""

from __future__ import annotations

from .box import ExecStderr, ExecStdin, ExecStdout, Execution, StreamExecution
from .results import ExecResult

__all__ = ["Execution", "ExecStdout", "ExecStderr", "ExecStdin", "ExecResult", "StreamExecution"]

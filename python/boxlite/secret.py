# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""``boxlite.Secret``: a value a box can use over HTTPS but never read (docs/networking.md,
"Secrets").

The guest sees ``BOXLITE_SECRET_<NAME>=<placeholder>`` in its environment; boxlite-net
replaces the placeholder with the value in HTTPS requests to ``hosts`` (headers, query,
body). The rules (names, value size, host patterns, placeholders) are the core's
(ValidateBoxOptions, include/boxlite/options.h): this class only carries the fields.
"""

from __future__ import annotations

from collections.abc import Iterable


class Secret:
    """A secret for ``BoxOptions(secrets=[...])`` / ``SimpleBox(secrets=[...])``.

    Args:
        name: Any text (at most 255 bytes); the guest's variable is ``BOXLITE_SECRET_``
            and the name upper-cased, other bytes than ``[A-Za-z0-9_]`` as ``_``.
        value: 1 byte to 64 KiB. Never enters the box, never shown by ``repr``.
        hosts: Where the value is substituted: exact host names or ``*.domain`` (one
            label), optionally ``:443``. Empty: nowhere.
        placeholder: What the guest sees instead of the value. None: BoxLite 0.9's
            ``<BOXLITE_SECRET:NAME>`` (``get_placeholder()`` returns it).
    """

    __slots__ = ("name", "value", "hosts", "placeholder")

    def __init__(
        self,
        name: str,
        value: str,
        hosts: Iterable[str] | None = None,
        placeholder: str | None = None,
    ) -> None:
        self.name = name
        self.value = value
        self.hosts = list(hosts or [])
        self.placeholder = placeholder

    def get_placeholder(self) -> str:
        """The placeholder the guest sees: the one given, else BoxLite 0.9's
        ``<BOXLITE_SECRET:NAME>``."""
        if self.placeholder is not None:
            return self.placeholder
        from ._core import core

        return str(core.default_secret_placeholder(self.name))

    def __repr__(self) -> str:
        return (
            f"Secret(name={self.name!r}, value=<redacted>, hosts={self.hosts!r}, "
            f"placeholder={self.placeholder!r})"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self.name, self.value, self.hosts, self.placeholder) == (
            other.name, other.value, other.hosts, other.placeholder)

    __hash__ = None  # type: ignore[assignment]

"""Credentials and options of remote runtimes (BoxLite 0.9's ``boxlite.credential`` and
``BoxliteRestOptions``; docs/remote.md).

``Boxlite.rest(BoxliteRestOptions(url, credential=ApiKeyCredential(key)))`` opens a
runtime whose every call goes to a ``boxlite serve``. The client is the C++ one
(src/remote), reached through the binding: this module only carries the settings.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["AccessToken", "ApiKeyCredential", "BoxliteRestOptions", "Credential"]


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it expires (epoch seconds; None: never). The repr masks
    the token."""

    token: str
    expires_at: float | None = None

    def __repr__(self) -> str:
        return f"AccessToken(token=***, expires_at={self.expires_at!r})"


class Credential(abc.ABC):
    """What gives a remote runtime its bearer token."""

    @abc.abstractmethod
    def get_token(self) -> AccessToken:
        """The token to send now."""


class ApiKeyCredential:
    """An API key sent as ``Authorization: Bearer <key>``. A virtual subclass of
    :class:`Credential`, as in BoxLite 0.9."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigError("ApiKeyCredential needs a non-empty key string")
        if any(c in key for c in "\r\n"):
            raise ConfigError("an API key must be one line")
        self._key = key

    @staticmethod
    def from_env() -> ApiKeyCredential | None:
        """The key in ``BOXLITE_API_KEY``, or None when it is unset or empty."""
        key = os.environ.get("BOXLITE_API_KEY", "")
        return ApiKeyCredential(key) if key else None

    def get_token(self) -> AccessToken:
        """The key as a token that never expires."""
        return AccessToken(self._key, None)

    def __repr__(self) -> str:
        return "ApiKeyCredential(***)"


Credential.register(ApiKeyCredential)


class BoxliteRestOptions:
    """Where a remote runtime sends its calls: ``url`` (http:// or https://, with an
    optional path such as ``/api``), an optional credential, and the optional
    ``path_prefix`` of multi-tenant servers (box routes become ``{url}/v1/{prefix}/...``).
    The URL and prefix are checked when the runtime opens (by the core)."""

    def __init__(self, url: str, credential: Credential | ApiKeyCredential | None = None,
                 path_prefix: str | None = None) -> None:
        self.url = url
        self.credential = credential
        self.path_prefix = path_prefix

    @staticmethod
    def from_env() -> BoxliteRestOptions:
        """Options from ``BOXLITE_REST_URL`` (required), ``BOXLITE_API_KEY`` and
        ``BOXLITE_REST_PATH_PREFIX``.

        Raises:
            ConfigError: ``BOXLITE_REST_URL`` is not set.
        """
        url = os.environ.get("BOXLITE_REST_URL", "")
        if not url:
            raise ConfigError("configuration error: BOXLITE_REST_URL not set")
        return BoxliteRestOptions(url, ApiKeyCredential.from_env(),
                                  os.environ.get("BOXLITE_REST_PATH_PREFIX") or None)

    def _core_args(self) -> tuple[str, str, str]:
        if not isinstance(self.url, str) or not self.url:
            raise ConfigError("BoxliteRestOptions.url must be a non-empty http:// or https:// URL")
        if self.path_prefix is not None and not isinstance(self.path_prefix, str):
            raise ConfigError("BoxliteRestOptions.path_prefix must be a string or None")
        token = ""
        if self.credential is not None:
            if not isinstance(self.credential, Credential):
                raise ConfigError(
                    f"credential must be an ApiKeyCredential or a Credential, not {type(self.credential).__name__}")
            got = self.credential.get_token()
            token = got.token if isinstance(got, AccessToken) else ""
            if not isinstance(token, str):
                raise ConfigError("the credential's token must be a string")
        return self.url, self.path_prefix or "", token

    def __repr__(self) -> str:
        return (f"BoxliteRestOptions(url={self.url!r}, credential={self.credential!r}, "
                f"path_prefix={self.path_prefix!r})")

"""The exceptions BoxLite raises.

Every error from the C++ core reaches Python through one function,
:func:`error_from_status`, which turns the core's status code, message and the
operation's context into one of the classes below::

    BoxliteError
    ├── ConfigError            a bad argument or option (raised before any VM starts)
    ├── ImageError
    │   ├── ImageNotFoundError
    │   ├── AuthenticationError
    │   ├── RegistryError
    │   └── InvalidReferenceError   (also a ConfigError)
    ├── BoxError
    │   ├── BoxNotFoundError
    │   ├── BoxStateError
    │   └── BoxStartError
    ├── ExecError              the command could not run at all
    ├── TimeoutError           (also the builtin TimeoutError)
    ├── ResourceError
    └── NotSupportedError      not available in this build yet

A command that runs and exits non-zero is not an error: it is an
:class:`~boxlite.ExecResult`.
"""

from __future__ import annotations

import builtins

__all__ = [
    "BoxliteError",
    "ConfigError",
    "ImageError",
    "ImageNotFoundError",
    "AuthenticationError",
    "RegistryError",
    "InvalidReferenceError",
    "BoxError",
    "BoxNotFoundError",
    "BoxStateError",
    "BoxStartError",
    "ExecError",
    "TimeoutError",
    "ResourceError",
    "NotSupportedError",
    "error_from_status",
]


class BoxliteError(Exception):
    """Base class of every BoxLite error.

    Attributes:
        message: What failed and, where known, what to do about it.
        code: The core's status code name (``"not_found"``, ``"invalid_argument"``,
            ...), or ``None`` for errors raised by the Python layer itself.
        context: The operation that failed (``"start box web"``), or ``""``.
    """

    def __init__(self, message: str, *, code: str | None = None, context: str = "") -> None:
        self.message = message
        self.code = code
        self.context = context
        # The core often names the operation itself ("start box x: ..."): say it once.
        text = message if not context or message.startswith(context) else f"{context}: {message}"
        super().__init__(text)


class ConfigError(BoxliteError, ValueError):
    """A bad argument: wrong type, out of range, unknown mode, missing host path."""


class ImageError(BoxliteError):
    """An image could not be resolved, pulled, imported or removed."""


class ImageNotFoundError(ImageError):
    """The image is not in the registry (or not in the local store)."""


class AuthenticationError(ImageError):
    """A registry refused the credentials (or demanded some)."""


class RegistryError(ImageError):
    """A registry could not be reached or answered with an error."""


class InvalidReferenceError(ImageError, ConfigError):
    """The image reference is malformed (``"UPPER//x::y"``)."""


class BoxError(BoxliteError):
    """A box operation failed."""


class BoxNotFoundError(BoxError):
    """No box has that id, id prefix or name."""


class BoxStateError(BoxError):
    """The box is in the wrong state for the operation (not started, stopped, removed)."""


class BoxStartError(BoxError):
    """The box's VM could not be started or its guest did not come up."""


class ExecError(BoxliteError):
    """The command could not be run at all (this is not a non-zero exit)."""


class TimeoutError(BoxliteError, builtins.TimeoutError):  # noqa: A001 - documented name.
    """An operation did not finish in time. Also a builtin :class:`TimeoutError`."""


class ResourceError(BoxliteError):
    """The host ran out of something (memory, disk, file descriptors, ports)."""


class NotSupportedError(BoxliteError):
    """The feature is not available in this build yet."""


_MESSAGE_HINTS = {
    "not_supported": "not available in this build of BoxLite yet",
}


def _image_related(message: str) -> bool:
    # A box start resolves (and may pull) its image first; its failures name the image.
    lowered = message.lower()
    if "kernel" in lowered or "initramfs" in lowered:
        return False
    return "pull " in lowered or "image" in lowered or "registry" in lowered or "manifest" in lowered


def error_from_status(code: str, message: str, context: str = "", domain: str = "") -> BoxliteError:
    """Builds the exception for a failed core call. The one translation helper.

    Args:
        code: The core's status code name (``boxlite::StatusCodeName``).
        message: The core's message, with the context it gathered on the way up.
        context: What the SDK was doing (``"pull image alpine:3"``).
        domain: What the call was about: ``"runtime"``, ``"box"``, ``"start"``
            (starting a box, which also resolves its image), ``"exec"``, ``"image"``,
            ``"copy"``; it decides between e.g. ``ImageNotFoundError`` and
            ``BoxNotFoundError`` for the same ``not_found`` code.

    Returns:
        The exception to raise (not raised here).
    """
    imageish = domain == "image" or (domain in ("start", "box") and _image_related(message))
    cls: type[BoxliteError]
    if code == "invalid_argument":
        if "image reference" in message or (domain == "image" and "reference" in message):
            cls = InvalidReferenceError
        else:
            cls = ConfigError
    elif code == "not_found":
        if imageish:
            cls = ImageNotFoundError
        elif domain in ("box", "runtime"):
            cls = BoxNotFoundError if "box" in message else BoxliteError
        elif domain == "start":
            cls = BoxStartError
        elif domain == "exec":
            cls = ExecError
        else:
            cls = BoxliteError
    elif code == "authentication":
        cls = AuthenticationError
    elif code == "permission_denied":
        cls = AuthenticationError if imageish else ConfigError
    elif code == "unavailable":
        if imageish:
            cls = RegistryError
        elif domain == "start":
            cls = BoxStartError
        elif domain == "exec":
            cls = ExecError if "stopped unexpectedly" not in message else BoxStateError
        else:
            cls = BoxError
    elif code == "failed_precondition":
        cls = ExecError if domain == "exec" and "box" not in message else BoxStateError
    elif code == "already_exists":
        cls = ConfigError
    elif code in ("deadline_exceeded", "cancelled"):
        cls = TimeoutError if code == "deadline_exceeded" else BoxliteError
    elif code == "resource_exhausted":
        cls = ResourceError
    elif code == "not_supported":
        cls = NotSupportedError
    elif code == "corruption":
        cls = ImageError if imageish else BoxliteError
    elif code in ("io_error", "protocol_error", "internal"):
        if domain == "start":
            cls = BoxStartError
        elif imageish:
            cls = RegistryError if code == "protocol_error" else ImageError
        elif domain == "exec":
            # A protocol error is the box's fault (e.g. its agent overran its credit and
            # was disconnected), not the command's.
            cls = BoxError if code == "protocol_error" else ExecError
        else:
            cls = BoxError if domain == "box" else BoxliteError
    else:
        cls = BoxliteError
    if code == "not_supported" and _MESSAGE_HINTS["not_supported"] not in message:
        message = f"{message} ({_MESSAGE_HINTS['not_supported']})"
    return cls(message, code=code, context=context)

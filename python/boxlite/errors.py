"""The exceptions BoxLite raises.

Every error from the C++ core reaches Python through one function,
:func:`error_from_status`, which chooses the class from the structured facts the
core's ``Status`` carries: its code (``"not_found"``), its subject (what the error is
about: ``"image"``, ``"box"``, ``"exec"``, ``"registry"``...) and the domain of the
failed call (``"start"``, ``"exec"``...). The message text never decides the class::

    RuntimeError
    └── BoxliteError
        ├── ConfigError            a bad argument or option (also a ValueError)
        ├── ImageError
        │   ├── ImageNotFoundError
        │   ├── AuthenticationError
        │   ├── RegistryError
        │   └── InvalidReferenceError   (also a ConfigError)
        ├── BoxError
        │   ├── BoxNotFoundError
        │   ├── BoxStateError
        │   └── BoxStartError
        ├── ExecError              the command could not run (or, 0.9's form, failed)
        ├── TimeoutError           (also the builtin TimeoutError)
        ├── ParseError             (also a ValueError)
        ├── ResourceError
        └── NotSupportedError      not available in this build yet

Every ``BoxliteError`` is a ``RuntimeError``: programs written for BoxLite 0.9, whose
native calls raised plain ``RuntimeError``, keep catching them with
``except RuntimeError``; new programs catch the precise class.

A command that runs and exits non-zero is not an error: it is an
:class:`~boxlite.ExecResult`.
"""

from __future__ import annotations

import builtins
from typing import Any

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
    "ParseError",
    "ResourceError",
    "NotSupportedError",
    "error_from_status",
]


class BoxliteError(RuntimeError):
    """Base class of every BoxLite error (a :class:`RuntimeError`, as 0.9's native
    errors were).

    Attributes:
        message: What failed and, where known, what to do about it.
        code: The core's status code name (``"not_found"``, ``"invalid_argument"``,
            ...), or ``None`` for errors raised by the Python layer itself.
        subject: What the core said the error is about (``"image"``, ``"box"``,
            ``"exec"``, ``"registry"``, ...), or ``None``.
        context: The operation that failed (``"start box web"``), or ``""``.
    """

    def __init__(
        self, message: str = "", *, code: str | None = None, context: str = "", subject: str | None = None
    ) -> None:
        self.message = message
        self.code = code
        self.subject = subject or None
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
    """The image reference (or ``rootfs_path``) is not usable: ``"UPPER//x::y"``."""


class BoxError(BoxliteError):
    """A box operation failed."""


class BoxNotFoundError(BoxError):
    """No box has that id, id prefix or name."""


class BoxStateError(BoxError):
    """The box is in the wrong state for the operation (not started, stopped, removed)."""


class BoxStartError(BoxError):
    """The box's VM could not be started or its guest did not come up."""


class ExecError(BoxliteError):
    """A command could not be run, or (0.9's form) a command failed.

    Two constructors:

    * ``ExecError(message)``: what could not be done (the SDK raises this one, e.g.
      writing to a closed stdin, resizing an exec without a terminal).
    * ``ExecError(command, exit_code, stderr)``: BoxLite 0.9's form, for a command that
      ran and failed; the message is
      ``"Command '{command}' failed with exit code {exit_code}: {stderr}"``.

    Attributes:
        command: The command (0.9's form), else ``None``.
        exit_code: Its exit code (0.9's form), else ``None``.
        stderr: Its standard error (0.9's form), else ``""``.
    """

    def __init__(
        self,
        *args: Any,
        command: str | None = None,
        exit_code: int | None = None,
        stderr: str | None = None,
        code: str | None = None,
        context: str = "",
        subject: str | None = None,
    ) -> None:
        if len(args) > 3:
            raise builtins.TypeError(
                f"ExecError takes a message, or (command, exit_code, stderr); got {len(args)} arguments"
            )
        if len(args) >= 2 or exit_code is not None:
            # 0.9's form: ExecError(command, exit_code, stderr).
            command = args[0] if args else command
            exit_code = args[1] if len(args) > 1 else exit_code
            stderr = args[2] if len(args) > 2 else (stderr if stderr is not None else "")
            message = f"Command '{command}' failed with exit code {exit_code}: {stderr}"
        else:
            message = args[0] if args else ""
            stderr = stderr if stderr is not None else ""
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr
        super().__init__(message, code=code, context=context, subject=subject)


class TimeoutError(BoxliteError, builtins.TimeoutError):  # noqa: A001 - documented name.
    """An operation did not finish in time. Also a builtin :class:`TimeoutError`."""


class ParseError(BoxliteError, ValueError):
    """Text or data from a box or a registry could not be parsed (also a ValueError)."""


class ResourceError(BoxliteError):
    """The host ran out of something (memory, disk, file descriptors, ports)."""


class NotSupportedError(BoxliteError):
    """The feature is not available in this build yet."""


_NOT_SUPPORTED_HINT = "not available in this build of BoxLite yet"

# Codes whose class does not depend on what the error is about.
_BY_CODE: dict[str, type[BoxliteError]] = {
    "already_exists": ConfigError,
    "authentication": AuthenticationError,
    "deadline_exceeded": TimeoutError,
    "cancelled": BoxliteError,
    "resource_exhausted": ResourceError,
    "not_supported": NotSupportedError,
}

# (code, subject): the subject is set by the core where the error was born.
_BY_SUBJECT: dict[tuple[str, str], type[BoxliteError]] = {
    ("not_found", "image"): ImageNotFoundError,
    ("permission_denied", "image"): AuthenticationError,
    ("unavailable", "image"): RegistryError,
    **{(code, "image"): ImageError for code in ("failed_precondition", "io_error", "protocol_error", "internal", "corruption")},
    ("permission_denied", "registry"): AuthenticationError,
    **{
        (code, "registry"): RegistryError
        for code in ("not_found", "unavailable", "failed_precondition", "io_error", "protocol_error", "internal", "corruption")
    },
    ("not_found", "box"): BoxNotFoundError,
    ("failed_precondition", "box"): BoxStateError,
    ("unavailable", "box"): BoxStateError,  # The box stopped or died under the call.
    **{(code, "box"): BoxError for code in ("permission_denied", "io_error", "protocol_error", "internal", "corruption")},
    **{
        (code, "exec"): ExecError
        for code in ("not_found", "failed_precondition", "unavailable", "permission_denied", "io_error", "protocol_error", "internal")
    },
}

# (code, domain) for errors whose subject is not said: the domain is what the failed
# call was about ("runtime", "box", "start", "exec", "image", "copy").
_BY_DOMAIN: dict[tuple[str, str], type[BoxliteError]] = {
    ("failed_precondition", "exec"): ExecError,
    ("unavailable", "exec"): ExecError,
    ("io_error", "exec"): ExecError,
    ("internal", "exec"): ExecError,
    ("protocol_error", "exec"): BoxError,  # The box's agent misbehaved, not the command.
    ("unavailable", "box"): BoxError,
    ("io_error", "box"): BoxError,
    ("protocol_error", "box"): BoxError,
    ("internal", "box"): BoxError,
}

# The code alone, when neither the subject nor the domain says more.
_GENERIC: dict[str, type[BoxliteError]] = {
    "failed_precondition": BoxStateError,
    "permission_denied": ConfigError,
}


def _choose(code: str, subject: str, domain: str) -> type[BoxliteError]:
    if code == "invalid_argument":
        about_image = subject == "image" or (not subject and domain == "image")
        return InvalidReferenceError if about_image else ConfigError
    fixed = _BY_CODE.get(code)
    if fixed is not None:
        return fixed
    if not subject and domain == "image":
        subject = "image"
    if domain == "start" and subject in ("", "box") and code != "failed_precondition":
        # Booting failed (the VM, its assets, or its guest dying on the way up).
        return BoxStartError
    return _BY_SUBJECT.get((code, subject)) or _BY_DOMAIN.get((code, domain)) or _GENERIC.get(code, BoxliteError)


def error_from_status(
    code: str, message: str, context: str = "", domain: str = "", subject: str = ""
) -> BoxliteError:
    """Builds the exception for a failed core call. The one translation helper.

    The class is chosen from ``(code, subject, domain)`` only; ``message`` and
    ``context`` are carried into the exception unread.

    Args:
        code: The core's status code name (``boxlite::StatusCodeName``).
        message: The core's message, with the context it gathered on the way up.
        context: What the SDK was doing (``"pull image alpine:3"``).
        domain: What the call was about: ``"runtime"``, ``"box"``, ``"start"``
            (starting a box, which also resolves its image), ``"exec"``, ``"image"``,
            ``"copy"``.
        subject: What the core says the error is about (``boxlite::StatusSubjectName``:
            ``"image"``, ``"registry"``, ``"box"``, ``"exec"``, ``"volume"``,
            ``"snapshot"``, or ``""``); it decides between e.g. ``ImageNotFoundError``
            and ``BoxNotFoundError`` for the same ``not_found`` code.

    Returns:
        The exception to raise (not raised here).
    """
    cls = _choose(code, subject, domain)
    if code == "not_supported" and _NOT_SUPPORTED_HINT not in message:
        message = f"{message} ({_NOT_SUPPORTED_HINT})"
    return cls(message, code=code, context=context, subject=subject or None)


# BoxLite 0.9 names whose features this build does not have yet, and what they are.
LATER_FEATURES: dict[str, str] = {
}


class FeatureNotAvailableError(NotSupportedError, ImportError):
    """A BoxLite 0.9 name whose feature is not in this build, imported from a module: a
    :class:`NotSupportedError` that is also an ImportError, so ``from boxlite import
    CodeBox`` fails as a missing name does, with this message."""


class FeatureAttributeError(NotSupportedError, AttributeError):
    """The same for an attribute of a box or runtime (``box.snapshot``): also an
    AttributeError, so ``hasattr`` answers False."""


def not_in_this_build(owner: str, name: str, *, attribute: bool = False) -> NotSupportedError:
    """The error for `owner.name`, a 0.9 name listed in LATER_FEATURES."""
    cls = FeatureAttributeError if attribute else FeatureNotAvailableError
    return cls(
        f"{owner}.{name} is not available: this build of BoxLite does not have "
        f"{LATER_FEATURES[name]} yet",
        code="not_supported",
    )

"""SkillBox: Claude Code (the ``claude`` CLI) with skills, in a box (BoxLite 0.9's API).

::

    async with boxlite.SkillBox(skills=["anthropics/skills"], oauth_token=token) as sb:
        print(await sb.call("Make a one-page PDF that says hello"))
        print(await sb.call("Now make the text blue"))        # the same conversation

The box boots ``SKILLBOX_IMAGE`` (0.9's image: Claude Code in a webtop desktop; the GUI
is published on ``gui_http_port``/``gui_https_port``, 0 meaning a free port of the host).
``call(prompt)`` speaks Claude Code's stream-json protocol with one long-lived
``claude`` process, so the turns form one conversation; it returns the ``result`` of each
turn. The token (``oauth_token`` or ``CLAUDE_CODE_OAUTH_TOKEN``) reaches the box as
``CLAUDE_CODE_OAUTH_TOKEN``.

Unlike 0.9, nothing is installed with apt or pip at the first call: the image must have
``claude`` (and ``npx`` for skills), which 0.9's image does; without it the first call
fails with an error saying so. Before anything boots, entering checks the token (a
``ValueError``, as 0.9) and the image (pulled or found in the local store, else an
:class:`~boxlite.ImageError` naming it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from .box import SimpleBox, StreamExecution
from .constants import (
    SKILLBOX_DISK_SIZE_GB,
    SKILLBOX_GUI_HTTP_PORT,
    SKILLBOX_GUI_HTTPS_PORT,
    SKILLBOX_IMAGE,
    SKILLBOX_MEMORY_MIB,
)
from .errors import BoxliteError, ConfigError, ExecError, ImageError, ImageNotFoundError
from .errors import TimeoutError as BoxliteTimeoutError

if TYPE_CHECKING:
    from typing_extensions import Self

    from .runtime import Boxlite

__all__ = ["SkillBox"]

TOKEN_ENV = "CLAUDE_CODE_OAUTH_TOKEN"
READ_TIMEOUT = 120.0
# A stream-json line longer than this ends the conversation (the guest is not trusted).
MAX_LINE = 16 * 1024 * 1024
CLAUDE_ARGV = ["claude", "--dangerously-skip-permissions", "--input-format", "stream-json",
               "--output-format", "stream-json", "--mcp-config", "/config/.claude.json",
               "--verbose"]
_SELKIES_ENV = {"DISPLAY": ":1", "SELKIES_UI_SHOW_SIDEBAR": "false"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be a port in 0..65535 (0: a free one), not {value!r}")
    return value or _free_port()


class SkillBox(SimpleBox):
    """A box running Claude Code with skills; :meth:`call` is one conversation.

    Args (0.9's, with its defaults):
        skills: Skill ids installed at the first call (``npx add-skill ID -y --agent
            claude-code``).
        oauth_token: The Claude Code token; default ``$CLAUDE_CODE_OAUTH_TOKEN``.
        name: The box's name (default ``"skill-box"``).
        image, rootfs_path: The image (default ``SKILLBOX_IMAGE``) or a local OCI layout.
        memory_mib: MiB of RAM (4096). disk_size_gb: GiB of disk (10).
        gui_http_port, gui_https_port: Host ports of the desktop's GUI (guest 3000 and
            3001); 0 (default) picks a free port (read them back from the attributes).
        auto_remove, runtime, **kwargs: As for :class:`~boxlite.SimpleBox`.
    """

    def __init__(
        self,
        skills: list[str] | None = None,
        oauth_token: str | None = None,
        name: str | None = "skill-box",
        image: str | None = SKILLBOX_IMAGE,
        rootfs_path: str | os.PathLike[str] | None = None,
        memory_mib: int | None = SKILLBOX_MEMORY_MIB,
        disk_size_gb: int | None = SKILLBOX_DISK_SIZE_GB,
        gui_http_port: int = 0,
        gui_https_port: int = 0,
        auto_remove: bool = True,
        runtime: Boxlite | None = None,
        **kwargs: Any,
    ) -> None:
        if skills is None:
            skills = []
        if isinstance(skills, str) or not all(isinstance(s, str) and s.strip() for s in skills):
            raise ConfigError("skills must be a list of skill ids (strings)")
        if oauth_token is not None and not isinstance(oauth_token, str):
            raise ConfigError("oauth_token must be a string")
        self.skills = list(skills)
        self._oauth_token = oauth_token
        self.gui_http_port = _port("gui_http_port", gui_http_port)
        self.gui_https_port = _port("gui_https_port", gui_https_port)
        ports = list(kwargs.pop("ports", None) or [])
        ports += [(self.gui_http_port, SKILLBOX_GUI_HTTP_PORT),
                  (self.gui_https_port, SKILLBOX_GUI_HTTPS_PORT)]
        env = dict(kwargs.pop("env", None) or {})
        for key, value in _SELKIES_ENV.items():
            env.setdefault(key, value)
        if rootfs_path is not None:
            image = None
        self._image_ref = image
        super().__init__(image=image, rootfs_path=rootfs_path, memory_mib=memory_mib,
                         runtime=runtime, name=name, auto_remove=auto_remove,
                         disk_size_gb=disk_size_gb, ports=ports, env=env, **kwargs)
        self._rootfs_path = rootfs_path
        self._claude: StreamExecution | None = None
        self._buf = bytearray()
        self._stderr = b""
        self._stderr_open = True
        self._set_up = False
        self._lock = threading.Lock()

    # Lifecycle.

    def _token(self) -> str:
        token = self._oauth_token or os.environ.get(TOKEN_ENV, "")
        if not token:
            raise ValueError(
                f"SkillBox needs a Claude Code OAuth token: pass oauth_token= or set {TOKEN_ENV} "
                "(`claude setup-token` prints one)")
        return token

    async def _check_image(self) -> None:
        if self._rootfs_path is not None:
            path = os.fspath(self._rootfs_path)
            if not os.path.isfile(os.path.join(path, "index.json")):
                raise ImageNotFoundError(
                    f"SkillBox's rootfs_path {path} is not an OCI image layout (no index.json)")
            return
        from .runtime import Boxlite

        runtime = self._runtime or Boxlite.default()
        self._runtime = runtime
        try:
            await runtime.images.pull(self._image_ref)
        except ImageError as exc:
            raise type(exc)(
                f"SkillBox needs the image {self._image_ref} (Claude Code in a desktop image), "
                f"which is neither in the local store nor pullable: {exc.message or exc}; pull or "
                f"import it, or pass image= / rootfs_path=", code=exc.code, subject=exc.subject
            ) from None

    async def start(self) -> Self:
        """Checks the token and the image (nothing boots without them), then boots."""
        self._token()
        if self._core is None or self._stopped:
            await self._check_image()
        return await super().start()

    async def stop(self) -> None:
        """Ends the conversation and stops the box (removing it unless auto_remove=False)."""
        await self._end_claude()
        self._set_up = False
        await super().stop()

    async def _end_claude(self) -> None:
        claude, self._claude = self._claude, None
        self._buf.clear()
        self._stderr, self._stderr_open = b"", True
        if claude is not None:
            await claude.__aexit__(None, None, None)  # Kills it without waiting.

    # Claude Code.

    def _env(self) -> dict[str, str]:
        return {TOKEN_ENV: self._token()}

    async def _setup(self) -> None:
        if self._set_up:
            return
        found = await self.exec("sh", "-c", "command -v claude", env=self._env())
        if found.exit_code != 0:
            raise ExecError(
                f"the box's image has no `claude` (Claude Code CLI): SkillBox needs an image "
                f"with it, such as {SKILLBOX_IMAGE}")
        for skill in self.skills:
            if not await self.install_skill(skill):
                raise ExecError(f"could not install the skill {skill!r} (npx add-skill)")
        self._set_up = True

    async def _ensure_claude(self) -> StreamExecution:
        if self._claude is None:
            await self._setup()
            self._claude = await self.stream(CLAUDE_ARGV, env=self._env())
            self._buf.clear()
        return self._claude

    async def _line(self, claude: StreamExecution) -> bytes | None:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line
            if len(self._buf) > MAX_LINE:
                raise ExecError("claude sent a line over 16 MiB: the conversation was ended")
            chunk = await self._read_stdout(claude)
            if not chunk:
                return None
            self._buf += chunk

    async def _read_stdout(self, claude: StreamExecution) -> bytes:
        """The next stdout chunk, draining stderr meanwhile (its last 4 KiB are kept for
        error messages) so that claude never stalls on a full stderr."""
        out = asyncio.ensure_future(claude.read(1))
        try:
            while self._stderr_open:
                err = asyncio.ensure_future(claude.read(2))
                done, _ = await asyncio.wait({out, err}, return_when=asyncio.FIRST_COMPLETED)
                if err in done:
                    chunk = err.result()
                    self._stderr_open = bool(chunk)
                    self._stderr = (self._stderr + chunk)[-4096:]
                else:
                    err.cancel()  # A cancelled read loses nothing.
                    with contextlib.suppress(asyncio.CancelledError):
                        await err
                if out in done:
                    return out.result()
            return await out
        finally:
            if not out.done():
                out.cancel()
                with contextlib.suppress(asyncio.CancelledError, BoxliteError):
                    await out

    async def _stderr_tail(self, claude: StreamExecution) -> str:
        try:
            while self._stderr_open:
                chunk = await asyncio.wait_for(claude.read(2), 5)
                self._stderr_open = bool(chunk)
                self._stderr = (self._stderr + chunk)[-4096:]
        except (BoxliteError, asyncio.TimeoutError):
            pass
        return self._stderr.decode("utf-8", "replace").strip()[-2000:]

    async def _acquire(self) -> None:
        delay = 0.001
        while not self._lock.acquire(blocking=False):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def call(self, prompt: str) -> str:
        """Sends ``prompt`` as the next turn of the conversation and returns Claude
        Code's ``result`` text. The first call installs the skills.

        Raises:
            TimeoutError: No line from claude for 120 s (``boxlite.TimeoutError``); the
                conversation is ended (the next call starts a new one).
            ExecError: claude is missing, exited, or reported an error.
        """
        if not isinstance(prompt, str) or not prompt:
            raise ConfigError("prompt must be a non-empty string")
        await self._acquire()
        try:
            claude = await self._ensure_claude()
            message = {"type": "user", "message": {"role": "user",
                                                   "content": [{"type": "text", "text": prompt}]}}
            try:
                await claude.write_stdin(json.dumps(message).encode() + b"\n")
                while True:
                    try:
                        line = await asyncio.wait_for(self._line(claude), READ_TIMEOUT)
                    except asyncio.TimeoutError:
                        raise BoxliteTimeoutError(
                            f"claude sent nothing for {READ_TIMEOUT:g} s; the conversation was ended"
                        ) from None
                    if line is None:
                        why = await self._stderr_tail(claude)
                        raise ExecError(f"claude exited{': ' + why if why else ''}")
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # Not a stream-json line (a log line): skipped.
                    if not isinstance(event, dict) or event.get("type") != "result":
                        continue
                    result = event.get("result")
                    text = result if isinstance(result, str) else json.dumps(result)
                    if event.get("is_error"):
                        raise ExecError(f"claude reported an error: {text[:2000]}")
                    return text
            except BaseException:
                await self._end_claude()
                raise
        finally:
            self._lock.release()

    async def install_skill(self, skill_id: str) -> bool:
        """Installs a skill (``npx add-skill ID -y --agent claude-code``); True on
        success."""
        if not isinstance(skill_id, str) or not skill_id.strip() or skill_id.startswith("-"):
            raise ConfigError(f"skill_id must be a skill id such as 'owner/repo', not {skill_id!r}")
        result = await self.exec("npx", "add-skill", skill_id, "-y", "--agent", "claude-code",
                                 env=self._env())
        return result.exit_code == 0

    async def wait_until_ready(self, timeout: float = 60) -> None:
        """Waits until the box answers and ``claude --version`` runs.

        Raises:
            TimeoutError: Not ready within ``timeout`` seconds (``boxlite.TimeoutError``).
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = "no answer"
        while loop.time() < deadline:
            try:
                r = await asyncio.wait_for(self.exec("claude", "--version", env=self._env()),
                                           max(0.1, deadline - loop.time()))
                if r.exit_code == 0:
                    return
                last = r.stderr.strip()[:200] or f"exit {r.exit_code}"
            except asyncio.TimeoutError:
                break
            await asyncio.sleep(0.5)
        raise BoxliteTimeoutError(f"SkillBox was not ready after {timeout:g} s ({last})")

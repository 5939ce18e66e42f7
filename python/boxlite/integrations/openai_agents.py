"""BoxLite as a sandbox of the OpenAI Agents SDK (``openai-agents``, its ``agents.sandbox``
interface): a ``SandboxAgent`` runs its shell, file and patch tools in a BoxLite box.

Usage::

    from agents.sandbox import SandboxAgent, SandboxRunConfig
    from boxlite.integrations.openai_agents import (
        BoxliteSandboxClient, BoxliteSandboxClientOptions)

    client = BoxliteSandboxClient()
    session = await client.create(options=BoxliteSandboxClientOptions(image="python:slim"))
    async with session:
        result = await session.exec("python3 -c 'print(6 * 7)'")
        await session.write(Path("notes.txt"), io.BytesIO(b"kept"))
    state = client.serialize_session_state(session.state)   # to resume later
    await client.delete(session)                                # removes the box

What maps to what:
    create(options=)           a box (``auto_remove=False``, so it survives a stop and can
                               be resumed or restored); the workspace is
                               ``manifest.root`` (default /workspace) in the box
    exec / read / write / ls   commands in the box (``Box.run``), files through ``cat``
    session stop (persist)     ``workspace_persistence="tar"`` (default): a tar of the
                               workspace, kept by the session's snapshot spec (e.g.
                               ``LocalSnapshotSpec``); ``"snapshot"``: a BoxLite disk
                               snapshot of the box (docs/snapshots.md), whose name is kept
    start after persist        the tar is unpacked into the workspace, or the box's disk
                               is restored from its snapshot (the box is stopped and
                               started around the restore)
    shutdown                   stops the box (its disk is kept for ``resume``)
    resume(state)              the same box when it still exists (started again), else a
                               new box from the same options, hydrated from the snapshot
    delete(session)            removes the box and its snapshots

Needs ``pip install 'boxlite[openai-agents]'``.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any, Literal

try:
    from agents.sandbox.errors import (
        ExecTimeoutError,
        ExecTransportError,
        WorkspaceArchiveReadError,
        WorkspaceArchiveWriteError,
        WorkspaceReadNotFoundError,
    )
    from agents.sandbox.manifest import Manifest
    from agents.sandbox.session import SandboxSession, SandboxSessionState
    from agents.sandbox.session.base_sandbox_session import BaseSandboxSession
    from agents.sandbox.session.dependencies import Dependencies
    from agents.sandbox.session.manager import Instrumentation
    from agents.sandbox.session.runtime_helpers import (
        RESOLVE_WORKSPACE_PATH_HELPER,
        RuntimeHelperScript,
    )
    from agents.sandbox.session.sandbox_client import BaseSandboxClient, BaseSandboxClientOptions
    from agents.sandbox.session.workspace_payloads import coerce_write_payload
    from agents.sandbox.snapshot import SnapshotBase, SnapshotSpec, resolve_snapshot
    from agents.sandbox.types import ExecResult, User
    from agents.sandbox.util.tar_utils import UnsafeTarMemberError, validate_tar_bytes
    from agents.sandbox.workspace_paths import posix_path_for_error, sandbox_path_str
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"boxlite.integrations.openai_agents needs the OpenAI Agents SDK with its sandbox "
        f"interface ({exc}): pip install 'boxlite[openai-agents]'"
    ) from exc

from pydantic import BaseModel, Field

from ..box import Box, SimpleBox
from ..errors import BoxliteError, BoxNotFoundError
from ..runtime import Boxlite

__all__ = [
    "BoxliteSandboxClient",
    "BoxliteSandboxClientOptions",
    "BoxliteSandboxSession",
    "BoxliteSandboxSessionState",
]

# persist_workspace's answer in "snapshot" mode: this line, then JSON naming the snapshot.
_SNAPSHOT_REF = b"BOXLITE-DISK-SNAPSHOT-REF\n"
# A workspace tar is read whole into memory: refuse one beyond this.
_MAX_ARCHIVE_BYTES = 2 * 1024 * 1024 * 1024
_WRITE = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'


class _BoxSpec(BaseModel):
    """The box a session runs in (kept in its state, so a resume can make it again)."""

    image: str = "python:slim"
    cpus: int = 1
    memory_mib: int = 1024
    env: dict[str, str] = Field(default_factory=dict)
    network: Literal["nat", "none"] = "nat"
    name: str | None = None
    workspace_persistence: Literal["tar", "snapshot"] = "tar"


class BoxliteSandboxClientOptions(BaseSandboxClientOptions, _BoxSpec):
    """How ``BoxliteSandboxClient.create`` makes the box: ``image``, ``cpus``,
    ``memory_mib``, ``env``, ``network`` (``"nat"`` or ``"none"``), ``name`` and
    ``workspace_persistence`` (``"tar"`` or ``"snapshot"``). The box options are checked
    by BoxLite itself when the box is created (``ConfigError``)."""

    type: Literal["boxlite"] = "boxlite"


class BoxliteSandboxSessionState(SandboxSessionState, _BoxSpec):
    type: Literal["boxlite"] = "boxlite"
    box_id: str = ""


def _new_box(state: BoxliteSandboxSessionState, runtime: Boxlite | None) -> SimpleBox:
    return SimpleBox(state.image, cpus=state.cpus, memory_mib=state.memory_mib,
                     env=state.env or None, network=state.network, name=state.name,
                     runtime=runtime, auto_remove=False)


class BoxliteSandboxSession(BaseSandboxSession):
    """A sandbox session whose commands and files are in one BoxLite box."""

    state: BoxliteSandboxSessionState

    def __init__(self, *, state: BoxliteSandboxSessionState, box: Box) -> None:
        self.state, self._box = state, box

    @property
    def box(self) -> Box:
        """The box this session runs in."""
        return self._box

    # Backend lifecycle.

    async def _ensure_backend_started(self) -> None:
        if not await self.running():
            await self._box.start()

    async def _shutdown_backend(self) -> None:
        try:
            await self._box.stop()
        except BoxNotFoundError:
            pass  # Already removed (delete() first).

    async def running(self) -> bool:
        try:
            info = await self._box.info()
        except BoxliteError:
            return False
        return str(info.state) == "running"

    # Commands.

    def _runtime_helpers(self) -> tuple[RuntimeHelperScript, ...]:
        return (RESOLVE_WORKSPACE_PATH_HELPER,)

    def _current_runtime_helper_cache_key(self) -> object | None:
        return self.state.box_id

    async def _validate_path_access(self, path: Path | str, *, for_write: bool = False) -> Path:
        # The workspace policy checked in the box (symlinks resolved there).
        return await self._validate_remote_path_access(path, for_write=for_write)

    async def _run(self, argv: list[str], *, timeout: float | None = None,
                   user: str | None = None, stdin: bytes | None = None,
                   cwd: str | None = None, limit: int | None = 64 * 1024 * 1024) -> Any:
        env = await self.state.manifest.environment.resolve()
        return await self._box.run(argv, env=env or None, cwd=cwd, user=user, timeout=timeout,
                                   stdin=stdin, max_output_bytes=limit)

    async def _exec_internal(self, *command: str | Path, timeout: float | None = None) -> ExecResult:
        argv = [str(c) for c in command]
        user: str | None = None
        # SandboxSession.exec(user=) prefixes `sudo -u USER --`: BoxLite runs as that user
        # itself (images need no sudo).
        if len(argv) >= 4 and argv[0] == "sudo" and argv[1] == "-u" and argv[3] == "--":
            user, argv = argv[2], argv[4:]
        cwd = self.state.manifest.root if self.state.workspace_root_ready else None
        try:
            result = await self._run(argv, timeout=timeout, user=user, cwd=cwd)
        except BoxliteError as exc:
            raise ExecTransportError(command=command, cause=exc) from exc
        if result.timed_out:
            raise ExecTimeoutError(command=command, timeout_s=timeout)
        return ExecResult(stdout=result.stdout_bytes, stderr=result.stderr_bytes,
                          exit_code=result.exit_code)

    # Files.

    async def read(self, path: Path, *, user: str | User | None = None) -> io.IOBase:
        workspace_path = await self._validate_path_access(path)
        arg = sandbox_path_str(workspace_path)
        result = await self.exec("cat", "--", arg, shell=False, user=user)
        if not result.ok():
            await self._raise_read_error_from_exec(path=path, workspace_path=workspace_path,
                                                   command=("cat", "--", arg), result=result,
                                                   user=user)
        return io.BytesIO(result.stdout)

    async def write(self, path: Path, data: io.IOBase, *, user: str | User | None = None) -> None:
        payload = coerce_write_payload(path=path, data=data).stream.read()
        workspace_path = await self._validate_path_access(path, for_write=True)
        arg = sandbox_path_str(workspace_path)
        name = user.name if isinstance(user, User) else user
        await self._feed(["sh", "-c", _WRITE, "sh", arg], bytes(payload), workspace_path, user=name)

    async def _feed(self, argv: list[str], data: bytes, error_path: Any,
                    user: str | None = None) -> None:
        """Runs `argv` with `data` on its stdin; a failure is a WorkspaceArchiveWriteError."""
        try:
            result = await self._run(argv, stdin=data, user=user, cwd="/")
        except BoxliteError as exc:
            raise WorkspaceArchiveWriteError(path=error_path, cause=exc) from exc
        if result.exit_code != 0:
            raise WorkspaceArchiveWriteError(
                path=error_path,
                context={"exit_code": result.exit_code,
                         "stderr": result.stderr_bytes.decode("utf-8", errors="replace")[:4096]})

    # Persistence.

    async def persist_workspace(self) -> io.IOBase:
        root = self._workspace_root_path()
        if self.state.workspace_persistence == "snapshot":
            name = f"agents-{uuid.uuid4().hex[:16]}"
            try:
                await self._box.snapshot.create(name=name)
            except BoxliteError as exc:
                raise WorkspaceArchiveReadError(path=posix_path_for_error(root), cause=exc) from exc
            ref = {"box_id": self.state.box_id, "snapshot": name}
            return io.BytesIO(_SNAPSHOT_REF + json.dumps(ref).encode())
        excludes = [f"--exclude=./{rel.as_posix().lstrip('/')}"
                    for rel in sorted(self._persist_workspace_skip_relpaths(), key=Path.as_posix)
                    if rel.as_posix().lstrip("/") not in ("", ".")]
        try:
            result = await self._run(["tar", "-C", root.as_posix(), *excludes, "-cf", "-", "."],
                                     cwd="/", limit=_MAX_ARCHIVE_BYTES)
        except BoxliteError as exc:
            raise WorkspaceArchiveReadError(path=posix_path_for_error(root), cause=exc) from exc
        if result.exit_code != 0 or result.stdout_truncated:
            raise WorkspaceArchiveReadError(
                path=posix_path_for_error(root),
                context={"exit_code": result.exit_code, "truncated": result.stdout_truncated,
                         "stderr": result.stderr_bytes.decode("utf-8", errors="replace")[:4096]})
        return io.BytesIO(result.stdout_bytes)

    async def hydrate_workspace(self, data: io.IOBase) -> None:
        root = self._workspace_root_path()
        error_root = posix_path_for_error(root)
        raw = data.read(_MAX_ARCHIVE_BYTES + 1)
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        if len(raw) > _MAX_ARCHIVE_BYTES:
            raise WorkspaceArchiveWriteError(path=error_root, context={"reason": "archive_too_large"})
        if raw.startswith(_SNAPSHOT_REF):
            await self._restore_disk_snapshot(raw[len(_SNAPSHOT_REF):], error_root)
            return
        try:
            validate_tar_bytes(bytes(raw), allow_external_symlink_targets=False)
        except UnsafeTarMemberError as exc:
            raise WorkspaceArchiveWriteError(
                path=error_root, context={"reason": "unsafe_or_invalid_tar", "member": exc.member},
                cause=exc) from exc
        await self._feed(["sh", "-c", 'mkdir -p -- "$1" && tar -x -C "$1"', "sh", root.as_posix()],
                         bytes(raw), error_root)

    async def _restore_disk_snapshot(self, body: bytes, error_root: Any) -> None:
        try:
            ref = json.loads(body)
            box_id, name = str(ref["box_id"]), str(ref["snapshot"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkspaceArchiveWriteError(
                path=error_root, context={"reason": "bad_snapshot_reference"}, cause=exc) from exc
        if box_id != self.state.box_id:
            raise WorkspaceArchiveWriteError(
                path=error_root,
                context={"reason": "snapshot_of_another_box", "snapshot_box_id": box_id,
                         "hint": "disk snapshots stay with their box; use "
                                 "workspace_persistence='tar' to move a workspace to a new box"})
        try:
            await self._box.stop()
            await self._box.snapshot.restore(name)
            await self._box.start()
        except BoxliteError as exc:
            raise WorkspaceArchiveWriteError(
                path=error_root, context={"reason": "snapshot_restore_failed", "snapshot": name},
                cause=exc) from exc


class BoxliteSandboxClient(BaseSandboxClient[BoxliteSandboxClientOptions]):
    """Creates, resumes and deletes BoxLite-backed sandbox sessions.

    Args:
        runtime: The :class:`boxlite.Boxlite` runtime (default ``Boxlite.default()``).
    """

    backend_id = "boxlite"

    def __init__(self, *, runtime: Boxlite | None = None,
                 instrumentation: Instrumentation | None = None,
                 dependencies: Dependencies | None = None) -> None:
        self._runtime = runtime
        self._instrumentation = instrumentation if instrumentation is not None else Instrumentation()
        self._dependencies = dependencies

    def _rt(self) -> Boxlite:
        return self._runtime or Boxlite.default()

    async def create(self, *, snapshot: SnapshotSpec | SnapshotBase | None = None,
                     manifest: Manifest | None = None,
                     options: BoxliteSandboxClientOptions | None = None) -> SandboxSession:
        options = options if options is not None else BoxliteSandboxClientOptions()
        manifest = manifest if manifest is not None else Manifest()
        self._validate_manifest_for_create(manifest)
        session_id = uuid.uuid4()
        state = BoxliteSandboxSessionState(
            session_id=session_id, manifest=manifest,
            snapshot=resolve_snapshot(snapshot, str(session_id)),
            **options.model_dump(include=set(_BoxSpec.model_fields)))
        box = _new_box(state, self._runtime)
        await box.start()
        state.box_id = box.id
        inner = BoxliteSandboxSession(state=state, box=box)
        return self._wrap_session(inner, instrumentation=self._instrumentation)

    async def delete(self, session: SandboxSession) -> SandboxSession:
        inner = session._inner
        if not isinstance(inner, BoxliteSandboxSession):
            raise TypeError("BoxliteSandboxClient.delete expects a BoxLite sandbox session")
        try:
            await self._rt().remove(inner.state.box_id, force=True)
        except BoxNotFoundError:
            pass
        return session

    async def resume(self, state: SandboxSessionState) -> SandboxSession:
        if not isinstance(state, BoxliteSandboxSessionState):
            raise TypeError("BoxliteSandboxClient.resume expects a BoxliteSandboxSessionState")
        state.assert_path_grants_rebound()
        box: Box | None = None
        if state.box_id:
            try:
                box = await self._rt().get(state.box_id)
            except BoxNotFoundError:
                box = None
        preserved = box is not None
        if box is None:
            # The box is gone: a new one, hydrated from the session's snapshot at start.
            box = _new_box(state, self._runtime)
            await box.start()
            state.box_id = box.id
            state.workspace_root_ready = False
        inner = BoxliteSandboxSession(state=state, box=box)
        inner._set_start_state_preserved(preserved, system=preserved)
        return self._wrap_session(inner, instrumentation=self._instrumentation)

    def deserialize_session_state(self, payload: dict[str, object]) -> SandboxSessionState:
        return self._deserialize_session_state_payload(payload, BoxliteSandboxSessionState)

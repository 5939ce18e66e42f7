"""SkillBox (BoxLite 0.9's API) against a local stand-in for its image.

The real image runs Claude Code, which needs a network and a token we cannot have in
tests. The stand-in is the debian-python test image plus one layer: a ``claude`` that
speaks Claude Code's stream-json lines (0.9's exact argv, or it refuses) and answers each
turn with what it saw (the conversation so far, the installed skills, the token, its
pid), and an ``npx`` that performs ``add-skill`` by writing the skill's directory. So
each answer is observed from inside the guest.

One box is booted for the module; the checks that need no VM come first.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import boxlite
from conftest import qemu_children

pytestmark = pytest.mark.asyncio

REPO = Path(__file__).resolve().parents[2]
BASE = "debian-python"
TOKEN = "stand-in-token-0123"

CLAUDE = r'''#!/usr/bin/python3
# Stand-in for the Claude Code CLI (SkillBox tests): 0.9's stream-json conversation.
import json, os, sys
if sys.argv[1:] == ["--version"]:
    print("0.0.0 (stand-in)")
    sys.exit(0)
EXPECTED = ["--dangerously-skip-permissions", "--input-format", "stream-json",
            "--output-format", "stream-json", "--mcp-config", "/config/.claude.json", "--verbose"]
if sys.argv[1:] != EXPECTED:
    print("stand-in claude: unexpected arguments %r" % sys.argv[1:], file=sys.stderr)
    sys.exit(2)
def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
emit({"type": "system", "subtype": "init", "session_id": "s", "tools": []})
history = []
skills_dir = os.path.join(os.environ.get("HOME") or "/root", ".claude", "skills")
for line in sys.stdin:
    msg = json.loads(line)
    assert msg["type"] == "user" and msg["message"]["role"] == "user", msg
    text = "".join(p["text"] for p in msg["message"]["content"] if p.get("type") == "text")
    if text == "crash":
        print("stand-in crashed on purpose", file=sys.stderr)
        sys.exit(5)
    history.append(text)
    if text == "noisy":
        sys.stderr.write("x" * (8 << 20))  # More than the 4 MiB window and the pipe hold.
        sys.stderr.flush()
    sys.stdout.write("a log line that is not JSON\n")
    emit({"type": "assistant", "message": {"role": "assistant",
                                           "content": [{"type": "text", "text": "..."}]}})
    skills = sorted(os.listdir(skills_dir)) if os.path.isdir(skills_dir) else []
    answer = {"turn": len(history), "history": history, "skills": skills, "pid": os.getpid(),
              "token": os.environ.get("CLAUDE_CODE_OAUTH_TOKEN", "")}
    emit({"type": "result", "subtype": "success", "is_error": text == "fail",
          "result": json.dumps(answer), "session_id": "s"})
'''

NPX = r'''#!/bin/sh
# Stand-in for `npx add-skill ID -y --agent claude-code` (SkillBox tests).
[ "$1" = add-skill ] && [ "$3" = -y ] && [ "$4" = --agent ] && [ "$5" = claude-code ] || {
  echo "stand-in npx: unexpected arguments: $*" >&2; exit 2; }
case "$2" in missing/*) echo "no such skill: $2" >&2; exit 1 ;; esac
d="${HOME:-/root}/.claude/skills/$(echo "$2" | tr / _)"
mkdir -p "$d" && echo "# $2" > "$d/skill"
'''


def stand_in_layout(base: str, out: Path) -> str:
    """``base`` (an OCI layout) plus a layer with the stand-in claude and npx."""
    sys.path.insert(0, str(REPO / "scripts" / "test-images"))
    import oci  # scripts/test-images/oci.py

    index = json.loads((Path(base) / "index.json").read_text())
    blob = lambda d: Path(base) / "blobs" / "sha256" / d["digest"].split(":", 1)[1]  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]).read_text())
    config = json.loads(blob(manifest["config"]).read_text())

    def entries(tw: Any) -> None:
        for d in ("usr", "usr/local", "usr/local/bin"):
            tw.add(d, "dir", mode=0o755)
        tw.add("usr/local/bin/claude", "file", data=CLAUDE.encode(), mode=0o755)
        tw.add("usr/local/bin/npx", "file", data=NPX.encode(), mode=0o755)

    layer = oci.Layer(oci.build_tar(entries))
    lw = oci.LayoutWriter(str(out))
    descs = [lw.link_blob(str(blob(d)), d["digest"], d["size"], d["mediaType"])
             for d in manifest["layers"]]
    descs.append(lw.add_blob(layer.blob, layer.media_type))
    config["rootfs"]["diff_ids"].append(layer.diff_id)
    config["history"] = config.get("history", []) + [{"created_by": "skillbox stand-in"}]
    cdesc = lw.add_json(config, oci.MT_OCI_CONFIG)
    mdesc = lw.add_json(oci.image_manifest(cdesc, descs), oci.MT_OCI_MANIFEST)
    top = dict(mdesc)
    top["annotations"] = oci.ref_annotations("skillbox-stand-in")
    top["platform"] = index["manifests"][0].get("platform", {"architecture": "amd64", "os": "linux"})
    lw.write_index([top])
    return str(out)


@pytest.fixture(scope="module")
def layout(test_images: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return stand_in_layout(test_images.layout(BASE), tmp_path_factory.mktemp("skillbox") / "layout")


@pytest.fixture(scope="module")
def skillbox(layout: str, boxlite_home: Path) -> Iterator[boxlite.SkillBox]:
    box = boxlite.SkillBox(skills=["acme/first"], oauth_token=TOKEN, rootfs_path=layout,
                           memory_mib=512, name="skillbox-tests")
    asyncio.run(box.__aenter__())
    try:
        yield box
    finally:
        asyncio.run(box.__aexit__(None, None, None))


# ----------------------------------------------------------------------- before a boot

async def test_no_token_is_a_value_error_before_booting(layout: str, monkeypatch: pytest.MonkeyPatch,
                                                        no_leaks: None) -> None:
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    before = qemu_children()
    box = boxlite.SkillBox(rootfs_path=layout)
    with pytest.raises(ValueError, match="CLAUDE_CODE_OAUTH_TOKEN"):
        async with box:
            pass
    with pytest.raises(ValueError, match="oauth_token"):  # The sync twin, from a thread.
        await asyncio.to_thread(boxlite.SyncSkillBox(rootfs_path=layout).start)
    assert qemu_children() == before
    with pytest.raises(RuntimeError, match="not started"):
        box.id  # noqa: B018 - nothing was created


async def test_missing_image_fails_before_anything(no_leaks: None) -> None:
    before = qemu_children()
    box = boxlite.SkillBox(image="127.0.0.1:9/boxlite/no-such-skillbox:1", oauth_token=TOKEN)
    with pytest.raises(boxlite.ImageError, match="SkillBox needs the image 127.0.0.1:9/boxlite/no-such-skillbox:1"):
        await box.start()
    with pytest.raises(boxlite.ImageNotFoundError, match="not an OCI image layout"):
        await boxlite.SkillBox(rootfs_path=str(REPO), oauth_token=TOKEN).start()
    assert qemu_children() == before


async def test_defaults_are_09s() -> None:
    box = boxlite.SkillBox(oauth_token=TOKEN)
    assert box.options.image == boxlite.constants.SKILLBOX_IMAGE
    assert box.options.name == "skill-box"
    assert box.options.memory_mib == 4096
    assert box.gui_http_port != box.gui_https_port and 0 not in (box.gui_http_port, box.gui_https_port)
    with pytest.raises(boxlite.ConfigError, match="skills"):
        boxlite.SkillBox(skills="acme/one")


# ------------------------------------------------------------------------------ in a box

async def test_call_is_one_conversation_with_the_skills(skillbox: boxlite.SkillBox) -> None:
    await skillbox.wait_until_ready(timeout=120)
    first = json.loads(await skillbox.call("hello"))
    assert first["turn"] == 1 and first["history"] == ["hello"]
    assert first["skills"] == ["acme_first"]
    assert first["token"] == TOKEN
    second = json.loads(await skillbox.call("and again"))
    assert second["history"] == ["hello", "and again"] and second["pid"] == first["pid"]
    # The token is given to claude's processes, not to the whole box.
    env = await skillbox.exec("sh", "-c", "echo \"[$CLAUDE_CODE_OAUTH_TOKEN]\"")
    assert env.stdout == "[]\n"


async def test_stderr_never_stalls_claude(skillbox: boxlite.SkillBox) -> None:
    """claude's stderr (8 MiB here, beyond its 4 MiB window: docs/protocol.md) is
    drained while a turn runs."""
    assert json.loads(await skillbox.call("noisy"))["history"][-1] == "noisy"


async def test_install_skill(skillbox: boxlite.SkillBox) -> None:
    assert await skillbox.install_skill("acme/second") is True
    assert await skillbox.install_skill("missing/skill") is False
    listing = await skillbox.exec("ls", "/root/.claude/skills")
    assert listing.stdout.split() == ["acme_first", "acme_second"]
    answer = json.loads(await skillbox.call("which skills?"))
    assert answer["skills"] == ["acme_first", "acme_second"]


async def test_errors_end_the_conversation(skillbox: boxlite.SkillBox) -> None:
    before = json.loads(await skillbox.call("before"))
    with pytest.raises(boxlite.ExecError, match="claude reported an error"):
        await skillbox.call("fail")
    after = json.loads(await skillbox.call("after"))
    assert after["turn"] == 1 and after["pid"] != before["pid"]
    with pytest.raises(boxlite.ExecError, match="stand-in crashed on purpose"):
        await skillbox.call("crash")
    assert json.loads(await skillbox.call("once more"))["history"] == ["once more"]


async def test_gui_ports_are_published(skillbox: boxlite.SkillBox) -> None:
    for port in (skillbox.gui_http_port, skillbox.gui_https_port):
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass

"""The agent integrations are optional extras (python/pyproject.toml): importing boxlite,
its box classes and its sync API loads none of their packages, and each integration
module says which extra to install when its package is missing. No VM is involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# The top-level package of each extra's requirement, as imported.
EXTRA_PACKAGES = {"mcp": "mcp", "openai-agents": "agents", "langchain": "langchain_core",
                  "browser": "playwright", "orchestration": "cloudpickle"}

CHECK = """
import json, sys
import boxlite, boxlite.sync, boxlite.sync_api
for name in ("SimpleBox", "CodeBox", "ComputerBox", "InteractiveBox", "SkillBox", "SyncCodeBox"):
    getattr(boxlite, name)
import boxlite.mcp, boxlite.integrations  # The server's module imports mcp only when it runs.
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_the_extras_are_declared() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert set(EXTRA_PACKAGES) <= set(extras)
    for extra, package in EXTRA_PACKAGES.items():
        wanted = package.replace("_", "-") if package != "agents" else "openai-agents"
        assert any(req.startswith(wanted) for req in extras[extra]), (extra, extras[extra])


def test_importing_boxlite_loads_no_integration_package() -> None:
    p = run(CHECK)
    assert p.returncode == 0, p.stderr
    loaded = set(json.loads(p.stdout))
    assert "boxlite" in loaded
    assert not loaded & set(EXTRA_PACKAGES.values()), loaded & set(EXTRA_PACKAGES.values())
    assert not loaded & {"langchain", "pydantic", "openai", "greenlet"}


@pytest.mark.parametrize("module, extra, package", [
    ("boxlite.integrations.langchain", "langchain", "langchain_core"),
    ("boxlite.integrations.openai_agents", "openai-agents", "agents"),
])
def test_a_missing_extra_is_one_clear_line(module: str, extra: str, package: str,
                                           tmp_path: Path) -> None:
    """With the framework's package unimportable, importing the integration names the
    extra to install."""
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    p = run(f"import {module}", PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    assert p.returncode != 0
    assert f"pip install 'boxlite[{extra}]'" in p.stderr.strip().splitlines()[-1], p.stderr


def test_orchestration_without_cloudpickle_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "cloudpickle").mkdir()
    (tmp_path / "cloudpickle" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    code = "from boxlite.orchestration import BoxRuntime\nBoxRuntime()"
    p = run(code, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    assert p.returncode != 0
    assert "pip install 'boxlite[orchestration]'" in p.stderr.strip().splitlines()[-1], p.stderr

# Where the test images come from: build.sh, its JSON output (ImageSet) and the hostile
# case catalog, readable at collection time without building anything (for parametrize).
# No pytest dependency. Not thread-safe (build_test_images runs a subprocess).

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGES_DIR = REPO_ROOT / "scripts" / "test-images"
BUILD_SH = IMAGES_DIR / "build.sh"

class ImageSet:
    """Paths of the built test images (output of build.sh --json)."""

    def __init__(self, info):
        self.info = info
        self.cache_dir = info["cache_dir"]
        self.layouts = {n: v["layout"] for n, v in info["images"].items()}
        self.base_tarball = info.get("boxlite_base_tar")
        h = info.get("hostile") or {}
        self.hostile_dir = h.get("dir")
        self.hostile = None
        if h.get("manifest"):
            with open(h["manifest"]) as f:
                self.hostile = json.load(f)

    def layout(self, name):
        return self.layouts[name]

    def oci_ref(self, name):
        """skopeo/containers-image reference of a layout: oci:PATH:latest."""
        return "oci:%s:latest" % self.layouts[name]

    def expect(self, name):
        """The image's expect.json: {"checks": [...], ...} (see hostile.json check_format)."""
        with open(os.path.join(self.layouts[name], "expect.json")) as f:
            return json.load(f)

    def hostile_cases(self):
        return list(self.hostile["cases"])

    def hostile_case(self, name):
        for c in self.hostile["cases"]:
            if c["name"] == name:
                c = dict(c)
                c["layout_path"] = os.path.join(self.hostile_dir, c["layout"])
                return c
        raise KeyError(name)


def build_test_images(timeout=1800):
    """Runs build.sh --json (progress on stderr) and returns an ImageSet. When
    BOXLITE_TEST_IMAGES_JSON names a file, that is build.sh --json's output from earlier in
    the same run (scripts/test.sh runs build.sh once for its three pytest sessions) and
    is read instead."""
    done = os.environ.get("BOXLITE_TEST_IMAGES_JSON")
    if done:
        with open(done) as f:
            return ImageSet(json.load(f))
    p = subprocess.run([str(BUILD_SH), "--json"], stdout=subprocess.PIPE, stderr=sys.stderr,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("scripts/test-images/build.sh failed (exit %d)" % p.returncode)
    return ImageSet(json.loads(p.stdout))


def hostile_case_names():
    """Names of the hostile cases, without building anything (for parametrize)."""
    return [c.name for c in _hostile_module().cases()]


def hostile_case_outcomes():
    """{name: "contained" | "error"} without building anything."""
    return {c.name: c.outcome for c in _hostile_module().cases()}


def _hostile_module():
    if str(IMAGES_DIR) not in sys.path:
        sys.path.insert(0, str(IMAGES_DIR))
    spec = importlib.util.spec_from_file_location("boxlite_test_images_hostile",
                                                  IMAGES_DIR / "hostile.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

# pytest fixtures for integration tests that need real images and registries. Load with
#   pytest_plugins = ["harness.fixtures"]
# in tests/integration/conftest.py (tests/integration must be the import root).
#
# Session fixtures:
#   test_images    ImageSet: the built OCI layouts (scripts/test-images/build.sh, cached)
#   registry       Registry on 127.0.0.1 with every test image pushed; registry.refs maps
#                  names to references (see REGISTRY_PUSHES and "hostile/<case>")
#   auth_registry  BasicAuthRegistry (htpasswd bcrypt) with busybox pushed; .username,
#                  .password, .refs
#   token_registry TokenAuthRegistry (JWT token server) with busybox pushed; same fields
# Function fixture:
#   fault_proxy    factory: fault_proxy(upstream=registry) -> started FaultProxy, stopped
#                  after the test
# Registry logs stay in pytest's temp dir (basetemp), one folder per registry.

import concurrent.futures
import os

import pytest

from . import oci_model
from .catalog import (BUILD_SH, IMAGES_DIR, REPO_ROOT, ImageSet, build_test_images,
                      hostile_case_names, hostile_case_outcomes)
from .registry import BasicAuthRegistry, FaultProxy, Registry, TokenAuthRegistry

# (image, repository, tag, format); the refs key is the repository, except
# "python:slim" for the Docker Hub mirror entry.
REGISTRY_PUSHES = [
    ("busybox", "busybox", "latest", "oci"),
    ("busybox", "busybox-v2s2", "latest", "v2s2"),
    ("busybox", "boxlite/base", "latest", "oci"),
    ("busybox", "library/busybox", "latest", "v2s2"),
    ("debian-python", "debian-python", "latest", "oci"),
    ("debian-python", "debian-python-v2s2", "latest", "v2s2"),
    ("debian-python", "library/python", "slim", "v2s2"),
    ("layered", "layered", "latest", "oci"),
    ("layered", "layered-v2s2", "latest", "v2s2"),
    ("multiarch", "multiarch", "latest", "oci"),
    ("multiarch", "multiarch-v2s2", "latest", "v2s2"),
    ("multiarch-archfile", "multiarch-archfile", "latest", "oci"),
    ("zstd", "zstd", "latest", "oci"),
    ("desktop", "desktop", "latest", "oci"),
]


def populate(reg, images, pushes=REGISTRY_PUSHES, hostile=True, workers=4):
    """Pushes the test images into `reg`; returns {name: "HOST/REPO:TAG"}. The hostile
    cases (small, pushed over HTTP by this process) go alongside the skopeo pushes."""
    refs = {}

    def one(p):
        image, repo, tag, fmt = p
        return p, reg.push(images.layout(image), tag, repo, format=fmt)

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        pushed = ex.map(one, [p for p in pushes if p[0] in images.layouts])
        raw = {}
        if hostile and images.hostile:
            for c in images.hostile["cases"]:
                repo = "hostile/" + c["name"]
                raw[repo] = ex.submit(reg.push_raw,
                                      os.path.join(images.hostile_dir, c["layout"]), "latest",
                                      repo)
        for (image, repo, tag, fmt), ref in pushed:
            refs["python:slim" if repo == "library/python" else repo] = ref
        for repo, future in raw.items():
            refs[repo] = future.result()
    return refs


@pytest.fixture(scope="session")
def test_images():
    return build_test_images()


@pytest.fixture(scope="session")
def registry(test_images, tmp_path_factory):
    reg = Registry(workdir=str(tmp_path_factory.mktemp("registry")))
    reg.start()
    try:
        reg.refs = populate(reg, test_images)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def auth_registry(test_images, tmp_path_factory):
    reg = BasicAuthRegistry(workdir=str(tmp_path_factory.mktemp("auth-registry")))
    reg.start()
    try:
        reg.refs = populate(reg, test_images, pushes=[p for p in REGISTRY_PUSHES
                                                     if p[0] == "busybox"], hostile=False)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def token_registry(test_images, tmp_path_factory):
    reg = TokenAuthRegistry(workdir=str(tmp_path_factory.mktemp("token-registry")))
    reg.start()
    try:
        reg.refs = populate(reg, test_images, pushes=[p for p in REGISTRY_PUSHES
                                                     if p[0] == "busybox"], hostile=False)
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def fault_proxy(registry):
    proxies = []

    def make(upstream=None):
        p = FaultProxy(upstream if upstream is not None else registry).start()
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.stop()


__all__ = ["test_images", "registry", "auth_registry", "token_registry", "fault_proxy",
           "ImageSet", "build_test_images", "hostile_case_names", "hostile_case_outcomes",
           "populate", "oci_model"]

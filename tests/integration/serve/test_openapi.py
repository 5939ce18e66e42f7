"""openapi/serve.openapi.yaml describes exactly what `boxlite serve` serves: its paths and
methods equal the server's own route table (`boxlite serve --print-routes`, the table the
router matches against). No VM."""
import subprocess

import yaml

from conftest import REPO, _find_cli

METHODS = {"get", "put", "post", "delete", "head", "patch", "options"}


def test_openapi_paths_and_methods_are_the_route_table():
    doc = yaml.safe_load((REPO / "openapi" / "serve.openapi.yaml").read_text())
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in doc["paths"].items()
                  for method in item if method in METHODS}
    out = subprocess.run([_find_cli(), "serve", "--print-routes"], capture_output=True,
                         check=True, timeout=30).stdout.decode()
    served = {tuple(line.split(" ", 1)) for line in out.splitlines()}
    assert len(served) == len(out.splitlines()) > 20
    assert documented == served, {"undocumented": served - documented,
                                  "not served": documented - served}


def test_every_reference_resolves():
    doc = yaml.safe_load((REPO / "openapi" / "serve.openapi.yaml").read_text())

    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    found = list(refs(doc))
    assert found
    for ref in found:
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]

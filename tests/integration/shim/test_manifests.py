# deploy/kubernetes (docs/kubernetes.md) without a cluster: containerd itself parses the
# config snippet (`containerd config dump`), and every manifest is checked against a JSON
# schema of the fields Kubernetes (and agent-sandbox) require, plus the names that tie
# them together: the RuntimeClass's handler is the snippet's runtime, the pod and the
# SandboxTemplate use the RuntimeClass, the claim names the template.
import shutil
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import REPO

DEPLOY = REPO / "deploy" / "kubernetes"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"

METADATA = {"type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": DNS_SUBDOMAIN}}}
CONTAINER = {
    "type": "object", "required": ["name", "image"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_LABEL},
        "image": {"type": "string", "minLength": 1},
        "command": {"type": "array", "items": {"type": "string"}},
        "resources": {"type": "object", "properties": {
            "limits": {"type": "object", "additionalProperties": False, "properties": {
                "cpu": {"type": "string", "pattern": QUANTITY},
                "memory": {"type": "string", "pattern": QUANTITY}}}}},
    },
}
POD_SPEC = {"type": "object", "required": ["runtimeClassName", "containers"],
            "properties": {"runtimeClassName": {"type": "string", "pattern": DNS_SUBDOMAIN},
                           "containers": {"type": "array", "minItems": 1, "items": CONTAINER}}}
SCHEMAS = {
    ("node.k8s.io/v1", "RuntimeClass"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "handler"],
        "properties": {"metadata": METADATA,
                       "handler": {"type": "string", "pattern": DNS_LABEL},
                       "scheduling": {"type": "object", "properties": {
                           "nodeSelector": {"type": "object",
                                            "additionalProperties": {"type": "string"}}}}}},
    ("v1", "Pod"): {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
                    "properties": {"metadata": METADATA, "spec": POD_SPEC}},
    ("extensions.agents.x-k8s.io/v1alpha1", "SandboxTemplate"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": METADATA, "spec": {
            "type": "object", "required": ["podTemplate"],
            "properties": {"podTemplate": {"type": "object", "required": ["spec"],
                                           "properties": {"spec": POD_SPEC}}}}}},
    ("extensions.agents.x-k8s.io/v1alpha1", "SandboxClaim"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": METADATA, "spec": {
            "type": "object", "required": ["sandboxTemplateRef"],
            "properties": {"sandboxTemplateRef": {"type": "object", "required": ["name"]}}}}},
}


def _documents():
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def _by_kind(kind):
    return [d for _, d in _documents() if d.get("kind") == kind]


def test_every_manifest_matches_its_schema():
    docs = _documents()
    assert {d["kind"] for _, d in docs} == {"RuntimeClass", "Pod", "SandboxTemplate",
                                             "SandboxClaim"}
    for name, doc in docs:
        schema = SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        assert schema is not None, f"{name}: unknown {doc.get('apiVersion')} {doc.get('kind')}"
        jsonschema.validate(doc, schema)


def _snippet_runtimes():
    config = tomllib.loads((DEPLOY / "containerd-boxlite.toml").read_text())
    assert config["version"] == 2
    return config["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]


def test_names_tie_the_manifests_together():
    runtimes = _snippet_runtimes()
    [rc] = _by_kind("RuntimeClass")
    assert runtimes[rc["handler"]]["runtime_type"] == "io.containerd.boxlite.v2"
    [pod] = _by_kind("Pod")
    [template] = _by_kind("SandboxTemplate")
    [claim] = _by_kind("SandboxClaim")
    assert pod["spec"]["runtimeClassName"] == rc["metadata"]["name"]
    # The ports the examples publish are the ones their containers serve.
    for meta, spec in ((pod["metadata"], pod["spec"]),
                       (template["spec"]["podTemplate"]["metadata"],
                        template["spec"]["podTemplate"]["spec"])):
        published = {int(x) for x in meta["annotations"]["boxlite.dev/publish"].split(",")}
        served = {port["containerPort"] for c in spec["containers"] for port in c.get("ports", [])}
        assert published == served
        # Every volume a container mounts is one of the pod's.
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes, c["name"]
    assert "boxlite.dev/*" in runtimes[rc["handler"]]["pod_annotations"]
    assert template["spec"]["podTemplate"]["spec"]["runtimeClassName"] == rc["metadata"]["name"]
    assert claim["spec"]["sandboxTemplateRef"]["name"] == template["metadata"]["name"]


def test_containerd_reads_the_snippet(tmp_path):
    """As docs/kubernetes.md says: the snippet's table appended to the node's config (here
    `containerd config default`) adds the boxlite runtime beside runc."""
    assert shutil.which("containerd"), "containerd is not installed (scripts/setup.sh installs it)"
    default = subprocess.run(["containerd", "config", "default"], capture_output=True,
                             timeout=60, check=True).stdout.decode()
    snippet = (DEPLOY / "containerd-boxlite.toml").read_text()
    table = "\n".join(l for l in snippet.splitlines() if not l.startswith("version"))
    config = tmp_path / "config.toml"
    config.write_text(default + "\n" + table + "\n")
    p = subprocess.run(["containerd", "--config", str(config), "config", "dump"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    dumped = tomllib.loads(p.stdout.decode())
    runtimes = dumped["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    assert runtimes["boxlite"]["runtime_type"] == "io.containerd.boxlite.v2"
    assert runtimes["boxlite"]["pod_annotations"] == ["boxlite.dev/*"]
    assert runtimes["runc"]["runtime_type"] == "io.containerd.runc.v2"

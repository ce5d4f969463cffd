"""`kubectl create <kind>` sends protobuf; the object stored must be the one JSON would give.

kubectl's typed `create` subcommands encode the object as Kubernetes protobuf (and do not fall
back to JSON). For each command in the table, the test creates one object that way and a twin
from the same command's `--dry-run=client -o json` output through `kubectl create -f -`, which
sends JSON, then compares what the server stored, with both real kubectls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Kubectl, start_cluster

pytestmark = [pytest.mark.kubectl]

# name -> the arguments after `kubectl create`, with {name} where the object's name goes.
COMMANDS: dict[str, list[str]] = {
    "namespace": ["namespace", "{name}"],
    "configmap": ["configmap", "{name}", "--from-literal=a=b", "--from-literal=empty="],
    "secret": ["secret", "generic", "{name}", "--from-literal=password=s3cr3t",
               "--type=Opaque"],
    "tls-like secret": ["secret", "docker-registry", "{name}", "--docker-server=r.example",
                        "--docker-username=u", "--docker-password=p"],
    "serviceaccount": ["serviceaccount", "{name}"],
    "deployment": ["deployment", "{name}", "--image=nginx:1.27", "--replicas=3", "--port=8080",
                   "--", "nginx", "-g", "daemon off;"],
    "deployment with zero replicas": ["deployment", "{name}", "--image=nginx", "--replicas=0"],
    "clusterip service": ["service", "clusterip", "{name}", "--tcp=80:8080", "--tcp=443:8443"],
    "headless service": ["service", "clusterip", "{name}", "--clusterip=None", "--tcp=80:80"],
    "nodeport service": ["service", "nodeport", "{name}", "--tcp=80:8080"],
    "externalname service": ["service", "externalname", "{name}",
                             "--external-name=db.example.com"],
}

# Fields the server fills in differently for every object.
_VOLATILE_META = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields",
                  "annotations")


@pytest.fixture(scope="module", params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kubectl(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """One cluster per kubectl for the whole table: every case uses its own object names."""
    base = tmp_path_factory.mktemp("protobuf")
    cluster = start_cluster(base / "data")
    (base / "kubecache").mkdir()
    yield Kubectl(request.param, cluster.kubeconfig, base / "kubecache")
    cluster.stop()


def stored(kubectl: Kubectl, kind: str, name: str) -> dict[str, Any]:
    """The object as the server keeps it, without per-object server-assigned values."""
    obj: dict[str, Any] = json.loads(kubectl("get", kind, name, "-o", "json"))
    for key in _VOLATILE_META:
        obj["metadata"].pop(key, None)
    obj.pop("status", None)
    spec = obj.get("spec", {})
    for key in ("clusterIP", "clusterIPs"):
        if spec.get(key) != "None" and spec.get(key) != ["None"]:
            spec.pop(key, None)
    for port in spec.get("ports", []):
        port.pop("nodePort", None)
    text = json.dumps(without_nulls(obj)).replace(name, "NAME")
    normalized: dict[str, Any] = json.loads(text)
    return normalized


def without_nulls(value: Any) -> Any:
    """JSON clients send Go's zero time as `creationTimestamp: null` in pod templates, which the
    server keeps as sent; protobuf has no null, so the decoder leaves the field out."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def command_line(args: list[str], name: str, *flags: str) -> list[str]:
    """The arguments with the name filled in and the flags before any `--`."""
    filled = [a.format(name=name) for a in args]
    cut = filled.index("--") if "--" in filled else len(filled)
    return [*filled[:cut], *flags, *filled[cut:]]


@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
def test_create_by_protobuf_stores_what_json_stores(kubectl: Kubectl, command: str) -> None:
    args = COMMANDS[command]
    slug = re.sub(r"[^a-z0-9]+", "-", command)
    by_protobuf, by_json = f"pb-{slug}", f"js-{slug}"
    created = kubectl("create", *command_line(args, by_protobuf, "-o", "name"))
    kind = created.strip().split("/")[0]
    manifest = kubectl("create", *command_line(args, by_json, "--dry-run=client", "-o", "json"))
    kubectl("create", "-f", "-", input=manifest)
    assert stored(kubectl, kind, by_protobuf) == stored(kubectl, kind, by_json)

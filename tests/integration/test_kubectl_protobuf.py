"""kubectl sends protobuf; the object stored must be the one JSON would give.

kubectl's typed `create` subcommands encode the object as Kubernetes protobuf (and do not fall
back to JSON). For each command in the table, the test creates one object that way and a twin
from the same command's `--dry-run=client -o json` output through `kubectl create -f -`, which
sends JSON, then compares what the server stored, with both real kubectls.

`kubectl debug` creates its pods with protobuf too. A pod with every probe, lifecycle handler
and volume type (tests/testdata/every-probe-and-volume.yaml) is created as JSON by `kubectl
apply`, and `kubectl debug --copy-to` reads it back and sends the copy as protobuf: the two
stored specs must match but for what debug changes. That covers Go's `json:",inline"`
embeddings (`Probe.ProbeHandler`, `Volume.VolumeSource`, the `LocalObjectReference` in key
selectors), which the wire format nests and JSON flattens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, TESTDATA, Kubectl, start_cluster
from tinykube.api import protobuf

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


EVERY_PROBE_AND_VOLUME = TESTDATA / "every-probe-and-volume.yaml"


def _message_fields(short_name: str) -> set[str]:
    message = protobuf._schema()["messages"]["k8s.io.api.core.v1." + short_name]
    return {field[0] for field in message.values()}


def test_the_pod_manifest_has_every_probe_and_volume_type() -> None:
    """The manifest below covers the schema: a new volume or handler type fails here."""
    spec = yaml.safe_load(EVERY_PROBE_AND_VOLUME.read_text())["spec"]
    containers = spec["containers"]
    probes = [c[p] for c in containers for p in ("livenessProbe", "readinessProbe",
                                                 "startupProbe") if p in c]
    hooks = [c["lifecycle"][h] for c in containers for h in ("postStart", "preStop")]
    projections = next(v["projected"]["sources"] for v in spec["volumes"] if "projected" in v)
    used = {
        "ProbeHandler": {k for probe in probes for k in probe} & _message_fields("ProbeHandler"),
        "LifecycleHandler": {key for hook in hooks for key in hook},
        "VolumeSource": {key for volume in spec["volumes"] for key in volume} - {"name"},
        "VolumeProjection": {key for source in projections for key in source},
    }
    assert used == {message: _message_fields(message) for message in used}


@pytest.fixture(scope="module")
def every_probe_and_volume(kubectl: Kubectl) -> dict[str, Any]:
    """The pod's spec as stored when created as JSON (`kubectl apply` sends JSON)."""
    kubectl("apply", "-f", str(EVERY_PROBE_AND_VOLUME))
    spec: dict[str, Any] = stored(kubectl, "pod", "every-probe-and-volume")["spec"]
    return spec


def debug_copy(kubectl: Kubectl, copy: str, *flags: str) -> dict[str, Any]:
    """The spec of a `kubectl debug --copy-to` copy, without what debug itself changes."""
    kubectl("debug", "pod/every-probe-and-volume", f"--copy-to={copy}", "--image=busybox",
            "--container=debugger", "--profile=general", *flags)
    spec: dict[str, Any] = stored(kubectl, "pod", copy)["spec"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "debugger"]
    return spec


def comparable(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec without the scheduling and process-sharing fields `kubectl debug` rewrites."""
    return {k: v for k, v in spec.items() if k not in ("nodeName", "shareProcessNamespace")}


def test_debug_copy_sends_every_probe_and_volume_type_as_json_stores_them(
        kubectl: Kubectl, every_probe_and_volume: dict[str, Any]) -> None:
    copy = debug_copy(kubectl, "copy-keeping-probes", "--keep-liveness", "--keep-readiness",
                      "--keep-startup")
    assert comparable(copy) == comparable(every_probe_and_volume)


def test_debug_copy_without_probes_drops_only_the_probes(
        kubectl: Kubectl, every_probe_and_volume: dict[str, Any]) -> None:
    """kubectl's default: the copy loses its probes and keeps every volume source."""
    copy = debug_copy(kubectl, "copy-without-probes")
    without_probes = {**every_probe_and_volume, "containers": [
        {k: v for k, v in c.items() if not k.endswith("Probe")}
        for c in every_probe_and_volume["containers"]]}
    assert comparable(copy) == comparable(without_probes)


def test_debug_node_mounts_the_host_root(kubectl: Kubectl) -> None:
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    out = kubectl("debug", f"node/{node}", "--image=busybox", "--profile=general")
    pod = re.search(r"Creating debugging pod (\S+) ", out)
    assert pod, out
    spec = stored(kubectl, "pod", pod.group(1))["spec"]
    assert spec["nodeName"] == node and spec["hostPID"] is True
    assert spec["volumes"] == [{"name": "host-root", "hostPath": {"path": "/", "type": ""}}]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "host-root", "mountPath": "/host"}]

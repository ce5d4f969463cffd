"""PersistentVolumes for real, against one three-node `tinykube up` per module, with both
kubectls: the default StorageClass, provisioning by the local-path provisioner on the pod's
node (a directory in the data directory), Delete and Retain reclaim, static and pre-bound
volumes, claims that cannot be bound (kube's events, the pod kept Pending), and a StatefulSet
pod that comes back to its own claim and volume. Each test works in a namespace of its own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster, ComponentAudit, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl]
NODES = ("n1", "n2", "n3")


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> ComponentAudit:
    return ComponentAudit(tmp_path_factory.mktemp("volumes-audit"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, audit: ComponentAudit) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("volumes") / "data",
                            "--nodes", ",".join(NODES), *audit.args())
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _no_denied_component_requests(cluster: Cluster, audit: ComponentAudit) -> Iterator[None]:
    """The volume controllers (binder, provisioner, protection) work within their roles."""
    yield
    assert audit.new_denials() == []


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"v-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    return name


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def apply(kubectl: Kubectl, namespace: str, manifest: str) -> str:
    return kubectl("apply", "-n", namespace, "-f", "-", input=manifest)


def claim(name: str, storage_class: str | None = None, extra: str = "") -> str:
    cls = f"\n  storageClassName: {json.dumps(storage_class)}" if storage_class is not None \
        else ""
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}}}
spec:{cls}
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}{extra}
"""


def pod(name: str, claim_name: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: c
    image: nginx
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim_name}}}}}]
"""


def phase(kubectl: Kubectl, *args: str) -> str:
    return str(get_json(kubectl, *args).get("status", {}).get("phase", ""))


def events_of(kubectl: Kubectl, namespace: str, name: str) -> list[tuple[str, str, str]]:
    items = get_json(kubectl, "events", "-n", namespace, "--field-selector",
                     f"involvedObject.name={name}")["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def gone(kubectl: Kubectl, *args: str) -> bool:
    return kubectl.run("get", *args, check=False).returncode != 0


def test_get_storage_class_shows_the_default(kubectl: Kubectl) -> None:
    lines = kubectl("get", "sc").splitlines()
    assert lines[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                                "ALLOWVOLUMEEXPANSION", "AGE"]
    standard = next(line for line in lines if line.startswith("standard"))
    assert standard.split()[:6] == ["standard", "(default)", "rancher.io/local-path", "Delete",
                                    "WaitForFirstConsumer", "false"]
    sc = get_json(kubectl, "storageclass", "standard")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"


def test_invalid_storage_class_is_refused(kubectl: Kubectl) -> None:
    manifest = ("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: bad}\n"
                "provisioner: x.io/y\nreclaimPolicy: Recycle\n")
    result = kubectl.run("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert ('The StorageClass "bad" is invalid: reclaimPolicy: Unsupported value: "Recycle": '
            'supported values: "Delete", "Retain"') in result.stderr


def local_class(name: str, reclaim: str) -> str:
    return f"""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: {name}}}
provisioner: rancher.io/local-path
reclaimPolicy: {reclaim}
volumeBindingMode: WaitForFirstConsumer
"""


@pytest.mark.parametrize("reclaim", ["Delete", "Retain"])
def test_claim_and_pod_get_a_volume_on_the_pods_node(kubectl: Kubectl, cluster: Cluster,
                                                     namespace: str, reclaim: str) -> None:
    storage_class = None  # the default, standard, reclaims by Delete
    if reclaim == "Retain":
        storage_class = f"keep-{namespace}"
        kubectl("apply", "-f", "-", input=local_class(storage_class, "Retain"))
    apply(kubectl, namespace, claim("data", storage_class))
    until(lambda: ("Normal", "WaitForFirstConsumer",
                   "waiting for first consumer to be created before binding")
          in events_of(kubectl, namespace, "data"), what="the WaitForFirstConsumer event")
    assert phase(kubectl, "pvc", "data", "-n", namespace) == "Pending"
    apply(kubectl, namespace, pod("app", "data"))
    until(lambda: phase(kubectl, "pvc", "data", "-n", namespace) == "Bound", what="Bound")
    pvc = get_json(kubectl, "pvc", "data", "-n", namespace)
    pv_name = pvc["spec"]["volumeName"]
    assert pv_name == f"pvc-{pvc['metadata']['uid']}"
    assert pvc["status"]["capacity"] == {"storage": "1Gi"}
    assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    annotations = pvc["metadata"]["annotations"]
    assert annotations["pv.kubernetes.io/bind-completed"] == "yes"
    assert annotations["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    until(lambda: get_json(kubectl, "pod", "app", "-n", namespace)["spec"].get("nodeName"),
          what="the pod scheduled")
    node = get_json(kubectl, "pod", "app", "-n", namespace)["spec"]["nodeName"]
    assert annotations["volume.kubernetes.io/selected-node"] == node
    pv = get_json(kubectl, "pv", pv_name)
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
        "matchExpressions"] == [{"key": "kubernetes.io/hostname", "operator": "In",
                                 "values": [node]}]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == reclaim
    assert pv["status"]["phase"] == "Bound"
    path = Path(pv["spec"]["hostPath"]["path"])
    assert pv["spec"]["hostPath"]["type"] == "DirectoryOrCreate"
    volumes = (cluster.data_dir / "volumes").resolve()
    assert path == volumes / node / f"{pv_name}_{namespace}_data"
    assert path.is_dir()
    assert ("Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}") \
        in events_of(kubectl, namespace, "data")

    kubectl("delete", "pod", "app", "-n", namespace, "--wait=false")
    kubectl("delete", "pvc", "data", "-n", namespace, "--wait=false")
    until(lambda: gone(kubectl, "pvc", "data", "-n", namespace), what="the claim gone")
    if reclaim == "Delete":
        until(lambda: gone(kubectl, "pv", pv_name), what="the volume deleted")
        assert not path.exists()
    else:
        until(lambda: phase(kubectl, "pv", pv_name) == "Released", what="Released")
        assert path.is_dir()
        row = kubectl("get", "pv", pv_name, "--no-headers").split()
        assert row[3:6] == ["Retain", "Released", f"{namespace}/data"]
        kubectl("delete", "pv", pv_name)
        kubectl("delete", "sc", storage_class)


STATIC_VOLUME = """
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}, labels: {{disk: {label}}}}}
spec:
  capacity: {{storage: {size}}}
  accessModes: [ReadWriteOnce]
  storageClassName: "{cls}"
  hostPath: {{path: /tmp/tinykube-static-{name}}}{extra}
"""


def static_volume(kubectl: Kubectl, name: str, *, size: str = "1Gi", label: str = "x",
                  cls: str = "", extra: str = "") -> None:
    kubectl("apply", "-f", "-", input=STATIC_VOLUME.format(name=name, size=size, label=label,
                                                           cls=cls, extra=extra))


def test_static_volume_binds_by_size_and_selector(kubectl: Kubectl, namespace: str) -> None:
    # A class of the test's own (no StorageClass object: static volumes need none), so claims
    # of other tests never compete for these volumes.
    cls = f"static-{namespace}"
    big, small, other = (f"{namespace}-{n}" for n in ("big", "small", "other"))
    for name, size, label in ((big, "5Gi", "ssd"), (small, "1Gi", "ssd"),
                              (other, "1Gi", "hdd")):
        static_volume(kubectl, name, size=size, label=label, cls=cls)
    apply(kubectl, namespace, claim("data", cls, "\n  selector: {matchLabels: {disk: ssd}}"))
    until(lambda: phase(kubectl, "pvc", "data", "-n", namespace) == "Bound", what="Bound")
    pvc = get_json(kubectl, "pvc", "data", "-n", namespace)
    assert pvc["spec"]["volumeName"] == small  # the smallest ssd volume that fits
    pv = get_json(kubectl, "pv", small)
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert phase(kubectl, "pv", big) == phase(kubectl, "pv", other) == "Available"
    apply(kubectl, namespace, pod("app", "data"))
    until(lambda: phase(kubectl, "pod", "app", "-n", namespace) == "Running", what="Running")
    kubectl("delete", "pod", "app", "-n", namespace)
    kubectl("delete", "pvc", "data", "-n", namespace)
    until(lambda: phase(kubectl, "pv", small) == "Released", what="Released (Retain)")
    kubectl("delete", "pv", big, small, other)


@pytest.mark.parametrize("by", ["volumeName", "claimRef"])
def test_pre_bound_claim_and_volume_bind(kubectl: Kubectl, namespace: str, by: str) -> None:
    """Pre-binding from the claim's side (`volumeName`) or the volume's (`claimRef`)."""
    name = f"{namespace}-named"
    if by == "claimRef":
        static_volume(kubectl, name, size="2Gi", extra=(
            f"\n  claimRef: {{name: data, namespace: {namespace}}}"))
        apply(kubectl, namespace, claim("data", ""))
    else:
        static_volume(kubectl, name, size="2Gi", cls=f"named-{namespace}")
        apply(kubectl, namespace, claim("data", f"named-{namespace}",
                                        f"\n  volumeName: {name}"))
    until(lambda: phase(kubectl, "pvc", "data", "-n", namespace) == "Bound", what="Bound")
    pvc = get_json(kubectl, "pvc", "data", "-n", namespace)
    assert pvc["spec"]["volumeName"] == name
    by_controller = "pv.kubernetes.io/bound-by-controller"
    assert (by_controller in pvc["metadata"]["annotations"]) == (by == "claimRef")
    assert pvc["status"]["capacity"] == {"storage": "2Gi"}
    pv = get_json(kubectl, "pv", name)
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    assert (by_controller in pv["metadata"].get("annotations", {})) == (by == "volumeName")
    kubectl("delete", "pvc", "data", "-n", namespace)
    kubectl("delete", "pv", name)


def test_static_volume_with_delete_policy_fails_and_keeps_its_directory(
        kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    """No in-tree deleter runs: a static volume that asks for Delete fails as kube's do, and
    its directory, outside the data directory, is left alone."""
    name = f"{namespace}-static"
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("data")
    kubectl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  claimRef: {{name: data, namespace: {namespace}}}
  hostPath: {{path: {kept}}}
""")
    apply(kubectl, namespace, claim("data", ""))
    until(lambda: phase(kubectl, "pvc", "data", "-n", namespace) == "Bound", what="Bound")
    kubectl("delete", "pvc", "data", "-n", namespace)
    until(lambda: phase(kubectl, "pv", name) == "Failed", what="Failed")
    message = (f'error getting deleter volume plugin for volume "{name}": no deletable volume '
               "plugin matched")
    assert get_json(kubectl, "pv", name)["status"]["message"] == message
    until(lambda: ("Warning", "VolumeFailedDelete", message)
          in events_of(kubectl, "default", name), what="the VolumeFailedDelete event")
    assert (kept / "file").read_text() == "data"
    kubectl("delete", "pv", name)


PENDING = [
    ("missing-class", "gold", ("Warning", "ProvisioningFailed",
                               'storageclass.storage.k8s.io "gold" not found')),
    ("no-class", "", ("Normal", "FailedBinding",
                      "no persistent volumes available for this claim and no storage class is "
                      "set")),
]


@pytest.mark.parametrize(("storage_class", "event"), [p[1:] for p in PENDING],
                         ids=[p[0] for p in PENDING])
def test_claim_that_cannot_bind_keeps_its_pod_pending(kubectl: Kubectl, namespace: str,
                                                      storage_class: str,
                                                      event: tuple[str, str, str]) -> None:
    apply(kubectl, namespace, claim("data", storage_class) + "---" + pod("app", "data"))
    until(lambda: event in events_of(kubectl, namespace, "data"), what=f"the {event[1]} event")
    message = ("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
               "preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
               "scheduling.")
    until(lambda: ("Warning", "FailedScheduling", message)
          in events_of(kubectl, namespace, "app"), what="the FailedScheduling event")
    assert phase(kubectl, "pvc", "data", "-n", namespace) == "Pending"
    app = get_json(kubectl, "pod", "app", "-n", namespace)
    assert app["status"]["phase"] == "Pending" and not app["spec"].get("nodeName")
    kubectl("delete", "pod", "app", "-n", namespace, "--wait=false")
    kubectl("delete", "pvc", "data", "-n", namespace, "--wait=false")


def test_claim_made_without_a_default_class_gets_one_later(kubectl: Kubectl,
                                                          namespace: str) -> None:
    key = "storageclass.kubernetes.io/is-default-class"
    kubectl("annotate", "sc", "standard", f"{key}-")
    try:
        assert kubectl("get", "sc", "standard", "--no-headers").split()[0] == "standard"
        apply(kubectl, namespace, claim("data"))
        assert "storageClassName" not in get_json(kubectl, "pvc", "data", "-n",
                                                  namespace)["spec"]
        until(lambda: ("Normal", "FailedBinding", "no persistent volumes available for this "
                       "claim and no storage class is set") in events_of(kubectl, namespace,
                                                                         "data"),
              what="the FailedBinding event")
    finally:
        kubectl("annotate", "sc", "standard", f"{key}=true")
    until(lambda: get_json(kubectl, "pvc", "data", "-n", namespace)["spec"].get(
        "storageClassName") == "standard", what="the default class assigned")


def test_pod_naming_a_missing_claim_stays_pending(kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, pod("app", "nope"))
    message = ('0/3 nodes are available: persistentvolumeclaim "nope" not found. preemption: '
               "0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    until(lambda: ("Warning", "FailedScheduling", message)
          in events_of(kubectl, namespace, "app"), what="the FailedScheduling event")
    apply(kubectl, namespace, claim("nope"))
    until(lambda: phase(kubectl, "pod", "app", "-n", namespace) == "Running",
          what="Running once the claim exists")


def test_claim_in_use_waits_for_its_pod(kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, claim("data") + "---" + pod("app", "data"))
    until(lambda: phase(kubectl, "pod", "app", "-n", namespace) == "Running", what="Running")
    kubectl("delete", "pvc", "data", "-n", namespace, "--wait=false")
    row = kubectl("get", "pvc", "data", "-n", namespace, "--no-headers").split()
    assert row[1] == "Terminating"
    assert get_json(kubectl, "pvc", "data", "-n", namespace)["metadata"]["finalizers"] == \
        ["kubernetes.io/pvc-protection"]
    kubectl("delete", "pod", "app", "-n", namespace, "--wait=false")
    until(lambda: gone(kubectl, "pvc", "data", "-n", namespace), what="the claim gone")


def test_bound_volume_waits_for_its_claim(kubectl: Kubectl, namespace: str) -> None:
    name = f"{namespace}-held"
    static_volume(kubectl, name, extra=f"\n  claimRef: {{name: data, namespace: {namespace}}}")
    apply(kubectl, namespace, claim("data", ""))
    until(lambda: phase(kubectl, "pvc", "data", "-n", namespace) == "Bound", what="Bound")
    assert phase(kubectl, "pv", name) == "Bound"
    kubectl("delete", "pv", name, "--wait=false")
    row = kubectl("get", "pv", name, "--no-headers").split()
    assert row[4] == "Terminating"
    assert phase(kubectl, "pvc", "data", "-n", namespace) == "Bound"
    kubectl("delete", "pvc", "data", "-n", namespace)
    until(lambda: gone(kubectl, "pv", name), what="the volume gone once released")


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: etcd
        volumeMounts: [{name: data, mountPath: /var/lib/etcd}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def test_statefulset_pod_comes_back_to_its_claim_and_volume(kubectl: Kubectl,
                                                            namespace: str) -> None:
    apply(kubectl, namespace, STATEFULSET)

    def running(name: str) -> dict[str, Any] | None:
        found = get_json(kubectl, "pod", "-n", namespace, "-l", "app=db")["items"]
        pods = {p["metadata"]["name"]: p for p in found}
        pod_ = pods.get(name)
        return pod_ if pod_ and pod_["status"].get("phase") == "Running" else None

    before = {n: until(lambda n=n: running(n), what=f"{n} Running") for n in ("db-0", "db-1")}
    volumes = {}
    for name, pod_ in before.items():
        pvc = get_json(kubectl, "pvc", f"data-{name}", "-n", namespace)
        assert pvc["status"]["phase"] == "Bound"
        pv = get_json(kubectl, "pv", pvc["spec"]["volumeName"])
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
            "matchExpressions"][0]["values"] == [pod_["spec"]["nodeName"]]
        volumes[name] = pv["metadata"]["name"]
    kubectl.delete_replaced("pod", "db-0", "-n", namespace)

    def recreated() -> dict[str, Any] | None:
        pod_ = running("db-0")
        return pod_ if pod_ and pod_["metadata"]["uid"] != before["db-0"]["metadata"]["uid"] \
            else None

    again = until(recreated, what="db-0 back and Running")
    assert again["spec"]["nodeName"] == before["db-0"]["spec"]["nodeName"]
    pvc = get_json(kubectl, "pvc", "data-db-0", "-n", namespace)
    assert pvc["spec"]["volumeName"] == volumes["db-0"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in \
        again["spec"]["volumes"]

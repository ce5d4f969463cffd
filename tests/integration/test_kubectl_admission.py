"""Admission and size limits as real clients meet them, against one `tinykube up` per module.

- A StatefulSet that mounts its `volumeClaimTemplates` is applied (both kubectls) and its pods
  get the claims as volumes.
- Pods run as `default` with the not-ready/unreachable tolerations: `--field-selector
  spec.serviceAccountName=default` finds them (both kubectls), kr8s's `Pod.tolerate()` adds to
  the defaults, and a pod naming a missing account is refused as kube-apiserver refuses it.
- ConfigMaps over 1 MiB and a cpu request over its limit get kube's error lines in kubectl.

Each test works in a namespace of its own, so the kubectl variants share the cluster.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kr8s
import pytest
from kr8s.objects import Pod

from tests.conftest import Cluster, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl]

NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {**NOT_READY, "key": "node.kubernetes.io/unreachable"}

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
        image: postgres:16
        volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("admission") / "data")
    yield running
    running.stop()



@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"t-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    return name


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def test_statefulset_mounting_its_claim_templates_is_applied(kubectl: Kubectl,
                                                             namespace: str) -> None:
    applied = kubectl("apply", "-n", namespace, "-f", "-", input=STATEFULSET)
    assert applied.strip() == "statefulset.apps/db created"

    def pods() -> list[dict[str, Any]] | None:
        items = get_json(kubectl, "pods", "-n", namespace, "-l", "app=db")["items"]
        return items if len(items) == 2 else None

    for pod in until(pods, what="both pods of the set"):
        ordinal = pod["metadata"]["name"].rsplit("-", 1)[1]
        assert {"name": "data", "persistentVolumeClaim": {"claimName": f"data-db-{ordinal}"}} \
            in pod["spec"]["volumes"]
    claims = kubectl("get", "pvc", "-n", namespace, "-o", "name").split()
    assert sorted(claims) == ["persistentvolumeclaim/data-db-0",
                              "persistentvolumeclaim/data-db-1"]


def test_statefulset_mount_naming_nothing_is_refused(kubectl: Kubectl, namespace: str) -> None:
    manifest = STATEFULSET.replace("- {name: data, mountPath", "- {name: other, mountPath")
    result = kubectl.run("apply", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert ('The StatefulSet "db" is invalid: spec.template.spec.containers[0].volumeMounts[0]'
            '.name: Not found: "other"') in result.stderr


def test_pods_run_as_default_with_the_default_tolerations(kubectl: Kubectl,
                                                          namespace: str) -> None:
    kubectl("run", "web", "-n", namespace, "--image=nginx")
    kubectl("run", "builder", "-n", namespace, "--image=nginx",
            "--overrides", '{"spec": {"serviceAccountName": "default", '
                           '"tolerations": [{"operator": "Exists"}]}}')
    found = kubectl("get", "pods", "-n", namespace, "-o", "name",
                    "--field-selector", "spec.serviceAccountName=default").split()
    assert sorted(found) == ["pod/builder", "pod/web"]
    assert kubectl("get", "pods", "-n", namespace, "-o", "name",
                   "--field-selector", "spec.serviceAccountName=other") == ""
    web = get_json(kubectl, "pod", "web", "-n", namespace)
    assert web["spec"]["serviceAccountName"] == web["spec"]["serviceAccount"] == "default"
    assert web["spec"]["tolerations"] == [NOT_READY, UNREACHABLE]
    builder = get_json(kubectl, "pod", "builder", "-n", namespace)
    assert builder["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_pod_naming_a_missing_account_is_forbidden(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.run("run", "web", "-n", namespace, "--image=nginx", "--overrides",
                         '{"spec": {"serviceAccountName": "nope"}}', check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): pods "web" is forbidden: error looking up service '
        f'account {namespace}/nope: serviceaccount "nope" not found')


def test_kr8s_tolerate_adds_to_the_default_tolerations(cluster: Cluster, kctl: Kubectl) -> None:
    namespace = f"kr8s-{secrets.token_hex(3)}"
    kctl("create", "namespace", namespace)
    api = kr8s.api(kubeconfig=str(cluster.kubeconfig))
    pod = Pod({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "tolerant", "namespace": namespace},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}, api=api)
    pod.create()
    pod.tolerate("example.com/maintenance", operator="Exists", effect="NoSchedule")
    pod.refresh()
    assert pod.spec["tolerations"] == [
        NOT_READY, UNREACHABLE,
        {"key": "example.com/maintenance", "operator": "Exists", "effect": "NoSchedule"}]


def test_configmap_over_1mib_is_refused_as_kube_refuses_it(kubectl: Kubectl, namespace: str,
                                                           tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    result = kubectl.run("create", "configmap", "big", "-n", namespace, f"--from-file={big}",
                         check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == ('error: failed to create configmap: ConfigMap "big" is '
                                     'invalid: []: Too long: may not be more than 1048576 bytes')


def test_cpu_request_over_its_limit_is_refused(kubectl: Kubectl, namespace: str) -> None:
    overrides = {"spec": {"containers": [{"name": "web", "image": "nginx", "resources": {
        "requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}}
    result = kubectl.run("run", "web", "-n", namespace, "--image=nginx",
                         "--overrides", json.dumps(overrides), check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        'The Pod "web" is invalid: spec.containers[0].resources.requests: Invalid value: "2": '
        "must be less than or equal to cpu limit of 1")

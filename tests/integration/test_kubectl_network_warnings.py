"""Apply-time networking warnings, as both kubectls print them (`Warning: ...` on stderr).

The seed's correct web.yaml gives no networking warning; each mistake below gives its own, and
none refuses the write. `clusterIP: None` with `type: NodePort` is refused by validation (as
kube-apiserver refuses it), with no warning.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import TESTDATA, Cluster, Kubectl, start_cluster

pytestmark = [pytest.mark.kubectl]

STS_MISSING = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 0
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: busybox}]}
"""
GOVERNING_CLUSTER_IP = """
apiVersion: v1
kind: Service
metadata: {name: cache}
spec: {selector: {app: cache}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: cache}
spec:
  serviceName: cache
  replicas: 0
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec: {containers: [{name: cache, image: busybox}]}
"""
POD_SUBDOMAIN = """
apiVersion: v1
kind: Pod
metadata: {name: lonely, labels: {app: lonely}}
spec:
  hostname: lonely
  subdomain: nginx2
  containers: [{name: c, image: busybox}]
"""
TARGET_PORT = """
apiVersion: v1
kind: Service
metadata: {name: web-http}
spec:
  selector: {app: nginx}
  ports: [{name: http, port: 8080, targetPort: http}]
"""
HEADLESS_NO_SELECTOR = """
apiVersion: v1
kind: Service
metadata: {name: external-db}
spec: {clusterIP: None, ports: [{port: 5432}]}
"""
HEADLESS_NODEPORT = """
apiVersion: v1
kind: Service
metadata: {name: both}
spec: {clusterIP: None, type: NodePort, selector: {app: x}, ports: [{port: 80}]}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for both kubectls; each test works in a namespace of its own."""
    running = start_cluster(tmp_path_factory.mktemp("netwarnings") / "data")
    yield running
    running.stop()


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"t-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    return name


def warnings_of(stderr: str) -> list[str]:
    return [line.removeprefix("Warning: ") for line in stderr.splitlines()
            if line.startswith("Warning: ")]


def test_networking_warnings(kubectl: Kubectl, namespace: str) -> None:
    def apply(manifest: str) -> list[str]:
        done = kubectl.run("apply", "-n", namespace, "-f", "-", input=manifest)
        return warnings_of(done.stderr)

    seed = kubectl.run("apply", "-n", namespace, "-f", str(TESTDATA / "web.yaml"))
    # Only the legacy apps/v1beta1 notice, no networking warning.
    assert [w for w in warnings_of(seed.stderr) if not w.startswith("apps/v1beta1 ")] == [], \
        seed.stderr
    assert "statefulset.apps/web created" in seed.stdout

    assert apply(STS_MISSING) == [
        f'spec.serviceName: no Service "db" in namespace "{namespace}": the pods of StatefulSet '
        "db get no DNS names (db-0.db...) until it exists; create a headless Service \"db\" "
        "(clusterIP: None) selecting them"]
    assert apply(GOVERNING_CLUSTER_IP)[0].startswith(
        'spec.serviceName: Service "cache" is not headless')
    [subdomain] = apply(POD_SUBDOMAIN)
    assert subdomain.startswith('spec.subdomain: "nginx2" names no Service "nginx2" in '
                                f'namespace "{namespace}"')
    assert subdomain.endswith('create a headless Service "nginx2" (clusterIP: None) whose '
                              "selector matches the pod")
    [target] = apply(TARGET_PORT)
    assert target.startswith('spec.ports[0].targetPort: "http" names a port that no container '
                             "of ") and "StatefulSet web" in target
    assert apply(HEADLESS_NO_SELECTOR) == [
        'spec.selector: headless Service "external-db" has neither a selector nor '
        "EndpointSlices: its name answers NXDOMAIN; add a selector matching its pods, or write "
        "EndpointSlices labelled kubernetes.io/service-name=external-db"]
    # Warnings never refuse: every object above was stored.
    names = kubectl("get", "-n", namespace, "services,statefulsets,pods", "-o", "name").split()
    for name in ("service/web-http", "service/external-db", "statefulset.apps/db",
                 "pod/lonely"):
        assert name in names

    refused = kubectl.run("apply", "-n", namespace, "-f", "-", input=HEADLESS_NODEPORT,
                          check=False)
    assert refused.returncode != 0
    assert "may not be set to 'None' for NodePort services" in refused.stderr
    assert not warnings_of(refused.stderr)

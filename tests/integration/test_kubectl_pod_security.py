"""PodSecurity and Priority admission as kubectl users meet them, against one `tinykube up`.

- A namespace labelled `enforce=baseline` refuses a privileged pod with kube's message; one
  labelled `warn=restricted` takes a Deployment and kubectl prints the `Warning:` line; a bad
  label value is refused; tightening enforce over a running privileged pod warns about it.
- A pod naming a PriorityClass gets its value as `spec.priority`; an unknown class is refused.

Each test works in a namespace of its own, so the kubectl variants share the cluster.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster, Kubectl, start_cluster

pytestmark = [pytest.mark.kubectl]

PRIVILEGED_POD = """
apiVersion: v1
kind: Pod
metadata: {name: priv}
spec:
  containers:
  - {name: c, image: nginx, securityContext: {privileged: true}}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx}
"""

RESTRICTED_WARNING = (
    'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
    '(container "web" must set securityContext.allowPrivilegeEscalation=false), unrestricted '
    'capabilities (container "web" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "web" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")')


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("podsecurity") / "data")
    yield running
    running.stop()


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"t-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    return name


def test_enforce_baseline_refuses_a_privileged_pod(kubectl: Kubectl, namespace: str) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline")
    result = kubectl.run("apply", "-n", namespace, "-f", "-", input=PRIVILEGED_POD, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "priv" is forbidden: '
        'violates PodSecurity "baseline:latest": privileged (container "c" must not set '
        "securityContext.privileged=true)")


def test_warn_restricted_prints_the_warning_for_a_deployment(kubectl: Kubectl,
                                                             namespace: str) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted")
    result = kubectl.run("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    assert result.stdout.strip() == "deployment.apps/web created"
    assert result.stderr.strip() == RESTRICTED_WARNING


def test_bad_label_is_refused_and_tightening_warns(kubectl: Kubectl, namespace: str) -> None:
    bad = kubectl.run("label", "namespace", namespace,
                      "pod-security.kubernetes.io/enforce=bogus", check=False)
    assert bad.returncode != 0
    assert bad.stderr.strip() == (
        f'The Namespace "{namespace}" is invalid: metadata.labels[pod-security.kubernetes.io/'
        'enforce]: Invalid value: "bogus": must be one of privileged, baseline, restricted')
    kubectl("apply", "-n", namespace, "-f", "-", input=PRIVILEGED_POD)
    tightened = kubectl.run("label", "namespace", namespace,
                            "pod-security.kubernetes.io/enforce=baseline")
    assert tightened.stdout.strip() == f"namespace/{namespace} labeled"
    assert tightened.stderr.splitlines() == [
        f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity enforce '
        'level "baseline:latest"',
        "Warning: priv: privileged"]


def test_pod_gets_the_priority_of_its_class(kubectl: Kubectl, namespace: str) -> None:
    name = f"high-{namespace}"
    kubectl("create", "priorityclass", name, "--value=1000")
    try:
        kubectl("run", "p", "-n", namespace, "--image=nginx",
                "--overrides", f'{{"spec": {{"priorityClassName": "{name}"}}}}')
        assert kubectl("get", "pod", "p", "-n", namespace, "-o",
                       "jsonpath={.spec.priority} {.spec.preemptionPolicy}") == \
            "1000 PreemptLowerPriority"
    finally:
        kubectl("delete", "priorityclass", name)
    unknown = kubectl.run("run", "q", "-n", namespace, "--image=nginx", "--overrides",
                          '{"spec": {"priorityClassName": "foo"}}', check=False)
    assert unknown.returncode != 0
    assert unknown.stderr.strip() == ('Error from server (Forbidden): pods "q" is forbidden: '
                                      "no PriorityClass with name foo was found")

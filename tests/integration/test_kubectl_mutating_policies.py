"""MutatingAdmissionPolicy end to end with both kubectls, on a `tinykube up` started with
`--feature-gates MutatingAdmissionPolicy=true --runtime-config
admissionregistration.k8s.io/v1alpha1=true`, and on one started without them: discovery lists
the two kinds only with the gate; an ApplyConfiguration policy labels Deployments, a JSONPatch
policy annotates ConfigMaps and an IfNeeded policy that ran before it is reinvoked; a failing
policy refuses the write with kube's Status (or lets it through under Ignore); a bad policy is
refused with kube's field errors. Each kubectl's policies match only its own namespace (a
matchCondition), since policies are cluster-scoped."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster

GATE = ("--feature-gates", "MutatingAdmissionPolicy=true",
        "--runtime-config", "admissionregistration.k8s.io/v1alpha1=true")
HEADER = "apiVersion: admissionregistration.k8s.io/v1alpha1\n"


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(Path(tmp_path_factory.mktemp("map")) / "data", *GATE)
    yield cluster
    cluster.stop()


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kube(request: pytest.FixtureRequest, gated: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(request.param, gated.kubeconfig, cache)


def _policy(name: str, namespace: str, resource: str, mutations: str, *,
            reinvocation: str = "Never", failure: str = "Fail") -> str:
    group = "apps" if resource == "deployments" else ""
    return HEADER + textwrap.dedent(f"""\
        kind: MutatingAdmissionPolicy
        metadata: {{name: {name}}}
        spec:
          failurePolicy: {failure}
          reinvocationPolicy: {reinvocation}
          matchConstraints:
            resourceRules:
            - apiGroups: ["{group}"]
              apiVersions: ["v1"]
              operations: ["CREATE", "UPDATE"]
              resources: ["{resource}"]
          matchConditions:
          - name: own-namespace
            expression: "request.namespace == '{namespace}'"
          mutations:
        """) + textwrap.indent(textwrap.dedent(mutations), "  ") + "---\n" + HEADER + \
        f"kind: MutatingAdmissionPolicyBinding\nmetadata: {{name: {name}}}\n" \
        f"spec: {{policyName: {name}}}\n---\n"


TEAM_LABEL = """\
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: >
          Object{metadata: Object.metadata{labels: {"team": "blue"}},
                 spec: Object.spec{template: Object.spec.template{
                   metadata: Object.spec.template.metadata{labels: {"team": "blue"}}}}}
    """
STAMP = """\
    - patchType: JSONPatch
      jsonPatch:
        expression: >
          (has(object.metadata.annotations) ? [] :
            [JSONPatch{op: "add", path: "/metadata/annotations", value: {}}]) +
          [JSONPatch{op: "add",
                     path: "/metadata/annotations/" + jsonpatch.escapeKey("example.com/stamp"),
                     value: "by " + request.userInfo.username}]
    """
COPY_STAMP = """\
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: >
          Object{metadata: Object.metadata{labels: {"stamped":
            has(object.metadata.annotations) &&
            "example.com/stamp" in object.metadata.annotations ? "yes" : "no"}}}
    """


def _namespace(kube: Kubectl) -> str:
    return f"map-{len(kube.binary)}"


def _policies(namespace: str, copy_reinvocation: str) -> str:
    # bindings run in name order: `...-a-copy` before `...-b-stamp`
    return (_policy(f"{namespace}-team", namespace, "deployments", TEAM_LABEL) +
            _policy(f"{namespace}-a-copy", namespace, "configmaps", COPY_STAMP,
                    reinvocation=copy_reinvocation) +
            _policy(f"{namespace}-b-stamp", namespace, "configmaps", STAMP))


def _deployment(name: str, namespace: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec: {{containers: [{{name: c, image: nginx}}]}}
        """)


def test_label_annotation_and_reinvocation(kube: Kubectl) -> None:
    namespace = _namespace(kube)
    kube("create", "namespace", namespace)
    try:
        kube("apply", "-f", "-", input=_policies(namespace, "IfNeeded"))
        kube("apply", "-f", "-", input=_deployment("web", namespace))
        labels = kube("get", "deployment", "web", "-n", namespace, "-o",
                      "jsonpath={.metadata.labels.team} {.spec.template.metadata.labels}")
        assert labels == 'blue {"app":"web","team":"blue"}'
        kube("create", "configmap", "settings", "-n", namespace, "--from-literal=a=b")
        got = kube("get", "configmap", "settings", "-n", namespace, "-o",
                   "jsonpath={.metadata.annotations.example\\.com/stamp} "
                   "{.metadata.labels.stamped}")
        assert got == "by tinykube-admin yes", got  # the copy ran again after the stamp

        kube("apply", "-f", "-", input=_policies(namespace, "Never"))
        kube("create", "configmap", "once", "-n", namespace)
        got = kube("get", "configmap", "once", "-n", namespace, "-o",
                   "jsonpath={.metadata.labels.stamped}")
        assert got == "no"
        kube("create", "configmap", "elsewhere", "-n", "default")  # not matched
        assert kube("get", "configmap", "elsewhere", "-o",
                    "jsonpath={.metadata.labels}{.metadata.annotations}") == ""
    finally:
        kube("delete", "-f", "-", "--ignore-not-found", input=_policies(namespace, "Never"))
        kube("delete", "configmap", "elsewhere", "--ignore-not-found")
        kube("delete", "namespace", namespace, "--wait=false")


BROKEN = """\
    - patchType: JSONPatch
      jsonPatch:
        expression: '[JSONPatch{op: "replace", path: "/metadata/labels/x", value: "y"}]'
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: 'Object{metadata: Object.metadatax{labels: {"a": "b"}}}'
    """


def test_failure_policy(kube: Kubectl) -> None:
    namespace = f"{_namespace(kube)}-fail"
    name = f"{namespace}-broken"
    kube("create", "namespace", namespace)
    try:
        kube("apply", "-f", "-", input=_policy(name, namespace, "configmaps", BROKEN))
        configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
        refused = kube.run("create", "-n", namespace, "-f", "-", input=configmap, check=False)
        prefix = f"policy '{name}' with binding '{name}' denied request: "
        assert refused.returncode != 0
        # reason Invalid, one cause per failed mutation (kubectl lists the causes)
        assert refused.stderr.splitlines() == [
            'The configmaps "c" is invalid: ',
            f"* : {prefix}JSONPath: replace operation does not apply: doc is missing key: "
            "/metadata/labels/x: missing value",
            f'* : {prefix}type mismatch: unexpected type name "Object.metadatax", expected '
            '"Object.metadata", which matches field name path from root Object type'], \
            refused.stderr

        kube("apply", "-f", "-", input=_policy(name, namespace, "configmaps", BROKEN,
                                               failure="Ignore"))
        kube("create", "configmap", "c", "-n", namespace)
    finally:
        kube("delete", "-f", "-", "--ignore-not-found",
             input=_policy(name, namespace, "configmaps", BROKEN))
        kube("delete", "namespace", namespace, "--wait=false")


def test_invalid_policy(kube: Kubectl) -> None:
    bad = HEADER + textwrap.dedent(f"""\
        kind: MutatingAdmissionPolicy
        metadata: {{name: bad-{len(kube.binary)}}}
        spec:
          failurePolicy: Sometimes
          matchConstraints:
            resourceRules:
            - {{apiGroups: [""], apiVersions: [v1], operations: [DELETE], resources: [pods]}}
          mutations:
          - patchType: JSONPatch
            jsonPatch: {{expression: "[JSONPatch{{op: 'add', path: nope}}]"}}
        """)
    refused = kube.run("apply", "-f", "-", input=bad, check=False)
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[1:] == [
        '* spec.failurePolicy: Unsupported value: "Sometimes": supported values: "Fail", '
        '"Ignore"',
        '* spec.matchConstraints.resourceRules.operations: Unsupported value: "DELETE": '
        'supported values: "*", "CONNECT", "CREATE", "UPDATE"',
        "* spec.mutations[0].jsonPatch.expression: Invalid value: \"[JSONPatch{op: 'add', "
        "path: nope}]\": compilation failed: ERROR: <input>:1:29: undeclared reference to "
        "'nope' (in container '')",
        "* spec.reinvocationPolicy: Required value"], refused.stderr


def _api_resources(kube: Kubectl) -> list[str]:
    return [line for line in kube("api-resources").splitlines() if "MutatingAdmission" in line]


def test_served_only_with_the_gate(gated: Cluster, tmp_path: Path) -> None:
    kube = Kubectl(KUBECTLS[0][1], gated.kubeconfig, tmp_path / "cache")
    kube.cache_dir.mkdir()
    assert [line.split() for line in _api_resources(kube)] == [
        ["mutatingadmissionpolicies", "admissionregistration.k8s.io/v1alpha1", "false",
         "MutatingAdmissionPolicy"],
        ["mutatingadmissionpolicybindings", "admissionregistration.k8s.io/v1alpha1", "false",
         "MutatingAdmissionPolicyBinding"]]
    plain = start_cluster(tmp_path / "plain")
    try:
        ungated = Kubectl(kube.binary, plain.kubeconfig, tmp_path / "cache-plain")
        ungated.cache_dir.mkdir()
        assert _api_resources(ungated) == []
        missing = ungated.run("get", "mutatingadmissionpolicies", check=False)
        assert missing.returncode == 1
        assert missing.stderr.strip() == \
            'error: the server doesn\'t have a resource type "mutatingadmissionpolicies"'
    finally:
        plain.stop()


@pytest.mark.parametrize(("flags", "message"), [
    (("--feature-gates", "NotAGate=true"), "unrecognized feature gate: NotAGate"),
    (("--runtime-config", "admissionregistration.k8s.io/v1alpha1=maybe"),
     "invalid value of admissionregistration.k8s.io/v1alpha1=maybe"),
])
def test_bad_flags(flags: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tinykube", "up", "--data-dir",
                             str(tmp_path / "d"), *flags], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr

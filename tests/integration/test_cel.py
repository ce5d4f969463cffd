"""CEL end to end with both kubectls: a CRD's `x-kubernetes-validations` (and a
`selectableFields` field selector) and a ValidatingAdmissionPolicy, with the errors kubectl
prints for kube-apiserver.

The policy is kube's documentation example (`demo-policy.example.com`: a Deployment may not
have more than 5 replicas); kube's docs show kubectl printing `The deployments "nginx" is
invalid: : ValidatingAdmissionPolicy 'demo-policy.example.com' with binding
'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until

CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.GROUP}
    spec:
      group: GROUP
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
      - name: v1
        served: true
        storage: true
        selectableFields: [{jsonPath: .spec.size}]
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                x-kubernetes-validations:
                - rule: "self.minReplicas <= self.replicas"
                  message: "minReplicas must not exceed replicas"
                - rule: "self.replicas >= oldSelf.replicas"
                  messageExpression: "'replicas may not go down from ' + string(oldSelf.replicas)"
                  reason: FieldValueForbidden
                properties:
                  replicas: {type: integer}
                  minReplicas: {type: integer}
                  size:
                    type: string
                    x-kubernetes-validations:
                    - rule: "isQuantity(self) && quantity(self).isLessThan(quantity('1Gi'))"
                      message: "size must be a quantity under 1Gi"
    """)
WIDGET = textwrap.dedent("""\
    apiVersion: GROUP/v1
    kind: Widget
    metadata: {name: w}
    spec: {replicas: REPLICAS, minReplicas: 2, size: SIZE}
    """)
POLICY = textwrap.dedent("""\
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicy
    metadata: {name: "demo-policy.example.com"}
    spec:
      failurePolicy: Fail
      matchConstraints:
        resourceRules:
        - apiGroups: ["apps"]
          apiVersions: ["v1"]
          operations: ["CREATE", "UPDATE"]
          resources: ["deployments"]
      validations:
      - expression: "object.spec.replicas <= 5"
      - expression: "object.spec.replicas <= 3"
        message: "more than 3 replicas is not recommended"
    ---
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicyBinding
    metadata: {name: "demo-binding-test.example.com"}
    spec:
      policyName: "demo-policy.example.com"
      validationActions: [VALIDATION_ACTION]
      matchResources:
        namespaceSelector:
          matchLabels: {environment: test}
    """)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(Path(tmp_path_factory.mktemp("cel")) / "data")
    yield cluster
    cluster.stop()


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kube(request: pytest.FixtureRequest, running: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(request.param, running.kubeconfig, cache)


def _widget(group: str, replicas: int, size: str = "1Mi") -> str:
    return WIDGET.replace("GROUP", group).replace("REPLICAS", str(replicas)).replace(
        "SIZE", size)


def test_crd_rules(kube: Kubectl) -> None:
    group = f"cel{len(kube.binary)}.example.com"
    bad = kube.run("apply", "-f", "-", check=False, input=CRD.replace("GROUP", group).replace(
        "self.minReplicas <= self.replicas", "self.minReplicas <="))
    assert bad.returncode != 0
    assert (f'The CustomResourceDefinition "widgets.{group}" is invalid: '
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: "
            'Invalid value: apiextensions.ValidationRule{Rule:"self.minReplicas <=", ') \
        in bad.stderr.replace("spec.versions[0].schema", "spec.validation"), bad.stderr
    assert "compilation failed: ERROR: <input>:1:20: Syntax error:" in bad.stderr
    # kube type-checks the rules against the schema (cel-go's checker) at the CRD write
    typed = kube.run("apply", "-f", "-", check=False, input=CRD.replace("GROUP", group).replace(
        "self.minReplicas <= self.replicas", "self.minReplicas + 'a' <= self.replicas").replace(
        "isQuantity(self) && ", "self.nope && "))
    assert typed.returncode != 0
    assert ("x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{"
            "Rule:\"self.minReplicas + 'a' <= self.replicas\", ") in typed.stderr, typed.stderr
    assert ("compilation failed: ERROR: <input>:1:18: found no matching overload for '_+_' "
            "applied to '(int, string)'\n | self.minReplicas + 'a' <= self.replicas\n"
            " | .................^") in typed.stderr, typed.stderr
    assert ("properties[size].x-kubernetes-validations[0].rule: Invalid value: "
            "apiextensions.ValidationRule{Rule:\"self.nope && ") in typed.stderr
    assert ("compilation failed: ERROR: <input>:1:5: type 'string' does not support field "
            "selection") in typed.stderr, typed.stderr

    kube("apply", "-f", "-", input=CRD.replace("GROUP", group))
    until(lambda: kube("get", "crd", f"widgets.{group}", "-o",
                       "jsonpath={.status.conditions[?(@.type=='Established')].status}")
          == "True", 5, "the CRD to be established")
    refused = kube.run("apply", "-f", "-", check=False, input=_widget(group, 1))
    assert refused.returncode != 0
    assert ('The Widget "w" is invalid: spec: Invalid value: "object": minReplicas must not '
            "exceed replicas") in refused.stderr, refused.stderr
    too_big = kube.run("apply", "-f", "-", check=False, input=_widget(group, 3, "2Gi"))
    assert ('The Widget "w" is invalid: spec.size: Invalid value: "string": size must be a '
            "quantity under 1Gi") in too_big.stderr, too_big.stderr

    kube("apply", "-f", "-", input=_widget(group, 3))  # transition rule skipped on create
    assert kube("get", f"widgets.{group}", "--field-selector", "spec.size=1Mi", "-o",
                "name").split() == [f"widget.{group}/w"]
    kube("apply", "-f", "-", input=_widget(group, 4))
    down = kube.run("apply", "-f", "-", check=False, input=_widget(group, 2))
    assert ('The Widget "w" is invalid: spec: Forbidden: replicas may not go down from 4') \
        in down.stderr, down.stderr


def _deployment(name: str, namespace: str, replicas: int) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec: {{containers: [{{name: c, image: nginx}}]}}
        """)


def test_validating_admission_policy(kube: Kubectl) -> None:
    namespace = f"vap-{len(kube.binary)}"
    labelled = (f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}, labels: "
                "{environment: test}}\n---\n")
    kube("apply", "-f", "-", input=labelled + POLICY.replace("VALIDATION_ACTION", "Deny"))
    try:
        denied = kube.run("apply", "-f", "-", check=False,
                          input=_deployment("nginx", namespace, 6))
        assert denied.returncode != 0
        assert ('The deployments "nginx" is invalid: : ValidatingAdmissionPolicy '
                "'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied "
                "request: failed expression: object.spec.replicas <= 5") in denied.stderr, \
            denied.stderr
        kube("apply", "-f", "-", input=_deployment("small", namespace, 2) + "---\n" +
             _deployment(f"other-{len(kube.binary)}", "default", 6))  # not selected

        kube("apply", "-f", "-", input=POLICY.replace("VALIDATION_ACTION", "Warn"))
        warned = kube.run("apply", "-f", "-", input=_deployment("nginx", namespace, 4))
        assert ("Warning: Validation failed for ValidatingAdmissionPolicy "
                "'demo-policy.example.com' with binding 'demo-binding-test.example.com': more "
                "than 3 replicas is not recommended") in warned.stderr, warned.stderr
        bad = kube.run("apply", "-f", "-", check=False, input=POLICY.replace(
            "VALIDATION_ACTION", "Deny").replace("object.spec.replicas <= 5",
                                                 "object.spec.replicas <="))
        assert ('spec.validations[0].expression: Invalid value: "object.spec.replicas <=": '
                "compilation failed: ERROR: <input>:1:") in bad.stderr, bad.stderr
    finally:
        kube("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=labelled + POLICY
             .replace("VALIDATION_ACTION", "Deny") + "---\n" +
             _deployment(f"other-{len(kube.binary)}", "default", 6))

"""Every resource kube-apiserver 1.32 serves by default, with both real kubectls (issue 12,
item 1).

- `kubectl api-resources -o wide` matches the kind 1.32 golden (tests/testdata/discovery):
  every row, verbs and categories included, except the kinds other issues add;
- a multi-document manifest with one object of every kind the issue added, in the order a Helm
  chart installs them, applies, and each object gets, describes and deletes;
- kube's printer columns for the kinds users read most (`get pdb`, `hpa`, `role`,
  `clusterrolebinding`, `priorityclass`, `csr`, `ingressclass`);
- `kubectl create role/rolebinding/clusterrole/clusterrolebinding`, `kubectl auth reconcile`,
  `kubectl certificate approve`, `kubectl apply --prune -l app=x` with kubectl's default prune
  list, and the objects kube-apiserver creates for itself (PriorityClasses, APIServices,
  flow-control defaults, ComponentStatus).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Kubectl

pytestmark = [pytest.mark.kubectl]

DATA = Path(__file__).resolve().parent.parent / "testdata"
MANIFEST = (DATA / "every-added-kind.yaml").read_text()
GOLDEN = (DATA / "discovery" / "kind-1.32-api-resources-wide.txt").read_text()
# Rows of the golden that other issues serve: compared only once tinykube serves them.
ELSEWHERE = {("storageclasses", "storage.k8s.io/v1"): "the storage work of issue 12"}
# Groups tinykube serves beyond kind's defaults: metrics-server's (kind installs none).
BEYOND_KIND = {"metrics.k8s.io/v1beta1"}


def table_rows(text: str) -> list[tuple[str, ...]]:
    """A kubectl table's cells, cut at the header's column starts (cells may be empty)."""
    lines = text.rstrip("\n").splitlines()
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    bounds = [*starts[1:], None]
    return [tuple(line[start:end].strip() for start, end in zip(starts, bounds, strict=True))
            for line in lines]


def test_api_resources_match_kind_1_32(kubectl: Kubectl) -> None:
    ours = [row for row in table_rows(kubectl("api-resources", "-o", "wide"))
            if row[2] not in BEYOND_KIND]
    golden = table_rows(GOLDEN)
    assert ours[0] == golden[0]
    served = {row[:3:2] for row in ours[1:]}
    expected = [row for row in golden[1:]
                if row[:3:2] not in ELSEWHERE or row[:3:2] in served]
    assert ours[1:] == expected


# (plural.group, name) of every object in the manifest, in its order.
OBJECTS = [
    ("resourcequotas", "quota"), ("limitranges", "limits"),
    ("poddisruptionbudgets.policy", "web"),
    ("clusterroles.rbac.authorization.k8s.io", "x-reader"),
    ("clusterrolebindings.rbac.authorization.k8s.io", "x-reader"),
    ("roles.rbac.authorization.k8s.io", "x-editor"),
    ("rolebindings.rbac.authorization.k8s.io", "x-editor"),
    ("podtemplates", "x-template"),
    ("horizontalpodautoscalers.autoscaling", "web"),
    ("ingressclasses.networking.k8s.io", "x-nginx"),
    ("apiservices.apiregistration.k8s.io", "v1beta1.x.example.com"),
    ("mutatingwebhookconfigurations.admissionregistration.k8s.io", "x-mutate"),
    ("validatingwebhookconfigurations.admissionregistration.k8s.io", "x-validate"),
    ("validatingadmissionpolicies.admissionregistration.k8s.io", "x-replicas"),
    ("validatingadmissionpolicybindings.admissionregistration.k8s.io", "x-replicas"),
    ("priorityclasses.scheduling.k8s.io", "x-high"),
    ("certificatesigningrequests.certificates.k8s.io", "x-client"),
    ("events.events.k8s.io", "x-started"),
    ("prioritylevelconfigurations.flowcontrol.apiserver.k8s.io", "x-batch"),
    ("flowschemas.flowcontrol.apiserver.k8s.io", "x-batch"),
    ("csidrivers.storage.k8s.io", "x.csi.example.com"),
    ("csinodes.storage.k8s.io", "x-node"),
    ("volumeattachments.storage.k8s.io", "x-attachment"),
    ("csistoragecapacities.storage.k8s.io", "x-capacity"),
]


def test_every_added_kind_applies_gets_describes_and_deletes(kubectl: Kubectl) -> None:
    applied = kubectl.run("apply", "-f", "-", input=MANIFEST)
    created = [line for line in applied.stdout.splitlines() if line.endswith(" created")]
    assert len(created) == len(OBJECTS), applied.stdout
    assert "RBAC objects" not in applied.stderr  # enforced now: no warning
    assert "WebhookConfiguration objects" not in applied.stderr  # their webhooks are called
    for resource, name in OBJECTS:
        got = kubectl("get", resource, name, "-o", "jsonpath={.metadata.name}")
        assert got == name, resource
        described = kubectl("describe", resource, name)
        assert re.search(rf"^Name:\s+{re.escape(name)}$", described, re.MULTILINE), described
    listed = kubectl("get", ",".join(r for r, _ in OBJECTS), "-l", "app=x", "-o", "name")
    assert len(listed.split()) == len(OBJECTS)
    deleted = kubectl("delete", "-f", "-", input=MANIFEST)
    assert deleted.count(" deleted") == len(OBJECTS), deleted
    left = kubectl("get", ",".join(r for r, _ in OBJECTS), "-l", "app=x", "-o", "name")
    assert left.split() == []


AGE = r"\d+[smhd]"
# kind, get arguments, header, first row (a regex: AGE varies)
PRINTED = [
    ("pdb", ("pdb", "web"), "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE",
     rf"web 1 N/A 0 {AGE}"),
    ("hpa", ("hpa", "web"), "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE",
     rf"web Deployment/web cpu: <unknown>/70% 1 5 0 {AGE}"),
    ("role", ("role", "x-editor"), "NAME CREATED AT",
     r"x-editor \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"),
    ("clusterrolebinding", ("clusterrolebinding", "x-reader", "-o", "wide"),
     "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS",
     rf"x-reader ClusterRole/x-reader {AGE} system:authenticated default:default"),
    ("priorityclass", ("priorityclass", "x-high"),
     "NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY",
     rf"x-high 1000000 false {AGE} PreemptLowerPriority"),
    ("csr", ("csr", "x-client"),
     "NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION",
     rf"x-client {AGE} kubernetes.io/kube-apiserver-client tinykube-admin 60m Pending"),
    ("ingressclass", ("ingressclass", "x-nginx"), "NAME CONTROLLER PARAMETERS AGE",
     rf"x-nginx k8s.io/ingress-nginx IngressParameters.k8s.example.com/external-lb {AGE}"),
    # The usage columns appear once the ResourceQuota controller has written the status.
    ("quota", ("quota", "quota"), "NAME AGE REQUEST LIMIT",
     rf"quota {AGE}( pods: 0/10, requests.cpu: 0/2 limits.memory: 0/2Gi)?"),
    ("flowschema", ("flowschema", "x-batch"),
     "NAME PRIORITYLEVEL MATCHINGPRECEDENCE DISTINGUISHERMETHOD AGE MISSINGPL",
     rf"x-batch x-batch 5000 ByNamespace {AGE} \?"),
    ("csidriver", ("csidriver", "x.csi.example.com"),
     "NAME ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS REQUIRESREPUBLISH "
     "MODES AGE",
     rf"x.csi.example.com false true false <unset> false Persistent,Ephemeral {AGE}"),
]


def test_printer_columns_are_kubes(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=MANIFEST)
    for kind, args, header, row in PRINTED:
        lines = [" ".join(line.split()) for line in kubectl("get", *args).splitlines()]
        assert lines[0] == header, kind
        assert re.fullmatch(row, lines[1]), (kind, lines[1])


def test_kubectl_create_rbac_and_auth_reconcile(kubectl: Kubectl) -> None:
    for args, line in [
        (("role", "pod-reader", "--verb=get,list", "--resource=pods"),
         "role.rbac.authorization.k8s.io/pod-reader created"),
        (("rolebinding", "read-pods", "--role=pod-reader", "--user=alice",
          "--serviceaccount=default:builder"),
         "rolebinding.rbac.authorization.k8s.io/read-pods created"),
        (("clusterrole", "node-reader", "--verb=get", "--resource=nodes",
          "--non-resource-url=/healthz"),
         "clusterrole.rbac.authorization.k8s.io/node-reader created"),
        (("clusterrolebinding", "read-nodes", "--clusterrole=node-reader", "--group=ops"),
         "clusterrolebinding.rbac.authorization.k8s.io/read-nodes created"),
    ]:
        assert kubectl("create", *args).strip() == line
    assert kubectl("get", "rolebinding", "read-pods", "-o",
                   "jsonpath={.roleRef.kind}/{.roleRef.name} {.subjects[1].namespace}"
                   ) == "Role/pod-reader default"
    bad = kubectl.run("create", "rolebinding", "bad", "--role=pod-reader",
                      "--serviceaccount=builder", check=False)
    assert bad.returncode != 0
    changed = kubectl.run("patch", "rolebinding", "read-pods", "--type=merge", "-p",
                          '{"roleRef":{"name":"other"}}', check=False)
    assert changed.returncode == 1
    assert ('The RoleBinding "read-pods" is invalid: roleRef: Invalid value: '
            in changed.stderr and "cannot change roleRef" in changed.stderr), changed.stderr
    reconcile = [doc for doc in MANIFEST.split("---") if "kind: Role\n" in doc
                 or "kind: RoleBinding\n" in doc or "kind: ClusterRole" in doc]
    # kubectl auth reconcile does not default the namespace of a namespaced object
    text = "---".join(reconcile).replace("{name: x-editor,", "{name: x-editor, namespace: default,")
    first = kubectl.run("auth", "reconcile", "-f", "-", input=text)
    assert "role.rbac.authorization.k8s.io/x-editor reconciled" in first.stdout
    assert "reconciliation required create" in first.stderr
    again = kubectl.run("auth", "reconcile", "-f", "-", input=text)
    assert "reconciliation required" not in again.stderr
    widened = text.replace("verbs: [get, list, update, patch]",
                           "verbs: [get, list, update, patch, delete]")
    third = kubectl.run("auth", "reconcile", "-f", "-", input=widened)
    assert "missing rules added" in third.stderr
    assert "delete" in kubectl("get", "role", "x-editor", "-o", "jsonpath={.rules[*].verbs}")


def test_certificate_approve_and_deny(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=MANIFEST)
    assert kubectl("certificate", "approve", "x-client").strip() == \
        "certificatesigningrequest.certificates.k8s.io/x-client approved"
    condition = kubectl("get", "csr", "x-client", "-o",
                        "jsonpath={.status.conditions[0].type} {.status.conditions[0].reason}")
    assert condition == "Approved KubectlApprove"
    denied = kubectl.run("certificate", "deny", "x-client", check=False)
    assert 'certificate signing request "x-client" is already Approved' in denied.stderr


def test_prune_with_kubectls_default_list(kubectl: Kubectl) -> None:
    config_map = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, labels: {app: x}}\n"
                  "data: {k: v}\n")
    first = kubectl.run("apply", "--prune", "-l", "app=x", "-f", "-",
                        input=MANIFEST + "---\n" + config_map)
    assert first.returncode == 0 and "configmap/cm created" in first.stdout, first.stderr
    second = kubectl.run("apply", "--prune", "-l", "app=x", "-f", "-", input=MANIFEST)
    assert "configmap/cm pruned" in second.stdout, second.stdout
    assert "no matches for kind" not in second.stderr
    # RBAC, PDBs and the rest are not in kubectl's default prune list: they stay
    assert kubectl("get", "pdb,role", "-l", "app=x", "-o", "name").split() == [
        "poddisruptionbudget.policy/web", "role.rbac.authorization.k8s.io/x-editor"]


def test_objects_kube_apiserver_creates_for_itself(kubectl: Kubectl) -> None:
    classes = kubectl("get", "priorityclasses", "-o",
                      "jsonpath={range .items[*]}{.metadata.name}={.value} {end}").split()
    assert classes == ["system-cluster-critical=2000000000", "system-node-critical=2000001000"]
    services = kubectl("get", "apiservices", "-o", "name").split()
    for name in ("v1.", "v1.apps", "v2.autoscaling", "v1.autoscaling",
                 "v1.rbac.authorization.k8s.io", "v1.events.k8s.io"):
        assert f"apiservice.apiregistration.k8s.io/{name}" in services
    row = " ".join(kubectl("get", "apiservice", "v1.apps").splitlines()[1].split())
    assert re.fullmatch(rf"v1.apps Local True {AGE}", row), row
    assert kubectl("get", "flowschemas", "-o", "name").split() == [
        "flowschema.flowcontrol.apiserver.k8s.io/catch-all",
        "flowschema.flowcontrol.apiserver.k8s.io/exempt"]
    status = kubectl.run("get", "componentstatuses")
    assert " ".join(status.stdout.splitlines()[1].split()) == "etcd-0 Healthy ok"
    assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in status.stderr
    reserved = kubectl.run("create", "priorityclass", "system-mine", "--value=5", check=False)
    assert "priority class names with 'system-' prefix are reserved" in reserved.stderr


def document(kind: str) -> str:
    """The manifest's object of `kind`."""
    return next(doc for doc in MANIFEST.split("---") if f"\nkind: {kind}\n" in doc)


def test_field_validation_and_explain_of_added_kinds(kubectl: Kubectl) -> None:
    typo = document("ClusterRole").replace("verbs: [get, list, watch]",
                                            "verbs: [get, list, watch]\n  verbz: [get]")
    strict = kubectl.run("apply", "--validate=strict", "-f", "-", input=typo, check=False)
    assert strict.returncode == 1
    assert 'unknown field "rules[0].verbz"' in strict.stderr, strict.stderr
    warned = kubectl.run("create", "--validate=warn", "-f", "-", input=typo)
    assert 'Warning: unknown field "rules[0].verbz"' in warned.stderr
    assert "verbz" not in kubectl("get", "clusterrole", "x-reader", "-o", "json")
    wrong_type = document("PriorityClass").replace("value: 1000000", 'value: "high"')
    typed = kubectl.run("apply", "-f", "-", input=wrong_type, check=False)
    assert "cannot unmarshal string into Go struct field PriorityClass.value of type int32" \
        in typed.stderr, typed.stderr
    assert "FIELD: minAvailable <IntOrString>" in kubectl("explain", "pdb.spec.minAvailable")
    assert "roleRef <RoleRef> -required-" in kubectl("explain", "rolebinding") or \
        "roleRef\t<RoleRef>" in kubectl("explain", "rolebinding")


def test_create_token_authenticates_as_the_service_account(kubectl: Kubectl) -> None:
    kubectl("create", "serviceaccount", "builder")
    token = kubectl("create", "token", "builder", "--duration=20m").strip()
    assert token.count(".") == 2
    as_builder = kubectl.run("--token", token, "get", "sa", "builder", "-o", "name",
                             check=False)
    assert ('serviceaccounts "builder" is forbidden: User "system:serviceaccount:default:'
            'builder" cannot get resource "serviceaccounts" in API group "" in the namespace '
            '"default"') in as_builder.stderr  # no RoleBinding grants it anything
    whoami = kubectl("--token", token, "auth", "whoami", "-o",
                     "jsonpath={.status.userInfo.username}")
    assert whoami == "system:serviceaccount:default:builder"
    review = kubectl("create", "-o", "jsonpath={.status.user.username}", "-f", "-", input=(
        "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\n"
        f"spec: {{token: {token}}}\n"))
    assert review == "system:serviceaccount:default:builder"
    short = kubectl.run("create", "token", "builder", "--duration=5m", check=False)
    assert "may not specify a duration less than 10 minutes" in short.stderr
    kubectl("delete", "serviceaccount", "builder")
    refused = kubectl.run("--token", token, "get", "sa", check=False)
    assert refused.returncode == 1
    assert "Unauthorized" in refused.stderr

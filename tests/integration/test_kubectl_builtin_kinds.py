"""The kinds kubectl's default prune list names, with both real kubectls (issue 9, item 5).

`kubectl apply --prune -l ...` lists every kind of its default prune list (ConfigMap ...
ReplicationController, Job, CronJob, Ingress, DaemonSet, PersistentVolume ...) and failed with
`no matches for kind "ReplicationController"` while tinykube did not serve them all.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import Kubectl

pytestmark = [pytest.mark.kubectl]

LABELLED = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, labels: {{app: pruned}}}}
data: {{k: v}}
"""

MANIFESTS = {
    "job": """
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: perl}]
""",
    "cronjob": """
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: hello, image: busybox}]
""",
    "daemonset": """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {name: agent}}
  template:
    metadata: {labels: {name: agent}}
    spec:
      containers: [{name: a, image: busybox}]
""",
    "replicationcontroller": """
apiVersion: v1
kind: ReplicationController
metadata: {name: rc1}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: rc1}}
    spec:
      containers: [{name: a, image: nginx}]
""",
    "persistentvolume": """
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/pv1}
""",
    "ingress": """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
""",
}

# kind, the line `apply` prints, the Warning (if no controller runs it), `get` header, short name
KINDS = [
    ("job", "job.batch/pi created", "",
     "NAME STATUS COMPLETIONS DURATION AGE", "jobs"),
    ("cronjob", "cronjob.batch/hello created", "",
     "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE", "cj"),
    ("daemonset", "daemonset.apps/agent created", "",
     "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE", "ds"),
    ("replicationcontroller", "replicationcontroller/rc1 created", "",
     "NAME DESIRED CURRENT READY AGE", "rc"),
    ("persistentvolume", "persistentvolume/pv1 created", "",
     "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS "
     "VOLUMEATTRIBUTESCLASS REASON AGE", "pv"),
    ("ingress", "ingress.networking.k8s.io/web created", "",
     "NAME CLASS HOSTS ADDRESS PORTS AGE", "ing"),
]


def test_apply_prune_deletes_the_labelled_object_left_out(kubectl: Kubectl) -> None:
    both = LABELLED.format(name="kept") + "---" + LABELLED.format(name="dropped")
    kubectl("apply", "-f", "-", input=both)
    result = kubectl.run("apply", "--prune", "-l", "app=pruned", "-f", "-",
                         input=LABELLED.format(name="kept"))
    assert result.returncode == 0, result.stderr
    assert "configmap/kept unchanged" in result.stdout
    assert "configmap/dropped pruned" in result.stdout
    assert kubectl("get", "cm", "-l", "app=pruned", "-o", "name").split() == ["configmap/kept"]


@pytest.mark.parametrize(("name", "created", "warning_kind", "header", "short"), KINDS,
                         ids=[k[0] for k in KINDS])
def test_apply_get_and_warning(kubectl: Kubectl, name: str, created: str, warning_kind: str,
                               header: str, short: str) -> None:
    result = kubectl.run("apply", "-f", "-", input=MANIFESTS[name])
    assert result.stdout.strip() == created
    warning = (f"Warning: tinykube stores {warning_kind} objects but does not run them yet: "
               "no controller acts on them")
    assert (warning in result.stderr) == bool(warning_kind), result.stderr
    table = kubectl("get", short)
    assert " ".join(table.splitlines()[0].split()) == header
    assert len(table.splitlines()) == 2


def test_job_template_restart_policy_is_validated(kubectl: Kubectl) -> None:
    always = MANIFESTS["job"].replace("restartPolicy: Never", "restartPolicy: Always")
    result = kubectl.run("apply", "-f", "-", input=always, check=False)
    assert result.returncode == 1
    assert 'The Job "pi" is invalid: spec.template.spec.restartPolicy: Unsupported value: ' \
        '"Always": supported values: "OnFailure", "Never"' in result.stderr


def test_get_all_lists_the_workload_kinds(kubectl: Kubectl) -> None:
    for name in ("job", "cronjob", "daemonset", "replicationcontroller"):
        kubectl("apply", "-f", "-", input=MANIFESTS[name])
    listed = kubectl("get", "all", "-o", "name").split()
    for expected in ("job.batch/pi", "cronjob.batch/hello", "daemonset.apps/agent",
                     "replicationcontroller/rc1"):
        assert expected in listed


def test_replication_controller_runs_and_scales_its_pods(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=MANIFESTS["replicationcontroller"])
    _wait_ready(kubectl, "2")
    kubectl("scale", "rc", "rc1", "--replicas=3")
    _wait_ready(kubectl, "3")
    pods = kubectl("get", "pods", "-l", "app=rc1", "-o", "name").split()
    assert len(pods) == 3 and all(p.startswith("pod/rc1-") for p in pods)


def _wait_ready(kubectl: Kubectl, replicas: str) -> None:
    kubectl("wait", "rc/rc1", f"--for=jsonpath={{.status.readyReplicas}}={replicas}",
            "--timeout=30s")


def test_create_ingress_sends_protobuf_with_its_inline_rule_value(kubectl: Kubectl) -> None:
    """`kubectl create ingress` sends protobuf, where IngressRule embeds IngressRuleValue
    inline (`json:",inline"`): its `http` must land on the rule itself."""
    kubectl("create", "ingress", "x", "--rule=foo.com/bar=svc1:8080")
    rules = json.loads(kubectl("get", "ingress", "x", "-o", "jsonpath={.spec.rules}"))
    assert rules == [{"host": "foo.com", "http": {"paths": [{
        "backend": {"service": {"name": "svc1", "port": {"number": 8080}}},
        "path": "/bar", "pathType": "Exact"}]}}]

"""The seed scenario and the kubectl command matrix, with both real kubectl binaries.

Each test starts its own `tinykube up` (see conftest.py) and drives it only through kubectl,
asserting on what kubectl prints, as a user would read it.
"""

from __future__ import annotations

import re
import time
import urllib.parse

import yaml

from tests.conftest import TESTDATA, Cluster, Kubectl

pytestmark = [__import__("pytest").mark.kubectl]

NGINX_SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: nginx-service
spec:
  ports:
  - port: 80
    name: web
  - port: 443
    name: tls
  externalIPs: ["127.0.0.200"]
  selector:
    app: nginx
"""


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_apply_seed_manifest(kubectl: Kubectl) -> None:
    result = kubectl.run("apply", "-f", str(TESTDATA / "web.yaml"))
    assert "service/nginx created" in result.stdout
    assert "statefulset.apps/web created" in result.stdout
    assert "apps/v1beta1" in result.stderr and "1.16" in result.stderr  # the deprecation Warning

    table = rows(kubectl("get", "service"))
    assert table[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    nginx = next(r for r in table if r[0] == "nginx")
    assert nginx[1:5] == ["ClusterIP", "None", "<none>", "80/TCP"]
    assert re.fullmatch(r"\d+s", nginx[5])

    described = kubectl("describe", "service", "nginx")
    assert re.search(r"Name:\s+nginx", described)
    assert re.search(r"IP:\s+None", described)
    assert re.search(r"Port:\s+web\s+80/TCP", described)

    sts = rows(kubectl("get", "statefulsets", "web"))
    assert sts[0][:2] == ["NAME", "READY"] and sts[1][0] == "web"

    again = kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    assert "service/nginx unchanged" in again and "statefulset.apps/web unchanged" in again


def test_apply_changed_manifest_configures(kubectl: Kubectl, tmp_path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "web.yaml"
    docs = list(yaml.safe_load_all((TESTDATA / "web.yaml").read_text()))
    manifest.write_text(yaml.safe_dump_all(docs))
    kubectl("apply", "-f", str(manifest))
    docs[1]["spec"]["replicas"] = 2
    docs[0]["spec"]["ports"].append({"port": 443, "name": "tls"})
    manifest.write_text(yaml.safe_dump_all(docs))
    out = kubectl("apply", "-f", str(manifest))
    assert "service/nginx configured" in out and "statefulset.apps/web configured" in out
    assert "80/TCP,443/TCP" in kubectl("get", "svc", "nginx")
    assert kubectl("get", "sts", "web", "-o", "jsonpath={.spec.replicas}") == "2"
    deleted = kubectl("delete", "-f", str(manifest))
    assert 'service "nginx" deleted' in deleted and 'statefulset.apps "web" deleted' in deleted
    assert kubectl.run("get", "svc", "nginx", check=False).returncode == 1


def test_service_with_two_named_ports_and_external_ip(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=NGINX_SERVICE)
    row = rows(kubectl("get", "svc", "nginx-service"))[1]
    assert row[1] == "ClusterIP" and row[2].startswith("127.96.")
    assert row[3] == "127.0.0.200" and row[4] == "80/TCP,443/TCP"
    described = kubectl("describe", "svc", "nginx-service")
    assert re.search(r"Port:\s+web\s+80/TCP", described)
    assert re.search(r"Port:\s+tls\s+443/TCP", described)
    assert re.search(r"External IPs:\s+127.0.0.200", described)
    wide = rows(kubectl("get", "svc", "nginx-service", "-o", "wide"))
    assert wide[0][-1] == "SELECTOR" and wide[1][-1] == "app=nginx"


def test_get_output_formats_and_selectors(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=NGINX_SERVICE)
    assert kubectl("get", "svc", "-o", "name").split() == [
        "service/kubernetes", "service/nginx-service"]
    as_yaml = yaml.safe_load(kubectl("get", "svc", "nginx-service", "-o", "yaml"))
    assert as_yaml["spec"]["sessionAffinity"] == "None"
    assert as_yaml["spec"]["ports"][0]["targetPort"] == 80
    listed = yaml.safe_load(kubectl("get", "svc", "-o", "json"))
    assert listed["kind"] == "List" and len(listed["items"]) == 2
    assert rows(kubectl("get", "svc", "-l", "provider=kubernetes"))[1][0] == "kubernetes"
    assert rows(kubectl("get", "svc", "--field-selector", "metadata.name=nginx-service"))[1][0] \
        == "nginx-service"
    everywhere = rows(kubectl("get", "svc", "-A"))
    assert ["kube-system", "kube-dns"] in [r[:2] for r in everywhere]
    labels = rows(kubectl("get", "svc", "kubernetes", "--show-labels"))
    assert "component=apiserver,provider=kubernetes" in labels[1][-1]


def test_get_all_and_multiple_types(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    out = kubectl("get", "all")
    assert "service/nginx" in out and "statefulset.apps/web" in out
    both = kubectl("get", "svc,sts")
    assert "service/nginx" in both and "statefulset.apps/web" in both


def test_errors_are_printed_as_kubectl_prints_them(kubectl: Kubectl) -> None:
    missing = kubectl.run("get", "svc", "nope", check=False)
    assert missing.returncode == 1
    assert "Error from server (NotFound): services \"nope\" not found" in missing.stderr

    kubectl("create", "-f", "-", input=NGINX_SERVICE)
    again = kubectl.run("create", "-f", "-", input=NGINX_SERVICE, check=False)
    assert 'Error from server (AlreadyExists): error when creating "STDIN": ' \
        'services "nginx-service" already exists' in again.stderr

    bad = NGINX_SERVICE.replace("port: 80", "port: 0\n    targetPort: 80")
    invalid = kubectl.run("apply", "-f", "-", input=bad.replace("nginx-service", "bad"),
                          check=False)
    assert 'The Service "bad" is invalid: spec.ports[0].port: Invalid value: 0: ' \
        "must be between 1 and 65535, inclusive" in invalid.stderr

    no_ns = kubectl.run("create", "-n", "nowhere", "-f", "-", input=NGINX_SERVICE, check=False)
    assert 'namespaces "nowhere" not found' in no_ns.stderr


def test_replace_with_stale_resource_version_conflicts(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=NGINX_SERVICE)
    live = yaml.safe_load(kubectl("get", "svc", "nginx-service", "-o", "yaml"))
    kubectl("label", "svc", "nginx-service", "tier=web")
    result = kubectl.run("replace", "-f", "-", input=yaml.safe_dump(live), check=False)
    assert result.returncode == 1
    assert "Error from server (Conflict)" in result.stderr
    assert "the object has been modified; please apply your changes to the latest version" \
        in result.stderr


def test_server_dry_run_changes_nothing(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=NGINX_SERVICE)
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=1")
    # the Deployment controller writes its status until the rollout is done: wait for that,
    # or its write between the two snapshots reads as a dry run's
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    before = {kind: kubectl("get", kind, "-o", "jsonpath={.items[*].metadata.resourceVersion}")
              for kind in ("svc", "deploy", "cm")}
    commands = [  # (command, what kubectl prints; `patch` does not mention the dry run)
        (("delete", "svc", "nginx-service"), "(server dry run)"),
        (("delete", "deploy", "--all"), "(server dry run)"),
        (("label", "svc", "nginx-service", "tier=web"), "labeled (server dry run)"),
        (("annotate", "deploy", "web", "note=x"), "annotated (server dry run)"),
        (("scale", "deploy", "web", "--replicas=5"), "scaled (server dry run)"),
        (("create", "configmap", "never", "--from-literal=a=b"), "created (server dry run)"),
        (("patch", "svc", "nginx-service", "-p", '{"metadata":{"labels":{"p":"q"}}}'),
         "service/nginx-service patched"),
    ]
    for command, expected in commands:
        output = kubectl(*command, "--dry-run=server")
        assert expected in output, (command, output)
    after = {kind: kubectl("get", kind, "-o", "jsonpath={.items[*].metadata.resourceVersion}")
             for kind in ("svc", "deploy", "cm")}
    assert after == before


def test_explain(kubectl: Kubectl) -> None:
    """kubectl explain reads the OpenAPI v3 schemas: types, descriptions, nested fields."""
    cluster_ip = kubectl("explain", "svc.spec.clusterIP")
    assert "FIELD: clusterIP <string>" in cluster_ip
    assert "clusterIP is the IP address of the service" in cluster_ip
    assert "serviceName\t<string>" in kubectl("explain", "sts.spec")
    assert "FIELD: ports <[]ContainerPort>" in kubectl("explain", "pods.spec.containers.ports")
    assert "FIELD: targetPort <IntOrString>" in kubectl("explain", "svc.spec.ports.targetPort")


def test_auth_can_i_and_whoami(kubectl: Kubectl) -> None:
    """kubectl auth sends protobuf self reviews; the one user, the admin, may do anything."""
    assert kubectl("auth", "can-i", "get", "pods").strip() == "yes"
    assert kubectl("auth", "can-i", "create", "statefulsets.apps", "-n", "kube-system",
                   ).strip() == "yes"
    assert kubectl("auth", "can-i", "get", "/healthz").strip() == "yes"
    assert rows(kubectl("auth", "can-i", "--list"))[1][0] == "*.*"
    assert rows(kubectl("auth", "whoami"))[1:] == [
        ["Username", "tinykube-admin"], ["Groups", "[system:masters", "system:authenticated]"]]


def test_label_annotate_scale_and_patch(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    assert "labeled" in kubectl("label", "svc", "nginx", "tier=frontend")
    assert "annotated" in kubectl("annotate", "svc", "nginx", "note=hello")
    svc = yaml.safe_load(kubectl("get", "svc", "nginx", "-o", "yaml"))
    assert svc["metadata"]["labels"]["tier"] == "frontend"
    assert svc["metadata"]["annotations"]["note"] == "hello"

    assert "scaled" in kubectl("scale", "sts", "web", "--replicas=3")
    assert kubectl("get", "sts", "web", "-o", "jsonpath={.spec.replicas}") == "3"
    assert "scaled" in kubectl("scale", "sts", "web", "--current-replicas=3", "--replicas=2")
    wrong = kubectl.run("scale", "sts", "web", "--current-replicas=5", "--replicas=1",
                        check=False)
    assert "Expected replicas to be 5, was 2" in wrong.stderr

    kubectl("patch", "svc", "nginx", "--type=merge", "-p", '{"metadata":{"labels":{"a":"1"}}}')
    kubectl("patch", "svc", "nginx", "--type=json",
            "-p", '[{"op":"add","path":"/metadata/labels/b","value":"2"}]')
    before = yaml.safe_load(kubectl("get", "sts", "web", "-o", "yaml"))["metadata"]["generation"]
    kubectl("patch", "sts", "web", "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.12"}]}}}}')
    generation = yaml.safe_load(kubectl("get", "sts", "web", "-o", "yaml"))["metadata"][
        "generation"]
    assert generation == before + 1  # a template change is a spec change
    labels = yaml.safe_load(kubectl("get", "svc", "nginx", "-o", "yaml"))["metadata"]["labels"]
    assert labels["a"] == "1" and labels["b"] == "2"
    sts = yaml.safe_load(kubectl("get", "sts", "web", "-o", "yaml"))
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.12" and container["ports"][0]["containerPort"] == 80
    assert sts["metadata"]["generation"] == generation  # label patches leave the spec alone

    assert "restarted" in kubectl("rollout", "restart", "sts", "web")
    restarted = yaml.safe_load(kubectl("get", "sts", "web", "-o", "yaml"))
    assert "kubectl.kubernetes.io/restartedAt" in \
        restarted["spec"]["template"]["metadata"]["annotations"]


def test_api_resources_and_version(kubectl: Kubectl) -> None:
    table = rows(kubectl("api-resources"))
    by_name = {r[0]: r for r in table[1:]}
    assert by_name["services"][1] == "svc" and by_name["statefulsets"][1] == "sts"
    assert by_name["endpointslices"][1] == "discovery.k8s.io/v1"
    wide = kubectl("api-resources", "-o", "wide")
    # VERBS and CATEGORIES print as [a b] or a,b depending on the kubectl version
    assert re.search(r"pods\s+po\s+v1\s+true\s+Pod\s+\[?create.*watch\]?\s+\[?all\]?", wide)
    version = kubectl("version")
    assert "Server Version: v1.32" in version


def test_kubernetes_service_has_endpoints(cluster: Cluster, kubectl: Kubectl) -> None:
    """`default/kubernetes` has an Endpoints object (as kube-apiserver's endpoint reconciler
    writes it) beside its EndpointSlice, both naming the API server's address and port."""
    port = urllib.parse.urlsplit(cluster.url).port
    table = rows(kubectl("get", "endpoints", "kubernetes"))
    assert table[0][:2] == ["NAME", "ENDPOINTS"]
    assert table[1][:2] == ["kubernetes", f"127.0.0.1:{port}"]
    endpoints = yaml.safe_load(kubectl("get", "endpoints", "kubernetes", "-o", "yaml"))
    assert endpoints["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                                     "ports": [{"name": "https", "port": port,
                                                "protocol": "TCP"}]}]
    [slice_] = yaml.safe_load(kubectl("get", "endpointslices", "-l",
                                      "kubernetes.io/service-name=kubernetes",
                                      "-o", "yaml"))["items"]
    assert slice_["ports"][0]["port"] == port


def test_get_watch_sees_changes(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=NGINX_SERVICE)
    watcher = kubectl.popen("get", "svc", "nginx-service", "-w", "--output-watch-events")
    try:
        assert watcher.stdout is not None
        # The first rows come from the list; the watch starts from the list's resourceVersion,
        # so changes made from here on are delivered even before the watch request arrives.
        first = watcher.stdout.readline() + watcher.stdout.readline()
        assert "nginx-service" in first
        kubectl("label", "svc", "nginx-service", "changed=yes")
        kubectl("delete", "svc", "nginx-service")
        deadline = time.monotonic() + 10
        seen = ""
        while time.monotonic() < deadline and "DELETED" not in seen:
            seen += watcher.stdout.readline()
        assert "MODIFIED" in seen and "DELETED" in seen
    finally:
        watcher.kill()
        watcher.wait()


def test_delete_waits_for_graceful_pod_deletion(kubectl: Kubectl) -> None:
    """`kubectl delete` waits for a pod in graceful deletion to go; newer kubectls wait with
    a streaming-list watch (`sendInitialEvents=true`), which needs the end-of-initial-events
    bookmark."""
    kubectl("apply", "-f", "-", input=(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {terminationGracePeriodSeconds: 1, containers: [{name: c, image: busybox}]}\n"))
    kubectl("wait", "--for=condition=Ready", "pod/p", "--timeout=30s")
    started = time.monotonic()
    assert 'pod "p" deleted' in kubectl("delete", "pod", "p", "--timeout=30s", timeout=40)
    assert time.monotonic() - started < 20
    assert kubectl.run("get", "pod", "p", check=False).returncode == 1

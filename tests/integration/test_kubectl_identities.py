"""Identities beside the admin token, with the real kubectls: the admin's client-certificate
context (`kubernetes-admin` in `system:masters`, kubeadm's), other CA-signed certificates as
their CN and O, certificates from another CA refused at the handshake; and the ServiceAccount
token issuer's OIDC discovery, against which a generic JWT library checks a token; legacy token
Secrets filled in by the token controller. One cluster for the module (each test uses its own
names), so the file stays well under a minute."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until, wait_allowed
from tinykube.apiserver import pki

AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- {level: None, nonResourceURLs: ["/healthz*", "/livez*", "/readyz*"]}
- {level: Metadata, resources: [{group: "", resources: [secrets]}]}
- {level: RequestResponse, resources: [{group: "", resources: [configmaps]}]}
- {level: None, userGroups: [system:masters]}
- {level: Metadata}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("identities")
    (base / "policy.yaml").write_text(AUDIT_POLICY)
    running = start_cluster(base / "data", "--audit-log", str(base / "audit.log"),
                            "--audit-policy-file", str(base / "policy.yaml"))
    yield running
    running.stop()


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kubectl(request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path) -> Kubectl:
    return Kubectl(request.param, cluster.kubeconfig, tmp_path)


@pytest.fixture
def kctl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path)


def _user_kubeconfig(cluster: Cluster, tmp_path: Path, name: str) -> Path:
    """A kubeconfig for the client certificate `name.crt` in the cluster's data directory."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": name, "user": {
        "client-certificate": str(cluster.data_dir / f"{name}.crt"),
        "client-key": str(cluster.data_dir / f"{name}.key")}}]
    config["contexts"] = [{"name": name, "context": {"cluster": config["clusters"][0]["name"],
                                                     "user": name, "namespace": "default"}}]
    config["current-context"] = name
    path = tmp_path / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_client_certificates_are_their_cn_and_o(kubectl: Kubectl, cluster: Cluster,
                                                tmp_path: Path) -> None:
    whoami = kubectl("--context", "kubernetes-admin@tinykube", "auth", "whoami")
    assert [line.split(maxsplit=1) for line in whoami.splitlines()] == [
        ["ATTRIBUTE", "VALUE"], ["Username", "kubernetes-admin"],
        ["Groups", "[system:masters system:authenticated]"]]
    assert "default" in kubectl("--context", "kubernetes-admin@tinykube", "get", "ns")

    namespace = f"certs-{len(kubectl.binary)}"  # one per kubectl: the cluster is shared
    kubectl("create", "namespace", namespace)
    pki.make_client(cluster.data_dir, "jane", "jane", ["devs"])
    jane = Kubectl(kubectl.binary, _user_kubeconfig(cluster, tmp_path, "jane"), kubectl.cache_dir)
    assert jane("auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}") == \
        '["devs","system:authenticated"]'
    denied = jane.run("get", "pods", "-n", namespace, check=False).stderr
    assert ('pods is forbidden: User "jane" cannot list resource "pods" in API group "" in '
            f'the namespace "{namespace}"') in denied
    kubectl("create", "rolebinding", "devs-view", "--clusterrole=view", "--group=devs",
            "-n", namespace)
    wait_allowed(kubectl, "list", "pods", user="jane", groups=["devs"], namespace=namespace)
    assert "No resources found" in jane.run("get", "pods", "-n", namespace).stderr


def _get(url: str, ca: Path, cert: tuple[Path, Path] | None = None) -> int:
    """The status of a GET without a bearer token (with a client certificate if given)."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(*cert)
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_token_issuer_discovery_lets_a_jwt_library_verify_tokens(kctl: Kubectl,
                                                                 cluster: Cluster) -> None:
    kctl("create", "sa", "app")
    token = kctl("create", "token", "app", "--audience", "vault").strip()
    config = json.loads(kctl("--token", token, "get", "--raw",
                             "/.well-known/openid-configuration"))
    assert config == {"issuer": "https://kubernetes.default.svc.cluster.local",
                      "jwks_uri": f"{cluster.url}/openid/v1/jwks",
                      "response_types_supported": ["id_token"],
                      "subject_types_supported": ["public"],
                      "id_token_signing_alg_values_supported": ["ES256"]}
    jwks = json.loads(kctl("--token", token, "get", "--raw", "/openid/v1/jwks"))
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="vault",
                        issuer=config["issuer"])
    assert claims["sub"] == "system:serviceaccount:default:app"
    # only service accounts (and admins) may read it: system:service-account-issuer-discovery
    ca = cluster.data_dir / "ca.crt"
    assert _get(f"{cluster.url}/openid/v1/jwks", ca) == 403
    assert _get(f"{cluster.url}/healthz", ca) == 200
    admin = (cluster.data_dir / "admin.crt", cluster.data_dir / "admin.key")
    assert _get(f"{cluster.url}/openid/v1/jwks", ca, admin) == 200
    # a token signed elsewhere (HS256, as earlier tinykubes did) is a 401
    forged = jwt.encode(claims, "not-the-key-" * 4, algorithm="HS256")
    refused = kctl.run("--token", forged, "get", "pods", check=False)
    assert "You must be logged in to the server" in refused.stderr, refused.stderr


def test_a_certificate_from_another_ca_fails_the_handshake(cluster: Cluster,
                                                           tmp_path: Path) -> None:
    pki.make_ca(tmp_path)
    pki.make_client(tmp_path, "mallory", "mallory", ["system:masters"])
    mallory = (tmp_path / "mallory.crt", tmp_path / "mallory.key")
    with pytest.raises((ssl.SSLError, ConnectionResetError, urllib.error.URLError)):
        _get(f"{cluster.url}/api", cluster.data_dir / "ca.crt", mallory)


LEGACY_SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: legacy-token
  annotations: {kubernetes.io/service-account.name: legacy}
type: kubernetes.io/service-account-token
"""


def test_legacy_token_secrets_are_filled_in_and_live_with_their_secret(kctl: Kubectl) -> None:
    kctl("create", "sa", "legacy")
    kctl("apply", "-f", "-", input=LEGACY_SECRET)
    encoded = until(lambda: kctl("get", "secret", "legacy-token", "-o",
                                 "jsonpath={.data.token}"), what="the token controller")
    token = base64.b64decode(encoded).decode()
    described = kctl("describe", "secret", "legacy-token")
    assert "kubernetes.io/service-account.uid:" in described and "ca.crt:" in described
    assert kctl("--token", token, "auth", "whoami", "-o",
                "jsonpath={.status.userInfo.username}") == "system:serviceaccount:default:legacy"
    kctl("delete", "secret", "legacy-token")
    refused = kctl.run("--token", token, "get", "pods", check=False)
    assert "You must be logged in to the server" in refused.stderr, refused.stderr

    kctl("apply", "-f", "-", input=LEGACY_SECRET)
    until(lambda: kctl("get", "secret", "legacy-token", "-o", "jsonpath={.data.token}"),
          what="the token controller")
    kctl("delete", "sa", "legacy")
    until(lambda: "NotFound" in kctl.run("get", "secret", "legacy-token", check=False).stderr,
          what="the token Secret to go with its account")


def _audit_events(cluster: Cluster) -> list[dict[str, object]]:
    path = cluster.data_dir.parent / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_audit_log_writes_events_as_its_policy_says(kctl: Kubectl,
                                                        cluster: Cluster) -> None:
    kctl("create", "configmap", "audited", "--from-literal=k=v")
    kctl("get", "secrets")
    kctl("create", "sa", "auditee")
    token = kctl("create", "token", "auditee").strip()
    kctl.run("--token", token, "get", "pods", check=False)
    events = _audit_events(cluster)
    created = [e for e in events if e.get("verb") == "create" and
               e.get("objectRef") == {"resource": "configmaps", "namespace": "default",
                                      "name": "audited", "apiVersion": "v1"} and
               str(e.get("userAgent")).startswith("kubectl")]
    assert len(created) == 1 and created[0]["level"] == "RequestResponse"
    assert created[0]["stage"] == "ResponseComplete"
    assert created[0]["user"] == {"username": "tinykube-admin",  # type: ignore[comparison-overlap]
                                  "groups": ["system:masters", "system:authenticated"]}
    assert created[0]["requestObject"]["data"] == {"k": "v"}  # type: ignore[index]
    assert created[0]["responseObject"]["metadata"]["name"] == "audited"  # type: ignore[index]
    listed = [e for e in events if e.get("verb") == "list" and
              (e.get("objectRef") or {}).get("resource") == "secrets"]  # type: ignore[attr-defined]
    assert listed and all(e["level"] == "Metadata" and "responseObject" not in e for e in listed)
    denied = [e for e in events if (e.get("user") or {}).get("username")  # type: ignore[attr-defined]
              == "system:serviceaccount:default:auditee"]
    assert denied and denied[-1]["responseStatus"]["code"] == 403  # type: ignore[index]
    assert denied[-1]["annotations"] == {"authorization.k8s.io/decision": "forbid"}
    assert not [e for e in events if e.get("stage") == "RequestReceived"]
    # the scheduler binds pods as kube's scheduler user, with its own user agent
    kctl("run", "audited-pod", "--image=nginx")
    bound = until(lambda: [e for e in _audit_events(cluster)
                           if (e.get("objectRef") or {}).get("subresource") == "binding"  # type: ignore[attr-defined]
                           and (e.get("objectRef") or {}).get("name") == "audited-pod"],  # type: ignore[attr-defined]
                  what="the pod's binding in the audit log")
    assert bound[0]["user"]["username"] == "system:kube-scheduler"  # type: ignore[index]
    assert str(bound[0]["userAgent"]).startswith("kube-scheduler/v1.32.0")
    assert not [e for e in events if str(e.get("requestURI", "")).startswith("/api/v1/pods")
                and (e.get("user") or {}).get("username") == "tinykube-admin"]  # type: ignore[attr-defined]
    # the cluster DNS lists as kubeadm's CoreDNS account, and is refused nothing
    dns = [e for e in events if (e.get("user") or {}).get("username")  # type: ignore[attr-defined]
           == "system:serviceaccount:kube-system:coredns"]
    assert {(e["objectRef"]["resource"], e["verb"]) for e in dns  # type: ignore[index]
            if e["verb"] == "list"} >= {("services", "list"), ("endpointslices", "list"),
                                        ("namespaces", "list"), ("configmaps", "list")}
    assert all(e["responseStatus"]["code"] == 200 for e in dns)  # type: ignore[index]


def test_tinykube_up_refuses_a_bad_audit_policy(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("rules: [{level: Loud}]\n")
    result = subprocess.run([sys.executable, "-m", "tinykube", "up", "--data-dir",
                             str(tmp_path / "data"), "--audit-policy-file",
                             str(tmp_path / "policy.yaml")], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Invalid value for --audit-policy-file" in result.stderr, result.stderr
    assert 'invalid audit policy: rules[0].level: Invalid value: "Loud"' in result.stderr

"""CertificateSigningRequests end to end: a real `tinykube up`, both kubectls.

- Keys and requests made with `cryptography` (and with `openssl req` where installed) are
  created with `kubectl create -f`, approved with `kubectl certificate approve`, and issued by
  the signer controller: the certificate verifies against the data directory's CA, carries the
  request's subject and SANs and the requested usages, and lives `expirationSeconds` (or the
  signer's one year when unset).
- A well-formed kubelet-client request is approved by the csrapproving controller (the admin
  may create `certificatesigningrequests/nodeclient`) and issued with no `kubectl` step.
- A kubelet-client request whose organization is not `system:nodes` gets `Failed`
  (SignerValidationFailure) with upstream's message; a denied one is never signed.
- `kubectl get csr` prints kube's columns and `Approved,Issued` / `Approved,Failed` /
  `Denied`; `kubectl describe csr` the request's subject and SANs.
- The API refuses what kube refuses: less than 600 s, the legacy signer, Approved with Denied
  (through the approval subresource); a replace of the object keeps its spec and status.
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import KUBECTLS, Cluster, ComponentAudit, Kubectl, start_cluster, until

pytestmark = pytest.mark.usefixtures("host_network_unchanged")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    audit = ComponentAudit(tmp_path_factory.mktemp("csr-audit"))  # approver, signer in roles
    cluster = start_cluster(tmp_path_factory.mktemp("csr") / "data", "--no-dns", "--no-proxy",
                            "--nodes", "0", *audit.args())
    yield cluster
    assert cluster.stop() == 0
    assert audit.new_denials() == []


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kubectl(request: pytest.FixtureRequest, running: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(request.param, running.kubeconfig, cache)


def _name(attrs: dict[str, list[str]]) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, vs in attrs.items() for v in vs])


def make_request(subject: dict[str, list[str]], sans: list[x509.GeneralName] = ()) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(subject))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def openssl_request(tmp_path: Path, subject: str) -> bytes:
    key, csr = tmp_path / "openssl.key", tmp_path / "openssl.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", subject], check=True, capture_output=True)
    return csr.read_bytes()


def manifest(name: str, pem: bytes, signer: str, usages: list[str],
             seconds: int | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"request": base64.b64encode(pem).decode(), "signerName": signer,
                               "usages": usages}
    if seconds is not None:
        spec["expirationSeconds"] = seconds
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name}, "spec": spec}


def get_csr(kubectl: Kubectl, name: str) -> dict[str, object]:
    return json.loads(kubectl("get", "csr", name, "-o", "json"))


def issued(kubectl: Kubectl, name: str) -> x509.Certificate:
    def certificate() -> bytes:
        status = get_csr(kubectl, name).get("status") or {}
        assert isinstance(status, dict)
        return base64.b64decode(status.get("certificate") or "")
    pem = until(certificate, timeout=20, what=f"{name}'s certificate")
    return x509.load_pem_x509_certificate(pem)


def ca_of(cluster: Cluster) -> x509.Certificate:
    return x509.load_pem_x509_certificate((cluster.data_dir / "ca.crt").read_bytes())


def ext_usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_approve_issues_from_the_cluster_ca(kubectl: Kubectl, running: Cluster,
                                            tmp_path: Path) -> None:
    suffix = str(len(kubectl.binary))
    client, serving, bad = f"alice-{suffix}", f"node1-serving-{suffix}", f"bad-{suffix}"
    node = f"node1-client-{suffix}"
    requests = [
        manifest(client, make_request({"CN": ["alice"], "O": ["devs"]}),
                 "kubernetes.io/kube-apiserver-client", ["client auth", "digital signature"],
                 3600),
        manifest(serving, make_request({"CN": ["system:node:node1"], "O": ["system:nodes"]},
                                       [x509.DNSName("node1.example")]),
                 "kubernetes.io/kubelet-serving", ["digital signature", "server auth"]),
        manifest(bad, make_request({"CN": ["system:node:node1"], "O": ["devs"]}),
                 "kubernetes.io/kube-apiserver-client-kubelet",
                 ["digital signature", "client auth"]),
        manifest(node, make_request({"CN": ["system:node:node1"], "O": ["system:nodes"]}),
                 "kubernetes.io/kube-apiserver-client-kubelet",
                 ["digital signature", "client auth"]),
    ]
    created = kubectl("create", "-f", "-", input=yaml.safe_dump_all(requests))
    assert f"certificatesigningrequest.certificates.k8s.io/{client} created" in created
    pending = kubectl("get", "csr", client)
    assert pending.split("\n")[0].split() == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR",
                                              "REQUESTEDDURATION", "CONDITION"]
    assert pending.split("\n")[1].split()[2:] == [
        "kubernetes.io/kube-apiserver-client", "tinykube-admin", "60m", "Pending"]
    approved = kubectl("certificate", "approve", client, serving, bad)
    assert f"certificatesigningrequest.certificates.k8s.io/{serving} approved" in approved

    ca = ca_of(running)
    cert = issued(kubectl, client)
    cert.verify_directly_issued_by(ca)
    assert cert.subject == _name({"CN": ["alice"], "O": ["devs"]})
    assert ext_usages(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and not key_usage.key_encipherment
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # short-lived: NotBefore is backdated 5 minutes, NotAfter is not
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(seconds=3600 + 300)

    cert = issued(kubectl, serving)
    cert.verify_directly_issued_by(ca)
    assert ext_usages(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node1.example"]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=365)

    def failed() -> dict[str, object] | None:
        status = get_csr(kubectl, bad).get("status") or {}
        assert isinstance(status, dict)
        return next((c for c in status.get("conditions") or [] if c["type"] == "Failed"), None)
    condition = until(failed, timeout=20, what="the Failed condition")
    assert condition["reason"] == "SignerValidationFailure"
    assert condition["message"] == "subject organization is not system:nodes"
    assert "certificate" not in (get_csr(kubectl, bad).get("status") or {})

    cert = issued(kubectl, node)  # approved by csrapproving, no kubectl step
    cert.verify_directly_issued_by(ca)
    assert cert.subject == _name({"CN": ["system:node:node1"], "O": ["system:nodes"]})
    status = get_csr(kubectl, node)["status"]
    assert isinstance(status, dict)
    assert [(c["type"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("Approved", "AutoApproved",
         "Auto approving kubelet client certificate after SubjectAccessReview.")]

    table = kubectl("get", "csr", client, serving, bad, node, "--no-headers").split("\n")
    assert [row.split()[-1] for row in table if row] == \
        ["Approved,Issued", "Approved,Issued", "Approved,Failed", "Approved,Issued"]
    described = [" ".join(line.split()) for line in
                 kubectl("describe", "csr", serving).splitlines()]
    for line in ("Requesting User: tinykube-admin", "Signer: kubernetes.io/kubelet-serving",
                 "Status: Approved,Issued", "Common Name: system:node:node1",
                 "DNS Names: node1.example"):
        assert line in described, described


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_openssl_request_is_issued(kubectl: Kubectl, running: Cluster, tmp_path: Path) -> None:
    name = f"bob-{len(kubectl.binary)}"
    pem = openssl_request(tmp_path, "/CN=bob/O=devs/O=ops")
    kubectl("create", "-f", "-", input=yaml.safe_dump(manifest(
        name, pem, "kubernetes.io/kube-apiserver-client", ["client auth"], 7200)))
    kubectl("certificate", "approve", name)
    cert = issued(kubectl, name)
    cert.verify_directly_issued_by(ca_of(running))
    assert cert.subject == _name({"CN": ["bob"], "O": ["devs", "ops"]})


def test_denied_is_never_signed(kubectl: Kubectl) -> None:
    name = f"carol-{len(kubectl.binary)}"
    kubectl("create", "-f", "-", input=yaml.safe_dump(manifest(
        name, make_request({"CN": ["carol"]}), "kubernetes.io/kube-apiserver-client",
        ["client auth"])))
    assert kubectl("certificate", "deny", name).strip() == \
        f"certificatesigningrequest.certificates.k8s.io/{name} denied"
    assert kubectl("get", "csr", name, "--no-headers").split()[-1] == "Denied"
    again = kubectl.run("certificate", "approve", name, check=False)
    assert f'certificate signing request "{name}" is already Denied' in again.stderr


def test_the_api_refuses_what_kube_refuses(kubectl: Kubectl, tmp_path: Path) -> None:
    pem = make_request({"CN": ["dave"]})
    short = kubectl.run("create", "-f", "-", check=False, input=yaml.safe_dump(manifest(
        "short", pem, "kubernetes.io/kube-apiserver-client", ["client auth"], 60)))
    assert 'spec.expirationSeconds: Invalid value: 60: may not specify a duration less than ' \
           '600 seconds (10 minutes)' in short.stderr
    legacy = kubectl.run("create", "-f", "-", check=False, input=yaml.safe_dump(manifest(
        "legacy", pem, "kubernetes.io/legacy-unknown", ["client auth"])))
    assert 'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy ' \
           'signerName is not allowed via this API version' in legacy.stderr

    name = f"erin-{len(kubectl.binary)}"
    kubectl("create", "-f", "-", input=yaml.safe_dump(manifest(
        name, pem, "example.com/not-ours", ["client auth"])))
    kubectl("certificate", "approve", name)
    csr = get_csr(kubectl, name)
    status = csr["status"]
    assert isinstance(status, dict)
    status["conditions"].append({"type": "Denied", "status": "True", "reason": "Both"})
    path = f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"
    body = tmp_path / "both.json"
    body.write_text(json.dumps(csr))
    both = kubectl.run("replace", "--raw", path, "-f", str(body), check=False)
    assert 'status.conditions[1].type: Invalid value: "Denied": Approved and Denied ' \
           'conditions are mutually exclusive' in both.stderr, both.stderr

    csr = get_csr(kubectl, name)
    assert isinstance(csr["spec"], dict) and isinstance(csr["status"], dict)
    csr["spec"]["usages"] = ["server auth"]
    csr["status"]["conditions"] = []
    body.write_text(json.dumps(csr))
    kubectl("replace", "-f", str(body))
    after = get_csr(kubectl, name)
    assert after["spec"]["usages"] == ["client auth"]  # type: ignore[index]
    assert [c["type"] for c in after["status"]["conditions"]] == ["Approved"]  # type: ignore[index]

"""Joining a node with a bootstrap token, as `kubeadm token create` and `kubeadm join` do.

The cluster side (`tinykube token create`, with an admin kubeconfig):

1. a token `<id>.<secret>` ([a-z0-9], 6 + 16) as a `bootstrap.kubernetes.io/token` Secret
   `kube-system/bootstrap-token-<id>` with an expiration (`--ttl`, 24 h by default) and the
   group `system:bootstrappers:kubeadm:default-node-token`;
2. once per cluster, what kubeadm's `bootstrap-token` phase creates: the `kube-public/cluster-info`
   ConfigMap (a kubeconfig naming the server and the CA, no credentials) that anonymous users may
   read, and the bindings that let the token's group create CSRs (`system:node-bootstrapper`)
   and have them approved (`...:certificatesigningrequests:nodeclient`), and nodes renew their
   own (`selfnodeclient`). What the node agent itself may do is the Node authorizer's and
   NodeRestriction's, as in kube (`apiserver.nodeauthz`, `apiserver.noderestriction`): no
   binding grants `system:node`. A joined node also runs its own cluster DNS and service proxy
   on its one credential, where kubeadm's nodes run CoreDNS and kube-proxy as pods with
   service-account identities of their own (kube-proxy's bound to `system:node-proxier` by
   kubeadm's `kubeadm:node-proxier`); so the group `system:nodes` gets `system:node-proxier`
   (`tinykube:node-proxier`) and `tinykube:node-reader`, the rest of what that DNS and proxy
   read: pods, namespaces and NetworkPolicies (lists and watches) and the DNS's two
   ConfigMaps.

The node side (`tinykube node --token T --server URL --ca-cert-hash sha256:H`):

1. discovery: read `cluster-info` anonymously over TLS without verifying the server, then keep
   its CA only if the SHA-256 of its public key (SubjectPublicKeyInfo, DER) is `H`, as kubeadm's
   `--discovery-token-ca-cert-hash`; from then on the server is verified with that CA;
2. with the bootstrap token: an EC P-256 key and a CSR for `system:node:<name>` in
   `system:nodes`, signer `kubernetes.io/kube-apiserver-client-kubelet`; the CSR approving
   controller approves it (the group may, by the binding above), the signer signs it;
3. the node's kubeconfig (`kubelet.conf` in its data directory: server, CA, client certificate
   and key) is written and the node agent runs with it, as `system:node:<name>`.

`token_secret`, `ca_cert_hash`, `cluster_info` and `join_objects` are pure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
import secrets
import string
from collections.abc import Mapping
from typing import Any

import yaml

from tinykube.api import errors, resources
from tinykube.api.meta import rfc3339
from tinykube.client.config import ClientConfig
from tinykube.client.rest import RESTClient

Obj = dict[str, Any]
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_GROUP = "system:bootstrappers:kubeadm:default-node-token"
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CLUSTER_INFO = ("kube-public", "cluster-info")
CSR_TIMEOUT = 60.0  # seconds a joining node waits for its certificate


class JoinError(Exception):
    """A join that cannot go on: the CA does not match, the CSR was denied, ..."""


def generate_token() -> str:
    """A fresh bootstrap token, `<6>.<16>` characters of [a-z0-9]."""
    def pick(n: int) -> str:
        return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(n))
    return f"{pick(6)}.{pick(16)}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def token_secret(token: str, *, ttl: datetime.timedelta | None, now: datetime.datetime,
                 description: str = "", groups: tuple[str, ...] = (DEFAULT_GROUP,),
                 usages: tuple[str, ...] = ("authentication", "signing")) -> Obj:
    """The Secret of a bootstrap token (kubeadm's layout); `ttl` None: it never expires."""
    token_id, _, token_secret_ = token.partition(".")
    data = {"token-id": token_id, "token-secret": token_secret_}
    if ttl is not None:
        data["expiration"] = rfc3339(now + ttl)
    if description:
        data["description"] = description
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = "true"
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "data": {k: _b64(v) for k, v in data.items()}}


def ca_cert_hash(ca_pem: bytes) -> str:
    """kubeadm's CA pin: `sha256:` and the hex SHA-256 of the first certificate's
    SubjectPublicKeyInfo (DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def kubeconfig(server: str, ca_pem: bytes, user: Mapping[str, str], name: str) -> str:
    """A one-cluster kubeconfig; `user` its user entry (empty for cluster-info)."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name, "preferences": {},
        "users": [{"name": name, "user": dict(user)}]}, sort_keys=False)


def cluster_info(server: str, ca_pem: bytes) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CLUSTER_INFO[1], "namespace": CLUSTER_INFO[0]},
            "data": {"kubeconfig": kubeconfig(server, ca_pem, {}, "")}}


def _binding(kind: str, name: str, role_kind: str, role: str, subject: tuple[str, str],
             namespace: str = "") -> Obj:
    meta: Obj = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                        "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": subject[0],
                          "name": subject[1]}]}


OBSOLETE_NODE_BINDING = "tinykube:node"
NODE_READER_ROLE = "tinykube:node-reader"  # what a joined node's DNS and proxy read too


def join_objects(group: str = DEFAULT_GROUP) -> list[Obj]:
    """kubeadm's bootstrap-token phase RBAC (and a joined node's DNS and proxy roles: see the
    docstring)."""
    csr = "system:certificates.k8s.io:certificatesigningrequests"
    crb, cr = "ClusterRoleBinding", "ClusterRole"
    return [
        _binding(crb, "kubeadm:kubelet-bootstrap", cr, "system:node-bootstrapper",
                 ("Group", group)),
        _binding(crb, "kubeadm:node-autoapprove-bootstrap", cr, f"{csr}:nodeclient",
                 ("Group", group)),
        _binding(crb, "kubeadm:node-autoapprove-certificate-rotation", cr,
                 f"{csr}:selfnodeclient", ("Group", "system:nodes")),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo",
                      "namespace": CLUSTER_INFO[0]},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                    "resourceNames": [CLUSTER_INFO[1]], "verbs": ["get"]}]},
        _binding("RoleBinding", "kubeadm:bootstrap-signer-clusterinfo", "Role",
                 "kubeadm:bootstrap-signer-clusterinfo", ("User", "system:anonymous"),
                 CLUSTER_INFO[0]),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": cr,
         "metadata": {"name": NODE_READER_ROLE},
         "rules": [{"apiGroups": [""], "resources": ["namespaces", "pods"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": [""], "resources": ["configmaps"],
                    "resourceNames": ["tinykube-dns-drills", "tinykube-dns-querylog"],
                    "verbs": ["get", "list", "watch"]}]},
        _binding(crb, "tinykube:node-proxier", cr, "system:node-proxier",
                 ("Group", "system:nodes")),
        _binding(crb, NODE_READER_ROLE, cr, NODE_READER_ROLE, ("Group", "system:nodes")),
    ]


_PLURALS = {"ClusterRoleBinding": "clusterrolebindings", "ClusterRole": "clusterroles",
            "Role": "roles", "RoleBinding": "rolebindings"}


async def ensure_join_objects(client: RESTClient, server: str, ca_pem: bytes) -> None:
    """Create cluster-info and the join RBAC where missing (an existing one is kept)."""
    configmaps = resources.must("", "v1", "configmaps")
    wanted = [(configmaps, cluster_info(server, ca_pem))]
    wanted += [(resources.must("rbac.authorization.k8s.io", "v1", _PLURALS[obj["kind"]]), obj)
               for obj in join_objects()]
    for res, obj in wanted:
        with contextlib.suppress(errors.AlreadyExists):
            await client.create(res, obj, obj["metadata"].get("namespace"))
    # what earlier tinykubes made before the Node authorizer: system:node for every node
    with contextlib.suppress(errors.NotFound):
        await client.delete(resources.must("rbac.authorization.k8s.io", "v1",
                                           "clusterrolebindings"), OBSOLETE_NODE_BINDING)


# --- the node's side ------------------------------------------------------------------------


async def discover(server: str, expected_hash: str) -> bytes:
    """The cluster's CA from `cluster-info`, read without trusting the server, kept only if it
    matches `expected_hash` (`sha256:<hex>`)."""
    if not expected_hash.startswith("sha256:"):
        raise JoinError(f"unsupported CA hash {expected_hash!r}: expected sha256:<hex>")
    async with RESTClient(ClientConfig(server=server, insecure=True)) as client:
        configmap = await client.get(resources.must("", "v1", "configmaps"), CLUSTER_INFO[1],
                                     CLUSTER_INFO[0])
    try:
        info = yaml.safe_load(configmap["data"]["kubeconfig"])
        ca_pem = base64.b64decode(
            info["clusters"][0]["cluster"]["certificate-authority-data"])
        found = ca_cert_hash(ca_pem)
    except (KeyError, IndexError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise JoinError(f"the cluster-info ConfigMap has no usable CA: {exc}") from exc
    if not hmac.compare_digest(found, expected_hash.lower()):
        raise JoinError(f"the cluster's CA does not match the CA hash: it is {found}, not "
                        f"{expected_hash}")
    return ca_pem


def node_key_and_request(node: str) -> tuple[bytes, bytes]:
    """A new EC P-256 key (PEM) and its CSR (PEM) for `system:node:<node>` in system:nodes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
        key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return key_pem, request.public_bytes(serialization.Encoding.PEM)


def csr_object(node: str, request_pem: bytes) -> Obj:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "node-csr-"},
            "spec": {"request": base64.b64encode(request_pem).decode(),
                     "signerName": KUBELET_SIGNER,
                     "usages": ["digital signature", "client auth"]}}


def csr_outcome(csr: Mapping[str, Any]) -> bytes | str | None:
    """The issued certificate (PEM), a refusal (why), or None while pending."""
    status = csr.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Denied", "Failed") and condition.get("status") == "True":
            return f"{condition['type']}: {condition.get('message', '')}"
    if status.get("certificate"):
        return base64.b64decode(status["certificate"])
    return None


async def node_credential(server: str, ca_pem: bytes, token: str, node: str, *,
                          within: float = CSR_TIMEOUT,
                          poll: float = 0.2) -> tuple[bytes, bytes]:
    """(certificate, key) PEM for the node, through a CSR made with the bootstrap token."""
    key_pem, request_pem = node_key_and_request(node)
    csrs = resources.must("certificates.k8s.io", "v1", "certificatesigningrequests")
    config = ClientConfig(server=server, token=token, ca_data=ca_pem)
    async with RESTClient(config) as client:
        created = await client.create(csrs, csr_object(node, request_pem))
        name = created["metadata"]["name"]
        async with asyncio.timeout(within):
            while True:
                outcome = csr_outcome(await client.get(csrs, name))
                if isinstance(outcome, bytes):
                    return outcome, key_pem
                if isinstance(outcome, str):
                    raise JoinError(f"certificate request {name} for node {node}: {outcome}")
                await asyncio.sleep(poll)


def node_kubeconfig(server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes,
                    node: str) -> str:
    return kubeconfig(server, ca_pem, {
        "client-certificate-data": base64.b64encode(cert_pem).decode(),
        "client-key-data": base64.b64encode(key_pem).decode()}, f"system:node:{node}")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)

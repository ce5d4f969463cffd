"""The CSR signing controller: issue approved requests for kube's built-in signers.

As kube-controller-manager's `csrsigning` controllers (pkg/controller/certificates/signer),
one per signer, here one controller with a table (`SIGNERS`):

- `kubernetes.io/kube-apiserver-client`: client certificates for the API server; usages
  `client auth`, optionally with `digital signature` and `key encipherment`; any subject.
- `kubernetes.io/kube-apiserver-client-kubelet`: a kubelet's client certificate: O is exactly
  `system:nodes`, CN starts `system:node:`, no SANs, usages `client auth` and `digital
  signature` (and `key encipherment` for RSA keys).
- `kubernetes.io/kubelet-serving`: a kubelet's serving certificate: the same subject, at
  least one DNS or IP SAN, no email or URI SAN, usages `server auth` and `digital signature`
  (and `key encipherment`).

`kubernetes.io/legacy-unknown` and every other signer are left alone (validation refuses the
legacy signer in v1 anyway). `decide(csr)` is the pure part: a request that is not approved,
is denied, already failed, already has a certificate or is for another signer is ignored; one
that breaks its signer's rules gets a `Failed` condition with reason
`SignerValidationFailure` and the rule's message (upstream's words); a good one is signed for
`duration(spec.expirationSeconds)`: the signer's maximum when unset or longer, at least 600 s
(`controllers.csr_authority` does the X.509 part). Both outcomes are written through the
`status` subresource with the cached object's resourceVersion, so a stale cache is a conflict
and a retry, never a lost condition.

The CA is the data directory's (`CertificateAuthority.load`), read at the first request to
sign so that `cryptography` is imported only by clusters that use CSRs. Approval is a
person's (`kubectl certificate approve`) or, for kubelet client requests, `csrapproving`'s.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import ipaddress
import logging
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinykube import clock as clocks
from tinykube.api import certificates as certs
from tinykube.api import errors, resources
from tinykube.api.clone import clone
from tinykube.api.meta import rfc3339
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

if TYPE_CHECKING:
    from cryptography import x509

    from tinykube.controllers.csr_authority import CertificateAuthority

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]

#: kube-controller-manager's --cluster-signing-duration default (8760h), every signer's cap.
MAX_DURATION = datetime.timedelta(days=365)
MIN_DURATION = datetime.timedelta(minutes=10)  # twice the backdate: never born expired
FAILURE_REASON = "SignerValidationFailure"


@dataclasses.dataclass(frozen=True)
class Request:
    """What the signers' rules look at in a certificate request."""

    common_name: str = ""
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()


def request_view(request: x509.CertificateSigningRequest) -> Request:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    def attrs(oid: x509.ObjectIdentifier) -> tuple[str, ...]:
        return tuple(str(a.value) for a in request.subject.get_attributes_for_oid(oid))

    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    cn = attrs(NameOID.COMMON_NAME)
    return Request(
        common_name=cn[0] if cn else "", organizations=attrs(NameOID.ORGANIZATION_NAME),
        dns_names=tuple(san.get_values_for_type(x509.DNSName)),
        ip_addresses=tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)
                           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)),
        emails=tuple(san.get_values_for_type(x509.RFC822Name)),
        uris=tuple(san.get_values_for_type(x509.UniformResourceIdentifier)))


def _usages_match(usages: Collection[str], *options: frozenset[str]) -> bool:
    return set(usages) in [set(o) for o in options]


def _go_list(values: Collection[str]) -> str:
    return "[" + " ".join(sorted(values)) + "]"


_NODE_PREFIX = "system:node:"
_NOT_NODES = "subject organization is not system:nodes"
_NOT_NODE_CN = "subject common name does not begin with system:node:"
_CLIENT_USAGES = frozenset({"digital signature", "key encipherment", "client auth"})
_SERVING_USAGES = frozenset({"digital signature", "key encipherment", "server auth"})


def check_apiserver_client(_req: Request, usages: Collection[str]) -> str | None:
    """kube-apiserver-client: `client auth`, and only the two optional usages besides."""
    for usage in usages:
        if usage not in _CLIENT_USAGES:
            return f"invalid usage for client certificate: {usage}"
    if "client auth" not in usages:
        return "missing required usage for client certificate: client auth"
    return None


def check_kubelet_client(req: Request, usages: Collection[str]) -> str | None:
    """ValidateKubeletClientCSR, in upstream's order."""
    if req.organizations != ("system:nodes",):
        return _NOT_NODES
    for names, what in ((req.dns_names, "DNS"), (req.emails, "Email"),
                        (req.ip_addresses, "IP"), (req.uris, "URI")):
        if names:
            return f"{what} subjectAltNames are not allowed"
    if not req.common_name.startswith(_NODE_PREFIX):
        return _NOT_NODE_CN
    if not _usages_match(usages, _CLIENT_USAGES, _CLIENT_USAGES - {"key encipherment"}):
        return f"usages did not match {_go_list(_CLIENT_USAGES)}"
    return None


def check_kubelet_serving(req: Request, usages: Collection[str]) -> str | None:
    """ValidateKubeletServingCSR, in upstream's order."""
    if req.organizations != ("system:nodes",):
        return _NOT_NODES
    if not req.dns_names and not req.ip_addresses:
        return "DNS or IP subjectAltName is required"
    if req.emails:
        return "Email subjectAltNames are not allowed"
    if req.uris:
        return "URI subjectAltNames are not allowed"
    if not _usages_match(usages, _SERVING_USAGES, _SERVING_USAGES - {"key encipherment"}):
        return f"usages did not match {_go_list(_SERVING_USAGES)}"
    if not req.common_name.startswith(_NODE_PREFIX):
        return _NOT_NODE_CN
    return None


Check = Callable[[Request, Collection[str]], str | None]


@dataclasses.dataclass(frozen=True)
class Signer:
    check: Check
    max_duration: datetime.timedelta = MAX_DURATION


SIGNERS: dict[str, Signer] = {
    "kubernetes.io/kube-apiserver-client": Signer(check_apiserver_client),
    "kubernetes.io/kube-apiserver-client-kubelet": Signer(check_kubelet_client),
    "kubernetes.io/kubelet-serving": Signer(check_kubelet_serving),
}


def duration(expiration_seconds: Any, cap: datetime.timedelta) -> datetime.timedelta:
    """The certificate's lifetime: the request's, within [10 minutes, the signer's cap]."""
    if not isinstance(expiration_seconds, int) or isinstance(expiration_seconds, bool):
        return cap
    requested = datetime.timedelta(seconds=expiration_seconds)
    return cap if requested > cap else max(requested, MIN_DURATION)


def wanted_signer(csr: Obj) -> Signer | None:
    """The signer that should act on `csr` now, or None (see the module docstring)."""
    if not certs.is_approved(csr) or certs.has_true(csr, certs.FAILED):
        return None
    if certs.certificate_bytes(csr):
        return None
    return SIGNERS.get(str((csr.get("spec") or {}).get("signerName") or ""))


@dataclasses.dataclass(frozen=True)
class Decision:
    """Either `failure` (the Failed condition's message) or `ttl` (sign for this long)."""

    failure: str | None = None
    ttl: datetime.timedelta | None = None


def decide(signer: Signer, req: Request, spec: Obj) -> Decision:
    usages = [str(u) for u in spec.get("usages") or []]
    problem = signer.check(req, usages)
    if problem is not None:
        return Decision(failure=problem)
    return Decision(ttl=duration(spec.get("expirationSeconds"), signer.max_duration))


def failed_status(csr: Obj, message: str, now: datetime.datetime) -> dict[str, Any]:
    """`csr` (a copy) with the signer's Failed condition added."""
    new = clone(dict(csr))
    new.setdefault("status", {}).setdefault("conditions", []).append({
        "type": certs.FAILED, "status": "True", "reason": FAILURE_REASON, "message": message,
        "lastUpdateTime": rfc3339(now)})
    return new


class CSRSigningController(Controller):
    name = "csrsigning-controller"

    def __init__(self, client: RESTClient, data_dir: Path, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("certificates.k8s.io", "v1", "certificatesigningrequests")
        self.csrs = shared_informer(client, self.res)
        super().__init__(client, [self.csrs])
        self.data_dir = data_dir
        self.now = now or clocks.installed().utcnow
        self._ca: CertificateAuthority | None = None
        self.csrs.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))

    def authority(self) -> CertificateAuthority | None:
        if self._ca is None:
            from tinykube.controllers.csr_authority import CertificateAuthority

            self._ca = CertificateAuthority.load(self.data_dir)
        return self._ca

    async def sync(self, key: str) -> None:
        csr = self.csrs.cache.get(key)
        signer = wanted_signer(csr) if csr is not None else None
        if csr is None or signer is None:
            return
        ca = self.authority()
        if ca is None:
            log.info("%s: no CA in %s, not signing %s", self.name, self.data_dir, key)
            return
        spec = csr.get("spec") or {}
        request = certs.parse_request(spec.get("request"))  # validated: parse errors retry
        decision = decide(signer, request_view(request), spec)
        if decision.failure is not None:
            await self._write(failed_status(csr, decision.failure, self.now()))
            return
        assert decision.ttl is not None
        await self._write(self._issued(csr, ca, request, decision.ttl))

    def _issued(self, csr: Obj, ca: CertificateAuthority, request: x509.CertificateSigningRequest,
                ttl: datetime.timedelta) -> dict[str, Any]:
        from tinykube.controllers.csr_authority import issue

        usages = [str(u) for u in (csr.get("spec") or {}).get("usages") or []]
        pem = issue(ca, request, usages, ttl, self.now())
        new = clone(dict(csr))
        new.setdefault("status", {})["certificate"] = base64.b64encode(pem).decode()
        return new

    async def _write(self, csr: dict[str, Any]) -> None:
        try:
            await self.client.update(self.res, csr, subresource="status")
        except errors.NotFound:
            return

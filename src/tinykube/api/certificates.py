"""CertificateSigningRequest data: key usages, conditions, request parsing, update strategy.

Pure functions shared by the API server (validation, the update strategy of the main
resource and its `status` and `approval` subresources) and the signer controller
(`controllers.csrsigning`), as upstream shares `pkg/apis/certificates` between them.

- `KEY_USAGES` / `EXT_KEY_USAGES` are kube's usage names and what each becomes in a
  certificate (upstream's `keyUsageDict` / `extKeyUsageDict`); every other valid usage name
  (`any`, `s/mime`, `ipsec ...`, `microsoft sgc`, `netscape sgc`) is accepted by validation
  and, as upstream, maps to an extended key usage only where Go's x509 has one.
- `parse_request` decodes `spec.request` (base64 in JSON, PEM inside) into a
  `cryptography` request, with upstream's error wording where it can be mirrored.
- `prepare_update` is the registry strategy: an update of the object itself keeps the old
  spec and status (kube ignores changes there, it does not refuse them); `status` keeps the
  spec; `approval` keeps the spec and the certificate; conditions get their
  `lastUpdateTime`/`lastTransitionTime` filled as `populateConditionTimestamps` does.

`cryptography` is imported inside the functions that need it: the API server imports this
module at start, and most clusters never see a CSR.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tinykube.api.clone import clone

if TYPE_CHECKING:
    from cryptography import x509

Obj = dict[str, Any]

APPROVED, DENIED, FAILED = "Approved", "Denied", "Failed"
#: Condition types whose status may only be "True".
TRUE_ONLY_TYPES = (APPROVED, DENIED, FAILED)
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"

#: Usage name -> the x509 KeyUsage attribute it sets (`cryptography.x509.KeyUsage` fields).
KEY_USAGES: dict[str, str] = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
#: Usage name -> extended key usage OID (dotted), as Go's x509 constants.
EXT_KEY_USAGES: dict[str, str] = {
    "any": "2.5.29.37.0",
    "server auth": "1.3.6.1.5.5.7.3.1",
    "client auth": "1.3.6.1.5.5.7.3.2",
    "code signing": "1.3.6.1.5.5.7.3.3",
    "email protection": "1.3.6.1.5.5.7.3.4",
    "s/mime": "1.3.6.1.5.5.7.3.4",
    "ipsec end system": "1.3.6.1.5.5.7.3.5",
    "ipsec tunnel": "1.3.6.1.5.5.7.3.6",
    "ipsec user": "1.3.6.1.5.5.7.3.7",
    "timestamping": "1.3.6.1.5.5.7.3.8",
    "ocsp signing": "1.3.6.1.5.5.7.3.9",
    "microsoft sgc": "1.3.6.1.4.1.311.10.3.3",
    "netscape sgc": "2.16.840.1.113730.4.1",
}
#: Every usage name v1 accepts, sorted as `sets.String.List()` prints them.
VALID_USAGES = sorted({*KEY_USAGES, *EXT_KEY_USAGES})


class RequestError(ValueError):
    """`spec.request` is not a PEM certificate request with a valid signature."""


def decode_bytes(value: Any) -> bytes:
    """A `[]byte` field as JSON carries it (base64); undecodable text gives b""."""
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def parse_request(request: Any) -> x509.CertificateSigningRequest:
    """The request in `spec.request` (base64 of PEM), its signature checked."""
    from cryptography import x509

    pem = decode_bytes(request)
    begin = pem.find(b"-----BEGIN ")
    if begin < 0 or not pem[begin:].startswith(b"-----BEGIN CERTIFICATE REQUEST-----"):
        raise RequestError("PEM block type must be CERTIFICATE REQUEST")
    try:
        csr = x509.load_pem_x509_csr(pem[begin:])
    except ValueError as exc:
        raise RequestError(f"x509: malformed certificate request: {exc}") from exc
    try:
        valid = csr.is_signature_valid
    except ValueError as exc:  # a public key that does not parse
        raise RequestError(f"x509: {exc}") from exc
    if not valid:
        raise RequestError(_signature_failure(csr))
    return csr


def _signature_failure(csr: x509.CertificateSigningRequest) -> str:
    """Go's wording of a bad signature, by key type."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "crypto/rsa: verification error"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "x509: ECDSA verification failure"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "x509: Ed25519 verification failure"
    return "x509: signature verification failure"


def conditions(csr: Mapping[str, Any]) -> list[Obj]:
    status = csr.get("status")
    found = status.get("conditions") if isinstance(status, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def of_type(csr: Mapping[str, Any], kind: str) -> list[Obj]:
    return [c for c in conditions(csr) if c.get("type") == kind]


def has_true(csr: Mapping[str, Any], kind: str) -> bool:
    return any(c.get("status") == "True" for c in of_type(csr, kind))


def is_approved(csr: Mapping[str, Any]) -> bool:
    """Approved and not denied (upstream's IsCertificateRequestApproved)."""
    return bool(of_type(csr, APPROVED)) and not of_type(csr, DENIED)


def certificate_bytes(csr: Mapping[str, Any]) -> bytes:
    status = csr.get("status")
    return decode_bytes(status.get("certificate")) if isinstance(status, dict) else b""


def prepare_update(new: Obj, old: Obj, subresource: str, now: str) -> Obj:
    """The strategy's PrepareForUpdate for `subresource` ("" = the object); `now` is RFC 3339."""
    new = clone(new)
    new["spec"] = clone(old.get("spec") or {})
    if subresource == "":
        new["status"] = clone(old.get("status") or {})
        return new
    status = new.setdefault("status", {})
    if subresource == "approval":
        certificate = (old.get("status") or {}).get("certificate")
        if certificate is None:
            status.pop("certificate", None)
        else:
            status["certificate"] = certificate
    status["conditions"] = _timestamped(conditions(new), conditions(old), now)
    if not status["conditions"]:
        del status["conditions"]
    return new


def _timestamped(new: Sequence[Obj], old: Sequence[Obj], now: str) -> list[Obj]:
    """populateConditionTimestamps: missing times are now, or the old transition time."""
    out = []
    for condition in new:
        condition = dict(condition)
        if not condition.get("lastUpdateTime"):
            condition["lastUpdateTime"] = now
        if not condition.get("lastTransitionTime"):
            condition["lastTransitionTime"] = next(
                (o["lastTransitionTime"] for o in old
                 if o.get("type") == condition.get("type")
                 and o.get("status") == condition.get("status")
                 and o.get("lastTransitionTime")), now)
        out.append(condition)
    return out

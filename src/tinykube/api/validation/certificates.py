"""CertificateSigningRequest validation, worded as `pkg/apis/certificates/validation`.

One function for create and every update path, driven by `_Options` as upstream's
`certificateValidationOptions`: what only a subresource may change (`approval` sets the
Approved/Denied conditions, `status` sets the certificate) and what is tolerated only
because the stored object already had it (both Approved and Denied, duplicate or empty
condition types, unknown or duplicate usages, the legacy signer, an unparsable certificate).

- `spec.request` must be a PEM `CERTIFICATE REQUEST` whose signature verifies; usages are
  required, from kube's list and not repeated; the signer is `<domain>/<path>` and never
  `kubernetes.io/legacy-unknown` in v1; `expirationSeconds` is at least 600.
- Conditions have a type, one of each type at most; Approved, Denied and Failed may only be
  True; Approved and Denied exclude each other; none of the three may be removed.
- `status.certificate` holds one or more CERTIFICATE PEM blocks, set once.

Where we differ: the detail of a DER that does not parse is `cryptography`'s, not Go's asn1
message, and "updates may not modify a condition" comes without upstream's `cmp.Diff`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tinykube.api import certificates as certs
from tinykube.api.errors import FieldError
from tinykube.api.validation.names import Errors, Obj, dns1123_subdomain_errors
from tinykube.api.validation.render import raw

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)
_CONDITION_PATH = "status.conditions"


@dataclasses.dataclass(frozen=True)
class _Options:
    approval_conditions: bool = False  # the approval subresource
    set_certificate: bool = False  # the status subresource
    both_approved_and_denied: bool = False
    legacy_signer: bool = False
    duplicate_condition_types: bool = False
    empty_condition_type: bool = False
    arbitrary_certificate: bool = False
    unknown_usages: bool = False
    duplicate_usages: bool = False


def _options(new: Obj, old: Obj | None, subresource: str) -> _Options:
    if old is None:
        return _Options()
    types = [c.get("type") for c in certs.conditions(old)]
    usages = _usages(old)
    old_spec = old.get("spec") or {}
    return _Options(
        approval_conditions=subresource == "approval",
        set_certificate=subresource == "status",
        both_approved_and_denied=certs.APPROVED in types and certs.DENIED in types,
        legacy_signer=old_spec.get("signerName") == certs.LEGACY_UNKNOWN,
        duplicate_condition_types=len(set(types)) < len(types),
        empty_condition_type=any(not t for t in types),
        arbitrary_certificate=(certs.certificate_bytes(new) == certs.certificate_bytes(old)
                               or certificate_error(certs.certificate_bytes(old)) is not None),
        unknown_usages=any(u not in certs.VALID_USAGES for u in usages),
        duplicate_usages=len(set(usages)) < len(usages),
    )


def _usages(csr: Obj) -> list[Any]:
    usages = (csr.get("spec") or {}).get("usages")
    return list(usages) if isinstance(usages, list) else []


def validate_csr(csr: Obj) -> Errors:
    """A create (the registry calls `validate_csr_update` for updates)."""
    return _validate(csr, _Options())


def validate_csr_update(new: Obj, old: Obj, subresource: str) -> Errors:
    opts = _options(new, old, subresource)
    errors = _validate(new, opts)
    for kind in certs.TRUE_ONLY_TYPES:
        if len(certs.of_type(new, kind)) < len(certs.of_type(old, kind)):
            errors.append(FieldError.forbidden(
                _CONDITION_PATH, f'updates may not remove a condition of type "{kind}"'))
    if not opts.approval_conditions:
        errors += _approval_changes(new, old)
    if certs.certificate_bytes(new) != certs.certificate_bytes(old):
        if not opts.set_certificate:
            errors.append(FieldError.forbidden("status.certificate",
                                               "updates may not set certificate content"))
        elif certs.certificate_bytes(old):
            errors.append(FieldError.forbidden(
                "status.certificate", "updates may not modify existing certificate content"))
    return errors


def _approval_changes(new: Obj, old: Obj) -> Errors:
    errors: Errors = []
    for kind in (certs.APPROVED, certs.DENIED):
        before, after = certs.of_type(old, kind), certs.of_type(new, kind)
        if len(after) > len(before):
            errors.append(FieldError.forbidden(
                _CONDITION_PATH, f'updates may not add a condition of type "{kind}"'))
        elif len(after) == len(before) and after != before:
            errors.append(FieldError.forbidden(
                _CONDITION_PATH, f'updates may not modify a condition of type "{kind}"'))
    return errors


def _validate(csr: Obj, opts: _Options) -> Errors:
    spec = csr.get("spec") if isinstance(csr.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    errors = _request_errors(spec.get("request"))
    errors += _usage_errors(_usages(csr), opts)
    errors += _signer_errors(spec.get("signerName"), opts)
    seconds = spec.get("expirationSeconds")
    if isinstance(seconds, int) and seconds < 600:
        errors.append(FieldError.invalid(
            "spec.expirationSeconds", seconds,
            "may not specify a duration less than 600 seconds (10 minutes)"))
    errors += _condition_errors(certs.conditions(csr), opts)
    if not opts.arbitrary_certificate:
        problem = certificate_error(certs.certificate_bytes(csr))
        if problem is not None:
            errors.append(FieldError.invalid("status.certificate", "<certificate data>",
                                             problem))
    return errors


def _request_errors(request: Any) -> Errors:
    try:
        certs.parse_request(request)
    except certs.RequestError as exc:
        return [raw("FieldValueInvalid", "spec.request", go_bytes(certs.decode_bytes(request)),
                    str(exc))]
    return []


def go_bytes(data: bytes) -> str:
    """A `[]byte` as Go's `%#v` prints it (how field.Invalid shows `spec.request`)."""
    if not data:
        return "[]byte(nil)"
    return "[]byte{" + ", ".join(f"0x{b:x}" for b in data) + "}"


def _usage_errors(usages: list[Any], opts: _Options) -> Errors:
    if not usages:
        return [FieldError.required("spec.usages")]
    errors: Errors = []
    if not opts.unknown_usages:
        errors += [FieldError.not_supported(f"spec.usages[{i}]", u, certs.VALID_USAGES)
                   for i, u in enumerate(usages) if u not in certs.VALID_USAGES]
    if not opts.duplicate_usages:
        errors += [FieldError.duplicate(f"spec.usages[{i}]", u)
                   for i, u in enumerate(usages) if u in usages[:i]]
    return errors


def _signer_errors(signer: Any, opts: _Options) -> Errors:
    path = "spec.signerName"
    if signer == certs.LEGACY_UNKNOWN and not opts.legacy_signer:
        return [FieldError.invalid(path, signer,
                                   "the legacy signerName is not allowed via this API version")]
    if not signer or not isinstance(signer, str):
        return [FieldError.required(path)]
    parts = signer.split("/")
    if len(parts) != 2:
        return [FieldError.invalid(path, signer, "must be a fully qualified domain and path "
                                                 "of the form 'example.com/signer-name'")]
    if not parts[0]:
        return [FieldError.invalid(path, signer, "the domain segment must not be empty")]
    if not parts[1]:
        return [FieldError.invalid(path, signer, "the path segment must not be empty")]
    return [FieldError.invalid(path, signer, msg) for msg in dns1123_subdomain_errors(parts[0])]


def _condition_errors(conditions: list[Obj], opts: _Options) -> Errors:
    errors: Errors = []
    seen: set[Any] = set()
    approved = denied = False
    for i, cond in enumerate(conditions):
        at, kind, status = f"{_CONDITION_PATH}[{i}]", cond.get("type"), cond.get("status")
        if not kind and not opts.empty_condition_type:
            errors.append(FieldError.required(f"{at}.type"))
        allowed = ["True"] if kind in certs.TRUE_ONLY_TYPES else ["False", "True", "Unknown"]
        if not status:
            errors.append(FieldError.required(f"{at}.status"))
        elif status not in allowed:
            errors.append(FieldError.not_supported(f"{at}.status", status, allowed))
        approved = approved or kind == certs.APPROVED
        denied = denied or kind == certs.DENIED
        if kind in (certs.APPROVED, certs.DENIED) and approved and denied \
                and not opts.both_approved_and_denied:
            errors.append(FieldError.invalid(f"{at}.type", kind,
                                             "Approved and Denied conditions are mutually "
                                             "exclusive"))
        if kind in seen and not opts.duplicate_condition_types:
            errors.append(FieldError.duplicate(f"{at}.type", kind))
        seen.add(kind)
    return errors


def certificate_error(pem: bytes) -> str | None:
    """Why `status.certificate` is not one or more CERTIFICATE PEM blocks (None: it is)."""
    if not pem:
        return None
    from cryptography import x509

    blocks = 0
    for match in _PEM_BLOCK.finditer(pem):
        label, body = match.group(1).decode(), match.group(2)
        if label != "CERTIFICATE":
            return f'only CERTIFICATE PEM blocks are allowed, found "{label}"'
        if b":" in body.split(b"\n", 1)[0]:
            return "no PEM block headers are permitted"
        try:
            x509.load_pem_x509_certificate(match.group(0))
        except ValueError as exc:
            return f"x509: malformed certificate: {exc}"
        blocks += 1
    if blocks == 0:
        return "must contain at least one CERTIFICATE PEM block"
    return None

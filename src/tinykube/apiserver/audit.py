"""The audit log: kube-apiserver's `--audit-log-path` with an `audit.k8s.io/v1` Policy.

Each request is written as `audit.k8s.io/v1` Events, one JSON object a line, at the level the
policy's first matching rule gives (`level_of`, kube's policy checker: `users`, `userGroups`,
`verbs`, `namespaces`, `resources` with `group`/`resources`/`resourceNames` and the `*`,
`*/sub` and `res/*` forms, `nonResourceURLs` with a trailing `*`); no rule matching is `None`,
which writes nothing. Levels: `Metadata` (who, what, when, the response status), `Request`
(also `requestObject`, the body as sent), `RequestResponse` (also `responseObject`). Stages:
`RequestReceived` once the user is known and `ResponseComplete` with the status; stages the
policy or the rule lists in `omitStages` are left out; `omitManagedFields` drops
`metadata.managedFields` from the objects. A request that fails authentication is written
at stage `ResponseStarted` with code 401 and no user, as kube's failed-authentication audit
does. Events carry the authenticated user and, under impersonation, `impersonatedUser`,
`sourceIPs`, `userAgent`, `objectRef`, and the authorizer's decision annotation.

Admission adds annotations to the request's event (`annotate`, kube's admission
`Attributes.AddAnnotation`, which its audit handler copies into the event after each plugin,
whether the plugin admitted the request or not): ValidatingAdmissionPolicies' `auditAnnotations`
(`POLICY/KEY`) and their Audit failures (`validation.policy.admission.k8s.io/validation_failure`),
and admission webhooks' `auditAnnotations` (`WEBHOOK/KEY`). A key must be a qualified name with
one prefix (`prefix/name`), and a key once set keeps its first value, as kube keeps it. They are
in the last stage's event (ResponseComplete), at every level but None.

Where tinykube differs: without `--audit-policy-file` every request is logged at `Metadata`
(kube-apiserver logs nothing without a policy); there is no `ResponseStarted` stage for
long-running requests (a watch is written when it ends) and no `Panic` stage; the
`authorization.k8s.io/reason` annotation is not written; events are written at once, not
batched, and the file is never rotated.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml

from tinykube import private
from tinykube.api import errors
from tinykube.api.validation import names
from tinykube.apiserver import codec
from tinykube.apiserver.rbac import User
from tinykube.apiserver.request_info import Attributes

Obj = dict[str, Any]

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
DEFAULT_POLICY: Obj = {"rules": [{"level": "Metadata"}]}


def _has(values: Sequence[str] | None, value: str) -> bool:
    return not values or value in values


def _path_matches(path: str, spec: str) -> bool:
    return spec in ("*", path) or (spec.endswith("*") and path.startswith(spec[:-1]))


def _resource_matches(rule: Obj, attrs: Attributes) -> bool:
    if not attrs.resource_request:
        return False
    if rule.get("namespaces") and attrs.namespace not in rule["namespaces"]:
        return False
    if not rule.get("resources"):
        return True
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for group in rule["resources"]:
        if (group.get("group") or "") != attrs.api_group:
            continue
        if not group.get("resources"):
            return True
        if group.get("resourceNames") and attrs.name not in group["resourceNames"]:
            continue
        for res in group["resources"]:
            if res in (combined, "*") or (attrs.subresource and res == f"*/{attrs.subresource}") \
                    or (res.endswith("/*") and res[:-2] == attrs.resource):
                return True
    return False


def rule_matches(rule: Obj, user: User | None, attrs: Attributes) -> bool:
    """kube's `ruleMatches`: every field the rule sets must match."""
    if rule.get("users") and (user is None or user.name not in rule["users"]):
        return False
    if rule.get("userGroups") and (user is None or
                                   not set(user.groups) & set(rule["userGroups"])):
        return False
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if rule.get("namespaces") or rule.get("resources"):
        return _resource_matches(rule, attrs)
    if rule.get("nonResourceURLs"):
        return not attrs.resource_request and any(
            _path_matches(attrs.path, spec) for spec in rule["nonResourceURLs"])
    return True


@dataclasses.dataclass(frozen=True)
class Policy:
    rules: tuple[Obj, ...]
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    def decide(self, user: User | None, attrs: Attributes) -> tuple[str, frozenset[str], bool]:
        """(level, stages to leave out, omit managed fields) for a request."""
        for rule in self.rules:
            if rule_matches(rule, user, attrs):
                omit = self.omit_managed_fields if rule.get("omitManagedFields") is None \
                    else bool(rule["omitManagedFields"])
                return (str(rule.get("level", "None")),
                        self.omit_stages | frozenset(rule.get("omitStages") or ()), omit)
        return "None", self.omit_stages, self.omit_managed_fields


class PolicyError(ValueError):
    """A policy kube-apiserver would refuse to start with."""


def _invalid(field: str, value: Any, message: str) -> PolicyError:
    return PolicyError(f"invalid audit policy: {field}: Invalid value: "
                       f"{orjson.dumps(value).decode()}: {message}")


def parse_policy(doc: Any) -> Policy:
    """A Policy document (audit.k8s.io/v1), checked as kube's validation checks it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise _invalid("rules", None, "a Policy needs a list of rules")
    for name in doc.get("omitStages") or ():
        if name not in STAGES:
            raise _invalid("omitStages", name, f"must be one of {', '.join(STAGES)}")
    for i, rule in enumerate(doc["rules"]):
        if not isinstance(rule, dict) or rule.get("level") not in LEVELS:
            level = rule.get("level") if isinstance(rule, dict) else rule
            raise _invalid(f"rules[{i}].level", level, f"must be one of {', '.join(LEVELS)}")
        if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("namespaces")):
            raise _invalid(f"rules[{i}].nonResourceURLs", rule["nonResourceURLs"],
                           "rules cannot apply to both regular resources and non-resource URLs")
        for name in rule.get("omitStages") or ():
            if name not in STAGES:
                raise _invalid(f"rules[{i}].omitStages", name,
                               f"must be one of {', '.join(STAGES)}")
    return Policy(tuple(doc["rules"]), frozenset(doc.get("omitStages") or ()),
                  bool(doc.get("omitManagedFields")))


def load_policy(path: Path | None) -> Policy:
    return parse_policy(yaml.safe_load(path.read_text()) if path else DEFAULT_POLICY)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _user(user: User) -> Obj:
    out: Obj = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {key: list(values) for key, values in user.extra}
    return out


def object_ref(attrs: Attributes) -> Obj | None:
    if not attrs.resource_request:
        return None
    ref = {"resource": attrs.resource, "namespace": attrs.namespace, "name": attrs.name,
           "apiGroup": attrs.api_group, "apiVersion": attrs.api_version,
           "subresource": attrs.subresource}
    return {k: v for k, v in ref.items() if v}


def _names_its_object(req: Request) -> bool:
    """A create names its object only in the body (kube's LogRequestObject reads it there)."""
    return req.attrs is not None and req.attrs.verb == "create" and not req.attrs.name


_REF_ORDER = ("resource", "namespace", "name", "uid", "apiGroup", "apiVersion",
              "resourceVersion", "subresource")


def _completed_ref(ref: Obj, sent: Obj) -> Obj:
    """kube's LogRequestObject: the objectRef's namespace, name, uid and resourceVersion, where
    the request's path left them out, from the object sent (a create's `generateName` leaves
    the name out: it is chosen later)."""
    meta = sent.get("metadata")
    if not isinstance(meta, dict):
        return ref
    out = dict(ref)
    for key in ("namespace", "name", "uid", "resourceVersion"):
        if not out.get(key) and isinstance(meta.get(key), str) and meta[key]:
            out[key] = meta[key]
    return {key: out[key] for key in _REF_ORDER if key in out}


def _decoded(body: bytes | None, content_type: str, omit_managed_fields: bool) -> Any:
    """The body as JSON (kube logs protobuf and YAML bodies converted); None if it is none
    of those or does not parse."""
    if not body:
        return None
    try:
        obj = codec.parse_body(body, content_type or codec.JSON)
    except errors.APIError:
        return None
    if omit_managed_fields and isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)
    return obj


def response_status(code: int, body: bytes | None) -> Obj:
    """kube's responseStatus: the code, and for a failure the Status's status, message,
    reason (and details' causes are left out)."""
    status: Obj = {"metadata": {}, "code": code}
    if code >= 300 and body:
        try:
            parsed = orjson.loads(body)  # the API server's Status bodies are JSON
        except orjson.JSONDecodeError:
            return status
        if isinstance(parsed, dict) and parsed.get("kind") == "Status":
            for key in ("status", "message", "reason"):
                if parsed.get(key):
                    status[key] = parsed[key]
    return status


# The annotations of the request being served, while an audit log is on (see `annotate`). Set
# per request task, so the admission code deep in a write reaches them without a parameter.
_ANNOTATIONS: contextvars.ContextVar[dict[str, tuple[str, str]] | None] = \
    contextvars.ContextVar("tinykube_audit_annotations", default=None)


def annotate(key: str, value: str, level: str = "Metadata") -> bool:
    """kube's admission `AddAnnotationWithLevel`: add `key` to the current request's audit
    event, written when the event's level is `level` or above. False (nothing added) for a key
    that is not `prefix/name` with a qualified name, or that already has another value; True
    (unchecked) when there is no audit log to write to, as there is nothing to do."""
    annotations = _ANNOTATIONS.get()
    if annotations is None:
        return True
    if len(key.split("/")) != 2 or names.qualified_name_errors(key):
        return False
    return annotations.setdefault(key, (value, level))[0] == value


@dataclasses.dataclass
class Request:
    """What the audit knows of one request, gathered as it passes the filters."""

    uri: str
    source_ip: str
    user_agent: str
    received: datetime.datetime
    audit_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    user: User | None = None  # the authenticated user
    impersonated: User | None = None
    attrs: Attributes | None = None
    allowed: bool | None = None
    # from admission: key -> (value, the lowest level that writes it)
    annotations: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)

    def collecting(self) -> contextvars.Token[dict[str, tuple[str, str]] | None]:
        """Make this request's `annotations` those `annotate` adds to (until `reset`)."""
        return _ANNOTATIONS.set(self.annotations)

    @staticmethod
    def reset(token: contextvars.Token[dict[str, tuple[str, str]] | None]) -> None:
        _ANNOTATIONS.reset(token)


class AuditLog:
    """Writes the Events of requests to `path` (see the module docstring)."""

    def __init__(self, path: Path, policy: Policy) -> None:
        self.path = path
        self.policy = policy
        private.make_dir(path.parent)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, private.FILE_MODE)

    def __repr__(self) -> str:
        return f"AuditLog({self.path})"

    def close(self) -> None:
        os.close(self._fd)

    def _event(self, req: Request, level: str, stage: str, now: datetime.datetime) -> Obj:
        attrs = req.attrs
        event: Obj = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
                      "auditID": req.audit_id, "stage": stage, "requestURI": req.uri,
                      "verb": attrs.verb if attrs else "",
                      "user": _user(req.user) if req.user else {}}
        if req.impersonated is not None:
            event["impersonatedUser"] = _user(req.impersonated)
        event["sourceIPs"] = [req.source_ip] if req.source_ip else []
        if req.user_agent:
            event["userAgent"] = req.user_agent
        ref = object_ref(attrs) if attrs else None
        if ref:
            event["objectRef"] = ref
        event["requestReceivedTimestamp"] = _timestamp(req.received)
        event["stageTimestamp"] = _timestamp(now)
        if req.allowed is not None:
            event["annotations"] = {
                "authorization.k8s.io/decision": "allow" if req.allowed else "forbid"}
        return event

    def _write(self, event: Obj) -> None:
        os.write(self._fd, orjson.dumps(event) + b"\n")

    def received(self, req: Request, now: datetime.datetime) -> None:
        """The RequestReceived stage, once the user and the attributes are known."""
        level, omit, _ = self._decide(req)
        if level != "None" and "RequestReceived" not in omit:
            self._write(self._event(req, level, "RequestReceived", now))

    def _decide(self, req: Request) -> tuple[str, frozenset[str], bool]:
        if req.attrs is None:
            return "None", frozenset(), False
        return self.policy.decide(req.user, req.attrs)

    def completed(self, req: Request, code: int, now: datetime.datetime, *,
                  request_body: bytes | None, response_body: bytes | None,
                  request_type: str = codec.JSON, response_type: str = codec.JSON) -> None:
        """The last stage: ResponseComplete, or ResponseStarted for a failed authentication."""
        level, omit, omit_managed = self._decide(req)
        stage = "ResponseStarted" if req.user is None and code == 401 else "ResponseComplete"
        if level == "None" or stage in omit:
            return
        event = self._event(req, level, stage, now)
        written = {key: value for key, (value, least) in req.annotations.items()
                   if LEVELS.index(least) <= LEVELS.index(level)}
        if written:
            event["annotations"] = {**event.get("annotations", {}), **written}
        event["responseStatus"] = response_status(code, response_body)
        sent = _decoded(request_body, request_type, omit_managed) \
            if level in ("Request", "RequestResponse") or _names_its_object(req) else None
        if "objectRef" in event and isinstance(sent, dict):
            event["objectRef"] = _completed_ref(event["objectRef"], sent)
        if level in ("Request", "RequestResponse") and sent is not None:
            event["requestObject"] = sent
        if level == "RequestResponse":
            obj = _decoded(response_body, response_type, omit_managed)
            if obj is not None:
                event["responseObject"] = obj
        self._write(event)


"""Admission webhooks without I/O: which webhooks a request calls, what they are sent, and
what their answers mean (`apiserver.webhooks` makes the calls).

This is kube-apiserver's `plugin/webhook` (`generic`, `predicates`, `request`, `errors`) as
pure functions over JSON-like dicts:

- `hooks_of(configuration, mutating)`: the webhooks of a Validating- or
  MutatingWebhookConfiguration with v1's defaults (`failurePolicy: Fail`, `matchPolicy:
  Equivalent`, empty selectors, `timeoutSeconds: 10`, `reinvocationPolicy: Never`, rule `scope:
  "*"`, service port 443). Configurations are called in name order, their webhooks in order.
- `rule_matches(rule, attributes)`: one RuleWithOperations against a request, as upstream's
  `rules.Matcher`: operations, apiGroups, apiVersions, resources (`*` is every resource but no
  subresource, `*/*` everything, `pods/*` every subresource of pods, `*/status` every status),
  and scope (a Namespace object counts as cluster-scoped).
- `selector_matches`: a label selector (namespaceSelector on the namespace's labels, or on the
  object's own for a Namespace; objectSelector on the new or the old object's labels).
- `review_request` / `read_response`: the AdmissionReview v1 (or v1beta1) sent and the checks of
  the answer (`uid`, `apiVersion`/`kind`, `patch` with `patchType`), worded as upstream's
  `VerifyAdmissionResponse` words them; `denial` is `ToStatusErr` (`admission webhook "name"
  denied the request: ...`, code at least 400).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from tinykube.api import selectors

Obj = dict[str, Any]
ADMISSION_GROUP = "admissionregistration.k8s.io"
REVIEW_VERSIONS = ("v1", "v1beta1")  # AdmissionReview versions this server speaks
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 30  # v1 validation: 1 to 30 seconds
# kube-apiserver never calls webhooks for its admission configuration itself (a webhook that
# refuses every write could otherwise never be removed).
EXEMPT = frozenset({
    (ADMISSION_GROUP, "validatingwebhookconfigurations"),
    (ADMISSION_GROUP, "mutatingwebhookconfigurations"),
    (ADMISSION_GROUP, "validatingadmissionpolicies"),
    (ADMISSION_GROUP, "validatingadmissionpolicybindings"),
    (ADMISSION_GROUP, "mutatingadmissionpolicies"),
    (ADMISSION_GROUP, "mutatingadmissionpolicybindings"),
})


@dataclasses.dataclass(frozen=True)
class Hook:
    """One webhook of a configuration, defaulted."""

    configuration: str
    index: int
    name: str
    mutating: bool
    client_config: Obj
    rules: tuple[Obj, ...]
    failure_policy: str = "Fail"
    match_policy: str = "Equivalent"
    namespace_selector: Obj = dataclasses.field(default_factory=dict)
    object_selector: Obj = dataclasses.field(default_factory=dict)
    side_effects: str = ""
    timeout: int = DEFAULT_TIMEOUT
    review_versions: tuple[str, ...] = ()
    reinvocation: str = "Never"
    match_conditions: tuple[Obj, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return self.configuration, self.index

    @property
    def review_version(self) -> str | None:
        """The first AdmissionReview version both sides speak (None: none)."""
        return next((v for v in self.review_versions if v in REVIEW_VERSIONS), None)


@dataclasses.dataclass(frozen=True)
class Attributes:
    """A request as webhooks see it (`obj` None for DELETE, `old` None for CREATE)."""

    operation: str
    group: str
    version: str
    resource: str
    subresource: str
    kind: str
    namespace: str
    name: str
    obj: Obj | None
    old: Obj | None
    dry_run: bool = False


def _as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def hooks_of(configuration: Mapping[str, Any], mutating: bool) -> list[Hook]:
    """The webhooks of one configuration object, in order, with v1's defaults."""
    name = str(_as_dict(configuration.get("metadata")).get("name", ""))
    hooks = []
    for index, raw in enumerate(_as_list(configuration.get("webhooks"))):
        if not isinstance(raw, dict):
            continue
        timeout = raw.get("timeoutSeconds")
        hooks.append(Hook(
            configuration=name, index=index, name=str(raw.get("name", "")), mutating=mutating,
            client_config=_as_dict(raw.get("clientConfig")),
            rules=tuple(r for r in _as_list(raw.get("rules")) if isinstance(r, dict)),
            failure_policy=str(raw.get("failurePolicy") or "Fail"),
            match_policy=str(raw.get("matchPolicy") or "Equivalent"),
            namespace_selector=_as_dict(raw.get("namespaceSelector")),
            object_selector=_as_dict(raw.get("objectSelector")),
            side_effects=str(raw.get("sideEffects") or ""),
            timeout=bounded_timeout(timeout),
            review_versions=tuple(str(v) for v in _as_list(raw.get("admissionReviewVersions"))),
            reinvocation=str(raw.get("reinvocationPolicy") or "Never"),
            match_conditions=tuple(c for c in _as_list(raw.get("matchConditions"))
                                   if isinstance(c, dict))))
    return hooks


def bounded_timeout(value: Any) -> int:
    """timeoutSeconds within what v1 allows (1..30), 10 when unset."""
    if not isinstance(value, int) or isinstance(value, bool):
        return DEFAULT_TIMEOUT
    return min(max(value, 1), MAX_TIMEOUT)


def _listed(values: Any, value: str) -> bool:
    items = _as_list(values)
    return "*" in items or value in items


def _resource_listed(patterns: Any, resource: str, subresource: str) -> bool:
    for pattern in _as_list(patterns):
        res, _, sub = str(pattern).partition("/")
        if res in ("*", resource) and sub in ("*", subresource):
            return True
    return False


def _scope_matches(scope: Any, attrs: Attributes) -> bool:
    is_namespace = (attrs.group, attrs.resource) == ("", "namespaces")
    if scope == "Namespaced":
        return not is_namespace and attrs.namespace != ""
    if scope == "Cluster":
        return is_namespace or attrs.namespace == ""
    return True  # "*" or unset


def rule_matches(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """Whether one RuleWithOperations covers the request."""
    return (_listed(rule.get("operations"), attrs.operation)
            and _listed(rule.get("apiGroups"), attrs.group)
            and _listed(rule.get("apiVersions"), attrs.version)
            and _resource_listed(rule.get("resources"), attrs.resource, attrs.subresource)
            and _scope_matches(rule.get("scope", "*"), attrs))


def rules_match(hook: Hook, attrs: Attributes) -> bool:
    return any(rule_matches(rule, attrs) for rule in hook.rules)


def _labels(obj: Obj | None) -> dict[str, str]:
    return dict(_as_dict(_as_dict((obj or {}).get("metadata")).get("labels")))


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels; the empty selector matches everything."""
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    return selectors.match_labels(selectors.from_label_selector(selector), labels)


def object_selected(hook: Hook, attrs: Attributes) -> bool:
    """objectSelector: the new object's labels or the old one's (upstream's matchObject)."""
    selector = hook.object_selector
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    return any(selector_matches(selector, _labels(obj))
               for obj in (attrs.obj, attrs.old) if obj is not None)


def namespace_labels_needed(attrs: Attributes) -> bool:
    """Whether namespaceSelector looks at a stored namespace (else: the object, or nothing)."""
    return attrs.namespace != "" and (attrs.group, attrs.resource) != ("", "namespaces")


def namespace_selected(hook: Hook, attrs: Attributes, namespace_labels: Mapping[str, str]) -> bool:
    """namespaceSelector: cluster-scoped objects always match, a Namespace by its own labels."""
    if (attrs.group, attrs.resource) == ("", "namespaces"):
        return selector_matches(hook.namespace_selector, _labels(attrs.obj or attrs.old))
    if attrs.namespace == "":
        return True
    return selector_matches(hook.namespace_selector, namespace_labels)


# --- the review -------------------------------------------------------------------------------

_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                 "DELETE": "DeleteOptions"}


def review_request(hook: Hook, uid: str, attrs: Attributes, request: Attributes,
                   user: Obj) -> Obj:
    """The AdmissionReview to send: `attrs` as the webhook's rule matched it (its version),
    `request` as the client sent it."""
    body: Obj = {
        "uid": uid,
        "kind": {"group": attrs.group, "version": attrs.version, "kind": attrs.kind},
        "resource": {"group": attrs.group, "version": attrs.version,
                     "resource": attrs.resource},
        "requestKind": {"group": request.group, "version": request.version,
                        "kind": request.kind},
        "requestResource": {"group": request.group, "version": request.version,
                            "resource": request.resource},
        "name": attrs.name,
        "operation": attrs.operation,
        "userInfo": user,
        "object": attrs.obj,
        "oldObject": attrs.old,
        "dryRun": attrs.dry_run,
        "options": {"kind": _OPTIONS_KIND.get(attrs.operation, ""),
                    "apiVersion": "meta.k8s.io/v1"},
    }
    if attrs.subresource:
        body["subResource"] = attrs.subresource
        body["requestSubResource"] = request.subresource
    if attrs.namespace:
        body["namespace"] = attrs.namespace
    return {"kind": "AdmissionReview",
            "apiVersion": f"admission.k8s.io/{hook.review_version or 'v1'}", "request": body}


class InvalidResponse(Exception):
    """The webhook answered something that is not a valid AdmissionReview response."""


@dataclasses.dataclass(frozen=True)
class Response:
    allowed: bool
    status: Obj | None
    patch: list[Obj] | None
    warnings: tuple[str, ...]
    audit_annotations: Obj


def read_response(hook: Hook, uid: str, review: Any) -> Response:
    """Check an AdmissionReview answer as upstream's VerifyAdmissionResponse does."""
    if not isinstance(review, dict):
        raise InvalidResponse("webhook response was absent")
    want = f"admission.k8s.io/{hook.review_version or 'v1'}"
    response = review.get("response")
    if not isinstance(response, dict):
        raise InvalidResponse("webhook response was absent")
    if response.get("uid") != uid:
        raise InvalidResponse(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    if (review.get("apiVersion"), review.get("kind")) != (want, "AdmissionReview"):
        got = f'{review.get("apiVersion", "")}, Kind={review.get("kind", "")}'
        raise InvalidResponse(f"expected webhook response of {want}, Kind=AdmissionReview, "
                              f"got {got}")
    patch_type, raw_patch = response.get("patchType") or "", response.get("patch") or ""
    if patch_type and not raw_patch:
        raise InvalidResponse("webhook returned response.patchType but not response.patch")
    if raw_patch and not patch_type:
        raise InvalidResponse("webhook returned response.patch but not response.patchType")
    if raw_patch and not hook.mutating:
        raise InvalidResponse("validating webhook may not return response.patch")
    patch = _decode_patch(str(raw_patch), str(patch_type)) if raw_patch else None
    warnings = tuple(str(w) for w in _as_list(response.get("warnings")))
    return Response(allowed=response.get("allowed") is True,
                    status=response.get("status") if isinstance(response.get("status"), dict)
                    else None, patch=patch, warnings=warnings,
                    audit_annotations=_as_dict(response.get("auditAnnotations")))


def _decode_patch(raw: str, patch_type: str) -> list[Obj]:
    if patch_type != "JSONPatch":
        raise InvalidResponse(f'unsupported patch type "{patch_type}"')
    try:
        decoded = orjson.loads(base64.b64decode(raw, validate=True))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidResponse(f"received undecodable patch in webhook response: {exc}") \
            from exc
    if not isinstance(decoded, list) or not all(isinstance(op, dict) for op in decoded):
        raise InvalidResponse("received undecodable patch in webhook response: "
                              "json: cannot unmarshal object into Go value of type "
                              "jsonpatch.Patch")
    return decoded


def denial(hook_name: str, status: Obj | None) -> Obj:
    """The Status a refusal is answered with (upstream's ToStatusErr)."""
    result: Obj = dict(status or {})
    denied_by = f'admission webhook "{hook_name}" denied the request'
    code = result.get("code")
    if not isinstance(code, int) or code < 400:
        result["code"] = 400
    if result.get("status") in (None, "", "Success"):
        result["status"] = "Failure"
    if result.get("message"):
        result["message"] = f"{denied_by}: {result['message']}"
    elif result.get("reason"):
        result["message"] = f"{denied_by}: {result['reason']}"
    else:
        result["message"] = f"{denied_by} without explanation"
    return result



# --- defaults of the configurations (v1's SetDefaults_*Webhook) -------------------------------

def _default_webhook(webhook: Obj, mutating: bool) -> None:
    webhook.setdefault("failurePolicy", "Fail")
    webhook.setdefault("matchPolicy", "Equivalent")
    webhook.setdefault("namespaceSelector", {})
    webhook.setdefault("objectSelector", {})
    webhook.setdefault("timeoutSeconds", DEFAULT_TIMEOUT)
    if mutating:
        webhook.setdefault("reinvocationPolicy", "Never")
    for rule in _as_list(webhook.get("rules")):
        if isinstance(rule, dict):
            rule.setdefault("scope", "*")
    service = _as_dict(webhook.get("clientConfig")).get("service")
    if isinstance(service, dict):
        service.setdefault("port", 443)


def _defaulter(mutating: bool) -> Any:
    def default(configuration: Obj) -> None:
        for webhook in _as_list(configuration.get("webhooks")):
            if isinstance(webhook, dict):
                _default_webhook(webhook, mutating)
    return default


DEFAULTERS = {"MutatingWebhookConfiguration": _defaulter(True),
              "ValidatingWebhookConfiguration": _defaulter(False)}

"""Validating- and MutatingWebhookConfiguration, as `pkg/apis/admissionregistration/validation`
checks them for v1 (after defaulting): names with three segments and unique, exactly one of
`url` (https, no user info or fragment) and `service`, the review versions, `sideEffects`
(None or NoneOnDryRun), `timeoutSeconds` 1..30, the policies' enums, rules and selectors.

`matchConditions[].expression` must be given and compile (`webhooks[0].matchConditions[0].
expression: Invalid value: "...": compilation failed: ERROR: <input>:1:N: ...`): the engine's
syntax and undeclared-name errors with kube's variables (`object`, `oldObject`, `request`,
`authorizer`; no `params`), then the type checker's with every variable dyn
(`admission_policy.type_errors`), which kube finds too with its typed ones (`authorizer` is
dyn to it, so kube, which types the authorizer's chain, may refuse more of those)."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from tinykube.api import admission_policy
from tinykube.api.cel import engine
from tinykube.api.errors import FieldError
from tinykube.api.validation.meta import validate_label_selector
from tinykube.api.validation.names import Errors, Obj, dns1123_subdomain_errors

_OPERATIONS = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]
_SCOPES = ["*", "Cluster", "Namespaced"]
_REVIEW_VERSIONS = ("v1", "v1beta1")
_ENUMS = (("failurePolicy", ["Fail", "Ignore"]), ("matchPolicy", ["Equivalent", "Exact"]))
_CONDITION_VARIABLES = frozenset({"object", "oldObject", "request", "authorizer"})


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def validate_validating_configuration(obj: Obj) -> Errors:
    return _configuration(obj, mutating=False)


def validate_mutating_configuration(obj: Obj) -> Errors:
    return _configuration(obj, mutating=True)


def _configuration(obj: Obj, *, mutating: bool) -> Errors:
    errors: Errors = []
    seen: set[str] = set()
    for i, webhook in enumerate(_list(obj.get("webhooks"))):
        path = f"webhooks[{i}]"
        if not isinstance(webhook, dict):
            errors.append(FieldError.invalid(path, webhook, "must be an object"))
            continue
        name = str(webhook.get("name") or "")
        if name and name in seen:
            errors.append(FieldError.duplicate(f"{path}.name", name))
        seen.add(name)
        errors += _webhook(webhook, path, mutating=mutating)
    return errors


def _name(name: str, path: str) -> Errors:
    if not name:
        return [FieldError.required(f"{path}.name", "")]
    errors = [FieldError.invalid(f"{path}.name", name, msg)
              for msg in dns1123_subdomain_errors(name)]
    if len(name.split(".")) < 3:
        errors.append(FieldError.invalid(f"{path}.name", name,
                                         "should be a domain with at least three segments "
                                         "separated by dots"))
    return errors


def _webhook(webhook: Obj, path: str, *, mutating: bool) -> Errors:
    errors = _name(str(webhook.get("name") or ""), path)
    errors += _client_config(webhook.get("clientConfig"), f"{path}.clientConfig")
    for j, rule in enumerate(_list(webhook.get("rules"))):
        errors += _rule(rule if isinstance(rule, dict) else {}, f"{path}.rules[{j}]")
    versions = [str(v) for v in _list(webhook.get("admissionReviewVersions"))]
    if not versions:
        errors.append(FieldError.required(f"{path}.admissionReviewVersions",
                                          "must specify one of v1, v1beta1"))
    elif not any(v in _REVIEW_VERSIONS for v in versions):
        errors.append(FieldError.invalid(f"{path}.admissionReviewVersions", versions,
                                         "must include at least one of v1, v1beta1"))
    side_effects = webhook.get("sideEffects")
    if side_effects is None:
        errors.append(FieldError.required(f"{path}.sideEffects",
                                          "must specify one of None, NoneOnDryRun"))
    elif side_effects not in ("None", "NoneOnDryRun"):
        errors.append(FieldError.not_supported(f"{path}.sideEffects", side_effects,
                                               ["None", "NoneOnDryRun"]))
    timeout = webhook.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, int) or not 1 <= timeout <= 30):
        errors.append(FieldError.invalid(f"{path}.timeoutSeconds", timeout,
                                         "the timeout value must be between 1 and 30 seconds"))
    enums = [*_ENUMS, ("reinvocationPolicy", ["IfNeeded", "Never"])] if mutating else _ENUMS
    for field, allowed in enums:
        value = webhook.get(field)
        if value is not None and value not in allowed:
            errors.append(FieldError.not_supported(f"{path}.{field}", value, allowed))
    for field in ("namespaceSelector", "objectSelector"):
        selector = webhook.get(field)
        if isinstance(selector, dict):
            errors += validate_label_selector(selector, f"{path}.{field}")
    return errors + _match_conditions(webhook.get("matchConditions"), f"{path}.matchConditions")


def _match_conditions(conditions: Any, path: str) -> Errors:
    errors: Errors = []
    for k, condition in enumerate(_list(conditions)):
        field = f"{path}[{k}].expression"
        text = condition.get("expression") if isinstance(condition, dict) else None
        if not isinstance(text, str) or not text.strip():
            errors.append(FieldError.required(field, "expression is not specified"))
            continue
        problem = _condition_error(text)
        if problem is not None:
            errors.append(FieldError.invalid(field, text, f"compilation failed: {problem}"))
    return errors


@functools.lru_cache(maxsize=512)
def _condition_error(expression: str) -> str | None:
    """Why a matchCondition does not compile, as far as kube would say so too."""
    try:
        engine.compile_expression(expression, _CONDITION_VARIABLES)
    except engine.CompileError as exc:
        return str(exc)
    return admission_policy.type_errors(expression)


def _client_config(config: Any, path: str) -> Errors:
    config = config if isinstance(config, dict) else {}
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        return [FieldError.required(path, "exactly one of url or service is required")]
    if url is not None:
        return _url(str(url), f"{path}.url")
    service = service if isinstance(service, dict) else {}
    errors: Errors = []
    for field in ("namespace", "name"):
        if not service.get(field):
            errors.append(FieldError.required(f"{path}.service.{field}", "service "
                                              f"{field} is required"))
    service_path = service.get("path")
    if service_path is not None and not str(service_path).startswith("/"):
        errors.append(FieldError.invalid(f"{path}.service.path", service_path,
                                         "must start with a '/'"))
    port = service.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append(FieldError.invalid(f"{path}.service.port", port,
                                         "port is not valid: must be between 1 and 65535, "
                                         "inclusive"))
    return errors


def _url(url: str, path: str) -> Errors:
    parts = urlsplit(url)
    if parts.scheme != "https":
        return [FieldError.invalid(path, url, "'https' is the only allowed URL scheme")]
    if not parts.hostname:
        return [FieldError.invalid(path, url, "host must be specified")]
    if parts.username or parts.password:
        return [FieldError.invalid(path, url, "user information is not permitted in the URL")]
    if parts.fragment or "#" in url:
        return [FieldError.invalid(path, url, "fragments are not permitted in the URL")]
    if parts.query:
        return [FieldError.invalid(path, url, "query parameters are not permitted in the URL")]
    return []


def _rule(rule: Obj, path: str) -> Errors:
    errors: Errors = []
    operations = _list(rule.get("operations"))
    if not operations:
        errors.append(FieldError.required(f"{path}.operations", ""))
    for k, op in enumerate(operations):
        if op not in _OPERATIONS:
            errors.append(FieldError.not_supported(f"{path}.operations[{k}]", op, _OPERATIONS))
    for field in ("apiGroups", "apiVersions", "resources"):
        if not _list(rule.get(field)):
            errors.append(FieldError.required(f"{path}.{field}", ""))
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        errors.append(FieldError.not_supported(f"{path}.scope", scope, _SCOPES))
    return errors

"""ValidatingAdmissionPolicy (`admissionregistration.k8s.io/v1`): which policies a write
meets and what their CEL expressions decide, as kube's `plugin/policy/validating` decides it.
Pure: the API server's plugin (`apiserver/admission.py`) gathers the policies, bindings,
params and namespace and turns the decisions into a refusal or warnings.

For one write (`Attributes`) and one policy with one of its bindings:

1. match: the policy's `matchConstraints` and then the binding's `matchResources` (if set)
   must both match: `resourceRules` (apiGroups, apiVersions, resources incl. `*` and
   `resource/subresource`, operations, scope, resourceNames) minus `excludeResourceRules`,
   `namespaceSelector` (on the namespace's labels; a cluster-scoped object other than a
   Namespace always matches) and `objectSelector` (on the object's, or the old object's,
   labels);
2. params: with a `paramKind`, the binding's `paramRef` names one object (`name`) or selects
   several (`selector`), in `paramRef.namespace` or the request's namespace; none found is a
   denial under `parameterNotFoundAction: Deny` (a configuration error: a Deny under
   `failurePolicy: Fail` whatever the binding's actions, nothing under Ignore), a pass under
   `Allow`; each param is
   evaluated on its own (`params` is null without a `paramKind`);
3. `matchConditions`, in order: a false one means the policy does not apply;
4. `variables`, in order (each may use the ones before it), then every validation: a false
   expression fails with its `message`, `messageExpression`'s result, or
   `failed expression: <expression>`, with its `reason` (default Invalid).

   Each validation is judged on its own, so one that cannot be evaluated does not hide
   another's failure;
5. `auditAnnotations`, in order: a string (trimmed, cut at 10 KiB) is published under its key,
   an empty string or null is not; any other type is an error.

The variables are kube's: `object`, `oldObject`, `request`, `params`, `namespaceObject`,
`variables` and `authorizer` (`cel.authz`: the request user's authorizer, with
`requestResource`). Its `check(verb)` asks `Attributes.authorize`, the callable the plugin
passes in (the API server's authorizer; this module stays pure), which each evaluation hands
to the engine from the activation's `AUTHORIZE` entry.

Runtime errors (and a policy whose expressions do not compile) fail as `failurePolicy` says
(default Fail: a denial with the error, `Ignore`: no decision). Each failed validation becomes
one decision per `validationActions` entry of the binding (Deny, Warn, Audit), with its index
in `validations`; an audit annotation's error is a Deny whatever the actions are (kube's
dispatcher adds it to the denials directly).

`spec_errors(policy)` is what a policy write is refused for: expressions that do not compile
(`spec.validations[0].expression: Invalid value: "...": compilation failed: ...`), type errors
included as far as they show with every variable dyn (`object.metadata.name.startsWith(1)`);
kube, which types `object` by its kind, finds more, and checks the result's type too.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from tinykube.api import selectors
from tinykube.api.cel import authz, celtypes, checker, engine
from tinykube.api.errors import FieldError

Obj = dict[str, Any]
VARIABLES = frozenset({"object", "oldObject", "request", "params", "namespaceObject",
                       "variables", "authorizer"})
# The activation's one entry that is not a CEL variable: the callable the authorizer
# library's `check` asks (`cel.authz.Authorize`), handed to the engine for each run.
AUTHORIZE = "@authorize"
REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422,
                "RequestEntityTooLarge": 413}


@dataclasses.dataclass(frozen=True)
class Attributes:
    """One write as a policy sees it."""

    operation: str  # CREATE, UPDATE
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    namespace: str
    name: str
    obj: Obj | None
    old: Obj | None
    user: Obj  # userInfo: username, uid, groups
    subresource: str = ""
    dry_run: bool = False
    # the API server's authorizer, for `authorizer.*.check(verb)`: (attributes) -> (decision,
    # reason); None: `check` fails the evaluation
    authorize: authz.Authorize | None = dataclasses.field(default=None, compare=False)

    def request(self) -> Obj:
        """The `request` variable (an AdmissionRequest)."""
        kind = {"group": self.group, "version": self.version, "kind": self.kind}
        resource = {"group": self.group, "version": self.version, "resource": self.resource}
        return {"kind": kind, "resource": resource, "requestKind": kind,
                "requestResource": resource, "subResource": self.subresource,
                "name": self.name, "namespace": self.namespace, "operation": self.operation,
                "userInfo": self.user, "dryRun": self.dry_run}

    def authorizer_variables(self) -> Obj:
        """The `authorizer` variable (the request user's, with `requestResource`) and the
        callable its checks ask, for an activation."""
        own = {"apiGroup": self.group, "resource": self.resource,
               "subresource": self.subresource, "namespace": self.namespace, "name": self.name}
        return {"authorizer": authz.variable(self.user, own), AUTHORIZE: self.authorize}


@dataclasses.dataclass(frozen=True)
class Decision:
    """A failed validation, for one of the binding's actions."""

    action: str  # Deny, Warn, Audit
    policy: str
    binding: str
    message: str
    reason: str = "Invalid"
    index: int = 0  # the validation's place in `spec.validations` (kube's expressionIndex)

    @property
    def text(self) -> str:
        """The refusal message after `<resource> "<name>" is forbidden: `."""
        return (f"ValidatingAdmissionPolicy '{self.policy}' with binding '{self.binding}' "
                f"denied request: {self.message}")

    @property
    def warning(self) -> str:
        return (f"Validation failed for ValidatingAdmissionPolicy '{self.policy}' with binding "
                f"'{self.binding}': {self.message}")


@dataclasses.dataclass
class Outcome:
    """What one policy through one binding decided: failed validations, and the audit
    annotations it publishes (key without the policy's name, value), in spec order."""

    decisions: list[Decision] = dataclasses.field(default_factory=list)
    annotations: list[tuple[str, str]] = dataclasses.field(default_factory=list)


MAX_ANNOTATION_BYTES = 10 * 1024  # kube's maxAuditAnnotationValueLength


@functools.lru_cache(maxsize=2048)
def compiled(expression: str) -> engine.Program | engine.CompileError:
    try:
        return engine.compile_expression(expression, VARIABLES)
    except engine.CompileError as exc:
        return exc


# --- matching ------------------------------------------------------------------------------

def _listed(values: list[Any] | None, value: str) -> bool:
    values = values or []
    return "*" in values or value in values


def _rule_matches(rule: Obj, attrs: Attributes) -> bool:
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    resource_ok = any(r in ("*", resource) or (r == f"{attrs.resource}/*" and attrs.subresource)
                      or (r == "*/*") or (r.startswith("*/") and r[2:] == attrs.subresource)
                      for r in resources)
    scope = rule.get("scope") or "*"
    scope_ok = scope == "*" or (scope == "Namespaced") == attrs.namespaced
    names = rule.get("resourceNames") or []
    return (_listed(rule.get("apiGroups"), attrs.group) and
            _listed(rule.get("apiVersions"), attrs.version) and
            _listed(rule.get("operations"), attrs.operation) and
            resource_ok and scope_ok and (not names or attrs.name in names))


def matches(constraints: Obj | None, attrs: Attributes, namespace: Obj | None) -> bool:
    """Whether `matchConstraints` (or a binding's `matchResources`) matches the write."""
    if not constraints:
        return True
    rules = constraints.get("resourceRules")
    if rules is not None and not any(_rule_matches(r, attrs) for r in rules):
        return False
    if any(_rule_matches(r, attrs) for r in constraints.get("excludeResourceRules") or []):
        return False
    return _namespace_matches(constraints.get("namespaceSelector"), attrs, namespace) and \
        _object_matches(constraints.get("objectSelector"), attrs)


def _namespace_matches(selector: Obj | None, attrs: Attributes, namespace: Obj | None) -> bool:
    if not selector:
        return True
    if not attrs.namespaced and attrs.kind != "Namespace":
        return True
    target = attrs.obj if attrs.kind == "Namespace" else namespace
    labels = ((target or {}).get("metadata") or {}).get("labels") or {}
    return selectors.match_labels(selectors.from_label_selector(selector), labels)


def _object_matches(selector: Obj | None, attrs: Attributes) -> bool:
    if not selector:
        return True
    parsed = selectors.from_label_selector(selector)
    return any(selectors.match_labels(parsed, ((o or {}).get("metadata") or {}).get("labels")
                                      or {}) for o in (attrs.obj, attrs.old) if o is not None)


# --- evaluation ------------------------------------------------------------------------------

class _Failure(Exception):
    """An expression that could not be evaluated; handled as failurePolicy says."""


EvaluationFailure = _Failure  # what `conditions_hold` raises, for the mutating policies


def _run(expression: str, activation: Obj) -> Any:
    program = compiled(expression)
    if isinstance(program, engine.CompileError):
        raise _Failure(f"compilation error: {program}")
    try:
        return engine.evaluate(program, activation, authorizer=activation.get(AUTHORIZE))
    except engine.EvalError as exc:
        raise _Failure(f"expression '{expression}' resulted in error: {exc}") from None


def conditions_hold(conditions: tuple[Obj, ...] | list[Obj], variables: Obj) -> bool:
    """kube's matchConditions (of webhooks and policies): False if any condition is false;
    otherwise an evaluation error raises (`failurePolicy` decides); True if all hold."""
    error: _Failure | None = None
    for condition in conditions:
        try:
            value = _run(str(condition.get("expression", "")), variables)
        except _Failure as exc:
            error = error or exc
            continue
        if value is not True:
            return False
    if error is not None:
        raise error
    return True


def evaluate(policy: Obj, binding: Obj, attrs: Attributes, params: list[Obj | None] | None,
             namespace: Obj | None) -> Outcome:
    """The decisions of `policy` through `binding` on a write it matches; `params` None means
    the binding's params could not be found (a denial under `Deny`)."""
    spec = policy.get("spec") or {}
    bspec = binding.get("spec") or {}
    names = (policy["metadata"]["name"], binding["metadata"]["name"])
    actions = bspec.get("validationActions") or ["Deny"]
    ignore = spec.get("failurePolicy") == "Ignore"
    if params is None:  # a configuration error: a Deny under Fail, whatever the actions
        return Outcome([] if ignore else [Decision(
            "Deny", *names, "failed to configure binding: no params found for policy binding "
                            "with `Deny` parameterNotFoundAction")])
    out = Outcome()
    for param in params:
        failures, annotations, errors = _evaluate_one(spec, attrs, param, namespace, ignore)
        out.decisions += [Decision(a, *names, message, reason, index)
                          for index, message, reason in failures for a in actions]
        out.decisions += [Decision("Deny", *names, message) for message in errors]
        out.annotations += annotations
    return out


_Failed = list[tuple[int, str, str]]  # (validation index, message, reason)


def policy_activation(attrs: Attributes, param: Obj | None, namespace: Obj | None) -> Obj:
    """The CEL variables of a policy's expressions (validating and mutating) on one write."""
    return {"object": attrs.obj, "oldObject": attrs.old, "request": attrs.request(),
            "params": param, "namespaceObject": namespace, "variables": {},
            **attrs.authorizer_variables()}


def bind_variables(specs: list[Obj], activation: Obj,
                   run: Callable[[str, Obj], Any]) -> None:
    """`spec.variables` in order into `activation["variables"]` (each sees the ones before it),
    each computed by `run`, whose errors pass on."""
    values: Obj = {}
    for variable in specs:
        activation["variables"] = values
        values[str(variable.get("name"))] = run(str(variable.get("expression", "")), activation)
    activation["variables"] = values


def _evaluate_one(spec: Obj, attrs: Attributes, param: Obj | None, namespace: Obj | None,
                  ignore: bool) -> tuple[_Failed, list[tuple[str, str]], list[str]]:
    """(failed validations, published annotations, annotation errors) for one param."""
    activation = policy_activation(attrs, param, namespace)
    try:
        for condition in spec.get("matchConditions") or []:
            if _run(str(condition.get("expression", "")), activation) is not True:
                return [], [], []
        bind_variables(spec.get("variables") or [], activation, _run)
    except _Failure as exc:
        return ([] if ignore else [(0, str(exc), "Invalid")]), [], []
    failures: _Failed = []
    for index, validation in enumerate(spec.get("validations") or []):
        try:
            failure = _judge(validation, activation)
        except _Failure as exc:
            if not ignore:
                failures.append((index, str(exc), "Invalid"))
            continue
        if failure is not None:
            failures.append((index, *failure))
    annotations, errors = _annotations(spec.get("auditAnnotations") or [], activation, ignore)
    return failures, annotations, errors


def _judge(validation: Obj, activation: Obj) -> tuple[str, str] | None:
    """None if the validation holds, else its (message, reason); raises `_Failure`."""
    expression = str(validation.get("expression", ""))
    result = _run(expression, activation)
    if result is True:
        return None
    if not isinstance(result, bool):
        raise _Failure(f"expression '{expression}' resulted in error: no such overload")
    return _message(validation, activation), str(validation.get("reason") or "Invalid")


def _annotations(specs: list[Obj], activation: Obj,
                 ignore: bool) -> tuple[list[tuple[str, str]], list[str]]:
    published: list[tuple[str, str]] = []
    errors: list[str] = []
    for item in specs:
        expression = str(item.get("valueExpression", ""))
        try:
            value = _run(expression, activation)
        except _Failure as exc:
            if not ignore:
                errors.append(str(exc))
            continue
        if isinstance(value, str):
            text = value.strip()
            if text:
                cut = text.encode()[:MAX_ANNOTATION_BYTES].decode(errors="ignore")
                published.append((str(item.get("key", "")), cut))
        elif value is not None:
            errors.append(f"valueExpression '{expression}' resulted in unsupported return "
                          f"type: {cel_type(value)}. Return type must be either string or "
                          "null.")
    return published, errors


def cel_type(value: Any) -> str:
    """CEL's name of a value's type (`int`, `map`, ...)."""
    for kind, name in ((bool, "bool"), (int, "int"), (float, "double"), (bytes, "bytes"),
                       (list, "list"), (dict, "map")):
        if isinstance(value, kind):
            return name
    return type(value).__name__.lower()


def _message(validation: Obj, activation: Obj) -> str:
    if validation.get("messageExpression"):
        try:
            text = _run(str(validation["messageExpression"]), activation)
        except _Failure:
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text:
            return text.strip()
    if validation.get("message"):
        return str(validation["message"])
    return f"failed expression: {str(validation.get('expression', '')).strip()}"


# --- the policy write ---------------------------------------------------------------------------

def spec_errors(policy: Obj) -> list[FieldError]:
    """Expressions of a ValidatingAdmissionPolicy that do not compile, and missing ones."""
    spec = policy.get("spec") or {}
    errs: list[FieldError] = []
    fields = (("validations", "expression"), ("validations", "messageExpression"),
              ("matchConditions", "expression"), ("variables", "expression"),
              ("auditAnnotations", "valueExpression"))
    for section, field in fields:
        for index, item in enumerate(spec.get(section) or []):
            if not isinstance(item, dict):
                continue
            path = f"spec.{section}[{index}].{field}"
            text = item.get(field)
            if text is None or text == "":
                if field in ("expression", "valueExpression"):
                    errs.append(FieldError.required(path, ""))
                continue
            problem = _compile_error(str(text))
            if problem is not None:
                what = "messageExpression compilation failed" if field == "messageExpression" \
                    else "compilation failed"
                errs.append(FieldError.invalid(path, str(text), f"{what}: {problem}"))
    if not spec.get("validations") and not spec.get("auditAnnotations"):
        errs.append(FieldError.required("spec.validations",
                                        "validations or auditAnnotations must contain at "
                                        "least one item"))
    for index, validation in enumerate(spec.get("validations") or []):
        reason = (validation or {}).get("reason")
        if reason is not None and reason not in REASON_CODES:
            errs.append(FieldError.not_supported(f"spec.validations[{index}].reason", reason,
                                                 sorted(REASON_CODES)))
    return errs


_DYN_VARIABLES = dict.fromkeys(VARIABLES, celtypes.DYN)  # `authorizer` too: dyn, as its chain


def _compile_error(expression: str) -> str | None:
    """Why `expression` does not compile: the engine's syntax and name errors, then the type
    checker's with every variable dyn (kube types `object` by its kind, `request` and
    `namespaceObject` by theirs: an error found with dyn ones is one kube finds too)."""
    program = compiled(expression)
    if isinstance(program, engine.CompileError):
        return str(program)
    return type_errors(expression)


def type_errors(expression: str) -> str | None:
    """The type checker's errors for `expression` with every variable dyn, as cel-go prints
    them, or None: what every write of a CEL-bearing configuration (this policy, the mutating
    one, webhooks' matchConditions) is refused for beyond the engine's compile errors. Names
    the engine did not declare are dyn to the checker too, so one variable set serves all."""
    typed = checker.check(expression, _DYN_VARIABLES)
    return checker.format_errors(expression, typed.issues) if typed.issues else None


def binding_errors(binding: Obj) -> list[FieldError]:
    spec = binding.get("spec") or {}
    errs: list[FieldError] = []
    if not spec.get("policyName"):
        errs.append(FieldError.required("spec.policyName", ""))
    actions = spec.get("validationActions")
    if not actions:
        errs.append(FieldError.required("spec.validationActions", ""))
    for index, action in enumerate(actions or []):
        if action not in ("Audit", "Deny", "Warn"):
            errs.append(FieldError.not_supported(f"spec.validationActions[{index}]", action,
                                                 ["Audit", "Deny", "Warn"]))
    if "Deny" in (actions or []) and "Warn" in (actions or []):
        errs.append(FieldError.invalid("spec.validationActions", actions,
                                       "must not contain both Deny and Warn (repeating the "
                                       "same validation failure information in the API "
                                       "response and headers serves no purpose)"))
    return errs

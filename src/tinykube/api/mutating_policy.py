"""MutatingAdmissionPolicy (`admissionregistration.k8s.io/v1alpha1`, KEP-3962, alpha in 1.32):
what a policy's mutations do to a write, as kube's `plugin/policy/mutating` does it. Pure: the
API server's step (`apiserver/mutating_policies.py`) gathers policies, bindings, params and the
namespace, and applies the result.

For one write and one policy with one of its bindings (and one param):

1. match: exactly as ValidatingAdmissionPolicy (`admission_policy.matches` on the policy's
   `matchConstraints` and the binding's `matchResources`; the params are found as there);
2. `matchConditions`, in order (`admission_policy.conditions_hold`): a false one skips the
   policy, an error fails it;
3. `variables`, in order, each seeing the ones before it (computed once per invocation, on the
   object as it came to the policy; kube computes them lazily, at first use);
4. each of `mutations`, in order, on the object the previous one left:
   - `JSONPatch`: the expression returns a list of `JSONPatch{op, path, from, value}`, applied
     as RFC 6902 (`api.patch.jsonpatch`); a failed `test` leaves the object as it was (kube:
     "the patch must not be applied"), any other failure is `JSONPath: <reason>`;
   - `ApplyConfiguration`: the expression returns `Object{...}`, merged into the object as
     server-side apply's structured merge does (`api.structured.merge`, the kind's shape:
     maps key by key, associative lists by key, atomic values replaced). As in kube, the apply
     configuration may not set an atomic list or map (`may not mutate atomic arrays, maps or
     structs: .spec.x`; of atomic structs only the workloads' `spec.selector`) nor a field
     the kind's schema lacks (`.spec.replicasx: field not declared in schema`). No field
     ownership is recorded.

Errors (an expression that fails, a patch that does not apply, a type mismatch) are
`PolicyError`s; the plugin fails the write with them under `failurePolicy: Fail` (default) and
ignores them under `Ignore`.

The constructions are not CEL that cel-rust evaluates: `api.cel.construction` rewrites them
into map literals before compiling (see there); compile errors are those of the expression as
written, and so are type errors: the type checker reads constructions itself (as dyn, with
every variable dyn: `admission_policy.type_errors`), so its columns are the user's. To the
evaluation `JSONPatch{...}` and `Object{...}` are maps; a JSONPatch expression's items are read
for `op`, `path`, `from` and `value`, an ApplyConfiguration's result must be a map.

`spec_errors` / `binding_errors` are the write's validation, with kube's messages (required
fields, the enums of `failurePolicy`, `reinvocationPolicy` and `patchType`, the operations a
mutation may match, expressions that do not compile or type-check); v1alpha1's defaults are
`api.defaults_policy`'s.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from tinykube.api import admission_policy as vap
from tinykube.api import errors, schema, structured
from tinykube.api.cel import construction, engine
from tinykube.api.errors import FieldError
from tinykube.api.patch import jsonpatch
from tinykube.api.patch.failures import PatchRejected

Obj = dict[str, Any]
GROUP, VERSION = "admissionregistration.k8s.io", "v1alpha1"
JSON_PATCH, APPLY_CONFIGURATION = "JSONPatch", "ApplyConfiguration"
PATCH_TYPES = [APPLY_CONFIGURATION, JSON_PATCH]
FAILURE_POLICIES = ["Fail", "Ignore"]
REINVOCATION_POLICIES = ["IfNeeded", "Never"]
MUTABLE_OPERATIONS = ["*", "CONNECT", "CREATE", "UPDATE"]  # kube's supportedMutatingOperations


class PolicyError(Exception):
    """A mutation that failed; `str()` is what kube puts after `denied request: `."""


@dataclasses.dataclass(frozen=True)
class Compiled:
    program: engine.Program | None
    error: str = ""  # the compile error's text
    mismatches: tuple[str, ...] = ()  # construction type names that are not their paths


@functools.lru_cache(maxsize=1024)
def compiled(expression: str) -> Compiled:
    """The program of the rewritten expression; errors are reported on the expression as
    written (cel-rust parses constructions, it only cannot run them), so their columns and
    the echoed source are the user's."""
    rewritten = construction.rewrite(expression)
    try:
        engine.compile_expression(expression, vap.VARIABLES)
        program = engine.compile_expression(rewritten.source, vap.VARIABLES)
    except engine.CompileError as exc:
        return Compiled(None, str(exc))
    return Compiled(program, "", rewritten.mismatches)


# --- evaluation ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Target:
    """What an ApplyConfiguration is merged with: the object's kind and shape."""

    api_version: str
    kind: str
    shape: structured.Shape
    builtin: bool = True  # a built-in kind: unknown fields are checked against its schema


def conditions_hold(policy: Obj, activation: Obj) -> bool:
    """The policy's matchConditions; raises PolicyError if one cannot be evaluated."""
    try:
        return vap.conditions_hold((policy.get("spec") or {}).get("matchConditions") or [],
                                   activation)
    except vap.EvaluationFailure as exc:
        raise PolicyError(str(exc)) from None


@dataclasses.dataclass
class Outcome:
    """What one invocation did: the object it left (None: a matchCondition was false) and
    the mutations that failed (each left the object as it was)."""

    obj: Obj | None
    errors: list[str] = dataclasses.field(default_factory=list)


def mutate(policy: Obj, attrs: vap.Attributes, param: Obj | None, namespace: Obj | None,
           target: Target) -> Outcome:
    """The policy's mutations, in order, each on the object the previous one left (new
    dicts; `attrs.obj` is not changed). A failed matchCondition or variable raises
    PolicyError; a failed mutation is reported and the next one runs, as in kube."""
    spec = policy.get("spec") or {}
    values = vap.policy_activation(attrs, param, namespace)
    if not conditions_hold(policy, values):
        return Outcome(None)
    vap.bind_variables(spec.get("variables") or [], values, _run)
    out = Outcome(attrs.obj)
    for mutation in spec.get("mutations") or []:
        if out.obj is None:
            break
        values["object"] = out.obj
        try:
            out.obj = apply_mutation(mutation, out.obj, values, target)
        except PolicyError as exc:
            out.errors.append(str(exc))
    return out


def _run(expression: str, values: Obj) -> Any:
    found = compiled(expression)
    if found.program is None:
        raise PolicyError(f"compilation failed: {found.error}")
    try:
        result = engine.evaluate(found.program, values, authorizer=values.get(vap.AUTHORIZE))
    except engine.EvalError as exc:
        raise PolicyError(f"expression '{expression}' resulted in error: {exc}") from None
    if found.mismatches:
        raise PolicyError(f"type mismatch: {found.mismatches[0]}")
    return result


def apply_mutation(mutation: Obj, obj: Obj, values: Obj, target: Target) -> Obj:
    """One mutation of `obj` (not changed; the result is a new object)."""
    if mutation.get("patchType") == JSON_PATCH:
        expression = str((mutation.get("jsonPatch") or {}).get("expression", ""))
        return apply_json_patch(obj, _run(expression, values))
    expression = str((mutation.get("applyConfiguration") or {}).get("expression", ""))
    return apply_configuration(obj, _run(expression, values), target)


def json_patch_operations(result: Any) -> list[Obj]:
    """A JSONPatch expression's result as RFC 6902 operations."""
    if not isinstance(result, list):
        raise PolicyError("type mismatch: JSONPatchType.expression should evaluate to array")
    operations = []
    for item in result:
        if not isinstance(item, dict):
            raise PolicyError("type mismatch: JSONPatchType.expression should evaluate to "
                              "array of JSONPatch")
        operation: Obj = {"op": str(item.get("op", "")), "path": str(item.get("path", ""))}
        if item.get("from"):
            operation["from"] = str(item["from"])
        if "value" in item:
            operation["value"] = item["value"]
        operations.append(operation)
    return operations


def apply_json_patch(obj: Obj, result: Any) -> Obj:
    try:
        return jsonpatch.json_patch(obj, json_patch_operations(result))
    except PatchRejected as exc:
        if exc.cause.endswith("test failed"):
            return obj  # kube: a failed test means the patch is not applied
        raise PolicyError(f"JSONPath: {exc.cause}") from None
    except errors.APIError as exc:
        raise PolicyError(f"JSONPath: {exc.message}") from None


def apply_configuration(obj: Obj, result: Any, target: Target) -> Obj:
    if not isinstance(result, dict):
        raise PolicyError("unsupported return type from ApplyConfiguration expression: "
                          f"{vap.cel_type(result)}")
    if target.builtin and schema.has_kind(target.api_version, target.kind):
        unknown = schema.unknown_fields(target.api_version, target.kind, result)
        if unknown:
            raise PolicyError("error applying patch: failed to convert patch object to typed "
                              f"object: .{unknown[0]}: field not declared in schema")
    found = atomics(result, target.shape)
    if target.builtin:
        spec = result.get("spec")
        if isinstance(spec, dict) and "selector" in spec and target.kind in SELECTOR_KINDS:
            found.insert(0, ".spec.selector")
    if found:
        raise PolicyError("error applying patch: invalid ApplyConfiguration: may not mutate "
                          f"atomic arrays, maps or structs: {', '.join(found)}")
    merged: Obj = structured.merge(obj, result, target.shape)
    return merged


# Kinds whose `spec.selector` is a LabelSelector, a `+structType=atomic` struct (the shapes
# know atomic lists and maps, not atomic structs; this is the one an apply configuration is
# most likely to set).
SELECTOR_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
                            "PodDisruptionBudget"})


def atomics(value: Any, shape: structured.Shape, path: str = "") -> list[str]:
    """Paths of the atomic lists and maps an apply configuration sets (kube's findAtomics)."""
    found: list[str] = []
    if isinstance(value, dict):
        if shape.atomic_map() and path:
            found.append(path)
        for key, item in value.items():
            found += atomics(item, shape.child(key), f"{path}.{key}")
    elif isinstance(value, list):
        if shape.list_shape() == structured.ATOMIC:
            found.append(path)
        else:
            for index, item in enumerate(value):
                found += atomics(item, shape, f"{path}[{index}]")
    return found


# --- the policy write ---------------------------------------------------------------------------

def _enum(errs: list[FieldError], path: str, value: Any, valid: list[str]) -> None:
    if value is None or value == "":
        errs.append(FieldError.required(path, ""))
    elif value not in valid:
        errs.append(FieldError.not_supported(path, value, valid))


def _operations(errs: list[FieldError], match: Any, path: str) -> None:
    """Only creates and updates can be mutated (kube's path has no index either)."""
    rules = match.get("resourceRules") if isinstance(match, dict) else None
    for rule in rules or []:
        for operation in (rule or {}).get("operations") or []:
            if operation not in MUTABLE_OPERATIONS:
                errs.append(FieldError.not_supported(f"{path}.resourceRules.operations",
                                                     operation, MUTABLE_OPERATIONS))


def _expression(errs: list[FieldError], path: str, text: Any) -> None:
    if text is None or not str(text).strip():
        errs.append(FieldError.required(path, ""))
        return
    found = compiled(str(text))
    problem = found.error if found.program is None else vap.type_errors(str(text))
    if problem:
        errs.append(FieldError.invalid(path, str(text), f"compilation failed: {problem}"))


def _mutation(errs: list[FieldError], mutation: Obj, path: str) -> None:
    kind = mutation.get("patchType")
    _enum(errs, f"{path}.patchType", kind, PATCH_TYPES)
    fields = {JSON_PATCH: "jsonPatch", APPLY_CONFIGURATION: "applyConfiguration"}
    if kind not in fields:
        return
    field = fields[kind]
    other = fields[JSON_PATCH if kind == APPLY_CONFIGURATION else APPLY_CONFIGURATION]
    body = mutation.get(field)
    if not isinstance(body, dict):
        errs.append(FieldError.required(f"{path}.{field}",
                                        f"must be specified when patchType is {kind}"))
    else:
        _expression(errs, f"{path}.{field}.expression", body.get("expression"))
    if mutation.get(other) is not None:
        errs.append(FieldError.invalid(f"{path}.{other}", "{" + other + "}",
                                       f"must not be specified when patchType is {kind}"))


def spec_errors(policy: Obj) -> list[FieldError]:
    """What a MutatingAdmissionPolicy write is refused for."""
    spec = policy.get("spec") or {}
    errs: list[FieldError] = []
    _enum(errs, "spec.failurePolicy", spec.get("failurePolicy"), FAILURE_POLICIES)
    match = spec.get("matchConstraints")
    if not match:
        errs.append(FieldError.required("spec.matchConstraints", ""))
    else:
        if not match.get("resourceRules"):
            errs.append(FieldError.required("spec.matchConstraints.resourceRules", ""))
        _operations(errs, match, "spec.matchConstraints")
    for section in ("matchConditions", "variables"):
        for index, item in enumerate(spec.get(section) or []):
            _expression(errs, f"spec.{section}[{index}].expression",
                        (item or {}).get("expression"))
    mutations = spec.get("mutations") or []
    if not mutations:
        errs.append(FieldError.required("spec.mutations",
                                        "mutations must contain at least one item"))
    for index, mutation in enumerate(mutations):
        if isinstance(mutation, dict):
            _mutation(errs, mutation, f"spec.mutations[{index}]")
    _enum(errs, "spec.reinvocationPolicy", spec.get("reinvocationPolicy"),
          REINVOCATION_POLICIES)
    return errs


def binding_errors(binding: Obj) -> list[FieldError]:
    spec = binding.get("spec") or {}
    errs: list[FieldError] = []
    if not spec.get("policyName"):
        errs.append(FieldError.required("spec.policyName", ""))
    ref = spec.get("paramRef")
    if isinstance(ref, dict):
        if ref.get("name") and ref.get("selector") is not None:
            errs.append(FieldError.forbidden("spec.paramRef.name",
                                             "name and selector are mutually exclusive"))
        action = ref.get("parameterNotFoundAction")
        if action is not None and action not in ("Allow", "Deny"):
            errs.append(FieldError.not_supported("spec.paramRef.parameterNotFoundAction",
                                                 action, ["Allow", "Deny"]))
    _operations(errs, spec.get("matchResources"), "spec.matchResources")
    return errs

"""The naming and establishing controllers of kube's apiextensions-apiserver, as pure functions.

`accepted_names(crd, others)` is `pkg/controller/status/naming_controller.go`: the names a CRD
asks for (`spec.names`) are accepted unless another CRD of the same group already accepted one
of them (its plural, singular, kind, listKind or a short name); a CRD keeps the names it had
accepted before. The condition says which name is in use:

    NamesAccepted False  PluralConflict / KindConflict / ListKindConflict / ShortNamesConflict
                         "\"foos\" is already in use"

`Established` follows once the names are accepted (kube establishes within a few seconds; here
at once), and `Terminating` while instances are being deleted.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NAMES_ACCEPTED = "NamesAccepted"
ESTABLISHED = "Established"
TERMINATING = "Terminating"


def _names(crd: Obj) -> Obj:
    return (crd.get("spec") or {}).get("names") or {}


def _accepted(crd: Obj) -> Obj:
    return (crd.get("status") or {}).get("acceptedNames") or {}


def _in_use(others: list[Obj], group: str) -> tuple[set[str], set[str]]:
    """(resource names, kind names) other CRDs of `group` hold: accepted or asked for."""
    resources: set[str] = set()
    kinds: set[str] = set()
    for other in others:
        if (other.get("spec") or {}).get("group") != group:
            continue
        for names in (_accepted(other),):
            resources.update(n for n in (names.get("plural"), names.get("singular")) if n)
            resources.update(names.get("shortNames") or [])
            kinds.update(n for n in (names.get("kind"), names.get("listKind")) if n)
    return resources, kinds


def accepted_names(crd: Obj, others: list[Obj]) -> tuple[Obj, Obj]:
    """(status.acceptedNames, NamesAccepted condition fields) for `crd` among `others`."""
    names, old = _names(crd), _accepted(crd)
    group = (crd.get("spec") or {}).get("group", "")
    resources, kinds = _in_use(others, group)
    checks = (
        ("PluralConflict", [names.get("plural")], resources, old.get("plural")),
        ("SingularConflict", [names.get("singular")], resources, old.get("singular")),
        ("ShortNamesConflict", list(names.get("shortNames") or []), resources,
         None),
        ("KindConflict", [names.get("kind")], kinds, old.get("kind")),
        ("ListKindConflict", [names.get("listKind")], kinds, old.get("listKind")),
    )
    for reason, wanted, taken, had in checks:
        for name in wanted:
            if name and name in taken and name != had and name not in (old.get("shortNames") or []):
                condition = {"status": "False", "reason": reason,
                             "message": f'"{name}" is already in use'}
                return old, condition
    accepted = {key: value for key, value in names.items() if value not in (None, [], "")}
    return accepted, {"status": "True", "reason": "NoConflicts", "message": "no conflicts found"}


def conditions(crd: Obj, names_condition: Obj, now: str) -> list[Obj]:
    """The CRD's conditions after this pass: NamesAccepted, then Established (once accepted),
    then Terminating (while deleting); an unchanged condition keeps its transition time."""
    old = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
    wanted: list[Obj] = [{"type": NAMES_ACCEPTED, **names_condition}]
    if names_condition["status"] == "True" or old.get(ESTABLISHED, {}).get("status") == "True":
        wanted.append({"type": ESTABLISHED, "status": "True", "reason": "InitialNamesAccepted",
                       "message": "the initial names have been accepted"})
    else:
        wanted.append({"type": ESTABLISHED, "status": "False", "reason": "NotAccepted",
                       "message": "not all names are accepted"})
    if (crd.get("metadata") or {}).get("deletionTimestamp"):
        wanted.append({"type": TERMINATING, "status": "True",
                       "reason": "InstanceDeletionInProgress",
                       "message": "CustomResource deletion is in progress"})
    result = []
    for condition in wanted:
        previous = old.get(condition["type"])
        same = previous is not None and previous.get("status") == condition["status"]
        stamp = previous.get("lastTransitionTime", now) if same and previous else now
        result.append({**condition, "lastTransitionTime": stamp})
    for kind, condition in old.items():  # conditions other controllers own stay
        if kind not in (NAMES_ACCEPTED, ESTABLISHED, TERMINATING):
            result.append(condition)
    return result


def is_established(crd: Obj) -> bool:
    for condition in (crd.get("status") or {}).get("conditions") or []:
        if condition.get("type") == ESTABLISHED:
            return bool(condition.get("status") == "True")
    return False

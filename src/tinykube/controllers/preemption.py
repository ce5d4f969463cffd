"""Preemption: which lower-priority pods to evict so that a pod that fits nowhere fits somewhere.

kube-scheduler's DefaultPreemption plugin, as pure functions over the scheduler's view (the
scheduler passes `rejects`, its filters for one node with a given set of pods left on it,
which answer the reasons the pod does not fit there, [] when it does):

- A pod may preempt unless its `preemptionPolicy` is `Never`, or a lower-priority pod on the
  node it was already nominated for is still terminating (it waits for that preemption to land).
- Only nodes that failed for reasons removing pods can fix (`Too many pods`, `Insufficient ...`)
  are candidates; the others are "not helpful".
- On a candidate node every pod of lower priority is a potential victim. If the pod does not fit
  even with all of them gone, the node has no victims. Otherwise the potential victims are
  reprieved one by one, most important first (higher priority, then older), each kept if the
  pod still fits with it: the victims are those that could not be kept.
- Among the candidate nodes the one chosen has the lowest highest-victim priority, then the
  lowest sum of victim priorities, then the fewest victims, then the first name.

PodDisruptionBudgets are not consulted (kube prefers victims whose eviction violates none);
the scheduler deletes the victims, with the `DisruptionTarget` condition kube adds, and
nominates the node in the pod's `status.nominatedNodeName`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]
# Why the pod does not fit on this node with these pods on it ([] when it fits).
Rejects = Callable[[Obj, Sequence[Obj]], list[str]]

RESOLVABLE = ("full",)  # plus every "Insufficient <resource>"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


def priority(pod: Obj) -> int:
    value = (pod.get("spec") or {}).get("priority")
    return value if isinstance(value, int) else 0


def resolvable(reasons: Sequence[str]) -> bool:
    """Whether evicting pods could fix a node that failed for `reasons`."""
    return bool(reasons) and all(r in RESOLVABLE or r.startswith("Insufficient ")
                                 for r in reasons)


def ineligible(pod: Obj, pods_by_node: Mapping[str, Sequence[Obj]]) -> str | None:
    """Why `pod` may not preempt, in kube's words, or None."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("preemptionPolicy") == "Never":
        return "not eligible due to preemptionPolicy=Never."
    nominated = status.get("nominatedNodeName")
    if nominated and any(priority(p) < priority(pod) and
                         (p.get("metadata") or {}).get("deletionTimestamp")
                         for p in pods_by_node.get(nominated, ())):
        return "not eligible due to a terminating pod on the nominated node."
    return None


def _importance(pod: Obj) -> tuple[int, str]:
    return -priority(pod), str((pod.get("metadata") or {}).get("creationTimestamp", ""))


def victims_on(pod: Obj, node: Obj, on_node: Sequence[Obj], rejects: Rejects) -> list[Obj] | None:
    """The fewest lower-priority pods to evict from `node` so that `pod` fits, or None."""
    mine = priority(pod)
    live = [p for p in on_node if not (p.get("metadata") or {}).get("deletionTimestamp")]
    potential = sorted((p for p in live if priority(p) < mine), key=_importance)
    kept = [p for p in live if priority(p) >= mine]
    if rejects(node, kept):
        return None
    victims = []
    for candidate in potential:
        if rejects(node, [*kept, candidate]):
            victims.append(candidate)
        else:
            kept.append(candidate)
    return victims


@dataclasses.dataclass(frozen=True)
class Choice:
    node: str
    victims: list[Obj]


def choose(pod: Obj, nodes: Sequence[Obj], reasons: Mapping[str, Sequence[str]],
           pods_by_node: Mapping[str, Sequence[Obj]],
           rejects: Rejects) -> tuple[Choice | None, str]:
    """The node to preempt on and its victims, or None and kube's PostFilter message
    (`0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption
    is not helpful for scheduling.`)."""
    why_not = ineligible(pod, pods_by_node)
    if why_not is not None:
        return None, why_not
    choices, failures = [], {NOT_HELPFUL: 0, NO_VICTIMS: 0}
    for node in nodes:
        name = node["metadata"]["name"]
        if not resolvable(reasons.get(name, ())):
            failures[NOT_HELPFUL] += 1
            continue
        victims = victims_on(pod, node, pods_by_node.get(name, ()), rejects)
        if victims:
            choices.append(Choice(name, victims))
        else:
            failures[NO_VICTIMS] += 1
    if choices:
        return min(choices, key=_cost), ""
    parts = sorted(f"{count} {text}" for text, count in failures.items() if count)
    return None, f"0/{len(nodes)} nodes are available: {', '.join(parts)}."


def _cost(choice: Choice) -> tuple[int, int, int, str]:
    ranks = [priority(p) for p in choice.victims]
    return max(ranks), sum(ranks), len(ranks), choice.node

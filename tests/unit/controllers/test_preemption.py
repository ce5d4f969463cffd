"""Preemption's decision as tables: who may preempt, the victims on a node, the node chosen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tinykube.controllers import preemption

Obj = dict[str, Any]


def pod(name: str, prio: int = 0, cpu: int = 1, *, terminating: bool = False,
        created: str = "2026-01-01T00:00:00Z", **spec: Any) -> Obj:
    meta: Obj = {"name": name, "creationTimestamp": created}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return {"metadata": meta, "spec": {"priority": prio, "cpu": cpu, **spec}}


def node(name: str, cpu: int = 4) -> Obj:
    return {"metadata": {"name": name}, "cpu": cpu}


def rejects_for(incoming: Obj) -> preemption.Rejects:
    """A node with `cpu` cores: the incoming pod fits when the pods left leave it room."""
    def rejects(n: Obj, left: Sequence[Obj]) -> list[str]:
        used = sum(p["spec"]["cpu"] for p in left)
        return [] if used + incoming["spec"]["cpu"] <= n["cpu"] else ["Insufficient cpu"]
    return rejects


def names(pods: Sequence[Obj] | None) -> list[str] | None:
    return None if pods is None else [p["metadata"]["name"] for p in pods]


@pytest.mark.parametrize(("incoming", "on_node", "victims"), [
    pytest.param(pod("hi", 10, 2), [pod("b", 0, 2, created="2026-01-02T00:00:00Z"),
                                    pod("a", 0, 2)], ["b"],
                 id="one-of-two-suffices-the-newer-goes"),
    pytest.param(pod("hi", 10, 4), [pod("a", 0, 2), pod("b", 5, 2)], ["b", "a"],
                 id="both-needed-most-important-first"),
    pytest.param(pod("hi", 10, 2), [pod("a", 20, 2), pod("b", 10, 2)], None,
                 id="nothing-lower-no-victims"),
    pytest.param(pod("hi", 10, 3), [pod("a", 20, 2), pod("b", 0, 2)], None,
                 id="even-all-lower-gone-it-does-not-fit"),
    pytest.param(pod("hi", 10, 2), [pod("a", 1, 2), pod("b", 0, 1), pod("c", 0, 1)],
                 ["b", "c"], id="lower-priority-evicted-before-higher"),
])
def test_victims_on_a_node(incoming: Obj, on_node: list[Obj], victims: list[str] | None) -> None:
    found = preemption.victims_on(incoming, node("n"), on_node, rejects_for(incoming))
    assert names(found) == victims


def test_node_with_the_cheapest_victims_is_chosen() -> None:
    incoming = pod("hi", 100, 2)
    by_node = {"a": [pod("a1", 50, 2), pod("a2", 50, 2)], "b": [pod("b1", 10, 2), pod("b2", 60, 2)],
               "c": [pod("c1", 10, 1), pod("c2", 10, 1), pod("c3", 10, 2)]}
    nodes = [node("a"), node("b"), node("c")]
    reasons = {n: ["Insufficient cpu"] for n in by_node}
    choice, message = preemption.choose(incoming, nodes, reasons, by_node, rejects_for(incoming))
    assert message == "" and choice is not None
    assert (choice.node, names(choice.victims)) == ("b", ["b1"])


@pytest.mark.parametrize(("incoming", "reasons", "by_node", "message"), [
    pytest.param(pod("hi", 10, 2), {"a": ["selector"], "b": ["Insufficient cpu"]},
                 {"b": [pod("b1", 50, 4)]},
                 "0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                 "1 Preemption is not helpful for scheduling.", id="counts-both-kinds"),
    pytest.param(pod("hi", 10, 2, preemptionPolicy="Never"), {"a": ["Insufficient cpu"]},
                 {"a": [pod("a1", 0, 4)]}, "not eligible due to preemptionPolicy=Never.",
                 id="never"),
    pytest.param({**pod("hi", 10, 2), "status": {"nominatedNodeName": "a"}},
                 {"a": ["Insufficient cpu"]}, {"a": [pod("a1", 0, 4, terminating=True)]},
                 "not eligible due to a terminating pod on the nominated node.",
                 id="waits-for-its-victims"),
])
def test_no_preemption(incoming: Obj, reasons: dict[str, list[str]],
                       by_node: dict[str, list[Obj]], message: str) -> None:
    nodes = [node(n) for n in reasons]
    assert preemption.choose(incoming, nodes, reasons, by_node, rejects_for(incoming)) == \
        (None, message)

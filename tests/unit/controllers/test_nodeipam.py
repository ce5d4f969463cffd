"""Node IPAM's allocator: which /24 each Node gets, as tables of steps and their answers."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.controllers.nodeipam import CIDRSet, RangeFull

FULL = "full"

# name -> (cluster range, steps); a step is (operation, *arguments, expected answer):
# ("allocate", owner, cidr or FULL), ("occupy", owner, cidr, the other owners),
# ("release", owner, None), ("held", owner, [cidrs])
CASES: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
    "one after another": ("127.244.0.0/16", [
        ("allocate", "n1", "127.244.0.0/24"), ("allocate", "n2", "127.244.1.0/24"),
        ("allocate", "n3", "127.244.2.0/24")]),
    "occupied ranges are skipped": ("10.244.0.0/16", [
        ("occupy", "up-1", "10.244.0.0/24", set()), ("occupy", "up-2", "10.244.1.0/24", set()),
        ("allocate", "join", "10.244.2.0/24")]),
    "a released range is not handed out again at once": ("10.244.0.0/22", [
        ("allocate", "a", "10.244.0.0/24"), ("allocate", "b", "10.244.1.0/24"),
        ("release", "a", None), ("allocate", "c", "10.244.2.0/24"),
        ("allocate", "d", "10.244.3.0/24"), ("allocate", "e", "10.244.0.0/24")]),
    "the range runs out": ("10.244.0.0/23", [
        ("allocate", "a", "10.244.0.0/24"), ("allocate", "b", "10.244.1.0/24"),
        ("allocate", "c", FULL), ("release", "b", None), ("allocate", "c", "10.244.1.0/24")]),
    "a range smaller than a /24 is one node's": ("10.1.2.0/25", [
        ("allocate", "a", "10.1.2.0/25"), ("allocate", "b", FULL)]),
    "a wider preset range covers several": ("127.244.0.0/16", [
        ("occupy", "wide", "127.244.0.0/23", set()),
        ("held", "wide", ["127.244.0.0/24", "127.244.1.0/24"]),
        ("allocate", "n", "127.244.2.0/24")]),
    "a narrower preset range takes its /24": ("127.244.0.0/16", [
        ("occupy", "narrow", "127.244.0.128/25", set()), ("allocate", "n", "127.244.1.0/24")]),
    "an overlap names the holder, who keeps it": ("10.244.0.0/16", [
        ("allocate", "a", "10.244.0.0/24"), ("occupy", "b", "10.244.0.0/24", {"a"}),
        ("held", "a", ["10.244.0.0/24"]), ("held", "b", [])]),
    "occupying one's own range again is no overlap": ("10.244.0.0/16", [
        ("allocate", "a", "10.244.0.0/24"), ("occupy", "a", "10.244.0.0/24", set())]),
    "a range outside the cluster's is ignored": ("10.244.0.0/16", [
        ("occupy", "x", "192.168.0.0/24", set()), ("held", "x", []),
        ("allocate", "n", "10.244.0.0/24")]),
    "release frees all of an owner's": ("10.244.0.0/22", [
        ("occupy", "wide", "10.244.0.0/23", set()), ("release", "wide", None),
        ("held", "wide", []), ("allocate", "n", "10.244.0.0/24")]),
}


@pytest.mark.parametrize(("cluster", "steps"), CASES.values(), ids=CASES.keys())
def test_cidr_set(cluster: str, steps: list[tuple[Any, ...]]) -> None:
    cidrs = CIDRSet(cluster)
    for operation, *arguments, expected in steps:
        if operation == "allocate" and expected == FULL:
            with pytest.raises(RangeFull):
                cidrs.allocate(*arguments)
            continue
        got = getattr(cidrs, {"held": "held_by"}.get(operation, operation))(*arguments)
        assert got == expected, (operation, arguments)


def test_every_range_of_a_cluster_is_handed_out_once() -> None:
    cidrs = CIDRSet("10.0.0.0/14")
    got = [cidrs.allocate(f"n{i}") for i in range(cidrs.size)]
    assert len(set(got)) == len(got) == 1024
    assert got[0] == "10.0.0.0/24" and got[-1] == "10.3.255.0/24"
    with pytest.raises(RangeFull, match=r"no free /24 left in 10\.0\.0\.0/14"):
        cidrs.allocate("one-too-many")


def test_repr_says_how_full() -> None:
    cidrs = CIDRSet("10.244.0.0/16")
    cidrs.allocate("a")
    assert repr(cidrs) == "<CIDRSet 10.244.0.0/16 /24 1 of 256 taken>"

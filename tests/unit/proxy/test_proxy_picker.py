"""Endpoint choice: round robin, ClientIP affinity with a fake clock, updates, retries."""

from __future__ import annotations

import pytest

from tinykube.proxy.picker import EndpointPicker

A, B, C = ("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 80)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def picks(picker: EndpointPicker, clients: list[str]) -> list[object]:
    return [picker.pick(client) for client in clients]


@pytest.mark.parametrize(("endpoints", "clients", "expected"), [
    pytest.param([], ["c1"], [None], id="none"),
    pytest.param([A], ["c1", "c1"], [A, A], id="one"),
    pytest.param([A, B, C], ["c1"] * 4, [A, B, C, A], id="round-robin-one-client"),
    pytest.param([A, B], ["c1", "c2", "c3"], [A, B, A], id="round-robin-many-clients"),
])
def test_round_robin(endpoints: list[tuple[str, int]], clients: list[str],
                     expected: list[object]) -> None:
    assert picks(EndpointPicker(endpoints), clients) == expected


def test_affinity_sticks_until_idle_timeout() -> None:
    clock = FakeClock()
    picker = EndpointPicker([A, B, C], affinity_timeout=10, clock=clock)
    assert picks(picker, ["c1", "c2", "c1", "c2"]) == [A, B, A, B]
    clock.now += 10  # exactly the timeout: still sticky, and refreshed
    assert picker.pick("c1") == A
    clock.now += 10.5  # c1 was used 10.5 s ago now: expired, next in round robin
    assert picker.pick("c1") == C
    assert picker.pick("c1") == C


def test_update_keeps_affinity_to_surviving_endpoints() -> None:
    picker = EndpointPicker([A, B], affinity_timeout=60, clock=FakeClock())
    assert picks(picker, ["c1", "c2"]) == [A, B]
    picker.update([B, C], 60)
    assert picker.pick("c2") == B  # still there: kept
    assert picker.pick("c1") in (B, C)  # A gone: re-picked
    assert picker.pick("c1") != A


def test_update_without_affinity_forgets_stickiness() -> None:
    picker = EndpointPicker([A, B], affinity_timeout=60, clock=FakeClock())
    picker.pick("c1")
    picker.update([A, B], None)
    assert picks(picker, ["c1", "c1"]) in ([A, B], [B, A])


@pytest.mark.parametrize(("affinity", "exclude", "expected"), [
    pytest.param(None, {A}, B, id="skips-excluded"),
    pytest.param(None, {A, B, C}, None, id="all-excluded"),
    pytest.param(60.0, {A}, B, id="sticky-endpoint-excluded-is-replaced"),
])
def test_exclude(affinity: float | None, exclude: set[tuple[str, int]],
                 expected: object) -> None:
    picker = EndpointPicker([A, B, C], affinity, clock=FakeClock())
    assert picker.pick("c1") == A
    assert picker.pick("c1", exclude=exclude) == expected
    if affinity is not None:
        assert picker.pick("c1") == expected  # the replacement became sticky

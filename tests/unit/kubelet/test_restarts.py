"""Restart policy and CrashLoopBackOff timing, with a hand-driven clock."""

from __future__ import annotations

import pytest

from tinykube.kubelet.restarts import CrashBackoff, should_restart


@pytest.mark.parametrize(("policy", "code", "expected"), [
    pytest.param("Always", 0, True, id="always-success"),
    pytest.param("Always", 1, True, id="always-failure"),
    pytest.param("OnFailure", 0, False, id="onfailure-success"),
    pytest.param("OnFailure", 137, True, id="onfailure-failure"),
    pytest.param("Never", 1, False, id="never"),
])
def test_should_restart(policy: str, code: int, expected: bool) -> None:
    assert should_restart(policy, code) is expected


# Each step: (time the container stopped, expected wait before its restart).
# The container crashes 1 s after every start.
CRASH_LOOP = [(0.0, 0.0), (1.0, 9.0), (11.0, 19.0), (31.0, 39.0), (71.0, 79.0),
              (151.0, 159.0), (311.0, 299.0), (611.0, 299.0)]


def test_crash_loop_back_off_doubles_up_to_five_minutes() -> None:
    backoff = CrashBackoff()
    waits = []
    for stopped, _ in CRASH_LOOP:
        wait = backoff.remaining("uid/c", stopped)
        waits.append(wait)
        backoff.restarted("uid/c", stopped + wait)
    assert waits == [w for _, w in CRASH_LOOP]


@pytest.mark.parametrize(("quiet_for", "expected_wait"), [
    pytest.param(5.0, 5.0, id="stopped-within-backoff-waits-the-rest"),
    pytest.param(30.0, 0.0, id="ran-longer-than-backoff-restarts-at-once"),
    pytest.param(601.0, 0.0, id="ten-minutes-quiet-forgets"),
])
def test_remaining_after_one_restart(quiet_for: float, expected_wait: float) -> None:
    backoff = CrashBackoff()
    backoff.restarted("k", 100.0)
    assert backoff.remaining("k", 100.0 + quiet_for) == expected_wait


def test_a_quiet_container_starts_over_at_ten_seconds() -> None:
    backoff = CrashBackoff()
    for moment in (0.0, 10.0, 30.0):
        backoff.restarted("k", moment)
    assert backoff.current("k", 30.0) == 40.0
    backoff.restarted("k", 30.0 + 601.0)
    assert backoff.current("k", 631.0) == 10.0


def test_keys_are_independent() -> None:
    backoff = CrashBackoff()
    backoff.restarted("a", 0.0)
    assert backoff.remaining("b", 1.0) == 0.0
    backoff.forget("a")
    assert backoff.remaining("a", 1.0) == 0.0

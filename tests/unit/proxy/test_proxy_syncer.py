"""The syncer's diff (`plan`) as a table, and `Syncer.apply`/`sync` against the fake backend."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from proxyobjects import endpoint, endpoint_slice, port, service

from tinykube.proxy.backend import BindError, FakeBackend
from tinykube.proxy.limits import PER_SERVICE_REASON, Limits
from tinykube.proxy.model import ServicePortRule
from tinykube.proxy.syncer import Plan, Syncer, plan

K1, K2, K3 = ("127.96.0.1", 80, "TCP"), ("127.96.0.2", 80, "TCP"), ("127.96.0.3", 53, "UDP")
R1 = ServicePortRule("default/a", "http", "TCP", (("10.0.0.1", 8080),))
R1B = ServicePortRule("default/a", "http", "TCP", (("10.0.0.2", 8080),))
R2 = ServicePortRule("default/b", "http", "TCP")
R3 = ServicePortRule("default/c", "dns", "UDP")


@pytest.mark.parametrize(("desired", "applied", "expected"), [
    pytest.param({}, {}, Plan(), id="nothing"),
    pytest.param({K1: R1}, {}, Plan(add={K1: R1}), id="add"),
    pytest.param({}, {K1: R1}, Plan(remove=(K1,)), id="remove"),
    pytest.param({K1: R1}, {K1: R1}, Plan(), id="unchanged"),
    pytest.param({K1: R1B}, {K1: R1}, Plan(update={K1: R1B}), id="endpoints-changed"),
    pytest.param({K1: R1, K3: R3}, {K1: R1B, K2: R2}, Plan(add={K3: R3}, update={K1: R1},
                                                          remove=(K2,)), id="mixed"),
])
def test_plan(desired: dict[object, ServicePortRule], applied: dict[object, ServicePortRule],
              expected: Plan) -> None:
    assert plan(desired, applied) == expected  # type: ignore[arg-type]


async def test_apply_calls_backend_in_order_and_tracks_state() -> None:
    backend = FakeBackend()
    syncer = Syncer(backend)
    await syncer.apply({K1: R1, K2: R2})
    await syncer.apply({K1: R1B, K3: R3})
    assert backend.calls == [("add", K1), ("add", K2), ("remove", K2), ("update", K1),
                             ("add", K3)]
    assert backend.rules == syncer.applied == {K1: R1B, K3: R3}


async def test_bind_failure_is_reported_once_and_retried() -> None:
    backend = FakeBackend(failing={K1: errno.EACCES})
    syncer = Syncer(backend)
    first = await syncer.apply({K1: R1, K2: R2})
    assert [e.key for e in first.new_failures] == [K1]
    assert list(first.failing) == [K1] and K1 not in syncer.applied
    assert "ports below 1024 need root" in str(first.new_failures[0])
    second = await syncer.apply({K1: R1, K2: R2})
    assert second.new_failures == [] and list(second.failing) == [K1]
    assert backend.calls.count(("add", K1)) == 2  # retried, not reported again
    del backend.failing[K1]
    third = await syncer.apply({K1: R1, K2: R2})
    assert third.failing == {} and syncer.applied == {K1: R1, K2: R2}


async def test_failure_with_another_errno_is_reported_again() -> None:
    backend = FakeBackend(failing={K1: errno.EACCES})
    syncer = Syncer(backend)
    await syncer.apply({K1: R1})
    backend.failing[K1] = errno.EADDRINUSE
    result = await syncer.apply({K1: R1})
    assert [e.errno for e in result.new_failures] == [errno.EADDRINUSE]


async def test_failure_dropped_when_no_longer_desired() -> None:
    syncer = Syncer(FakeBackend(failing={K1: errno.EADDRINUSE}))
    await syncer.apply({K1: R1})
    result = await syncer.apply({})
    assert result.failing == {} and syncer.failing == {}


async def test_sync_from_api_objects() -> None:
    backend = FakeBackend()
    syncer = Syncer(backend)
    web = service("web", "127.96.0.1")
    slice_ = endpoint_slice("web", [endpoint("10.0.0.1")], [port(8080, "http")])
    result = await syncer.sync([web], [slice_])
    assert list(result.plan.add) == [K1]
    assert backend.rules[K1].endpoints == (("10.0.0.1", 8080),)
    result = await syncer.sync([web], [])
    assert list(result.plan.update) == [K1] and backend.rules[K1].endpoints == ()
    await syncer.sync([], [])
    assert backend.rules == {}
    await syncer.close()
    assert backend.closed


@pytest.mark.parametrize(("code", "text"), [
    pytest.param(errno.EACCES, "Permission denied (ports below 1024 need root", id="eacces"),
    pytest.param(errno.EADDRINUSE, "Address already in use", id="in-use"),
    pytest.param(errno.EMFILE, "Too many open files (the process's open-file limit is reached",
                 id="emfile"),
])
def test_bind_error_message(code: int, text: str) -> None:
    assert str(BindError(K1, code)).startswith(f"cannot listen on 127.96.0.1:80/TCP: {text}")


async def test_refusals_are_reported_once_and_cleared() -> None:
    backend = FakeBackend()
    syncer = Syncer(backend, limits=Limits(per_service=3, total=4, open_files=1024))
    wide = service("wide", "127.96.0.9", *[port(1000 + n, f"p{n}") for n in range(5)])
    result = await syncer.sync([wide], [])
    assert [(r.service, r.reason, len(r.refused)) for r in result.new_refusals] == [
        ("default/wide", PER_SERVICE_REASON, 2)]
    assert len(backend.rules) == 3
    again = await syncer.sync([wide], [])
    assert again.new_refusals == [] and len(backend.rules) == 3
    await syncer.sync([], [])
    assert syncer.refused == {} and backend.rules == {}

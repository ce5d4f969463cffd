"""DNS fault drills (dns.drills) on a live server, seen through the real `dig`: each drill's
behaviour while it runs, and the true answer once it ends (polled, with a deadline)."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Awaitable, Callable

import pytest
from dnstest import Live, StartServer, make_model
from objects import port, service

from tinykube.dns.drills import NXDOMAIN, SERVFAIL

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig")
NAME = "nginx-service.default.svc.cluster.local"


async def dig(live: Live, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "dig", "-p", str(live.port), f"@{live.host}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return out.decode()


def status(output: str) -> str:
    found = re.search(r"status: (\w+)", output)
    return found.group(1) if found else "no answer"


async def until_ends(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the drill did not end"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("rcode", "word"), [(SERVFAIL, "SERVFAIL"), (NXDOMAIN, "NXDOMAIN")])
async def test_rcode_drill_then_the_true_answer(start_server: StartServer, rcode: int,
                                                word: str) -> None:
    live = await start_server()
    assert status(await dig(live, NAME)) == "NOERROR"  # now in the level-1 cache too
    live.server.inject(NAME, rcode=rcode, for_seconds=0.5)
    during = await dig(live, NAME)
    assert status(during) == word and "ANSWER: 0" in during
    assert status(await dig(live, "kubernetes.default.svc.cluster.local")) == "NOERROR"

    async def answered() -> bool:
        return status(await dig(live, NAME)) == "NOERROR"
    await until_ends(answered)
    assert live.server.fast is live.server.responder.fast  # the level-1 cache is back


async def test_drop_times_out(start_server: StartServer) -> None:
    live = await start_server()
    live.server.inject(NAME, drop=True, for_seconds=3.0)
    out = await dig(live, "+tries=1", "+timeout=1", NAME)
    assert "timed out" in out or "no servers could be reached" in out
    tcp = await dig(live, "+tcp", "+tries=1", "+timeout=1", NAME)
    assert status(tcp) == "no answer"

    async def answered() -> bool:
        return status(await dig(live, "+tries=1", "+timeout=1", NAME)) == "NOERROR"
    await until_ends(answered)


async def test_delay(start_server: StartServer) -> None:
    live = await start_server()
    live.server.inject(NAME, delay=0.4, for_seconds=5)
    out = await dig(live, NAME)
    took = int(re.search(r"Query time: (\d+) msec", out).group(1))  # type: ignore[union-attr]
    assert status(out) == "NOERROR" and took >= 400 and "10.96.0.50" in out
    live.server.drills.clear()
    quick = await dig(live, NAME)
    assert int(re.search(r"Query time: (\d+) msec", quick).group(1)) < 400  # type: ignore[union-attr]


async def test_truncation_over_udp_and_the_tcp_retry(start_server: StartServer) -> None:
    live = await start_server()
    live.server.inject(NAME, truncate=True, for_seconds=0.5)
    ignored = await dig(live, "+ignore", NAME)
    assert re.search(r"flags: qr aa tc|flags: qr tc|flags:[a-z ]* tc", ignored), ignored
    assert "ANSWER: 0" in ignored
    retried = await dig(live, NAME)
    assert "Truncated, retrying in TCP mode" in retried and "10.96.0.50" in retried

    async def whole() -> bool:
        return " tc" not in (await dig(live, "+ignore", NAME)).split("flags:")[1].split(";")[0]
    await until_ends(whole)


async def test_stale_answers_after_an_endpoint_change(start_server: StartServer) -> None:
    model = make_model()
    live = await start_server(model)
    live.server.inject(NAME, stale=True, for_seconds=0.8)
    assert "10.96.0.50" in await dig(live, "+short", NAME)
    model.apply_service(service("nginx-service", cluster_ips=("10.96.0.77",),
                                ports=(port("web", 80, target=8080),)))
    # TCP remembers its own first answer: this one
    assert "10.96.0.77" in await dig(live, "+short", "+tcp", NAME)
    assert (await dig(live, "+short", NAME)).split() == ["10.96.0.50"]  # stale over UDP

    async def fresh() -> bool:
        return (await dig(live, "+short", NAME)).split() == ["10.96.0.77"]
    await until_ends(fresh)


async def test_restart_servfails_every_name_until_synced(start_server: StartServer) -> None:
    live = await start_server()
    live.server.inject("*", restart=True, for_seconds=0.5)
    for name in (NAME, "kubernetes.default.svc.cluster.local", "nothing.default.svc"):
        assert status(await dig(live, name)) == "SERVFAIL"

    async def synced() -> bool:
        return status(await dig(live, "kubernetes.default.svc.cluster.local")) == "NOERROR"
    await until_ends(synced)


@pytest.mark.parametrize("behaviour", [{}, {"drop": True, "delay": 1.0}, {"rcode": 2}])
def test_a_drill_has_one_behaviour_and_a_duration(behaviour: dict[str, object]) -> None:
    from tinykube.dns.drills import Drills

    with pytest.raises(ValueError):
        Drills().inject("x", for_seconds=0 if behaviour == {"rcode": 2} else 1, **behaviour)

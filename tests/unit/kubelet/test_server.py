"""The kubelet log endpoint over real HTTP: parameters, errors as Status, following."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tinykube.api import errors
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.server import KubeletServer, since_bound


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, ContainerLog]]:
    log = ContainerLog(tmp_path / "c")
    log.start_run()
    log.write(b"first run\n")
    log.end_run()
    log.start_run()
    log.write(b"a\nb\nc\n")

    def lookup(namespace: str, pod: str, container: str) -> ContainerLog | None:
        if pod == "virtual":
            return None
        if pod != "p":
            raise errors.NotFound(f'pods "{pod}" not found')
        if container != "c":
            raise errors.BadRequest(f'container "{container}" in pod "p" is waiting to start: '
                                    "ContainerCreating")
        return log
    server = KubeletServer(lookup)
    port = await server.start()
    yield f"http://127.0.0.1:{port}/containerLogs/default", log
    await server.close()


@pytest.mark.parametrize(("path", "query", "status", "body"), [
    pytest.param("p/c", {}, 200, "a\nb\nc\n", id="current"),
    pytest.param("p/c", {"tailLines": "1"}, 200, "c\n", id="tail"),
    pytest.param("p/c", {"previous": "true"}, 200, "first run\n", id="previous"),
    pytest.param("p/c", {"limitBytes": "3"}, 200, "a\nb", id="limit"),
    pytest.param("virtual/c", {}, 200, "", id="virtual-pod-no-output"),
    pytest.param("q/c", {}, 404, 'pods \\"q\\" not found', id="unknown-pod"),
    pytest.param("p/d", {}, 400, "is waiting to start", id="waiting"),
    pytest.param("p/c", {"tailLines": "x"}, 400, "invalid tailLines", id="bad-number"),
])
async def test_log_requests(served: tuple[str, ContainerLog], path: str, query: dict[str, str],
                            status: int, body: str) -> None:
    base, _ = served
    async with aiohttp.ClientSession() as session, \
            session.get(f"{base}/{path}", params=query) as response:
        assert response.status == status
        assert body in await response.text()


async def test_previous_without_a_previous_run(tmp_path: Path) -> None:
    log = ContainerLog(tmp_path)
    log.start_run()
    server = KubeletServer(lambda *_: log)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/containerLogs/ns/p/c?previous=1") as response:
            assert response.status == 400
            assert "previous terminated container" in await response.text()
    finally:
        await server.close()


async def test_follow_streams_until_the_run_ends(served: tuple[str, ContainerLog]) -> None:
    base, log = served
    async with aiohttp.ClientSession() as session, \
            session.get(f"{base}/p/c", params={"follow": "true", "tailLines": "1"}) as response:
        assert await response.content.readline() == b"c\n"
        log.write(b"d\n")
        assert await response.content.readline() == b"d\n"
        log.end_run()
        assert await asyncio.wait_for(response.content.read(), 5) == b""


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param({}, None, id="none"),
    pytest.param({"sinceSeconds": "10"}, b"2026-01-01T00:00:50.000000000Z", id="seconds"),
    pytest.param({"sinceTime": "2026-01-01T00:00:30Z"}, b"2026-01-01T00:00:30.000000000Z",
                 id="time"),
])
def test_since_bound(query: dict[str, str], expected: bytes | None) -> None:
    now = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC)
    assert since_bound(query, now) == expected

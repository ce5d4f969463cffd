"""A list not older than a version the store has not reached waits for the write that
reaches it, and then answers with that state (kube-apiserver's watch cache waits up to 3 s).

The real API server on a loopback port (see harness); the test knows the list is waiting
because the store has a waiter for its next write, and only then makes that write.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.apiserver.harness import running_api

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def test_not_older_than_a_future_version_answers_once_a_write_reaches_it(
        tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, store):
        wanted = store.resource_version + 1
        listing = asyncio.create_task(session.get(
            CONFIGMAPS, params={"resourceVersion": str(wanted),
                                "resourceVersionMatch": "NotOlderThan"}))
        for _ in range(500):  # at most 5 s for the list to wait for the next write
            if store._progress is not None:
                break
            await asyncio.sleep(0.01)
        assert store._progress is not None and not listing.done()
        created = await session.post(CONFIGMAPS, json={"metadata": {"name": "late"}})
        assert created.status == 201
        async with asyncio.timeout(5):
            reply = await listing
        assert reply.status == 200
        page = await reply.json()
        assert int(page["metadata"]["resourceVersion"]) >= wanted
        assert [item["metadata"]["name"] for item in page["items"]] == ["late"]

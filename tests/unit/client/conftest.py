"""Fixtures for client tests: a fake API server on 127.0.0.1 and a RESTClient pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_kube_api import TOKEN, FakeKubeAPI, start

from tinykube.client.config import ClientConfig
from tinykube.client.rest import RESTClient


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeKubeAPI]:
    api = FakeKubeAPI()
    runner = await start(api)
    try:
        yield api
    finally:
        api.end_watches()
        await runner.cleanup()


@pytest.fixture
async def client(fake_api: FakeKubeAPI) -> AsyncIterator[RESTClient]:
    async with RESTClient(ClientConfig(server=fake_api.url, token=TOKEN)) as rest:
        yield rest

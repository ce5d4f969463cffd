"""The real API server (handlers, registry, store on SQLite) on a loopback port for unit tests.

Plain HTTP, no token, a fixed clock: what tests of request handling need without `tinykube up`.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tinykube.api import resources
from tinykube.apiserver.admission import ACCOUNT_WAIT, Admission
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.app import APIServer
from tinykube.apiserver.bootstrap import bootstrap
from tinykube.apiserver.handlers import ResourceHandler
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR, DEFAULT_WATCH_HISTORY
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)


@contextlib.asynccontextmanager
async def running_api(tmp_path: Path, *, history: int = DEFAULT_WATCH_HISTORY,
                      bootstrapped: bool = False, account_wait: float = ACCOUNT_WAIT,
                      ) -> AsyncIterator[tuple[aiohttp.ClientSession, Store]]:
    """A started API server and a session whose base URL is it; stopped on exit. With
    `bootstrapped`, the objects `tinykube up` starts with (namespaces, `kubernetes` and
    `kube-dns` Services) exist, and each namespace has the `default` ServiceAccount that the
    service account controller would make (pods need it to pass admission; `account_wait` is
    how long admission waits for a missing `default` one)."""
    store = Store(SQLiteBackend(tmp_path / "state.db"), history=history)
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR), clock=lambda: NOW)
    if bootstrapped:
        bootstrap(registry, api_host="127.0.0.1", api_port=6443)
        accounts = resources.must("", "v1", "serviceaccounts")
        for namespace in store.list("core/namespaces"):
            registry.create(accounts, {"metadata": {
                "name": "default", "namespace": namespace.obj["metadata"]["name"]}})
    admission = Admission(registry, account_wait=account_wait)
    server = APIServer(ResourceHandler(registry, now=lambda: NOW, admission=admission),
                       token=None, port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            yield session, store
    finally:
        await server.stop()
        store.close()

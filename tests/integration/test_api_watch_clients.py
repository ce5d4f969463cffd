"""List and watch semantics as third-party clients use them: the official `kubernetes` client
and kr8s, unchanged, against tinykube's API server.

The server runs in this process, on its own event loop in a thread, so that the test can give it
a tiny watch history (`watch_history=50`: a 410 Gone after 50 writes instead of 20,000), a short
bookmark interval, and can seed 10,000 objects through the registry without 10,000 HTTP round
trips. Everything the clients do still goes over HTTPS with the generated CA and token.

- relist after 410: a reflector (list, watch, relist on 410 Gone, as client-go's does) ends with
  exactly the server's state and sees every write made after its relist once, in order;
- bookmarks arrive on a quiet watch with `allowWatchBookmarks`;
- a 10,000-object list paged with `limit`/`continue` returns every object exactly once, at one
  resourceVersion, with a decreasing `remainingItemCount`;
- kr8s discovers the server (`/version/`) and pages a list with `limit=100`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import kr8s.asyncio
import orjson
import pytest
from aiohttp import web
from kr8s.asyncio.objects import APIObject
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tinykube.api import resources
from tinykube.apiserver.paths import Target
from tinykube.apiserver.server import APIServerOptions, RunningAPIServer, open_apiserver

T = TypeVar("T")
HISTORY = 50
BOOKMARK_INTERVAL = 0.2
PAGED_OBJECTS = 10_000
CONFIGMAPS = resources.lookup("", "v1", "configmaps")


class ServerThread:
    """An API server on its own event loop in a daemon thread."""

    def __init__(self, options: APIServerOptions) -> None:
        self.options = options
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: RunningAPIServer | None = None

    def __enter__(self) -> RunningAPIServer:
        self._thread.start()
        self.running = self.call(open_apiserver(self.options))
        return self.running

    def __exit__(self, *exc: object) -> None:
        if self.running is not None:
            self.call(self.running.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def call(self, coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=60)

    def run(self, function: Callable[[], T]) -> T:
        """Run a synchronous function on the server's loop, between its requests."""
        async def wrapped() -> T:
            return function()
        return self.call(wrapped())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    options = APIServerOptions(data_dir=tmp_path_factory.mktemp("watch") / "data", port=0,
                               watch_history=HISTORY, bookmark_interval=BOOKMARK_INTERVAL)
    thread = ServerThread(options)
    with thread:
        yield thread


# The kubernetes client's models make every field Optional; tests hold its objects as Any.
CoreAPI = Any


def core_api(server: ServerThread) -> CoreAPI:
    assert server.running is not None
    api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(server.running.kubeconfig))
    return client.CoreV1Api(api_client)


def new_watch() -> Any:
    return watch.Watch()  # type: ignore[no-untyped-call]


def create_namespace(api: CoreAPI, name: str) -> None:
    api.create_namespace({"metadata": {"name": name}})


def configmap(name: str, value: str = "0") -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"value": value}}


# --- relist after 410 -------------------------------------------------------------------

Seen = tuple[str, str, int]  # (event type, name, resourceVersion)


class Reflector:
    """client-go's reflector in miniature: list, watch from the list, relist on 410 Gone."""

    def __init__(self, api: CoreAPI, namespace: str, stop_at: str) -> None:
        self.api, self.namespace, self.stop_at = api, namespace, stop_at
        self.state: dict[str, int] = {}
        self.rv = 0
        self.gone: list[int] = []  # the status code of every watch that ended in an error
        self.events: list[Seen] = []  # events received after the most recent relist
        self.relisted = threading.Event()
        self.error: BaseException | None = None

    def relist(self) -> None:
        listed = self.api.list_namespaced_config_map(self.namespace)
        self.state = {item.metadata.name: int(item.metadata.resource_version)
                      for item in listed.items}
        self.rv = int(listed.metadata.resource_version)
        self.events = []

    def run(self) -> None:
        try:
            while not self._watch_once():
                self.relist()
                self.relisted.set()
        except BaseException as error:  # reported by the test thread
            self.error = error
            self.relisted.set()

    def _watch_once(self) -> bool:
        """Watch from self.rv; True once the stop_at object was seen, False after a 410."""
        stream = new_watch()
        try:
            for event in stream.stream(self.api.list_namespaced_config_map, self.namespace,
                                       resource_version=str(self.rv)):
                meta = event["raw_object"]["metadata"]
                rv = int(meta["resourceVersion"])
                self.events.append((event["type"], meta["name"], rv))
                if event["type"] == "DELETED":
                    self.state.pop(meta["name"], None)
                else:
                    self.state[meta["name"]] = rv
                self.rv = rv
                if meta["name"] == self.stop_at:
                    stream.stop()
                    return True
        except ApiException as error:
            self.gone.append(error.status)
            if error.status != 410:
                raise
        return False


def write_after_relist(api: CoreAPI, namespace: str, stop_at: str) -> list[Seen]:
    """Creates, updates and deletes, ending with `stop_at`; the events they must cause."""
    done: list[Seen] = []

    def seen(kind: str, obj: Any) -> None:
        done.append((kind, obj.metadata.name, int(obj.metadata.resource_version)))

    for n in range(10):
        seen("ADDED", api.create_namespaced_config_map(namespace, configmap(f"new-{n}")))
    for n in range(1, 4):
        seen("MODIFIED", api.patch_namespaced_config_map(
            f"pre-{n}", namespace, {"data": {"value": "changed"}}))
    for name in ("pre-4", "new-0"):
        deleted = api.delete_namespaced_config_map(name, namespace, _preload_content=False)
        meta = orjson.loads(deleted.data)["metadata"]
        done.append(("DELETED", name, int(meta["resourceVersion"])))
    seen("ADDED", api.create_namespaced_config_map(namespace, configmap(stop_at)))
    return done


def test_relist_after_410_loses_and_duplicates_no_event(server: ServerThread) -> None:
    api, namespace, stop_at = core_api(server), "relist", "zz-last"
    create_namespace(api, namespace)
    for n in range(5):
        api.create_namespaced_config_map(namespace, configmap(f"pre-{n}"))
    reflector = Reflector(core_api(server), namespace, stop_at)
    reflector.relist()
    first_list_rv = reflector.rv
    for n in range(HISTORY + 10):  # push the list's resourceVersion out of the history
        api.patch_namespaced_config_map("pre-0", namespace, {"data": {"value": str(n)}})

    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    assert reflector.relisted.wait(timeout=30)
    assert reflector.error is None, reflector.error
    assert reflector.rv > first_list_rv
    expected = write_after_relist(api, namespace, stop_at)
    thread.join(timeout=30)
    assert not thread.is_alive() and reflector.error is None, reflector.error

    assert reflector.gone == [410]
    assert reflector.events == expected  # each write once, in resourceVersion order
    final = api.list_namespaced_config_map(namespace)
    assert reflector.state == {item.metadata.name: int(item.metadata.resource_version)
                               for item in final.items}


def test_watch_from_compacted_version_is_410_expired(server: ServerThread) -> None:
    api = core_api(server)
    create_namespace(api, "expired")
    old_rv = api.list_namespaced_config_map("expired").metadata.resource_version
    api.create_namespaced_config_map("expired", configmap("churn"))
    for n in range(HISTORY + 1):
        api.patch_namespaced_config_map("churn", "expired", {"data": {"value": str(n)}})
    stream = new_watch()
    with pytest.raises(ApiException) as raised:
        next(iter(stream.stream(api.list_namespaced_config_map, "expired",
                                resource_version=old_rv, timeout_seconds=5)))
    assert raised.value.status == 410
    assert str(raised.value.reason).startswith("Expired: too old resource version: ")


# --- bookmarks ---------------------------------------------------------------------------

def test_bookmarks_arrive_on_a_quiet_watch(server: ServerThread) -> None:
    api = core_api(server)
    create_namespace(api, "quiet")
    list_rv = int(api.list_namespaced_config_map("quiet").metadata.resource_version)
    stream = new_watch()
    events = stream.stream(api.list_namespaced_config_map, "quiet", resource_version=str(list_rv),
                           allow_watch_bookmarks=True, timeout_seconds=10)
    bookmarks = []
    for event in events:
        assert event["type"] == "BOOKMARK"
        bookmarks.append(event["raw_object"])
        if len(bookmarks) == 2:
            stream.stop()
    assert len(bookmarks) == 2
    for bookmark in bookmarks:
        assert (bookmark["kind"], bookmark["apiVersion"]) == ("ConfigMap", "v1")
        assert int(bookmark["metadata"]["resourceVersion"]) >= list_rv
    assert int(stream.resource_version) >= list_rv  # the client resumes from a bookmark


# --- paging ------------------------------------------------------------------------------

def seed_configmaps(server: ServerThread, namespace: str, count: int) -> None:
    """Create `count` ConfigMaps through the registry, on the server's loop."""
    assert server.running is not None and CONFIGMAPS is not None
    registry = server.running.registry

    def create_all() -> None:
        for n in range(count):
            registry.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": f"cm-{n:05d}", "namespace": namespace}, "data": {"n": str(n)}})
    server.run(create_all)


@pytest.fixture(scope="module")
def paged_namespace(server: ServerThread) -> str:
    create_namespace(core_api(server), "paging")
    seed_configmaps(server, "paging", PAGED_OBJECTS)
    return "paging"


def test_10k_list_pages_return_every_object_once(server: ServerThread,
                                                 paged_namespace: str) -> None:
    api = core_api(server)
    names: list[str] = []
    page_rvs, remaining = set(), []
    token = None
    while True:
        page = api.list_namespaced_config_map(paged_namespace, limit=500, _continue=token)
        if not names:  # a write between pages must not make an object appear twice
            api.patch_namespaced_config_map("cm-09999", paged_namespace, {"data": {"n": "x"}})
        names += [item.metadata.name for item in page.items]
        page_rvs.add(page.metadata.resource_version)
        token = page.metadata._continue
        if not token:
            break
        remaining.append(page.metadata.remaining_item_count)
    assert len(names) == PAGED_OBJECTS
    assert names == sorted(set(names))  # each once, in key order
    assert len(page_rvs) == 1  # every page is served at the first page's resourceVersion
    assert remaining == list(range(PAGED_OBJECTS - 500, 0, -500))


def test_bad_continue_token_is_400(server: ServerThread, paged_namespace: str) -> None:
    api = core_api(server)
    with pytest.raises(ApiException) as raised:
        api.list_namespaced_config_map(paged_namespace, limit=10, _continue="not-a-token")
    assert raised.value.status == 400


def test_error_body_reaches_the_client_as_kube_apiserver_writes_it(server: ServerThread) -> None:
    """The official client keeps the body verbatim (`ApiException.body`, and its str)."""
    api = core_api(server)
    with pytest.raises(ApiException) as raised:
        api.read_namespaced_config_map("absent", "default")
    assert raised.value.body == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
        '"configmaps \\"absent\\" not found","reason":"NotFound","details":{"name":"absent",'
        '"kind":"configmaps"},"code":404}\n')


# --- kr8s --------------------------------------------------------------------------------

SeenRequest = tuple[str, str, dict[str, str]]


@contextlib.contextmanager
def recorded_requests(server: ServerThread) -> Iterator[list[SeenRequest]]:
    """Record the resource requests the server handles inside the block."""
    assert server.running is not None
    handler = server.running.server.handler
    original = handler.handle
    seen: list[SeenRequest] = []

    async def recording(request: web.Request, target: Target) -> web.StreamResponse:
        seen.append((request.method, request.path, dict(request.query)))
        return await original(request, target)
    handler.handle = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        handler.handle = original  # type: ignore[method-assign]


async def test_kr8s_discovers_and_pages_with_limit_100(server: ServerThread) -> None:
    assert server.running is not None
    create_namespace(core_api(server), "kr8s")
    seed_configmaps(server, "kr8s", 250)
    with recorded_requests(server) as seen:
        api = await kr8s.asyncio.api(kubeconfig=str(server.running.kubeconfig))
        version = await api.version()
        found = [cm async for cm in api.async_get("configmaps", namespace="kr8s")]
    names = [cm.name for cm in found if isinstance(cm, APIObject)]
    assert (version["major"], version["minor"]) == ("1", "32")
    assert len(names) == 250 and len(set(names)) == 250
    lists = [query for method, path, query in seen
             if method == "GET" and path == "/api/v1/namespaces/kr8s/configmaps"]
    assert [query.get("limit") for query in lists] == ["100", "100", "100"]
    assert ["continue" in query for query in lists] == [False, True, True]


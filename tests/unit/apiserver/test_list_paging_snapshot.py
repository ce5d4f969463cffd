"""Paged lists over HTTP are consistent snapshots, as kube-apiserver's are.

The real API server (handlers, registry, store on SQLite in a tmp dir) on a loopback port, plain
HTTP, no token, a fixed clock. Each case lists page 1 of ten ConfigMaps with `limit`, writes
through the API on both sides of the page boundary, then follows the continue tokens: the pages
together must be exactly the state at page 1's resourceVersion, every page must report that
resourceVersion, and `remainingItemCount` must count down the snapshot. A continue token whose
snapshot left the watch history gets kube-apiserver's 410 Expired with a token that continues
at the current resourceVersion.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.unit.apiserver.harness import running_api
from tinykube.store.cache import Store

HISTORY = 30
LIMIT = 4
NS = "paging"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list.")


@dataclasses.dataclass
class Api:
    session: aiohttp.ClientSession
    store: Store

    async def call(self, method: str, path: str, body: Any = None, *,
                   content_type: str = "application/json",
                   accept: str = "application/json") -> tuple[int, Any]:
        data = None if body is None else orjson.dumps(body)
        async with self.session.request(method, path, data=data, headers={
                "Content-Type": content_type, "Accept": accept}) as reply:
            return reply.status, orjson.loads(await reply.read())

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: str) -> Any:
        status, reply = await self.call(method, path, body, **kwargs)
        assert status in (200, 201), reply
        return reply

    async def create(self, name: str, namespace: str = NS, **labels: str) -> None:
        await self.ok("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                      {"metadata": {"name": name, "labels": labels}, "data": {"name": name}})

    async def relabel(self, name: str, **labels: str) -> None:
        await self.ok("PATCH", f"{CONFIGMAPS}/{name}", {"metadata": {"labels": labels}},
                      content_type="application/merge-patch+json")

    async def delete(self, name: str) -> None:
        await self.ok("DELETE", f"{CONFIGMAPS}/{name}")

    async def pages(self, path: str, *, between: Callable[[], Awaitable[None]] | None = None,
                    accept: str = "application/json", **query: str) -> list[Any]:
        """Every page of a list with `limit=LIMIT`; `between` runs after the first page."""
        pages, token = [], ""
        while True:
            params = {"limit": str(LIMIT), **query, **({"continue": token} if token else {})}
            page = await self.ok("GET", f"{path}?{_query(params)}", accept=accept)
            pages.append(page)
            if between is not None and len(pages) == 1:
                await between()
            token = page["metadata"].get("continue", "")
            if not token:
                return pages


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path, history=HISTORY) as (session, store):
        client = Api(session, store)
        for namespace in (NS, "a", "a-b", "b"):
            await client.ok("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        for i in range(10):
            await client.create(f"cm-{i:02d}", app="web", n=str(i))
        yield client


def items(pages: list[Any]) -> list[Any]:
    return [item for page in pages for item in page["items"]]


def summary(objects: list[Any]) -> dict[str, tuple[str, Any]]:
    """name -> (resourceVersion, labels)."""
    return {o["metadata"]["name"]: (o["metadata"]["resourceVersion"], o["metadata"]["labels"])
            for o in objects}


def token_fields(token: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def old_token(rv: int, start: str) -> str:
    """A token exactly as tinykube made them before paged lists were snapshots."""
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Writes made after page 1 (cm-00..cm-03); cm-04..cm-09 are behind the boundary.
async def _everything(api: Api) -> None:
    await api.create("cm-01a", app="new")
    await api.create("cm-05a", app="new")
    await api.relabel("cm-02", app="changed")
    await api.relabel("cm-07", app="changed")
    await api.relabel("cm-07", app="again")
    await api.delete("cm-03")
    await api.delete("cm-08")
    await api.delete("cm-06")
    await api.create("cm-06", app="reborn")


MUTATIONS: list[tuple[str, Callable[[Api], Awaitable[None]]]] = [
    ("create-after-boundary", lambda a: a.create("cm-05a", app="new")),
    ("create-before-boundary", lambda a: a.create("cm-01a", app="new")),
    ("modify-after-boundary", lambda a: a.relabel("cm-07", app="changed")),
    ("modify-boundary-object", lambda a: a.relabel("cm-03", app="changed")),
    ("delete-after-boundary", lambda a: a.delete("cm-08")),
    ("delete-boundary-object", lambda a: a.delete("cm-03")),
    ("everything", _everything),
]


@pytest.mark.parametrize("mutate", [m for _, m in MUTATIONS], ids=[n for n, _ in MUTATIONS])
async def test_pages_are_the_snapshot_of_the_first_page(
        api: Api, mutate: Callable[[Api], Awaitable[None]]) -> None:
    before = await api.ok("GET", CONFIGMAPS)
    pages = await api.pages(CONFIGMAPS, between=lambda: mutate(api))
    listed = items(pages)
    assert [o["metadata"]["name"] for o in listed] == [f"cm-{i:02d}" for i in range(10)]
    assert summary(listed) == summary(before["items"])
    assert {p["metadata"]["resourceVersion"] for p in pages} == {
        before["metadata"]["resourceVersion"]}
    assert [p["metadata"].get("remainingItemCount") for p in pages] == [6, 2, None]
    assert [token_fields(p["metadata"]["continue"])["rv"] for p in pages[:-1]] == [
        int(before["metadata"]["resourceVersion"])] * 2
    after = await api.ok("GET", CONFIGMAPS)
    assert summary(after["items"]) != summary(before["items"])  # the writes did happen


async def test_a_paged_list_then_a_watch_from_its_version_sees_each_change_once(
        api: Api) -> None:
    """The informer's contract: list in pages, watch from the list's resourceVersion; the
    result must be the current state, each write seen exactly once."""
    pages = await api.pages(CONFIGMAPS, between=lambda: _everything(api))
    cache = {o["metadata"]["name"]: o for o in items(pages)}
    list_rv = pages[0]["metadata"]["resourceVersion"]
    seen = []
    async with asyncio.timeout(10), api.session.get(
            f"{CONFIGMAPS}?watch=1&resourceVersion={list_rv}") as stream:
        while len(seen) < 9:  # the nine writes of _everything
            event = orjson.loads(await stream.content.readline())
            name = event["object"]["metadata"]["name"]
            seen.append((event["type"], name))
            if event["type"] == "DELETED":
                assert name in cache, f"deleted {name} was never listed"
                del cache[name]
            else:
                assert (event["type"] == "ADDED") == (name not in cache), event["type"]
                cache[name] = event["object"]
    current = await api.ok("GET", CONFIGMAPS)
    assert summary(list(cache.values())) == summary(current["items"])
    assert seen[0] == ("ADDED", "cm-01a")


async def test_a_selector_pages_the_labels_of_the_snapshot(api: Api) -> None:
    for i in range(1, 10, 2):
        await api.relabel(f"cm-{i:02d}", app="db")  # web: cm-00, 02, 04, 06, 08

    async def change() -> None:
        await api.relabel("cm-06", app="db")  # matched at the snapshot: still listed, as web
        await api.relabel("cm-07", app="web")  # did not match: not listed
        await api.delete("cm-08")  # matched: still listed
        await api.create("cm-09a", app="web")  # created later: not listed

    pages = await api.pages(CONFIGMAPS, between=change, labelSelector="app=web")
    listed = items(pages)
    assert [o["metadata"]["name"] for o in listed] == ["cm-00", "cm-02", "cm-04", "cm-06",
                                                         "cm-08"]
    assert {o["metadata"]["labels"]["app"] for o in listed} == {"web"}
    # kube-apiserver leaves remainingItemCount out when a selector filters the list
    assert [p["metadata"].get("remainingItemCount") for p in pages] == [None, None]


async def test_a_cluster_wide_list_pages_every_namespace_once(api: Api) -> None:
    """Namespaces "a-b" and "a": keys order as kube-apiserver's storage keys do ("a-b/x" <
    "a/x"); a page boundary inside "a-b" must not skip "a"."""
    names = {"a-b": "wxyz", "a": "xy", "b": "xy"}  # page 1 is all of "a-b"
    for namespace, letters in names.items():
        for name in letters:
            await api.create(name, namespace)
    pages = await api.pages("/api/v1/configmaps", between=lambda: api.create("w", "a"))
    keys = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items(pages)]
    expected = [(ns, n) for ns, letters in names.items() for n in letters] + [
        (NS, f"cm-{i:02d}") for i in range(10)]
    assert keys == expected


async def test_a_table_page_is_the_snapshot_too(api: Api) -> None:
    pages = await api.pages(CONFIGMAPS, between=lambda: _everything(api), accept=TABLE)
    names = [row["object"]["metadata"]["name"] for page in pages for row in page["rows"]]
    assert names == [f"cm-{i:02d}" for i in range(10)]
    assert len({p["metadata"]["resourceVersion"] for p in pages}) == 1


async def test_an_expired_continue_token_is_410_with_a_token_that_continues(api: Api) -> None:
    first = await api.ok("GET", f"{CONFIGMAPS}?limit={LIMIT}")
    token = first["metadata"]["continue"]
    await api.create("cm-05a", app="new")
    for i in range(HISTORY):  # pushes the snapshot out of the history
        await api.relabel("cm-07", n=str(i))

    status, reply = await api.call("GET", f"{CONFIGMAPS}?limit={LIMIT}&continue={token}")
    assert status == 410
    assert {k: v for k, v in reply.items() if k != "metadata"} == {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": EXPIRED,
        "reason": "Expired", "code": 410}
    fresh = reply["metadata"]["continue"]
    assert token_fields(fresh) == {**token_fields(token), "rv": -1}

    # Continuing with it is an inconsistent list: the rest of the current objects at the
    # current version, whose own token then holds a consistent snapshot again.
    current_rv = str(api.store.resource_version)
    pages = [await api.ok("GET", f"{CONFIGMAPS}?limit={LIMIT}&continue={fresh}")]
    assert pages[0]["metadata"]["resourceVersion"] == current_rv
    assert token_fields(pages[0]["metadata"]["continue"])["rv"] == int(current_rv)
    await api.create("cm-05b")  # after the inconsistent page's version: not listed
    pages.append(await api.ok(
        "GET", f"{CONFIGMAPS}?limit={LIMIT}&continue={pages[0]['metadata']['continue']}"))
    assert [o["metadata"]["name"] for o in items(pages)] == [
        "cm-04", "cm-05", "cm-05a", "cm-06", "cm-07", "cm-08", "cm-09"]
    assert [p["metadata"]["resourceVersion"] for p in pages] == [current_rv] * 2
    assert items(pages)[4]["metadata"]["labels"]["n"] == str(HISTORY - 1)


async def test_an_old_format_token_continues_at_its_snapshot(api: Api) -> None:
    before = await api.ok("GET", CONFIGMAPS)
    rv = int(before["metadata"]["resourceVersion"])
    await api.relabel("cm-05", app="changed")
    page = await api.ok("GET", f"{CONFIGMAPS}?limit=100&continue={old_token(rv, f'{NS}/cm-03')}")
    assert summary(page["items"]) == summary(before["items"][4:])
    assert page["metadata"] == {"resourceVersion": str(rv)}


BAD_TOKENS = [
    ("not-base64", "not-a-token!", "invalid continue token: not-a-token!"),
    ("not-json", base64.urlsafe_b64encode(b"{").decode(), None),
    ("a-list", base64.urlsafe_b64encode(b"[1]").decode(), None),
    ("no-rv", base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","start":"x"}').decode(), None),
    ("rv-zero", old_token(0, f"{NS}/cm-03"),
     "invalid continue token: continue key is not valid: incorrect encoded start "
     "resourceVersion (version meta.k8s.io/v1)"),
    ("empty-start", old_token(5, ""),
     "invalid continue token: continue key is not valid: encoded start key empty "
     "(version meta.k8s.io/v1)"),
    ("other-version", base64.urlsafe_b64encode(b'{"v":"v1alpha1","rv":5,"start":"x"}').decode(),
     'invalid continue token: continue key is not valid: server does not recognize this '
     'encoded version "v1alpha1"'),
]


@pytest.mark.parametrize(("token", "message"), [t[1:] for t in BAD_TOKENS],
                         ids=[t[0] for t in BAD_TOKENS])
async def test_a_bad_token_is_400(api: Api, token: str, message: str | None) -> None:
    status, reply = await api.call("GET", f"{CONFIGMAPS}?limit=4&continue={token}")
    assert (status, reply["reason"], reply["code"]) == (400, "BadRequest", 400)
    assert reply["message"] == (message or f"invalid continue token: {token}")

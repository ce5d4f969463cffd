"""Informer: a local, eventually consistent cache of one resource, kept fresh by list + watch.

The contract (as client-go's `shared_informer.go` states it):

* The cache converges to the server's state. Each object's states are seen in order, but
  intermediate states may be skipped (e.g. across a relist); there is no ordering across objects.
* Handlers (`on_add(obj)`, `on_update(old, new)`, `on_delete(obj)`) are called synchronously on
  the event loop, right after the cache changed. They must be quick: turn the event into a key
  and hand it to a `WorkQueue`. An exception in a handler is logged and does not stop the informer.
* Objects in the cache are shared, not copied: callers MUST NOT mutate them (copy first, e.g.
  `copy.deepcopy`). The informer never mutates an object after it is stored.

The reflector loop in `run()`:

1. List in pages (`limit=500` + `continue`) and replace the cache with the result. On a relist the
   difference to the old cache is emitted: `on_add` for new keys, `on_update` for keys whose
   `resourceVersion` changed, `on_delete` (with the last known object) for keys that are gone.
   Unchanged objects emit nothing, so no event is duplicated. `has_synced` turns true after the
   first list has been applied.
2. Watch from the list's `resourceVersion` with bookmarks and a random 5-10 minute
   `timeoutSeconds`. Every event, bookmarks included, advances the last seen resourceVersion;
   when the stream ends, watch again from there (after a backoff if it delivered nothing at
   all, so a server that closes watches at once cannot make us spin).
3. A 410 Gone (an expired resourceVersion) means the history we need is compacted: list again.
   A continue token that expires mid-list is answered by one list without paging, as
   client-go's pager does. Any other error backs off (exponential, jittered, capped at 30 s, like
   client-go's reflector) and retries the watch from the last seen resourceVersion.

A DELETED event for a key that is not in the cache emits nothing (the handler never saw it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors
from tinykube.api.resources import Resource
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]
Sleep = Callable[[float], Awaitable[None]]
ObjList = list[Obj]  # (the aliases keep mypy from reading `list` as Indexer.list)
KeyList = list[str]

PAGE_SIZE = 500
MIN_WATCH_TIMEOUT = 300  # seconds; each watch asks for a random timeout in [min, 2*min)


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name", "")
    return f"{namespace}/{name}" if namespace else str(name)


def namespace_index(obj: Obj) -> list[str]:
    """An index function for `Indexer.add_index("namespace", namespace_index)`."""
    return [str((obj.get("metadata") or {}).get("namespace", ""))]


def label_index(obj: Obj) -> list[str]:
    """An index function for `Indexer.add_index("label", label_index)`: `namespace/key=value`,
    one value per label, which `Indexer.select` looks selectors up in."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace", "")
    return [f"{namespace}/{k}={v}" for k, v in (meta.get("labels") or {}).items()]


def _resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class Indexer:
    """Objects by key, plus named secondary indices (index name -> value -> keys).

    Only the informer writes (`put`, `delete`, `replace`); everyone else reads. Returned objects
    are the cached ones: do not mutate them.
    """

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> ObjList:
        return list(self._items.values())

    def keys(self) -> KeyList:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Register `func(obj) -> values`; existing objects are indexed at once."""
        if name in self._index_funcs:
            if self._index_funcs[name] is func:
                return  # a second user of a shared cache asking for the same index
            raise ValueError(f"index {name!r} already exists")
        self._index_funcs[name] = func
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, obj)

    def by_index(self, name: str, value: str) -> ObjList:
        """Objects whose index function `name` returned `value` (sorted by key)."""
        return [self._items[key] for key in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> KeyList:
        if name not in self._indices:
            raise KeyError(f"index {name!r} does not exist")
        return sorted(self._indices[name].get(value, ()))

    def select(self, namespace: str, selector: dict[str, str]) -> ObjList:
        """Objects of `namespace` whose labels match the equality `selector` (sorted by key),
        found through its rarest label in the `label` index (`label_index`) rather than by a
        scan. An empty selector selects nothing here (callers decide what "no selector" means)."""
        if not selector:
            return []
        index = self._indices["label"]
        rarest = min((index.get(f"{namespace}/{k}={v}", ()) for k, v in selector.items()),
                     key=len)
        found = [self._items[key] for key in sorted(rarest)]
        return [obj for obj in found
                if all((obj["metadata"].get("labels") or {}).get(k) == v
                       for k, v in selector.items())]

    def put(self, key: str, obj: Obj) -> Obj | None:
        """Store `obj` under `key`; returns the object it replaced."""
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._index_funcs:
            self._index_one(name, key, obj)
        return old

    def delete(self, key: str) -> Obj | None:
        """Remove `key`; returns the removed object."""
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def replace(self, items: dict[str, Obj]) -> dict[str, Obj]:
        """Swap in a whole new set of objects and rebuild the indices; returns the old set."""
        old_items, self._items = self._items, dict(items)
        for name in self._index_funcs:
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)
        return old_items

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._index_funcs[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, func in self._index_funcs.items():
            index = self._indices[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


class Backoff:
    """Exponential delay with jitter: `initial * 2**n * (1 + jitter*rand)`, capped at `cap`."""

    def __init__(self, initial: float = 0.8, cap: float = 30.0, jitter: float = 1.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.initial, self.cap, self.jitter, self._rng = initial, cap, jitter, rng
        self._failures = 0

    def next(self) -> float:
        base = self.initial * 2.0 ** min(self._failures, 32)
        self._failures += 1
        return min(self.cap, base * (1 + self.jitter * self._rng()))

    def reset(self) -> None:
        self._failures = 0


class _HandlerSet:
    def __init__(self, on_add: AddHandler | None, on_update: UpdateHandler | None,
                 on_delete: DeleteHandler | None) -> None:
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete


def shared(client: RESTClient, res: Resource, *, namespace: str | None = None,
           label_selector: str | None = None, field_selector: str | None = None) -> Informer:
    """The one informer of `client` for this resource and selection, created on first use.

    Components of one process share informers (client-go's SharedInformerFactory): each
    object is listed, watched, decoded and cached once however many controllers read it.
    Shared caches are read-only for everyone, as every informer cache is. A client made with
    `informers=base` shares `base`'s informers, which list and watch with `base`'s credentials.
    """
    client = getattr(client, "informer_client", client)  # (a test double may lack it)
    key = (res.group, res.version, res.plural, namespace, label_selector, field_selector)
    informers = _SHARED.setdefault(client, {})
    if key not in informers:
        informers[key] = Informer(client, res, namespace=namespace,
                                  label_selector=label_selector, field_selector=field_selector)
    return informers[key]


_SHARED: weakref.WeakKeyDictionary[RESTClient, dict[tuple[object, ...], Informer]] = \
    weakref.WeakKeyDictionary()


class Informer:
    """List + watch one resource into `cache` and tell handlers what changed.

    `page_size`, `backoff`, `watch_timeout_seconds` and `sleep` exist for tests; leave them be.
    """

    def __init__(self, client: RESTClient, res: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 page_size: int = PAGE_SIZE, backoff: Backoff | None = None,
                 watch_timeout_seconds: int | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.client, self.res = client, res
        self.namespace = namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.cache = Indexer()
        self.has_synced = False
        self.last_resource_version: str | None = None  # None: the next loop lists
        self._page_size = page_size
        self._backoff = backoff or Backoff()
        self._watch_timeout = watch_timeout_seconds
        self._sleep = sleep
        self._handlers: list[_HandlerSet] = []
        self._synced = asyncio.Event()
        self._reflector: asyncio.Task[None] | None = None
        self._users = 0  # callers of run() sharing the reflector
        clocks.installed().track(self)

    def add_handlers(self, *, on_add: AddHandler | None = None,
                     on_update: UpdateHandler | None = None,
                     on_delete: DeleteHandler | None = None) -> None:
        """Register handlers; if already synced, `on_add` is replayed for every cached object."""
        handlers = _HandlerSet(on_add, on_update, on_delete)
        self._handlers.append(handlers)
        if self.has_synced and on_add is not None:
            for obj in self.cache.list():
                self._call(on_add, obj)

    async def wait_synced(self) -> None:
        """Return once the first list has been applied to the cache."""
        await self._synced.wait()

    async def run(self) -> None:
        """Run the reflector until cancelled; a shared informer's users all call this, and
        they share one reflector, which stops when the last of them is cancelled."""
        if self._reflector is None or self._reflector.done():
            self._reflector = asyncio.create_task(self._reflect(),
                                                  name=f"informer/{self.res.qualified}")
        self._users += 1
        try:
            await asyncio.shield(self._reflector)
        finally:
            self._users -= 1
            if self._users == 0:
                self._reflector.cancel()

    async def _reflect(self) -> None:
        """The reflector loop (see the module docstring)."""
        while True:
            try:
                if self.last_resource_version is None:
                    await self._list_and_replace()
                if await self._watch_once():
                    self._backoff.reset()
                    continue
                delay = self._backoff.next()  # a watch that ended with nothing: don't spin
            except errors.Gone as exc:
                log.info("%s: resourceVersion expired (%s); relisting", self.res.qualified, exc)
                self.last_resource_version = None
                delay = self._backoff.next()
            except Exception as exc:
                delay = self._backoff.next()
                log.warning("%s: list/watch failed, retrying in %.1fs: %s",
                            self.res.qualified, delay, exc)
            await self._sleep(delay)

    # --- list -----------------------------------------------------------------------------------

    async def _list_all(self) -> tuple[list[Obj], str]:
        """Every page of the list; returns the items and the list's resourceVersion."""
        def list_page(limit: int | None, token: str | None) -> Awaitable[Obj]:
            return self.client.list(self.res, self.namespace, label_selector=self.label_selector,
                                    field_selector=self.field_selector, limit=limit,
                                    continue_=token)

        items: list[Obj] = []
        continue_token: str | None = None
        while True:
            try:
                page = await list_page(self._page_size, continue_token)
            except errors.Gone:
                if continue_token is None:
                    raise
                # The snapshot of the first page expired mid-list: one list without paging,
                # as client-go's pager does, rather than starting over into the same race.
                log.info("%s: continue token expired; listing without pages",
                         self.res.qualified)
                page = await list_page(None, None)
                items = []
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            continue_token = meta.get("continue") or None
            if continue_token is None:
                return items, str(meta.get("resourceVersion", ""))

    async def _list_and_replace(self) -> None:
        items, resource_version = await self._list_all()
        for item in items:  # list items carry no TypeMeta on the wire; watch events do
            item.setdefault("apiVersion", self.res.api_version)
            item.setdefault("kind", self.res.kind)
        self._replace({object_key(item): item for item in items})
        self.last_resource_version = resource_version
        if not self.has_synced:
            self.has_synced = True
            self._synced.set()

    def _replace(self, new_items: dict[str, Obj]) -> None:
        clocks.touch()
        old_items = self.cache.replace(new_items)
        for key, obj in new_items.items():
            old = old_items.get(key)
            if old is None:
                self._emit_add(obj)
            elif _resource_version(old) != _resource_version(obj):
                self._emit_update(old, obj)
        for key, old in old_items.items():
            if key not in new_items:
                self._emit_delete(old)

    # --- watch ----------------------------------------------------------------------------------

    async def _watch_once(self) -> bool:
        """Watch from the last seen resourceVersion until the stream ends; True if it saw any
        event (bookmarks count)."""
        assert self.last_resource_version is not None
        timeout = self._watch_timeout or random.randint(MIN_WATCH_TIMEOUT, 2 * MIN_WATCH_TIMEOUT)
        seen = False
        async for event_type, obj in self.client.watch(
                self.res, self.namespace, resource_version=self.last_resource_version,
                label_selector=self.label_selector, field_selector=self.field_selector,
                timeout_seconds=timeout, allow_bookmarks=True):
            self._apply(event_type, obj)
            resource_version = _resource_version(obj)
            if resource_version:
                self.last_resource_version = resource_version
            seen = True
        return seen

    def quiescent(self, resource_version: int | None) -> bool:
        """Not running, or has seen `resource_version` (`clock.settle`)."""
        if resource_version is None or self._users == 0:
            return True
        seen = self.last_resource_version
        return seen is not None and seen.isdigit() and int(seen) >= resource_version

    def _apply(self, event_type: str, obj: Obj) -> None:
        if event_type != "BOOKMARK":
            clocks.touch()
        if event_type in ("ADDED", "MODIFIED"):
            old = self.cache.put(object_key(obj), obj)
            if old is None:
                self._emit_add(obj)
            else:
                self._emit_update(old, obj)
        elif event_type == "DELETED":
            if self.cache.delete(object_key(obj)) is not None:
                self._emit_delete(obj)
        elif event_type != "BOOKMARK":
            log.warning("%s: ignoring watch event of type %r", self.res.qualified, event_type)

    # --- handlers -------------------------------------------------------------------------------

    def _emit_add(self, obj: Obj) -> None:
        for handlers in self._handlers:
            if handlers.on_add is not None:
                self._call(handlers.on_add, obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for handlers in self._handlers:
            if handlers.on_update is not None:
                self._call(handlers.on_update, old, new)

    def _emit_delete(self, obj: Obj) -> None:
        for handlers in self._handlers:
            if handlers.on_delete is not None:
                self._call(handlers.on_delete, obj)

    def _call(self, handler: Callable[..., None], *args: Obj) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("%s: event handler %r failed", self.res.qualified, handler)

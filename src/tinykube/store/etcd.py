"""The store on etcd: the watch cache of `cache.Store`, fed by etcd's watch; writes are etcd
transactions.

Several API servers share one etcd, so no process owns the data: each keeps the in-memory
cache of `cache.Store` (objects, bounded history, watchers, snapshots for paged lists) and fills
it only from one etcd watch of `/registry/` (with `prev_kv` and progress notifications), in
revision order, whoever wrote. resourceVersion is the key's mod revision, the cache's version is
the newest revision the watch has delivered (an event's, or a progress notification's, which
says that nothing older is still to come; that is also what bookmarks carry).

A write (`create`, `update`, `delete`, called synchronously by the registry) is checked
against the cache, then sent as a transaction that compares the key's revision with the one the
cache holds (`create_revision == 0` for a create, `mod_revision == rv` otherwise) and, for a
Service, the allocation keys it takes (`create_revision == 0`, see `etcd_keys`). The call
returns at once a `PendingEntry`, which `get` shows to the task that wrote it (the request, or
the start-up's bootstrap, reading its own writes) until the transaction is done; other requests
see the version the cache holds, never an unconfirmed one. A second write of the same key by
that task waits for the first and compares with its revision. The API server awaits
`confirm(entry)` before answering: it resolves once the cache holds the write (read your
writes through this server) to the stored entry, or raises `StaleWrite` when the comparison
failed because another API server wrote first. The API server then waits for the cache to
reach that revision and runs the request again (kube-apiserver's GuaranteedUpdate retry): an
update without a resourceVersion precondition succeeds on the fresh object, one with a stale
precondition gets the 409 Conflict, and a create whose name or address was taken meanwhile
gets AlreadyExists or "provided IP is already allocated". No update is lost between servers.

Reads: `sync()` gives a list or get without resourceVersion etcd's consistency the way
KEP-2340 does: it reads etcd's current revision with a quorum read, asks the watch for a
progress notification and waits until the cache has reached that revision, then serves from
the cache. Compaction is kube-apiserver's compactor (every `compaction_interval`, through a
compare-and-swap of `compact_rev_key` so that one of several API servers compacts, to the
revision seen one interval earlier); every server learns it from the watch of that key and
answers 410 Expired for older versions, as it does for versions older than its history.
Events (core and events.k8s.io) are written with an etcd lease of `event_ttl` seconds (one
lease per minute of writes, as kube-apiserver's lease manager), so etcd deletes them and the
watch removes them from every cache.

The etcd client is aetcd's generated gRPC stubs on a grpc.aio channel of our own: aetcd's
high-level client has one endpoint, no TLS and drops progress notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tinykube.api import errors
from tinykube.store import etcd_keys
from tinykube.store.cache import Entry, Event, Obj, Store

log = logging.getLogger(__name__)

RPC_TIMEOUT = 10.0  # seconds for one etcd request
SYNC_TIMEOUT = 5.0  # seconds a consistent read waits for the watch to catch up
COMPACTION_INTERVAL = 300.0  # kube-apiserver's --etcd-compaction-interval
EVENT_TTL = 3600  # kube-apiserver's --event-ttl
LEASE_REUSE = 60.0  # seconds one lease serves new events (kube's leaseManager)
PROGRESS_INTERVAL = 5.0  # seconds between progress requests (bookmarks advance when idle)
TTL_RESOURCES = frozenset({"core/events"})
RangeHint = Callable[[str, str, bool], None]  # ("ip"|"port", item, held)
# clientv3.WithRequireLeader: a member that has lost its leader (cut off from the others)
# refuses such a request at once with `etcdserver: no leader`, before running it, and ends such
# a watch, instead of leaving it waiting; kube-apiserver's watches carry it. Quorum reads and
# writes carry it here too, and a refused one goes to the next member (`_with_leader`).
REQUIRE_LEADER = (("hasleader", "true"),)
NO_LEADER = "etcdserver: no leader"
READ_RETRIED = (NO_LEADER, "etcdserver: leader changed", "etcdserver: request timed out")
RETRY_BACKOFF = 0.025  # seconds, times the attempt (clientv3's linear back-off)
# Before these, etcd sends a requested progress notification (watch id -1) with its current
# revision on a path of its own, which can overtake events not yet sent (etcd#15220, fixed by
# etcd#15237 and #17557); kube-apiserver's feature support checker asks for them before it
# serves consistent reads from its cache.
RELIABLE_PROGRESS = {(3, 4): 31, (3, 5): 13}


def reliable_progress(version: str) -> bool:
    """Whether etcd `version`'s requested progress notifications never overtake events."""
    try:
        major, minor, patch = (int(p) for p in version.split("-")[0].split(".")[:3])
    except ValueError:
        return False
    least = RELIABLE_PROGRESS.get((major, minor))
    return patch >= least if least is not None else (major, minor) > (3, 5)


class StaleWrite(errors.Conflict):
    """etcd refused a write: the cache was older than etcd at `revision` (retry after it)."""

    def __init__(self, message: str, revision: int, *,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.revision = revision


class StaleCache(StaleWrite):
    """A write's resourceVersion precondition names `revision`, newer than this server's cache
    (another server answered the client, and this one's watch has not caught up): the
    request runs again once the cache holds etcd's current state (a consistent read), and is
    this Conflict only if the precondition still fails then. kube-apiserver's GuaranteedUpdate
    likewise reads etcd again when a precondition fails on a cached object."""


def precondition_failed(conflict: errors.Conflict, expected: str, cache_rv: int,
                        lags: bool) -> errors.Conflict:
    """The error of a failed resourceVersion precondition: `StaleCache` when the store's cache
    can lag etcd (`lags`) and has not reached `expected` yet, else `conflict` itself."""
    if lags and expected.isdigit() and int(expected) > cache_rv:
        return StaleCache(conflict.message, int(expected), details=conflict.details)
    return conflict


@dataclasses.dataclass(slots=True)
class PendingEntry(Entry):
    """A write sent to etcd and not yet in the cache (`done` resolves to the stored entry)."""

    done: asyncio.Future[Entry] | None = None
    deleted: bool = False
    owner: object = None  # the task that wrote it: only it reads the write before etcd has it


@dataclasses.dataclass(frozen=True)
class EtcdConfig:
    """Where etcd is: `etcd://HOST:PORT[,HOST:PORT...]`, or `etcds://` with certificates."""

    endpoints: tuple[str, ...]
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def parse(cls, url: str, *, ca_file: Path | None = None, cert_file: Path | None = None,
              key_file: Path | None = None) -> EtcdConfig:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("etcd", "etcds"):
            raise ValueError(f"expected etcd://HOST:PORT[,HOST:PORT...] or etcds://..., "
                             f"got {url!r}")
        endpoints = tuple(e for e in rest.strip("/").split(",") if e)
        for endpoint in endpoints:
            parsed = urllib.parse.urlsplit(f"//{endpoint}")
            if not parsed.hostname or parsed.port is None:
                raise ValueError(f"expected HOST:PORT in {url!r}, got {endpoint!r}")
        if not endpoints:
            raise ValueError(f"no etcd endpoints in {url!r}")
        return cls(endpoints, scheme == "etcds", ca_file, cert_file, key_file)


# --- transactions (pure: what a write compares and does) --------------------------------------

@dataclasses.dataclass(frozen=True)
class TxnPlan:
    """A write as etcd compares and operations: compares are (key, target, value) with target
    "create" (create_revision) or "mod" (mod_revision); ops are ("put"|"delete", key, value)."""

    compares: tuple[tuple[bytes, str, int], ...]
    ops: tuple[tuple[str, bytes, bytes], ...]
    guarded: tuple[bytes, ...]  # allocation keys taken (read back when the txn fails)


def plan_write(kind: str, key: bytes, value: bytes, expected: int | None,
               old_spec: Obj | None = None, new_spec: Obj | None = None,
               owner: bytes = b"") -> TxnPlan:
    """The transaction of a write. `expected` is the stored revision it replaces (None for a
    create); for a Service, `old_spec`/`new_spec` give the allocation keys to take and free."""
    compares: list[tuple[bytes, str, int]] = [
        (key, "create", 0) if expected is None else (key, "mod", expected)]
    ops: list[tuple[str, bytes, bytes]] = [
        ("delete", key, b"") if kind == "DELETED" else ("put", key, value)]
    held = etcd_keys.allocation_keys(old_spec) if old_spec is not None else set()
    wanted = etcd_keys.allocation_keys(new_spec) if new_spec is not None else set()
    taken = sorted(wanted - held)
    compares += [(k, "create", 0) for k in taken]
    ops += [("put", k, owner) for k in taken]
    ops += [("delete", k, b"") for k in sorted(held - wanted)]
    return TxnPlan(tuple(compares), tuple(ops), tuple(taken))


def _txn_request(plan: TxnPlan, lease: int = 0) -> Any:
    from aetcd import rpc

    targets = {"create": rpc.Compare.CompareTarget.CREATE, "mod": rpc.Compare.CompareTarget.MOD}
    compares = []
    for key, target, value in plan.compares:
        compare = rpc.Compare(key=key, target=targets[target],
                              result=rpc.Compare.CompareResult.EQUAL)
        if target == "create":
            compare.create_revision = value
        else:
            compare.mod_revision = value
        compares.append(compare)
    success = [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=v, lease=lease if
                                                         i == 0 else 0))
               if op == "put" else rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k))
               for i, (op, k, v) in enumerate(plan.ops)]
    failure = [rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True))
               for k in plan.guarded]
    return rpc.TxnRequest(compare=compares, success=success, failure=failure)


def _current_task() -> object:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


async def _etcd_call(call: Any) -> Any:
    """An etcd request; its failure (a member gone, no leader yet) is the request's 500 with
    etcd's words, as kube-apiserver passes `etcdserver: request timed out` on."""
    import grpc

    try:
        return await call
    except grpc.aio.AioRpcError as error:
        log.warning("etcd request failed: %s %s", error.code().name, error.details())
        raise errors.InternalError(error.details() or error.code().name) from None


def retriable(message: str, *, read: bool) -> bool:
    """Whether a request etcd refused with `message` may go again (see `_with_leader`)."""
    return any(text in message for text in (READ_RETRIED if read else (NO_LEADER,)))


async def _with_leader(make: Callable[[], Any], attempts: int = 3, *,
                       read: bool = False) -> Any:
    """A request carrying REQUIRE_LEADER; refused with `no leader` by a member cut off from
    the others (which ran none of it), it goes to the next member (the channel's round
    robin). A `read` (a Range: nothing to undo) is also tried again when the leader changed
    or the member timed out while serving it, as clientv3 retries its immutable requests on
    Unavailable; a write is not (it may have been committed), so its 500 says so, as kube's
    does."""
    for attempt in range(attempts):
        try:
            return await _etcd_call(make())
        except errors.InternalError as error:
            if attempt == attempts - 1 or not retriable(str(error), read=read):
                raise
            await asyncio.sleep(RETRY_BACKOFF * (attempt + 1))
    raise AssertionError("unreachable")


def encode(obj: Obj) -> bytes:
    """The stored value: the object without resourceVersion (the mod revision is)."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return orjson.dumps({**obj, "metadata": meta})


def decode(value: bytes, revision: int) -> Obj:
    obj: Obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


# --- the connection ----------------------------------------------------------------------------

class Connection:
    """A grpc.aio channel to the etcd members (round robin) and the stubs used here."""

    def __init__(self, config: EtcdConfig) -> None:
        import grpc
        from aetcd import rpc

        target = "ipv4:" + ",".join(config.endpoints)
        options = [("grpc.lb_policy_name", "round_robin"),
                   ("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        if config.tls:
            def read(path: Path | None) -> bytes | None:
                return path.read_bytes() if path is not None else None
            credentials = grpc.ssl_channel_credentials(read(config.ca_file),
                                                       read(config.key_file),
                                                       read(config.cert_file))
            self.channel = grpc.aio.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.aio.insecure_channel(target, options=options)
        self.kv = rpc.KVStub(self.channel)
        self.maintenance = rpc.MaintenanceStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        self.lease = rpc.LeaseStub(self.channel)
        self.config = config

    def __repr__(self) -> str:
        return f"Connection({','.join(self.config.endpoints)})"

    async def close(self) -> None:
        await self.channel.close()


async def load_snapshot(conn: Connection, page: int = 500) -> tuple[int, list[Any]]:
    """Every key under /registry/ at one revision (paged), and that revision."""
    from aetcd import rpc

    start, end = etcd_keys.REGISTRY.encode(), b"/registry0"
    compact = await conn.kv.Range(rpc.RangeRequest(key=etcd_keys.COMPACT_KEY),
                                  timeout=RPC_TIMEOUT)
    revision, kvs = 0, list(compact.kvs)
    while True:
        response = await conn.kv.Range(rpc.RangeRequest(key=start, range_end=end, limit=page,
                                                        revision=revision),
                                       timeout=RPC_TIMEOUT)
        revision = revision or response.header.revision
        kvs.extend(response.kvs)
        if not response.more:
            return revision, kvs
        start = response.kvs[-1].key + b"\0"


class _Snapshot:
    """What `cache.Store.__init__` reads from its backend: the revision of the load."""

    def __init__(self, revision: int) -> None:
        self.revision = revision

    def __repr__(self) -> str:
        return f"etcd snapshot at {self.revision}"

    def last_rv(self) -> int:
        return self.revision

    def load(self) -> list[tuple[str, int, bytes]]:
        return []

    def commit(self) -> None:
        return None

    def close(self) -> None:
        return None


class EtcdStore(Store):
    """`cache.Store` whose writes go to etcd and whose cache follows etcd's watch."""

    cache_lags = True  # other API servers write: the cache can be behind what a client saw

    def __init__(self, conn: Connection, revision: int, kvs: list[Any], *,
                 compaction_interval: float = COMPACTION_INTERVAL, event_ttl: int = EVENT_TTL,
                 **limits: Any) -> None:
        self._kvs = kvs
        self.conn = conn
        super().__init__(_Snapshot(revision), **limits)  # type: ignore[arg-type]
        self.compaction_interval = compaction_interval
        self.event_ttl = event_ttl
        self.on_range: RangeHint | None = None  # the allocator's hints (set by the server)
        self._overlay: dict[tuple[str, str, str], PendingEntry] = {}
        self._inflight: dict[asyncio.Future[Entry], object] = {}  # write -> its task
        self._lease: tuple[int, float] = (0, 0.0)  # (lease id, monotonic time granted)
        self._lease_lock = asyncio.Lock()
        self._call: Any = None  # the watch stream
        self._objects_watch: int | None = None
        self._compacted_seen = 0  # the value of compact_rev_key (the last compaction's target)
        self._tasks: list[asyncio.Task[None]] = []
        # False: requested progress notifications are ignored (`RELIABLE_PROGRESS`); the
        # cache advances by events (and the timed notifications of its own watch) only
        self.progress_reliable = True

    def __repr__(self) -> str:
        return f"EtcdStore(rv={self._rv}, {self.conn!r})"

    def _load(self) -> None:
        for kv in self._kvs:
            parsed = etcd_keys.parse(kv.key)
            if parsed is not None:
                resource, namespace, name = parsed
                self._objects[resource][(namespace, name)] = Entry(
                    decode(kv.value, kv.mod_revision), kv.mod_revision)
        self._kvs = []

    def start(self) -> None:
        """Start following etcd's watch, the progress requests and the compactor."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow(), name="etcd-watch"),
                       loop.create_task(self._request_progress(), name="etcd-progress"),
                       loop.create_task(self._compact_forever(), name="etcd-compactor")]

    # --- reads --------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> Entry | None:
        pending = self._overlay.get((resource, namespace, name))
        if pending is not None and pending.owner is _current_task():
            return None if pending.deleted else pending
        return self._objects[resource].get((namespace, name))

    async def sync(self) -> None:
        """Wait until the cache holds everything etcd had when called (a quorum read of the
        current revision, then the watch catching up to it; KEP-2340's consistent read)."""
        from aetcd import rpc

        response = await _with_leader(lambda: self.conn.kv.Range(
            rpc.RangeRequest(key=etcd_keys.COMPACT_KEY, keys_only=True), timeout=RPC_TIMEOUT,
            metadata=REQUIRE_LEADER), read=True)
        revision = response.header.revision
        if not self.progress_reliable and response.kvs and \
                response.kvs[0].mod_revision == revision:
            revision -= 1  # the compactor's swap was the last write: no event of ours shows it
        if self._rv >= revision:
            return
        await self._ask_progress()
        try:
            await asyncio.wait_for(self.reach(revision), SYNC_TIMEOUT)
        except TimeoutError:
            raise errors.Timeout.resource_version_too_large(revision, self._rv,
                                                            retry_after=1) from None

    # --- writes -------------------------------------------------------------------------

    def create(self, resource: str, obj: Obj) -> Entry:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if self.get(resource, *key) is not None:
            raise errors.AlreadyExists(f"{key} already exists")
        return self._submit("ADDED", resource, key, obj, None)

    def update(self, resource: str, obj: Obj, *, expected_rv: int | None = None) -> Entry:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        current = self.get(resource, *key)
        if current is None:
            raise errors.NotFound(f"{key} not found")
        if expected_rv is not None and expected_rv != current.rv:
            raise errors.Conflict(f"{key} has resourceVersion {current.rv}, not {expected_rv}")
        return self._submit("MODIFIED", resource, key, obj, current)

    def delete(self, resource: str, namespace: str, name: str) -> Entry:
        current = self.get(resource, namespace, name)
        if current is None:
            raise errors.NotFound(f"{namespace}/{name} not found")
        return self._submit("DELETED", resource, (namespace, name), current.obj, current)

    def _submit(self, kind: str, resource: str, key: tuple[str, str], obj: Obj,
                current: Entry | None) -> Entry:
        value = b"" if kind == "DELETED" else encode(obj)
        if len(value) > self.max_object_bytes:
            raise errors.RequestEntityTooLarge(
                f"etcdserver: request is too large (the object is {len(value)} bytes "
                f"stored; the limit is {self.max_object_bytes})")
        if kind != "DELETED":
            obj["metadata"].pop("resourceVersion", None)
        entry = PendingEntry(obj, 0, deleted=kind == "DELETED", owner=_current_task())
        done = asyncio.get_running_loop().create_task(
            self._commit(kind, resource, key, value, current, entry))
        entry.done = done
        overlay_key = (resource, *key)
        self._overlay[overlay_key] = entry
        self._inflight[done] = entry.owner
        done.add_done_callback(lambda f: self._finished(f, overlay_key, entry))
        return entry

    def _finished(self, done: asyncio.Future[Entry], key: tuple[str, str, str],
                  entry: PendingEntry) -> None:
        self._inflight.pop(done, None)
        if self._overlay.get(key) is entry:
            del self._overlay[key]
        if not done.cancelled() and (error := done.exception()) is not None:
            level = logging.DEBUG if isinstance(error, errors.APIError) else logging.ERROR
            log.log(level, "write of %s %s/%s failed: %s", *key, error)

    async def _commit(self, kind: str, resource: str, key: tuple[str, str], value: bytes,
                      current: Entry | None, entry: PendingEntry) -> Entry:
        expected = None if current is None else current.rv
        if isinstance(current, PendingEntry) and current.done is not None:
            try:
                expected = (await asyncio.shield(current.done)).rv
            except errors.APIError as error:
                raise StaleWrite(f"an earlier write of {key} failed: {error}", self._rv) from None
        services = resource == "core/services"
        old_spec = (current.obj.get("spec") if current is not None else None) if services \
            else None
        new_spec = None if kind == "DELETED" or not services else entry.obj.get("spec")
        if services and old_spec is None:
            old_spec = {}
        if services and new_spec is None:
            new_spec = {}
        object_key = etcd_keys.object_key(resource, *key)
        plan = plan_write(kind, object_key, value, expected, old_spec, new_spec,
                          owner=object_key)
        lease = await self._event_lease() if resource in TTL_RESOURCES and kind != "DELETED" \
            else 0
        request = _txn_request(plan, lease)
        response = await _with_leader(lambda: self.conn.kv.Txn(request, timeout=RPC_TIMEOUT,
                                                               metadata=REQUIRE_LEADER))
        revision = response.header.revision
        if not response.succeeded:
            self._hint_failed(plan, response)
            raise StaleWrite(f"{resource} {key}: etcd holds a newer version (revision "
                             f"{revision})", revision)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.reach(revision), SYNC_TIMEOUT)
        stored = self._objects[resource].get(key)
        if kind != "DELETED" and stored is not None and stored.rv == revision:
            return stored
        meta = {**entry.obj["metadata"], "resourceVersion": str(revision)}
        return Entry({**entry.obj, "metadata": meta}, revision)

    def _hint_failed(self, plan: TxnPlan, response: Any) -> None:
        """Give back to the allocator the keys a refused txn would have taken, unless another
        Service holds them now (a hint: etcd's comparisons are what make allocation safe)."""
        if self.on_range is None:
            return
        for key, result in zip(plan.guarded, response.responses, strict=False):
            if not result.response_range.kvs and (item := etcd_keys.parse_allocation(key)):
                self.on_range(item[0], item[1], False)

    async def confirm(self, entry: Entry) -> Entry:
        if isinstance(entry, PendingEntry) and entry.done is not None:
            return await asyncio.shield(entry.done)
        return entry

    async def settle(self, since: int) -> None:
        """Wait for the calling task's writes in flight (a request's other writes, such as a
        quota's status; their errors were logged, the main write's raised by `confirm`)."""
        task = _current_task()
        pending = [done for done, owner in self._inflight.items() if owner is task]
        if pending:
            await asyncio.wait(pending, timeout=RPC_TIMEOUT + SYNC_TIMEOUT)

    async def _event_lease(self) -> int:
        from aetcd import rpc

        async with self._lease_lock:
            lease, granted = self._lease
            if lease and time.monotonic() - granted < LEASE_REUSE:
                return lease
            response = await self.conn.lease.LeaseGrant(
                rpc.LeaseGrantRequest(TTL=int(self.event_ttl + LEASE_REUSE)),
                timeout=RPC_TIMEOUT)
            self._lease = (response.ID, time.monotonic())
            return int(response.ID)

    # --- the watch ----------------------------------------------------------------------

    def _advance(self, revision: int) -> None:
        if revision <= self._rv:
            return
        self._rv = self._durable_rv = revision
        if self._progress is not None:
            if not self._progress.done():
                self._progress.set_result(None)
            self._progress = None

    async def _follow(self) -> None:
        """Follow etcd's watch from the cache's revision, reconnecting (bounded backoff)."""
        delay = 0.2
        while True:
            try:
                await self._watch_once()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as error:  # grpc errors: a member went away; the next one serves
                log.warning("etcd watch ended (%s); resuming from revision %d", error, self._rv)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _watch_once(self) -> None:
        from aetcd import rpc

        call = self.conn.watch.Watch(metadata=REQUIRE_LEADER)
        self._call, self._objects_watch = call, None
        start = self._rv + 1
        await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=etcd_keys.REGISTRY.encode(), range_end=b"/registry0", start_revision=start,
            prev_kv=True, progress_notify=True)))
        await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=etcd_keys.COMPACT_KEY)))
        created = 0
        try:
            async for response in call:
                if response.compact_revision:  # also when it cancels a watch left behind
                    await self._relist(response.compact_revision)
                    return
                if response.canceled and response.watch_id == self._objects_watch:
                    raise ConnectionError(f"etcd cancelled the watch: {response.cancel_reason}")
                if response.created:
                    created += 1
                    if created == 1:
                        self._objects_watch = response.watch_id
                    continue
                if response.watch_id == -1 and not self.progress_reliable:
                    continue  # a requested progress notification that may overtake events
                if response.watch_id in (self._objects_watch, -1):  # -1: progress for all
                    self._apply(response)
                elif response.events:
                    self._compacted(response)
        finally:
            self._call = None
            call.cancel()

    def _apply(self, response: Any) -> None:
        if not response.events:  # a progress notification: nothing older is still to come
            self._advance(response.header.revision)
            return
        for event in response.events:
            self._apply_event(event)

    def _apply_event(self, event: Any) -> None:
        kv = event.kv
        revision, deleted = kv.mod_revision, event.type == 1  # kv_pb2.Event.DELETE
        allocation = etcd_keys.parse_allocation(kv.key)
        if allocation is not None:
            self._advance(revision)
            if self.on_range is not None:
                self.on_range(allocation[0], allocation[1], not deleted)
            return
        parsed = etcd_keys.parse(kv.key)
        if parsed is None:
            self._advance(revision)
            return
        resource, namespace, name = parsed
        objects = self._objects[resource]
        prev = objects.get((namespace, name))
        if deleted:
            if prev is None:
                self._advance(revision)
                return
            del objects[(namespace, name)]
            obj = {**prev.obj, "metadata": {**prev.obj["metadata"],
                                            "resourceVersion": str(revision)}}
            change = Event("DELETED", revision, resource, Entry(obj, revision), prev.obj)
        else:
            entry = Entry(decode(kv.value, revision), revision)
            objects[(namespace, name)] = entry
            change = Event("ADDED" if prev is None else "MODIFIED", revision, resource, entry,
                           None if prev is None else prev.obj)
        self._advance(revision)
        self._publish(change)

    def _compacted(self, response: Any) -> None:
        """compact_rev_key changed: its value is the revision compacted to."""
        for event in response.events:
            with contextlib.suppress(ValueError):
                target = int(event.kv.value or b"0")
                if target > self._compacted_rv:
                    self._compacted_rv = target
                    while self._history and self._history[0].rv <= target:
                        evicted = self._history.popleft()
                        self._history_bytes -= evicted.size

    async def _relist(self, compacted: int) -> None:
        """The watch's start was compacted away (this server fell behind): reload, and end
        every watch (clients relist), as kube-apiserver's cacher does."""
        log.warning("etcd compacted revision %d before this API server read it; reloading",
                    compacted)
        revision, kvs = await load_snapshot(self.conn)
        for watcher in self._all_watchers():
            watcher.close()
        self._objects.clear()
        self._history.clear()
        self._history_bytes = 0
        self._reloads += 1
        self._kvs = kvs
        self._load()
        self._advance(revision)
        self._compacted_rv = revision

    async def _ask_progress(self) -> None:
        from aetcd import rpc

        if self._call is not None:
            with contextlib.suppress(Exception):
                await self._call.write(rpc.WatchRequest(
                    progress_request=rpc.WatchProgressRequest()))

    async def _request_progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            await self._ask_progress()

    # --- compaction ---------------------------------------------------------------------

    async def _compact_forever(self) -> None:
        """kube-apiserver's compactor: each interval, whoever swaps compact_rev_key's version
        compacts to the revision the previous interval saw."""
        version, revision = 0, 0
        while True:
            await asyncio.sleep(self.compaction_interval)
            try:
                version, revision = await self.compact_once(version, revision)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("etcd compaction failed: %s", error)

    async def compact_once(self, version: int, revision: int) -> tuple[int, int]:
        from aetcd import rpc

        key = etcd_keys.COMPACT_KEY
        response = await self.conn.kv.Txn(rpc.TxnRequest(
            compare=[rpc.Compare(key=key, target=rpc.Compare.CompareTarget.VERSION,
                                 result=rpc.Compare.CompareResult.EQUAL, version=version)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key,
                                                              value=str(revision).encode()))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))]),
            timeout=RPC_TIMEOUT)
        current = response.header.revision
        if not response.succeeded:
            kvs = response.responses[0].response_range.kvs
            return (kvs[0].version if kvs else 0), current
        if revision:
            await self.conn.kv.Compact(rpc.CompactionRequest(revision=revision),
                                       timeout=RPC_TIMEOUT)
        return version + 1, current

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=RPC_TIMEOUT)
        for watcher in self._all_watchers():
            watcher.close()
        await self.conn.close()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for watcher in self._all_watchers():
            watcher.close()


async def etcd_version(conn: Connection) -> str:
    """The version of the member that answers (`""` if none does)."""
    from aetcd import rpc

    try:
        status = await _etcd_call(conn.maintenance.Status(rpc.StatusRequest(),
                                                          timeout=RPC_TIMEOUT))
    except errors.InternalError:
        return ""
    return str(status.version)


async def open_etcd_store(config: EtcdConfig, **options: Any) -> EtcdStore:
    """Connect, load every object at one revision, and follow the watch from there."""
    conn = Connection(config)
    try:
        revision, kvs = await load_snapshot(conn)
    except BaseException:
        await conn.close()
        raise
    store = EtcdStore(conn, revision, kvs, **options)
    store.progress_reliable = reliable_progress(await etcd_version(conn))
    if not store.progress_reliable:
        log.warning("etcd's requested progress notifications can overtake events before "
                    "3.4.31 and 3.5.13 (etcd#15220): consistent reads wait for events")
    compacted = [kv for kv in kvs if kv.key == etcd_keys.COMPACT_KEY]
    with contextlib.suppress(ValueError, IndexError):
        store._compacted_rv = max(store._compacted_rv, int(compacted[0].value))
    store.start()
    return store

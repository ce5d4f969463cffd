"""The REST verbs: get, list, watch, create, update, patch, delete, and the subresources.

`ResourceHandler.handle` receives a parsed `Target` and the aiohttp request, picks the verb from
the method, the name and the `watch` parameter, and returns a response. Creates and updates go
through `admission` (kube's admission plugins) before the registry; the lifecycle rules live
in `registry`; decoding and encoding in `codec`; query parameters in `params`, and which state
a list reads (`resourceVersion`, `resourceVersionMatch`) in `list_options`; the pod
subresources a node serves (log, exec, attach) in `kubelets`; self reviews in `reviews`;
`metrics.k8s.io` in `metrics`. This
module only joins them to HTTP: content negotiation (JSON, Table), `Warning` headers, and watch
streams.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import hmac
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiohttp import web

from tinykube.api import errors, managedfields, patch, resources, selectors
from tinykube.api.apiextensions import model as crd_model
from tinykube.api.apiextensions import serving as custom_serving
from tinykube.api.clone import clone
from tinykube.api.meta import rfc3339
from tinykube.api.resources import Resource
from tinykube.api.webhooks import Attributes as WebhookAttributes
from tinykube.apiserver import (
    access,
    codec,
    componentstatus,
    crd_conversion,
    eviction,
    kubelets,
    list_options,
    metrics,
    mutating_policies,
    noderestriction,
    rbac,
    reviews,
    sa_tokens,
    webhooks,
)
from tinykube.apiserver.admission import CREATE, UPDATE, Admission
from tinykube.apiserver.admission import Request as AdmissionRequest
from tinykube.apiserver.list_options import Consistency
from tinykube.apiserver.params import int_param, parse_bool, resource_version_param
from tinykube.apiserver.paths import Target
from tinykube.apiserver.registry import Registry
from tinykube.apiserver.registry import defaulted as registry_defaults
from tinykube.store.cache import Entry, Event, Watcher
from tinykube.store.etcd import StaleCache, StaleWrite

Obj = dict[str, Any]

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request size limit
# Watch lines per write, at most (plus one event): what a write stuck behind a client that does
# not read holds, in aiohttp's and the TLS transport's buffers, until the watch ends.
WRITE_CHUNK = 256 * 1024
# How long a read waits for a resourceVersion the store has not reached yet (kube-apiserver's
# watch cache blockTimeout) before it fails with 504 "Too large resource version".
RV_WAIT = 3.0
STALE_RETRIES = 30  # runs of a write refused because another API server wrote first
_PATCH_TYPES = {
    "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/apply-patch+yaml",
}


# Request storage key: the texts of this request's Warning headers.
WARNINGS = web.RequestKey("tinykube.warnings", list[str])
BODY = web.RequestKey("tinykube.body", bytes)  # the body as read, for the audit log


async def add_warning_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: one `Warning` header per distinct text of the request."""
    for text in dict.fromkeys(request.get(WARNINGS, ())):
        response.headers.add("Warning", warning_header(text))


def warning_header(text: str) -> str:
    """A `Warning` header value; the text is quoted as Go's strconv.Quote does, which is what
    kubectl's parser expects (a bare inner quote would make it drop the whole header)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=data, status=status, content_type="application/json",
                        headers=headers)


def unenforced_warning(kind: str) -> str:
    return (f"tinykube stores {kind} objects but does not enforce them in this cluster: "
            "only `tinykube up --network netns` (with its service proxy) does")


class ResourceHandler:
    """Serves every resource path, given the registry and a few settings."""

    def __init__(self, registry: Registry, *, bookmark_interval: float = 5.0,
                 now: Callable[[], datetime.datetime] | None = None,
                 kubelet_token: str = "", admission: Admission | None = None,
                 rv_wait: float = RV_WAIT, unenforced: Iterable[str] = (),
                 metric_resolution: float = metrics.RESOLUTION,
                 issuer: sa_tokens.Issuer | None = None) -> None:
        self.registry = registry
        self.issuer = issuer  # signs and checks ServiceAccount tokens (None: none issued)
        self.metrics = metrics.ResourceMetrics(registry, kubelet_token,
                                               resolution=metric_resolution)
        self.unenforced = frozenset(unenforced)  # kinds stored but not enforced here
        self.admission = admission if admission is not None else Admission(registry)
        self.webhooks = webhooks.Dispatcher(registry.store)  # admission webhooks
        self.conversions = crd_conversion.Converter(self.webhooks)  # CRD conversion webhooks
        self.webhooks.convert = self.conversions.convert
        self.rv_wait = rv_wait
        self.kubelets = kubelets.KubeletProxy(registry, kubelet_token)
        self.store = registry.store
        self.bookmark_interval = bookmark_interval
        self.now = now or registry.clock
        self._streams: set[_Stream] = set()  # open watch streams, for `request_progress`
        self._progress_rv = -1  # the resourceVersion of the last progress bookmarks
        self._authorizer: rbac.RBACAuthorizer | None = None  # reviews, when no access control

    def __repr__(self) -> str:
        return f"ResourceHandler({self.registry!r})"

    async def handle(self, request: web.Request, target: Target) -> web.StreamResponse:
        warnings: list[str] = []
        if target.res.deprecated_warning:
            warnings.append(target.res.deprecated_warning)
        writes = not target.subresource and request.method in ("POST", "PUT", "PATCH")
        if target.res.not_run and writes:
            warnings.append(target.res.not_run_warning)
        if target.res.kind in self.unenforced and writes:
            warnings.append(unenforced_warning(target.res.kind))
        # Sent as headers when the response starts (add_warning_headers), which covers
        # streams, whose headers go out inside _dispatch, and errors, raised out of it.
        request[WARNINGS] = warnings
        since = self.store.durable_resource_version
        synced = False
        for attempt in range(STALE_RETRIES):  # another API server wrote first (store/etcd.py)
            try:
                response = await self._dispatch(request, target, warnings)
                break
            except StaleCache:
                if synced or attempt == STALE_RETRIES - 1:
                    raise  # the cache held etcd's state: a Conflict
                synced = True
                await self.store.sync()
            except StaleWrite as stale:
                if attempt == STALE_RETRIES - 1:
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.store.reach(stale.revision), self.rv_wait)
        if not response.prepared:  # streams (watch, log) settle before they start
            await self.store.settle(since)
        return response

    async def _dispatch(self, request: web.Request, target: Target,
                        warnings: list[str]) -> web.StreamResponse:
        method = request.method
        res = target.res
        if res.namespaced and target.namespace is None and target.name is not None:
            raise errors.NotFound.path()
        if res.provider == "metrics":
            return await self.metrics.serve(request, target)
        if not res.stored:
            return await self._virtual(request, target)
        if res.custom is not None:
            custom_serving.check_request(request.method, request.headers.get("Content-Type", ""),
                                       target)
        if target.subresource in ("scale",):
            return await self._scale(request, target)
        if target.subresource in kubelets.SUBRESOURCES:
            return await self.kubelets.serve(request, target)
        if target.subresource == "binding":
            return await self._binding(request, target)
        if target.subresource == "token":
            return await self._token_request(request, target)
        if target.subresource == "eviction":
            self._node_restriction(noderestriction.CREATE, target, None, None)
            return _json(eviction.evict(self.registry, request, await self._read_body(request),
                                        self._namespace(target), target.name or "",
                                        query_dry_run=_dry_run(request)), status=201)
        if method == "GET":
            if target.is_collection:
                if parse_bool(request.query.get("watch")):
                    return await self._watch(request, target)
                return await self._list(request, target)
            if not request.query.get("resourceVersion"):
                await self.store.sync()  # a quorum read, as kube-apiserver's GET from etcd
            return await self._get(request, target)
        if method == "POST" and target.is_collection:
            return await self._create(request, target, warnings)
        if method == "PUT" and not target.is_collection:
            return await self._update(request, target, warnings)
        if method == "PATCH" and not target.is_collection:
            return await self._patch(request, target, warnings)
        if method == "DELETE" and not target.is_collection:
            return await self._delete(request, target)
        if method == "DELETE" and "deletecollection" in res.verbs:
            return await self._delete_collection(request, target)
        raise errors.MethodNotAllowed(
            f"the server does not allow this method on the requested resource ({method})")

    # --- reads ----------------------------------------------------------------------

    def _namespace(self, target: Target) -> str:
        return target.namespace or "" if target.res.namespaced else ""

    async def _get(self, request: web.Request, target: Target) -> web.Response:
        entry = self.registry.get(target.res, self._namespace(target), target.name or "")
        entry = (await self._in_version(target.res, [entry]))[0]
        if target.subresource and target.subresource not in ("status", "finalize", "approval"):
            raise errors.NotFound.path()
        accept = request.headers.get("Accept", "")
        if codec.wants_table(accept):
            return _json(codec.table(target.res, [entry.obj], now=self.now(),
                                     include_object=request.query.get("includeObject", ""),
                                     resource_version=entry.rv))
        return _json(codec.object_bytes(target.res, entry))

    def _matcher(self, request: web.Request, res: Resource) -> Callable[[Obj], bool] | None:
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fields = selectors.parse_fields(request.query.get("fieldSelector"))
        selectors.check_fields("" if res.custom is not None else res.kind, fields,
                               res.custom.selectable if res.custom is not None else ())
        if not labels and not fields:
            return None

        def matches(obj: Obj) -> bool:
            return (selectors.match_labels(labels, obj["metadata"].get("labels"))
                    and selectors.match_fields(fields, obj))
        return matches

    async def _list(self, request: web.Request, target: Target) -> web.Response:
        res = target.res
        matcher = self._matcher(request, res)
        limit = int_param(request, "limit") or 0
        read = list_options.list_read(request, limit)
        if read.consistency is Consistency.CONTINUE:
            # Later pages come from the snapshot at the first page's resourceVersion, as
            # kube-apiserver's do (see store/cache.py); a token with a negative version (the
            # one a 410 below hands out) continues inconsistently at the current version.
            token_rv, start = _decode_continue(request.query["continue"])
            list_rv = token_rv if token_rv > 0 else self.store.resource_version
            if list_rv > self.store.resource_version:  # a token another API server gave
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.store.reach(list_rv), self.rv_wait)
            namespace, _, name = start.partition("/")
            try:
                entries = self.store.list_at(res.storage_key, target.namespace, matcher,
                                             list_rv, after=(namespace, name))
            except errors.Gone:
                return _expired_continue(start)
        elif read.consistency is Consistency.EXACT:
            list_rv = read.rv
            entries = self._list_exact(res, target.namespace, matcher, read.rv)
        else:  # the current state, once it is not older than the version asked for
            if read.consistency is Consistency.NOT_OLDER_THAN:
                await self._reach(read.rv)
            elif read.consistency is Consistency.MOST_RECENT:
                await self.store.sync()  # a consistent read (etcd: KEP-2340's)
            entries = self.store.list(res.storage_key, target.namespace, matcher)
            list_rv = self.store.resource_version
        next_token, remaining = "", None
        if limit > 0 and len(entries) > limit:
            # kube-apiserver counts what is left only when no selector filters the list
            remaining = len(entries) - limit if matcher is None else None
            entries = entries[:limit]
            next_token = _encode_continue(list_rv, _entry_key(entries[-1]))
        entries = await self._in_version(res, entries)
        if codec.wants_table(request.headers.get("Accept", "")):
            return _json(codec.table(res, [e.obj for e in entries], now=self.now(),
                                     include_object=request.query.get("includeObject", ""),
                                     resource_version=list_rv, continue_token=next_token))
        return _json(codec.list_bytes(res, entries, resource_version=list_rv,
                                      continue_token=next_token, remaining=remaining))

    def _list_exact(self, res: Resource, namespace: str | None,
                    matcher: Callable[[Obj], bool] | None, rv: int) -> list[Entry]:
        """The state at `rv`, rebuilt from the history; kube-apiserver's errors (its storage's)
        for a version compacted away or not reached."""
        current = self.store.resource_version
        if rv > current:
            raise errors.Timeout.resource_version_too_large(rv, current, retry_after=0)
        try:
            return self.store.list_at(res.storage_key, namespace, matcher, rv)
        except errors.Gone:
            raise errors.Gone("The resourceVersion for the provided list is too old.") from None

    async def _reach(self, rv: int) -> None:
        """Wait (RV_WAIT seconds at most) until the store has reached `rv`; 504 if it did not,
        as kube-apiserver's watch cache answers (retry after 1 s)."""
        try:
            async with asyncio.timeout(self.rv_wait):
                await self.store.reach(rv)
        except TimeoutError:
            raise errors.Timeout.resource_version_too_large(
                rv, self.store.resource_version, retry_after=1) from None

    # --- watch ----------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        res = target.res
        matcher = self._matcher(request, res)
        if target.namespace is None and not res.namespaced:
            namespace = None
        else:
            namespace = target.namespace
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        as_table = codec.wants_table(request.headers.get("Accept", ""))
        include = request.query.get("includeObject", "")
        # Streaming lists (KEP-3157, `sendInitialEvents=true`, used by newer kubectls): the
        # current state as ADDED events, then a bookmark that marks the end of that state.
        # Its initial state is not older than `resourceVersion`: one the store has not reached
        # is waited for, then an ERROR event (a plain watch from there just waits for events).
        send_initial = parse_bool(request.query.get("sendInitialEvents"))
        start_rv = resource_version_param(request)
        try:
            if send_initial:
                await self._reach(start_rv or 0)
            durable = self.store.durable_resource_version
            watcher = self.store.watch(res.storage_key, namespace,
                                       None if send_initial else start_rv, matcher,
                                       _watch_index(request))
        except (errors.Gone, errors.Timeout) as error:  # kube-apiserver sends these as events
            await response.prepare(request)
            await response.write(codec.watch_line("ERROR", errors.status_json(error.to_status())))
            return response
        timeout = int_param(request, "timeoutSeconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        stream = _Stream(res, as_table, include, initial_rv=self.store.resource_version,
                         # -1: no end-of-initial bookmark
                         initial_left=watcher.queue.qsize() if send_initial else -1)
        try:  # the initial state may hold writes of this turn: send it once they are durable
            await self.store.settle(durable)
        except errors.InternalError:
            watcher.close()
            raise
        # The store terminates a watcher whose client falls behind (see store/cache.py): the
        # stream ends after the write under way, and if that write is stuck behind a client
        # that reads nothing, the connection goes when the grace period is over.
        cut_off: list[asyncio.TimerHandle] = []
        watcher.on_terminate = lambda: cut_off.append(loop.call_later(
            self.store.watch_limits.drain_grace, _abort, request))
        try:
            await response.prepare(request)
            await self._send_events(response, watcher, stream, deadline,
                                    parse_bool(request.query.get("allowWatchBookmarks")))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write_eof()
        except ConnectionError:  # the client left (or the server is stopping): nothing to say
            pass
        finally:  # also when the client left and aiohttp cancelled this handler
            watcher.close()
            for timer in cut_off:
                timer.cancel()
        return response

    async def _send_events(self, response: web.StreamResponse, watcher: Watcher,
                           stream: _Stream, deadline: float | None, bookmarks: bool) -> None:
        """Write the watcher's events until it ends, the deadline passes or the client goes."""
        self._streams.add(stream)
        try:
            await self._send_stream(response, watcher, stream, deadline, bookmarks)
        finally:
            self._streams.discard(stream)

    async def request_progress(self) -> int:
        """Have every open watch send a bookmark now (etcd's progress notification, for the
        test clock's quiescence: a watcher that saw it has every event before it) once every
        write so far is committed and published; the store's resourceVersion then."""
        target = self.store.resource_version
        with contextlib.suppress(errors.InternalError):  # a lost write is not an event
            await self.store.settle(self.store.durable_resource_version)
        if target == self._progress_rv:
            return target  # no write since the last bookmarks: every watch has seen it
        self._progress_rv = target
        for stream in self._streams:
            stream.progress_due = True
            if stream.waiting is not None:
                stream.waiting.reschedule(asyncio.get_running_loop().time())
        return target

    async def _send_stream(self, response: web.StreamResponse, watcher: Watcher,
                           stream: _Stream, deadline: float | None, bookmarks: bool) -> None:
        queue = watcher.queue
        loop = asyncio.get_running_loop()
        if stream.initial_left == 0:
            await response.write(self._bookmark(stream.res, stream.initial_rv,
                                                initial_end=True))
            stream.initial_left = -1
        while True:
            wait = self.bookmark_interval
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    return
            try:
                if stream.progress_due and queue.empty():
                    raise TimeoutError
                if queue.empty():
                    async with asyncio.timeout(wait) as stream.waiting:  # no extra task
                        event = await queue.get()
                    stream.waiting = None
                else:
                    event = queue.get_nowait()
            except TimeoutError:
                stream.waiting, stream.progress_due = None, False
                # Only with nothing queued: events published while this task was being woken
                # are at or below the durable version, and a bookmark sent before them (the
                # last one, as the deadline ends the stream) would skip them (see _bookmark).
                if bookmarks and queue.empty():
                    await response.write(self._bookmark(stream.res))
                continue
            res = stream.res
            webhook = res.custom is not None and res.custom.webhook is not None and res.converted
            if webhook and event is not None:  # one event at a time, each converted first
                try:
                    entry = (await self._in_version(res, [event.entry]))[0]
                except errors.APIError as error:  # as the watch cache would: an ERROR event
                    await response.write(codec.watch_line(
                        "ERROR", errors.status_json(error.to_status())))
                    return
                event = dataclasses.replace(event, entry=entry)
            lines, ended = self._lines(stream, event, watcher, batch=not webhook)
            if lines:
                await response.write(b"".join(lines))
            if ended:
                return

    def _lines(self, stream: _Stream, event: Event | None,
               watcher: Watcher, *, batch: bool = True) -> tuple[list[bytes], bool]:
        """The lines of `event` and of what is queued behind it, up to WRITE_CHUNK bytes (one
        write: one TLS record, one syscall), and whether the watch ended."""
        lines: list[bytes] = []
        size = 0
        while event is not None:
            line = self._event_line(stream.res, event, stream.as_table, stream.include,
                                    stream.first)
            stream.first = False
            lines.append(line)
            size += len(line)
            if stream.initial_left > 0:
                stream.initial_left -= 1
                if stream.initial_left == 0:
                    lines.append(self._bookmark(stream.res, stream.initial_rv,
                                                initial_end=True))
                    stream.initial_left = -1
            if not batch or size >= WRITE_CHUNK or watcher.queue.empty():
                return lines, False
            event = watcher.queue.get_nowait()
        return lines, True

    def _bookmark(self, res: Resource, rv: int | None = None, *,
                  initial_end: bool = False) -> bytes:
        """A BOOKMARK line; without `rv`, at the store's durable resourceVersion.

        Not `resource_version`: that counts the writes of this event-loop turn, which are
        committed, and only then offered to watchers, at the end of the turn (group commit).
        A bookmark naming one of them, sent just before the stream ends (every watch with
        `timeoutSeconds` sends one as it ends), made the client resume after events it never
        received: an informer then missed them until the object changed again. Every event up
        to the durable version is in this watcher's queue already, and a bookmark is sent only
        when that queue is empty (checked as it is written: the wait for an event can time
        out after an event was queued and before this task runs again)."""
        meta: Obj = {"resourceVersion": str(self.store.durable_resource_version
                                            if rv is None else rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        return codec.watch_line("BOOKMARK", orjson.dumps(obj))

    def _event_line(self, res: Resource, event: Event, as_table: bool, include: str,
                    first: bool) -> bytes:
        if as_table:
            table = codec.table(res, [event.entry.obj], now=self.now(), include_object=include,
                                resource_version=event.rv, with_headers=first)
            return codec.watch_line(event.type, orjson.dumps(table))
        return codec.watch_line(event.type, codec.object_bytes(res, event.entry))

    # --- writes ---------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> bytes:
        if BODY in request:
            return request[BODY]  # a request run again (see `handle`) reads its body once
        # kube-apiserver's limitedReadBody words it this way
        too_large = f"Request entity too large: limit is {MAX_BODY}"
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise errors.RequestEntityTooLarge(too_large)
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > MAX_BODY:
                raise errors.RequestEntityTooLarge(too_large)
        request[BODY] = bytes(body)
        return request[BODY]

    async def _decoded(self, request: web.Request, target: Target, warnings: list[str]) -> Obj:
        body = codec.parse_body(await self._read_body(request),
                                request.headers.get("Content-Type", codec.JSON))
        validation = request.query.get("fieldValidation", "Warn")
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.BadRequest(f"fieldValidation must be one of Ignore, Warn, Strict, "
                                    f"got {validation}")
        return codec.decode_object(target.res, body, field_validation=validation,
                                   warnings=warnings)

    async def _respond(self, res: Resource, entry: Entry, status: int) -> web.Response:
        entry = (await self._in_version(res, [entry]))[0]
        return _json(codec.object_bytes(res, entry), status=status)

    async def _in_version(self, res: Resource, entries: list[Entry]) -> list[Entry]:
        """Stored custom resources in `res`'s version, through their CRD's conversion
        webhook when it has one (any other kind: as they are, the codec converts them)."""
        if res.custom is None or res.custom.webhook is None or not res.converted:
            return entries
        objs = await self.conversions.convert(res, [e.obj for e in entries], res.api_version)
        return [e if o is e.obj else Entry(o, e.rv) for o, e in zip(objs, entries, strict=True)]

    async def _stored(self, res: Resource, obj: Obj) -> Obj:
        """A decoded custom resource in its storage version (webhook conversion)."""
        if not crd_model.needs_webhook(res, obj, res.stored_api_version):
            return obj
        return (await self.conversions.convert(res, [obj], res.stored_api_version))[0]

    async def _create(self, request: web.Request, target: Target,
                      warnings: list[str]) -> web.Response:
        obj = await self._stored(target.res, await self._decoded(request, target, warnings))
        meta = obj["metadata"]
        if target.res.namespaced:
            namespace = target.namespace or meta.get("namespace") or ""
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.BadRequest("the namespace of the provided object does not match "
                                        "the namespace sent on the request")
            meta["namespace"] = namespace
        await self._admit_create(target, obj, warnings, dry_run=_dry_run(request))
        uid = await self._validating_webhooks(CREATE, target, obj, request, warnings)
        entry = self.registry.create(target.res, obj, dry_run=_dry_run(request),
                                     manager=_manager(request, target),
                                     admit=self._validator(CREATE, target, request), uid=uid)
        return await self._respond(target.res, await self.store.confirm(entry), 201)

    def _validator(self, operation: str, target: Target,
                   request: web.Request) -> Callable[[Obj, Obj | None], None] | None:
        """Admission's validating phase, for the registry to run just before it writes."""
        if target.subresource:
            return None
        dry_run = _dry_run(request)

        def validate(obj: Obj, old: Obj | None) -> None:
            meta = obj.get("metadata") or {}
            namespace = meta.get("namespace", "") if target.res.namespaced else ""
            self.admission.validate(AdmissionRequest(operation, target.res, namespace, obj,
                                                     old, dry_run=dry_run,
                                                     warnings=request.get(WARNINGS, [])))
        return validate

    def _node_restriction(self, operation: str, target: Target, obj: Obj | None,
                          old: Obj | None) -> None:
        """NodeRestriction (`noderestriction`): every write of a node, subresources and
        deletes too, as upstream runs it."""
        current = access.current()
        if current is None:
            return
        res = target.res
        noderestriction.check(current[0], noderestriction.Write(
            operation, res.group, res.plural, target.subresource, self._namespace(target),
            target.name or "", obj, old), self._stored_object)

    def _stored_object(self, key: str, namespace: str, name: str) -> Obj | None:
        entry = self.store.get(key, namespace, name)
        return entry.obj if entry is not None else None

    async def _admit_create(self, target: Target, obj: Obj, warnings: list[str], *,
                            dry_run: bool = False) -> None:
        namespace = obj["metadata"].get("namespace", "") if target.res.namespaced else ""
        self._node_restriction(CREATE, target, obj, None)
        await self.admission.admit(AdmissionRequest(CREATE, target.res, namespace, obj,
                                                    warnings=warnings))
        await self._mutating_policies_and_webhooks(CREATE, target, namespace, obj, None,
                                                   dry_run, warnings)

    def _webhook_attrs(self, operation: str, target: Target, obj: Obj | None, old: Obj | None,
                       dry_run: bool) -> WebhookAttributes:
        res, meta = target.res, (obj or old or {}).get("metadata") or {}
        namespace = str(meta.get("namespace") or target.namespace or "") \
            if res.namespaced else ""
        return WebhookAttributes(operation, res.group, res.version, res.plural,
                                 target.subresource, res.kind, namespace,
                                 str(meta.get("name", "")), obj, old, dry_run)

    async def _mutating_policies_and_webhooks(self, operation: str, target: Target,
                                              namespace: str, obj: Obj, old: Obj | None,
                                              dry_run: bool, warnings: list[str]) -> None:
        """MutatingAdmissionPolicy, then MutatingAdmissionWebhook, then the policies that
        are due again (`mutating_policies`); `obj` changed in place. Policies skip
        subresources, as the other built-in plugins do here."""
        request = AdmissionRequest(operation, target.res, namespace, obj, old,
                                   warnings=warnings, dry_run=dry_run)
        rounds = mutating_policies.Rounds()
        if not target.subresource:
            mutating_policies.mutate(self.admission, request, rounds)
        await self._mutating_webhooks(operation, target, obj, old, dry_run, warnings)
        if not target.subresource:
            mutating_policies.reinvoke(self.admission, request, rounds)

    async def _mutating_webhooks(self, operation: str, target: Target, obj: Obj | None,
                                 old: Obj | None, dry_run: bool, warnings: list[str]) -> None:
        """MutatingAdmissionWebhook, the last mutating step: `obj` changed in place."""
        if not self.webhooks.any_hooks(True):
            return
        if obj is not None:  # as kube sends it: decoded and defaulted
            obj.update(registry_defaults(target.res, obj))
        attrs = self._webhook_attrs(operation, target, obj, old, dry_run)
        mutated = await self.webhooks.mutate(target.res, attrs, warnings)
        if mutated is not None and obj is not None and mutated is not obj:
            obj.clear()
            obj.update(mutated)

    async def _validating_webhooks(self, operation: str, target: Target, obj: Obj,
                                   request: web.Request, warnings: list[str]) -> str | None:
        """ValidatingAdmissionWebhook, on the object as a dry run of the write leaves it
        (defaulted, validated, named); the write itself follows, with the uid returned (that
        of a create's dry run, which the webhooks saw)."""
        if not self.webhooks.any_hooks(False):
            return None
        res, dry_run = target.res, _dry_run(request)
        if operation == CREATE:
            final, old = self.registry.create(res, clone(obj), dry_run=True,
                                              manager=_manager(request, target)).obj, None
            obj["metadata"]["name"] = final["metadata"]["name"]  # a generateName's choice
        else:
            current = self.registry.get(res, self._namespace(target), target.name or "")
            final = self.registry.update(res, clone(obj), subresource=target.subresource,
                                         dry_run=True, manager=_manager(request, target)).obj
            old = current.obj
        await self.webhooks.validate(
            res, self._webhook_attrs(operation, target, final, old, dry_run), warnings)
        return str(final["metadata"]["uid"]) if operation == CREATE else None

    async def _delete_webhooks(self, target: Target, request: web.Request,
                               options: Obj) -> None:
        """Admission webhooks for a DELETE: they see the stored object as `oldObject`."""
        if not (self.webhooks.any_hooks(True) or self.webhooks.any_hooks(False)):
            return
        current = self.registry.get(target.res, self._namespace(target), target.name or "")
        dry_run, warnings = _dry_run(request, options), request[WARNINGS]
        await self._mutating_webhooks("DELETE", target, None, current.obj, dry_run, warnings)
        await self.webhooks.validate(
            target.res, self._webhook_attrs("DELETE", target, None, current.obj, dry_run),
            warnings)

    async def _admit_update(self, target: Target, obj: Obj, warnings: list[str], *,
                            dry_run: bool = False) -> None:
        """Admission of an update (built-in plugins skip subresources, as upstream; webhooks
        see them when their rules name them)."""
        namespace = self._namespace(target)
        current = self.store.get(target.res.storage_key, namespace, target.name or "")
        self._node_restriction(UPDATE, target, obj, current.obj if current else None)
        if not target.subresource:
            await self.admission.admit(AdmissionRequest(
                UPDATE, target.res, namespace, obj, current.obj if current else None,
                warnings=warnings))
        if current is not None:
            await self._mutating_policies_and_webhooks(UPDATE, target, namespace, obj,
                                                       current.obj, dry_run, warnings)

    async def _update(self, request: web.Request, target: Target,
                      warnings: list[str]) -> web.Response:
        obj = await self._stored(target.res, await self._decoded(request, target, warnings))
        self._check_identity(target, obj)
        await self._admit_update(target, obj, warnings, dry_run=_dry_run(request))
        await self._validating_webhooks(UPDATE, target, obj, request, warnings)
        entry = self.registry.update(target.res, obj, subresource=target.subresource,
                                     dry_run=_dry_run(request),
                                     manager=_manager(request, target),
                                     admit=self._validator(UPDATE, target, request))
        return await self._respond(target.res, await self.store.confirm(entry), 200)

    def _check_identity(self, target: Target, obj: Obj) -> None:
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != target.name:
            raise errors.BadRequest("the name of the object "
                                    f"({meta['name']}) does not match the name on the URL "
                                    f"({target.name})")
        meta["name"] = target.name
        namespace = self._namespace(target)
        if meta.get("namespace") and target.res.namespaced and meta["namespace"] != namespace:
            raise errors.BadRequest("the namespace of the provided object does not match the "
                                    "namespace sent on the request")
        if target.res.namespaced:
            meta["namespace"] = namespace

    async def _patch(self, request: web.Request, target: Target,
                     warnings: list[str]) -> web.Response:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type not in _PATCH_TYPES:
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(sorted(_PATCH_TYPES))}")
        body = await self._read_body(request)
        res, namespace = target.res, self._namespace(target)
        current = self.store.get(res.storage_key, namespace, target.name or "")
        if current is None:
            if content_type == "application/apply-patch+yaml":
                return await self._apply_create(request, target, body, warnings)
            raise errors.NotFound.for_object(res.plural, res.group, target.name or "")
        original = codec.served(res, clone((await self._in_version(res, [current]))[0].obj))
        if res.custom is not None:
            custom_serving.check_patch_type(content_type)
        manager = _manager(request, target)
        if content_type == patch.APPLY_PATCH:
            patched = self._server_side_apply(request, target, original, body)
            manager = None  # the apply computed the managed fields itself
        else:
            patched = patch.apply_patch(res.kind, original, body, content_type)
        codec.check_patched(res, patched)
        validation = request.query.get("fieldValidation", "Warn")
        obj = codec.decode_object(res, patched, field_validation=validation, warnings=warnings)
        obj = await self._stored(res, obj)
        self._check_identity(target, obj)
        if str(obj["metadata"].get("resourceVersion")) == str(current.rv):
            obj["metadata"].pop("resourceVersion")  # a patch is unconditional unless it says so
        await self._admit_update(target, obj, warnings, dry_run=_dry_run(request))
        await self._validating_webhooks(UPDATE, target, obj, request, warnings)
        entry = self.registry.update(res, obj, subresource=target.subresource,
                                     dry_run=_dry_run(request), manager=manager,
                                     admit=self._validator(UPDATE, target, request))
        return await self._respond(res, await self.store.confirm(entry), 200)

    def _server_side_apply(self, request: web.Request, target: Target, live: Obj,
                           body: bytes) -> Obj:
        """The live object with `body` applied, its managedFields updated
        (`api.managedfields`); a 409 when the apply changes another manager's fields."""
        applied = patch.parse_applied(body)
        manager = _manager(request, target, managedfields.APPLY)
        assert manager is not None
        meta = live.get("metadata") or {}
        managed = managedfields.decode_entries(meta.get("managedFields"))
        bare = {**live, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
        merged, managed = managedfields.kubectl_apply(
            managed, manager, bare, applied, self.registry.shape(target.res),
            force=parse_bool(request.query.get("force")), now=rfc3339(),
            ignored=self._ignored_by_apply(target, applied))
        merged.setdefault("metadata", {})["managedFields"] = \
            managedfields.encode_entries(managed)
        return merged

    def _ignored_by_apply(self, target: Target, applied: Obj) -> tuple[tuple[str, ...], ...]:
        """What an apply to this endpoint may not set: `status` on a main resource that has a
        status subresource; everything but `status` on the status subresource."""
        if target.subresource == "status":
            return tuple(("f:" + key,) for key in applied
                         if key not in ("status", "apiVersion", "kind"))
        return (("f:status",),) if self.registry.has_status(target.res) else ()

    async def _apply_create(self, request: web.Request, target: Target, body: bytes,
                            warnings: list[str]) -> web.Response:
        parsed = self._server_side_apply(request, target, {}, body)
        validation = request.query.get("fieldValidation", "Strict")
        obj = codec.decode_object(target.res, parsed, field_validation=validation,
                                  warnings=warnings)
        obj = await self._stored(target.res, obj)
        self._check_identity(target, obj)
        await self._admit_create(target, obj, warnings, dry_run=_dry_run(request))
        uid = await self._validating_webhooks(CREATE, target, obj, request, warnings)
        entry = self.registry.create(target.res, obj, dry_run=_dry_run(request),
                                     admit=self._validator(CREATE, target, request), uid=uid)
        return await self._respond(target.res, await self.store.confirm(entry), 201)

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        stored = self.store.get(target.res.storage_key, self._namespace(target),
                                target.name or "")
        self._node_restriction(noderestriction.DELETE, target, None,
                               stored.obj if stored is not None else None)
        await self._delete_webhooks(target, request, options)
        entry, _gone = self.registry.delete(target.res, self._namespace(target), target.name or "",
                                           options, dry_run=_dry_run(request, options))
        return await self._respond(target.res, await self.store.confirm(entry), 200)

    async def _delete_options(self, request: web.Request) -> Obj:
        raw = await self._read_body(request)
        options: Obj = codec.parse_body(raw, request.headers.get("Content-Type", codec.JSON)) \
            if raw.strip() else {}
        if not isinstance(options, dict):
            raise errors.BadRequest("DeleteOptions must be an object")
        for param, key in (("gracePeriodSeconds", "gracePeriodSeconds"),
                           ("propagationPolicy", "propagationPolicy")):
            value = request.query.get(param)
            if value is not None:
                options[key] = int_param(request, key) if key == "gracePeriodSeconds" else value
        return options

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        matcher = self._matcher(request, target.res)
        res, dry_run = target.res, _dry_run(request, options)
        hooks = self.webhooks.any_hooks(True) or self.webhooks.any_hooks(False)
        if hooks:  # as upstream: mutating once for the collection, validating per object
            await self._mutating_webhooks("DELETE", target, None, None, dry_run,
                                          request[WARNINGS])
        for entry in self.store.list(res.storage_key, target.namespace, matcher):
            meta = entry.obj["metadata"]
            if hooks:
                await self.webhooks.validate(res, self._webhook_attrs(
                    "DELETE", target, None, entry.obj, dry_run), request[WARNINGS])
            with contextlib.suppress(errors.NotFound):
                self.registry.delete(res, meta.get("namespace", ""), meta["name"], options,
                                     dry_run=dry_run)
        return _json(errors.status_body({"kind": "Status", "apiVersion": "v1",
                                         "metadata": {}, "status": "Success"}))

    # --- subresources ---------------------------------------------------------------

    def _scale_of(self, res: Resource, entry: Entry) -> Obj:
        if res.custom is not None:
            return custom_serving.scale_of(res.custom, entry.obj)
        obj = entry.obj
        meta = obj["metadata"]
        selector = obj.get("spec", {}).get("selector")
        if res.kind == "ReplicationController":  # a plain label map, not a LabelSelector
            selector = {"matchLabels": selector or {}}
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
            "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                       "selector": selectors.to_string(selector)},
        }

    async def _scale(self, request: web.Request, target: Target) -> web.Response:
        res, namespace = target.res, self._namespace(target)
        entry = self.registry.get(res, namespace, target.name or "")
        scale = self._scale_of(res, entry)
        if request.method == "GET":
            return _json(scale)
        body = await self._read_body(request)
        if request.method == "PUT":
            new_scale = codec.parse_body(body, request.headers.get("Content-Type", codec.JSON))
        elif request.method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            new_scale = patch.apply_patch("Scale", scale, body, content_type)
        else:
            raise errors.MethodNotAllowed("the server does not allow this method on scale")
        if not isinstance(new_scale, dict):
            raise errors.BadRequest("Scale must be an object")
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.Invalid("Scale", "autoscaling", target.name or "", [
                errors.FieldError.invalid("spec.replicas", replicas,
                                          "must be greater than or equal to 0")])
        wanted_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        obj = clone(entry.obj)
        if res.custom is not None:
            custom_serving.set_replicas(res.custom, obj, replicas)
        else:
            obj["spec"]["replicas"] = replicas
        obj["metadata"]["resourceVersion"] = wanted_rv or str(entry.rv)
        updated = self.registry.update(res, obj, dry_run=_dry_run(request),
                                       manager=_manager(request, target))
        return _json(self._scale_of(res, await self.store.confirm(updated)))

    async def _virtual(self, request: web.Request, target: Target) -> web.Response:
        """Kinds that are answered, never stored: reviews, Bindings, ComponentStatuses."""
        if target.res.virtual == "binding":
            if request.method != "POST" or not target.is_collection:
                raise errors.MethodNotAllowed(
                    f"the server does not allow this method on the requested resource "
                    f"({request.method})")
            return await self._binding(request, target)
        if target.res.virtual == "componentstatus":
            return self._component_status(request, target)
        return await self._review(request, target)

    def _component_status(self, request: web.Request, target: Target) -> web.Response:
        if request.method != "GET" or parse_bool(request.query.get("watch")):
            raise errors.MethodNotAllowed(
                f"the server does not allow this method on the requested resource "
                f"({request.method})")
        request[WARNINGS].append(componentstatus.DEPRECATED)
        items = ([componentstatus.get(self.store, target.name)] if target.name
                 else componentstatus.list_of(self.store)["items"])
        if codec.wants_table(request.headers.get("Accept", "")):
            return _json(codec.table(target.res, items, now=self.now(),
                                     include_object=request.query.get("includeObject", "")))
        if target.name:
            return _json(items[0])
        return _json(componentstatus.list_of(self.store))

    def service_account_user(self, token: str) -> Obj | None:
        """The user a ServiceAccount token authenticates as, or None: not one of ours, expired,
        or its account is gone (or was recreated with another uid)."""
        claims = self.issuer.claims(token) if self.issuer is not None else None
        account = sa_tokens.account_of(claims) if claims is not None else None
        if account is None:
            return None
        namespace, name, uid = account
        entry = self.store.get("core/serviceaccounts", namespace, name)
        if entry is None or entry.obj["metadata"].get("uid") != uid:
            return None
        secret = sa_tokens.secret_of(claims) if claims is not None else None
        if secret is not None and not self._holds_token(namespace, secret, token):
            return None
        pod = sa_tokens.pod_of(claims) if claims is not None else None
        if pod is not None:
            bound = self.store.get("core/pods", namespace, pod[0])
            if bound is None or bound.obj["metadata"].get("uid") != pod[1]:
                return None  # the pod is gone (while it terminates, its token still works)
        return sa_tokens.user_info(namespace, name, uid)

    def _holds_token(self, namespace: str, name: str, token: str) -> bool:
        """Whether the token Secret exists, is not being deleted, and holds `token`."""
        entry = self.store.get("core/secrets", namespace, name)
        if entry is None or entry.obj["metadata"].get("deletionTimestamp"):
            return False
        held = (entry.obj.get("data") or {}).get("token", "")
        return bool(held) and hmac.compare_digest(held, base64.b64encode(token.encode()).decode())

    async def _token_request(self, request: web.Request, target: Target) -> web.Response:
        """serviceaccounts/NAME/token: a token for the account (`kubectl create token`)."""
        if request.method != "POST" or self.issuer is None:
            raise errors.MethodNotAllowed(
                f"the server does not allow this method on the requested resource "
                f"({request.method})")
        body = codec.parse_body(await self._read_body(request),
                                request.headers.get("Content-Type", codec.JSON))
        account = self.registry.get(target.res, self._namespace(target), target.name or "")
        self._node_restriction(CREATE, target, body if isinstance(body, dict) else None, None)
        bound = ((body or {}).get("spec") or {}).get("boundObjectRef") \
            if isinstance(body, dict) else None
        if isinstance(bound, dict) and bound.get("kind") == "Pod":  # must exist, as upstream
            pod = self.registry.get(resources.must("", "v1", "pods"), self._namespace(target),
                                    str(bound.get("name", "")))
            if bound.get("uid") and pod.obj["metadata"]["uid"] != bound["uid"]:
                raise errors.Conflict(f"the UID in the bound object reference "
                                      f"({bound['uid']}) does not match the UID in record. "
                                      "The object might have been deleted and then recreated")
        return _json(self.issuer.issue(account.obj, body), status=201)

    async def _review(self, request: web.Request, target: Target) -> web.Response:
        if request.method != "POST" or not target.is_collection:
            raise errors.MethodNotAllowed(
                f"the server does not allow this method on the requested resource "
                f"({request.method})")
        body = codec.parse_body(await self._read_body(request),
                                request.headers.get("Content-Type", codec.JSON))
        return _json(reviews.answer(target.res.kind, body, self._review_context(target)),
                     status=201)

    def _review_context(self, target: Target) -> reviews.Context:
        """Who asks (the admin when the server checks no tokens), and how to answer."""
        current = access.current()
        if current is None:
            if self._authorizer is None:
                self._authorizer = rbac.RBACAuthorizer(self.store)
            return reviews.Context(access.ADMIN, self._authorizer, self._token_user,
                                   self._namespace(target))
        user, control = current
        return reviews.Context(user, control.authorizer, control.token_user,
                               self._namespace(target))

    def _token_user(self, token: str) -> rbac.User | None:
        info = self.service_account_user(token)
        return access.user_from_info(info) if info is not None else None

    async def _binding(self, request: web.Request, target: Target) -> web.Response:
        """pods/NAME/binding, or POST bindings with the pod's name in the Binding's metadata:
        set the pod's node, once."""
        if request.method != "POST":
            raise errors.MethodNotAllowed("bindings can only be created")
        body = codec.parse_body(await self._read_body(request),
                                request.headers.get("Content-Type", codec.JSON))
        node = ((body or {}).get("target") or {}).get("name", "")
        namespace = self._namespace(target)
        name = target.name or ""
        pods = target.res
        if target.res.virtual == "binding":  # the bindings collection
            pods = resources.must("", "v1", "pods")
            meta = (body or {}).get("metadata") or {}
            name = str(meta.get("name") or "")
            if not name:
                raise errors.Invalid("Binding", "", "", [errors.FieldError.required(
                    "metadata.name", "name or generateName is required")])
        if not node:
            raise errors.Invalid("Binding", "", name, [errors.FieldError.required(
                "target.name", "")])
        entry = self.registry.get(pods, namespace, name)
        if entry.obj.get("spec", {}).get("nodeName"):
            raise errors.Conflict(f'pod {name} is already assigned to node '
                                  f'"{entry.obj["spec"]["nodeName"]}"')
        # stored versions share their unchanged subtrees (nothing mutates a stored object; the
        # store's delete does the same): a new top level, metadata and spec, not a deep copy
        obj = {**entry.obj, "metadata": dict(entry.obj["metadata"]),
               "spec": {**entry.obj["spec"], "nodeName": node}}
        await self.store.confirm(self.registry.store.update(pods.storage_key, obj,
                                                            expected_rv=entry.rv))
        return _json(errors.status_body({"kind": "Status", "apiVersion": "v1",
                                         "metadata": {}, "status": "Success", "code": 201}),
                     status=201)

@dataclasses.dataclass(eq=False)
class _Stream:
    """What a watch stream writes and where it is in its initial state."""

    res: Resource
    as_table: bool
    include: str
    initial_rv: int
    initial_left: int  # initial events not yet written; 0: bookmark due; -1: none (left)
    first: bool = True  # a Table watch sends its column headers with the first event
    progress_due: bool = False  # a bookmark asked for (`request_progress`)
    waiting: asyncio.Timeout | None = None  # its wait for events, while it waits


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _watch_index(request: web.Request) -> tuple[str, str] | None:
    """An exact-match field the store can index this watch by (see `Store.watch`)."""
    for req in selectors.parse_fields(request.query.get("fieldSelector")):
        if req.op == "=" and len(req.values) == 1:
            return req.key, next(iter(req.values))
    return None


FIELD_MANAGER_MAX_LENGTH = 128


def _manager(request: web.Request, target: Target,
             operation: str = managedfields.UPDATE) -> managedfields.Manager | None:
    """Who a write is on behalf of: `fieldManager`, or for updates the User-Agent up to its
    first `/` (as kube-apiserver names `kubectl` or `OpenAPI-Generator`). An apply must name
    its manager; an over-long or unprintable name is refused with kube's PatchOptions error."""
    name = request.query.get("fieldManager")
    if name is None:
        if operation == managedfields.APPLY:
            raise errors.Invalid("PatchOptions", "meta.k8s.io", "", [errors.FieldError.required(
                "fieldManager", "is required for apply patch")])
        name = request.headers.get("User-Agent", "").split("/")[0][:FIELD_MANAGER_MAX_LENGTH]
    elif len(name) > FIELD_MANAGER_MAX_LENGTH:
        raise errors.Invalid("PatchOptions" if request.method == "PATCH" else "CreateOptions",
                             "meta.k8s.io", "", [errors.FieldError.too_long(
                                 "fieldManager", name, FIELD_MANAGER_MAX_LENGTH)])
    elif not name.isprintable():
        raise errors.Invalid("PatchOptions" if request.method == "PATCH" else "CreateOptions",
                             "meta.k8s.io", "", [errors.FieldError.invalid(
                                 "fieldManager", name, "invalid character")])
    subresource = target.subresource if target.subresource in ("status", "scale") else ""
    return managedfields.Manager(name, operation, target.res.api_version, subresource)


def _dry_run(request: web.Request, options: Obj | None = None) -> bool:
    """`dryRun=All` in the query, or for deletes `dryRun: ["All"]` in the DeleteOptions body
    (where kubectl puts it); "All" is the only value kube-apiserver supports."""
    values = request.query.getall("dryRun", [])
    body_values = (options or {}).get("dryRun") or []
    if not isinstance(body_values, list):
        raise errors.BadRequest("dryRun must be a list of strings")
    for value in [*values, *body_values]:
        if value != "All":
            raise errors.BadRequest(f'dryRun: Unsupported value: "{value}": supported values: '
                                    f'"All"')
    return bool(values or body_values)


def _entry_key(entry: Entry) -> str:
    meta = entry.obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _expired_continue(start: str) -> web.Response:
    """kube-apiserver's 410 for a continue token whose snapshot left the history, with a token
    that continues after the same key at the current resourceVersion."""
    expired = errors.Gone(
        "The provided continue parameter is too old to display a consistent list result. You "
        "can start a new list without the continue parameter, or use the continue token in this "
        "response to retrieve the remainder of the results. Continuing with the provided token "
        "results in an inconsistent list - objects that were created, modified, or deleted "
        "between the time the first chunk was returned and now may show up in the list.")
    status = expired.to_status()
    status["metadata"]["continue"] = _encode_continue(-1, start)
    return _json(errors.status_body(status), status=expired.code)


def _encode_continue(rv: int, start: str) -> str:
    """A continue token: kube-apiserver's shape (`v`, `rv`, `start`); `start` is the last key
    served (`namespace/name`) and `rv` the snapshot's resourceVersion, or -1 for "continue at
    the current resourceVersion" (the token of a 410 for an expired snapshot)."""
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    """(resourceVersion, start key) of a token; 400 BadRequest, worded as kube-apiserver words
    it, for one this server did not make."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        version, rv, start = data.get("v"), int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise errors.BadRequest(f"invalid continue token: {token}") from exc
    if version != "meta.k8s.io/v1":
        quoted = orjson.dumps(version if isinstance(version, str) else "").decode()
        raise errors.BadRequest("invalid continue token: continue key is not valid: server does "
                                f"not recognize this encoded version {quoted}")
    if rv == 0:
        raise errors.BadRequest("invalid continue token: continue key is not valid: incorrect "
                                "encoded start resourceVersion (version meta.k8s.io/v1)")
    if not start:
        raise errors.BadRequest("invalid continue token: continue key is not valid: encoded "
                                "start key empty (version meta.k8s.io/v1)")
    return rv, start

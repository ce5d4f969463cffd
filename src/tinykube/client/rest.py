"""An async REST client for any Kubernetes API server (tinykube's or a real kube-apiserver).

One `aiohttp.ClientSession` (keep-alive, one connection pool) per `RESTClient`; use it as
`async with RESTClient(config) as client:`. Paths come from `tinykube.api.resources.Resource`:
`/api/v1/...` for the core group, `/apis/GROUP/VERSION/...` otherwise, then
`namespaces/NS/` for namespaced resources, the plural, the name and an optional subresource.

Bodies are JSON (orjson both ways) and are returned as plain dicts. Every non-2xx answer is
turned into the `tinykube.api.errors` class its Status names (by `reason`, else by HTTP code);
the Status dict itself is kept on the exception as `.status` and its code as `.code`.

`watch()` streams newline-delimited watch events. It always asks for `allowWatchBookmarks=true`
(unless told not to), yields `(type, object)` pairs including `BOOKMARK`, and raises the mapped
error for an `ERROR` event, so a 410 "too old resource version" surfaces as `errors.Gone`. Lines
are split by hand rather than with `StreamReader.readline`, which refuses lines above its buffer
size (a large ConfigMap would break it).

Nothing here is tinykube-specific: only documented Kubernetes wire behaviour is used.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Literal

import aiohttp
import orjson

from tinykube import clock as clocks
from tinykube.api import errors
from tinykube.api.resources import Resource
from tinykube.client.config import ClientConfig

log = logging.getLogger(__name__)

Obj = dict[str, Any]
JSONPatch = list[Any]
PatchType = Literal["merge", "strategic", "json", "apply"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",  # JSON is valid YAML
}

USER_AGENT = "tinykube-client/0.1"
REQUEST_TIMEOUT = 60.0  # seconds, for everything but watches
TOKEN_REFRESH = 60.0  # seconds between re-reads of a token file

# Status reasons that pick a class; anything else falls back to the HTTP code.
_BY_REASON: dict[str, type[errors.APIError]] = {
    "BadRequest": errors.BadRequest,
    "Unauthorized": errors.Unauthorized,
    "Forbidden": errors.Forbidden,
    "NotFound": errors.NotFound,
    "MethodNotAllowed": errors.MethodNotAllowed,
    "AlreadyExists": errors.AlreadyExists,
    "Conflict": errors.Conflict,
    "Gone": errors.Gone,
    "Expired": errors.Gone,
    "RequestEntityTooLarge": errors.RequestEntityTooLarge,
    "UnsupportedMediaType": errors.UnsupportedMediaType,
    "Invalid": errors.Invalid,
    "TooManyRequests": errors.TooManyRequests,
    "InternalError": errors.InternalError,
    "ServiceUnavailable": errors.ServiceUnavailable,
}
# For a bare 409 (no reason) Conflict is the safer guess: the caller re-reads and retries.
_BY_CODE: dict[int, type[errors.APIError]] = {
    cls.code: cls for cls in (
        errors.BadRequest, errors.Unauthorized, errors.Forbidden, errors.NotFound,
        errors.MethodNotAllowed, errors.Conflict, errors.Gone, errors.RequestEntityTooLarge,
        errors.UnsupportedMediaType, errors.Invalid, errors.TooManyRequests,
        errors.InternalError, errors.ServiceUnavailable,
    )
}


def error_from_status(status: Mapping[str, Any], http_code: int) -> errors.APIError:
    """The `errors` class for a Status body, carrying the Status as `.status`.

    The server's message is kept verbatim. `Invalid` is built without its field-error
    constructor (the causes stay in `.details["causes"]`; `.errors` is empty).
    """
    code = int(status.get("code") or http_code)
    cls = _BY_REASON.get(str(status.get("reason") or "")) or _BY_CODE.get(code, errors.APIError)
    message = str(status.get("message") or f"HTTP {code}")
    details = status.get("details")
    exc = cls.__new__(cls)
    errors.APIError.__init__(exc, message, details=details if isinstance(details, dict) else None)
    if isinstance(exc, errors.Invalid):
        detail_map = exc.details or {}
        exc.kind, exc.group = detail_map.get("kind", ""), detail_map.get("group", "")
        exc.name, exc.errors = detail_map.get("name", ""), []
    exc.code = code  # instance attribute: exact for codes without a class of their own
    exc.status = dict(status)  # type: ignore[attr-defined]
    return exc


def _status_from_body(body: bytes, http_code: int, reason: str) -> Obj:
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return parsed
    text = body.decode(errors="replace").strip() or reason
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": text,
            "code": http_code}


def resource_path(res: Resource, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """`/api/v1/namespaces/NS/pods/NAME/status`, `/apis/apps/v1/deployments`, ..."""
    parts = ["/api", res.version] if not res.group else ["/apis", res.group, res.version]
    if res.namespaced and namespace:
        parts += ["namespaces", urllib.parse.quote(namespace, safe="")]
    parts.append(res.plural)
    if name:
        parts.append(urllib.parse.quote(name, safe=""))
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def _query(**params: Any) -> dict[str, str]:
    """Drop None values; render bools the way Go's ParseBool reads them (`true`)."""
    rendered: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        rendered[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return rendered


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Split a byte stream on newlines, with no limit on line length."""
    buffer = b""
    async for chunk in content.iter_any():
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


class RESTClient:
    """CRUD, list and watch against one API server. Not tied to tinykube."""

    def __init__(self, config: ClientConfig, *, user_agent: str = USER_AGENT,
                 informers: RESTClient | None = None) -> None:
        self.config = config
        self._user_agent = user_agent
        # Whose shared informers this client's users read (`informer.shared`): its own, or
        # another client's, as kube-controller-manager's controllers each write with their
        # own credentials and all read caches that the manager's own client lists and watches.
        self.informer_client: RESTClient = informers.informer_client if informers else self
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_read_at = float("-inf")
        self._in_flight = 0  # requests under way, watches aside (the test clock's quiescence)
        clocks.installed().track(self)

    @property
    def user_agent(self) -> str:
        return self._user_agent

    async def __aenter__(self) -> RESTClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so that a RESTClient can be built outside a running loop.
        if self._session is None or self._session.closed:
            # No connection cap: every informer holds one connection for its watch, and a
            # process with many components would otherwise starve its ordinary requests.
            connector: aiohttp.BaseConnector
            if self.config.unix_socket:
                connector = aiohttp.UnixConnector(path=self.config.unix_socket, limit=0)
            else:
                context = self.config.ssl_context()
                connector = aiohttp.TCPConnector(ssl=context if context is not None else True,
                                                 limit=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
            )
        return self._session

    def _auth_headers(self) -> dict[str, str]:
        now = time.monotonic()
        if self.config.token_file and now - self._token_read_at > TOKEN_REFRESH:
            self._token, self._token_read_at = self.config.current_token(), now
        token = self._token if self.config.token_file else self.config.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Obj:
        """One request; returns the decoded JSON body or raises the mapped `APIError`."""
        headers = self._auth_headers()
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = content_type
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        url = self.config.server + path
        self._in_flight += 1
        try:
            async with self._get_session().request(method, url, params=params, data=data,
                                                   headers=headers, timeout=timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    status = _status_from_body(raw, resp.status, resp.reason or "")
                    raise error_from_status(status, resp.status)
        finally:
            self._in_flight -= 1
            clocks.touch()
        result = orjson.loads(raw) if raw else {}
        return result if isinstance(result, dict) else {"items": result}

    def quiescent(self, resource_version: int | None) -> bool:
        """No request under way (`clock.settle`)."""
        return self._in_flight == 0

    # --- verbs ----------------------------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None, *,
                  subresource: str | None = None) -> Obj:
        return await self.request("GET", resource_path(res, namespace, name, subresource))

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> Obj:
        """One page of a list (the List object, `metadata.continue` set if there is more)."""
        params = _query(labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
                        resourceVersion=resource_version, **{"continue": continue_})
        return await self.request("GET", resource_path(res, namespace), params=params)

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None, *,
                     subresource_name: str | None = None,
                     subresource: str | None = None) -> Obj:
        """POST a new object, or with `subresource_name` + `subresource` to e.g. pods/x/binding."""
        ns = namespace or obj.get("metadata", {}).get("namespace")
        path = resource_path(res, ns, subresource_name, subresource)
        return await self.request("POST", path, body=obj)

    async def update(self, res: Resource, obj: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        """PUT `obj` (its metadata.resourceVersion makes it a compare-and-swap)."""
        meta = obj.get("metadata", {})
        path = resource_path(res, namespace or meta.get("namespace"), meta["name"], subresource)
        return await self.request("PUT", path, body=obj)

    async def patch(self, res: Resource, name: str, patch: Obj | JSONPatch,
                    namespace: str | None = None, *, patch_type: PatchType = "merge",
                    subresource: str | None = None, field_manager: str | None = None,
                    force: bool | None = None) -> Obj:
        """PATCH with the content type of `patch_type` (`apply` needs `field_manager`)."""
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(f"unknown patch type {patch_type!r}")
        params = _query(fieldManager=field_manager, force=force)
        return await self.request("PATCH", resource_path(res, namespace, name, subresource),
                                  params=params, body=patch,
                                  content_type=PATCH_CONTENT_TYPES[patch_type])

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None) -> Obj:
        """DELETE; returns what the server returns (the object, or a Success Status).
        `preconditions` (`uid`, `resourceVersion`) make it fail with 409 on another object."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = dict(preconditions)
        return await self.request("DELETE", resource_path(res, namespace, name), body=options)

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncGenerator[tuple[str, Obj], None]:
        """Yield `(type, object)` watch events until the server ends the stream.

        Raises the mapped `APIError` for an `ERROR` event (`errors.Gone` for 410) or a failed
        request. To stop early and release the connection at once, iterate inside
        `contextlib.aclosing(client.watch(...))`; a plain `break` leaves it to the garbage
        collector.
        """
        params = _query(watch=True, resourceVersion=resource_version,
                        allowWatchBookmarks=True if allow_bookmarks else None,
                        timeoutSeconds=timeout_seconds, labelSelector=label_selector,
                        fieldSelector=field_selector)
        total = None if timeout_seconds is None else timeout_seconds + REQUEST_TIMEOUT
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=REQUEST_TIMEOUT)
        url = self.config.server + resource_path(res, namespace)
        async with self._get_session().get(url, params=params,
                                           headers=self._auth_headers(),
                                           timeout=timeout) as resp:
            if resp.status >= 400:
                raw = await resp.read()
                raise error_from_status(_status_from_body(raw, resp.status, resp.reason or ""),
                                        resp.status)
            async for line in _lines(resp.content):
                event = orjson.loads(line)
                event_type, obj = event.get("type", ""), event.get("object") or {}
                if event_type == "ERROR":
                    raise error_from_status(obj, int(obj.get("code") or 500))
                yield event_type, obj

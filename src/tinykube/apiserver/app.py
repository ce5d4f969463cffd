"""The API server: an aiohttp application in front of the registry.

One catch-all route sends every request through three steps: authentication and authorization
(`access`: client certificates, bearer tokens, scheme matched case-insensitively as
kube-apiserver does, impersonation and RBAC), routing (discovery, OpenAPI, `/version`, health,
the token issuer's OIDC discovery, or a resource path) and error translation (every `APIError`
becomes a `Status` body; anything unexpected becomes a 500 Status and a log line, never a
traceback on the wire).

Besides its TCP listener the server can listen on a unix socket (`unix_path`, mode 0600) with
plain HTTP: `tinykube up` gives it to its own child process, whose requests then skip TLS on both
sides. Requests on it authenticate with the same bearer token as everywhere else.

Connections accept kube-apiserver's header limits and answer requests the HTTP parser refuses
with a Status (`connections`).

`APIServer.start()` returns only once the socket is bound, so "ready" is printed after the
server can answer. aiohttp runs with `handler_cancellation=True` so a watch whose client left is
cancelled at once rather than at its next event.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tinykube import __version__
from tinykube.api import errors
from tinykube.apiserver import (
    access,
    audit,
    clockapi,
    connections,
    discovery,
    handlers,
    openapi,
    openapi_v2,
    paths,
    request_info,
    sa_tokens,
    unserved,
)
from tinykube.apiserver.access import AccessControl
from tinykube.apiserver.handlers import ResourceHandler
from tinykube.apiserver.rbac import RBACAuthorizer
from tinykube.clock import ClockDriver

log = logging.getLogger(__name__)

KUBE_VERSION = {"major": "1", "minor": "32"}
VERSION_INFO = {
    **KUBE_VERSION,
    "gitVersion": f"v1.32.0-tinykube.{__version__}",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-27T00:00:00Z",
    "goVersion": "python3.11",
    "compiler": "cpython",
    "platform": "linux/amd64",
}
_HEALTH = ("/healthz", "/livez", "/readyz")
_OIDC = (sa_tokens.DISCOVERY_PATH, sa_tokens.JWKS_PATH)


def _status_response(error: errors.APIError) -> web.Response:
    """The error's Status; a retry delay in its details is also a `Retry-After` header, as
    kube-apiserver's ErrorNegotiated writes it (e.g. an eviction of an unobserved budget)."""
    retry = (error.details or {}).get("retryAfterSeconds")
    headers = {"Retry-After": str(retry)} if isinstance(retry, int) and retry > 0 else None
    return web.Response(body=error.body(), status=error.code,
                        content_type="application/json", headers=headers)


def _http_error(exc: web.HTTPException) -> errors.APIError:
    """An aiohttp HTTPException as the APIError with its code, so that it too is a Status.
    A code without its own class gets an empty reason (Go's StatusReasonUnknown, which the
    body leaves out)."""
    kind = next((k for k in (errors.BadRequest, errors.NotFound, errors.MethodNotAllowed,
                             errors.RequestEntityTooLarge, errors.UnsupportedMediaType)
                 if k.code == exc.status), None)
    message = exc.text or exc.reason
    if kind is not None:
        return kind(message)
    error = errors.APIError(message)
    error.code, error.reason = exc.status, "InternalError" if exc.status >= 500 else ""
    return error


def _json(body: Any, content_type: str = "application/json") -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=data, headers={"Content-Type": content_type})


def _openapi_v2(request: web.Request) -> web.Response:
    """`/openapi/v2` as gnostic protobuf or JSON, with kube-apiserver's ETag (304 on a match)."""
    media_type = openapi_v2.negotiate(request.headers.get("Accept", ""))
    if media_type is None:
        return web.Response(status=406)
    body, etag = openapi_v2.encoded(media_type)
    headers = {"ETag": etag, "Vary": "Accept"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": media_type})


class APIServer:
    """Owns the aiohttp application, its listener and the request dispatch."""

    def __init__(self, handler: ResourceHandler, *, token: str | None,
                 host: str = "127.0.0.1", port: int = 6443,
                 ssl_context: ssl.SSLContext | None = None,
                 unix_path: Path | None = None, access: AccessControl | None = None,
                 audit_log: audit.AuditLog | None = None) -> None:
        self.handler = handler
        self.audit = audit_log  # writes every request's Events, if set
        self.token = token
        # Without a token, every request is the admin's (unit tests of the API itself).
        self.access = access if access is not None or token is None else \
            AccessControl(token, handler.service_account_user, RBACAuthorizer(handler.store))
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.unix_path = unix_path
        self._runner: web.AppRunner | None = None
        self.clock_driver: ClockDriver | None = None  # `--test-clock` (cluster sets it)
        self.app = web.Application(client_max_size=1024**3)
        self.app.router.add_route("*", "/{tail:.*}", self._serve)
        self.app.on_response_prepare.append(handlers.add_warning_headers)

    def __repr__(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"APIServer({scheme}://{self.host}:{self.port})"

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = connections.StatusRunner(self.app, handler_cancellation=True,
                                                access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context,
                           reuse_address=True, backlog=1024)
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if self.unix_path is not None:  # plain HTTP for local clients; same bearer tokens
            self.unix_path.unlink(missing_ok=True)
            await web.UnixSite(self._runner, str(self.unix_path), backlog=1024).start()
            self.unix_path.chmod(0o600)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.handler.webhooks.close()  # the admission webhooks' connections

    # --- dispatch -------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if self.audit is not None:
            return await self._serve_audited(request, self.audit)
        refused = self._admit(request)
        return refused if refused is not None else await self._handle(request)

    def _admit(self, request: web.Request) -> web.Response | None:
        """Authentication, impersonation, RBAC (`access`): None, or the refusal to send."""
        try:
            if self.access is not None:
                self.access.admit(request)
        except errors.APIError as error:
            return _status_response(error)
        return None

    async def _serve_audited(self, request: web.Request,
                             log_: audit.AuditLog) -> web.StreamResponse:
        """`_serve`, with the request's Events written to the audit log (`audit`)."""
        now = self.handler.now
        entry = audit.Request(request.path_qs, request.remote or "",
                              request.headers.get("User-Agent", ""), now())
        refused = self._admit(request)
        entry.user = request.get(access.AUTHENTICATED_USER)
        entry.attrs = request.get(access.ATTRIBUTES) or request_info.resolve(
            request.method, request.path, request.query)
        if entry.user is not None:
            entry.allowed = refused is None
        if refused is None:
            if "Impersonate-User" in request.headers:
                entry.impersonated = request.get(access.USER)
            log_.received(entry, now())
        if refused is not None:
            response: web.StreamResponse = refused
        else:
            token = entry.collecting()
            try:
                response = await self._handle(request)
            finally:
                entry.reset(token)
        body = response.body if isinstance(response, web.Response) else None
        log_.completed(entry, response.status, now(), request_body=request.get(handlers.BODY),
                       response_body=body if isinstance(body, bytes) else None,
                       request_type=request.headers.get("Content-Type", ""),
                       response_type=response.headers.get("Content-Type", ""))
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._route(request)
        except errors.APIError as error:
            return _status_response(error)
        except web.HTTPException as exc:  # aiohttp's own refusals (a bad WebSocket handshake)
            if exc.status < 400:
                raise
            return _status_response(_http_error(exc))
        except Exception as exc:  # the wire never sees a traceback
            log.exception("internal error serving %s %s", request.method, request.path)
            return _status_response(errors.InternalError(f"an internal error occurred: {exc}"))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        try:
            target = paths.parse(path)
        except paths.UnknownResource as unknown:
            if unknown.missing is None:
                raise errors.NotFound.path() from None
            raise unserved.not_found(*unknown.missing) from None
        if target is not None:
            return await self.handler.handle(request, target)
        if path.startswith(clockapi.PATH):
            return await clockapi.serve(request, path, self.clock_driver,
                                        self.handler.request_progress)
        if request.method != "GET":
            raise errors.MethodNotAllowed(f"the server does not allow this method ({path})")
        return self._document(request, path)

    def _document(self, request: web.Request, path: str) -> web.StreamResponse:
        if path == "/version":
            return _json(VERSION_INFO)
        if path in _OIDC and self.handler.issuer is not None:
            return self._oidc(path, self.handler.issuer)
        if path in _HEALTH or path.startswith(tuple(p + "/" for p in _HEALTH)):
            return web.Response(text="ok")
        if path.startswith("/openapi/v3"):
            return self._openapi(path)
        if path == "/openapi/v2":
            return _openapi_v2(request)
        if path.startswith(("/api", "/apis")):
            return self._discovery(request, path)
        if path == "/":
            return _json({"paths": sorted(["/api", "/api/v1", "/apis", "/healthz", "/livez",
                                           "/openapi/v2", "/openapi/v3", "/readyz", "/version",
                                           *_OIDC])})
        return web.Response(status=404, text="404 page not found\n")

    def _oidc(self, path: str, issuer: sa_tokens.Issuer) -> web.Response:
        """OIDC discovery of the ServiceAccount token issuer, as kube-apiserver serves it."""
        if path == sa_tokens.JWKS_PATH:
            body, content_type = issuer.jwks(), "application/jwk-set+json"
        else:
            body, content_type = issuer.discovery(self.url + sa_tokens.JWKS_PATH), \
                "application/json"
        return web.Response(body=orjson.dumps(body), headers={
            "Content-Type": content_type, "Cache-Control": "public, max-age=3600"})

    def _openapi(self, path: str) -> web.Response:
        if path == "/openapi/v3":
            return _json(openapi.index())
        doc = openapi.group_version(path.removeprefix("/openapi/v3/"))
        if doc is None:
            raise errors.NotFound.path()
        return _json(doc)

    def _discovery(self, request: web.Request, path: str) -> web.Response:
        parts = path.strip("/").split("/")
        if "" in parts:  # `/apis//v1` is not the core group
            raise errors.NotFound.path()
        if len(parts) == 1:
            core = parts[0] == "api"
            version = discovery.negotiate(request.headers.get("Accept", ""))
            if version is not None:
                return _json(discovery.aggregated(core, version),
                             discovery.AGGREGATED_CONTENT_TYPE[version])
            if core:
                return _json(discovery.api_versions(f"{request.host}"))
            return _json(discovery.api_group_list())
        if parts[0] == "api" and len(parts) == 2:
            doc, missing = discovery.api_resource_list("", parts[1]), ("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            doc, missing = discovery.api_group(parts[1]), (parts[1], "")
        elif parts[0] == "apis" and len(parts) == 3:
            doc, missing = discovery.api_resource_list(parts[1], parts[2]), (parts[1], parts[2])
        else:
            raise errors.NotFound.path()
        if doc is None:
            raise unserved.not_found(*missing)
        return _json(doc)

"""Calling admission webhooks: kube-apiserver's MutatingAdmissionWebhook and
ValidatingAdmissionWebhook plugins, the last mutating and the last-but-quota validating step.

The decisions are `api.webhooks`' (which hooks match, what is sent, what an answer means);
this module does the I/O:

- the configurations are read from the store at each request (a list of a few objects),
  ordered by name;
- `clientConfig.url` is called as given; `clientConfig.service` is resolved as kube-apiserver
  does with endpoint routing: the Service's port (default 443) picks an Endpoints subset port
  of the same name and one of its ready addresses (an ExternalName Service: its name), while TLS
  verifies the name `<service>.<namespace>.svc`; `caBundle` (or the system's roots) verifies
  the server. `?timeout=Ns` is added to the path, as upstream adds it;
- one aiohttp session with a bounded connection pool (`POOL_LIMIT`, `PER_HOST_LIMIT`), TLS
  contexts cached per CA bundle, answers read up to `MAX_RESPONSE` bytes, each call bounded by
  the hook's `timeoutSeconds`;
- failures to call (connection, TLS, timeout, non-2xx, an invalid answer) follow
  `failurePolicy`: `Fail` refuses with upstream's 500 (`Internal error occurred: failed calling
  webhook "NAME": failed to call webhook: Post "URL": ...`, Go's wording of the transport
  error), `Ignore` goes on. A refusal is the webhook's own Status (`api.webhooks.denial`);
- mutating hooks run one after the other, each JSONPatch applied to the object in the version
  the hook matched and converted back; `reinvocationPolicy: IfNeeded` hooks run once more when
  a later hook changed the object. Validating hooks run concurrently; the first refusal in
  hook order wins. A dry run calls only hooks whose `sideEffects` is None or NoneOnDryRun
  (others refuse it with upstream's 400);
- `matchConditions` are CEL (`MATCH_CONDITIONS`: `api.admission_policy.conditions_hold`, the
  same engine and semantics as ValidatingAdmissionPolicy's); a false one skips the hook, an
  evaluation error counts as a failed call (`failurePolicy` decides). No `authorizer`;
- an answer's `auditAnnotations` go into the request's audit event as `WEBHOOK/KEY`
  (`audit.annotate`), whether it allowed the request or not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import random
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from tinykube.api import admission_policy, bounds, conversion, errors, patch, resources
from tinykube.api import webhooks as hooks_api
from tinykube.api.apiextensions import model as crd_model
from tinykube.api.cel import authz
from tinykube.api.clone import clone
from tinykube.api.resources import Resource
from tinykube.api.webhooks import Attributes, Hook
from tinykube.apiserver import access, audit
from tinykube.store.cache import Store

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# the audit annotations of kube's webhook dispatchers (each key ends in round_R_index_I: the
# reinvocation round and the hook's place among all hooks of its kind, in configuration order)
MUTATION_ANNOTATION = "mutation.webhook.admission.k8s.io/"
PATCH_ANNOTATION = "patch.webhook.admission.k8s.io/"
FAILED_OPEN_MUTATION = "failed-open.mutation.webhook.admission.k8s.io/"
FAILED_OPEN_VALIDATING = "failed-open.validating.webhook.admission.k8s.io/"


def _go_json(value: Any) -> str:
    """Compact JSON as Go's encoding/json writes these annotations (`<`, `>` and `&`
    escaped); the caller orders the keys."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


POOL_LIMIT = 64  # connections to all webhooks together
PER_HOST_LIMIT = 16
MAX_RESPONSE = 3 * 1024 * 1024  # bytes of an answer read at most
CONTEXT_CACHE = 64  # TLS contexts kept (one per distinct caBundle)
MUTATING_KEY = "admissionregistration.k8s.io/mutatingwebhookconfigurations"
VALIDATING_KEY = "admissionregistration.k8s.io/validatingwebhookconfigurations"
# (conditions, variables) -> whether they all hold; raises on an evaluation error. None: no
# CEL evaluator (the refusal then says so).
MATCH_CONDITIONS: Callable[[tuple[Obj, ...], Obj], bool] | None = admission_policy.conditions_hold


class CallFailed(Exception):
    """The webhook could not be called, or answered nonsense (failurePolicy applies)."""


class Denied(errors.APIError):
    """A webhook refused the request: its Status, as upstream passes it on."""

    def __init__(self, status: Obj) -> None:
        super().__init__(str(status.get("message", "")), details=status.get("details"))
        self.status = status
        self.code = int(status["code"])
        self.reason = str(status.get("reason") or "")

    def to_status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, **self.status}


def call_error(hook: Hook, reason: str) -> errors.InternalError:
    """`failurePolicy: Fail`: upstream's NewInternalError around ErrCallingWebhook."""
    text = f'failed calling webhook "{hook.name}": {reason}'
    return errors.InternalError(f"Internal error occurred: {text}",
                                details={"causes": [{"message": text}]})


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a hook is called: the URL sent in errors, the address dialed, the TLS name."""

    url: str
    dial_url: str
    server_name: str | None


class Dispatcher:
    """Finds the hooks of a request and calls them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        # converts custom resources through their CRD's webhook (the API server sets it)
        self.convert: Callable[[Resource, list[Obj], str], Awaitable[list[Obj]]] | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def __repr__(self) -> str:
        return f"webhooks.Dispatcher({self.store!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=POOL_LIMIT, limit_per_host=PER_HOST_LIMIT)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    def hooks(self, mutating: bool) -> list[Hook]:
        entries = self.store.list(MUTATING_KEY if mutating else VALIDATING_KEY)
        configs = sorted((e.obj for e in entries), key=lambda c: c["metadata"]["name"])
        return [h for c in configs for h in hooks_api.hooks_of(c, mutating)]

    # --- matching -----------------------------------------------------------------------

    def _selected(self, hook: Hook, request: Attributes, res: Resource) -> Resource | None:
        """The row (version) in which the hook's rules match the request, or None; with
        `matchPolicy: Equivalent` another version of the same resource will do. Then the
        selectors, which look at labels (the same in every version)."""
        row: Resource | None = res
        if not hooks_api.rules_match(hook, request):
            candidates = _equivalents(res) if hook.match_policy == "Equivalent" else []
            row = next((r for r in candidates
                        if hooks_api.rules_match(hook, _version_of(request, r))), None)
        if row is None or not hooks_api.object_selected(hook, request):
            return None
        return row if hooks_api.namespace_selected(hook, request, self._ns_labels(request)) \
            else None

    def _ns_labels(self, attrs: Attributes) -> dict[str, str]:
        if not hooks_api.namespace_labels_needed(attrs):
            return {}
        entry = self.store.get("core/namespaces", "", attrs.namespace)
        meta = (entry.obj.get("metadata") or {}) if entry is not None else {}
        return dict(meta.get("labels") or {})

    # --- the two phases -----------------------------------------------------------------

    async def mutate(self, res: Resource, request: Attributes, warnings: list[str]) -> Obj | None:
        """Run the mutating hooks; the object as they left it (storage version), or None when
        none matched."""
        if (res.group, res.plural) in hooks_api.EXEMPT:
            return None
        hooks = [(i, h, row) for i, h in enumerate(self.hooks(True))
                 if (row := self._selected(h, request, res)) is not None]
        if not hooks:
            return None
        obj = request.obj
        invoked: list[Hook] = []
        reinvoke: set[tuple[str, int]] = set()
        for round_ in (0, 1):
            for index, hook, row in hooks:
                if round_ == 1 and hook.key not in reinvoke:
                    continue
                changed, obj = await self._mutate_one(hook, row, request, obj, res, warnings,
                                                      f"round_{round_}_index_{index}")
                if changed and round_ == 0:
                    reinvoke.update(h.key for h in invoked if h.reinvocation == "IfNeeded")
                invoked.append(hook)
            if not reinvoke:
                break
        return obj

    async def _mutate_one(self, hook: Hook, row: Resource, request: Attributes, obj: Obj | None,
                          res: Resource, warnings: list[str],
                          call: str) -> tuple[bool, Obj | None]:
        """One call of a mutating hook, annotated in the audit event as kube annotates it:
        `mutation.webhook.admission.k8s.io/<call>` whatever came of it, and the patch it
        answered under `patch.webhook.admission.k8s.io/<call>` (Request level)."""
        mutated = False
        try:
            mutated, obj = await self._patched_by(hook, row, request, obj, res, warnings, call)
        finally:
            audit.annotate(MUTATION_ANNOTATION + call, _go_json(
                {"configuration": hook.configuration, "webhook": hook.name, "mutated": mutated}))
        return mutated, obj

    async def _patched_by(self, hook: Hook, row: Resource, request: Attributes,
                          obj: Obj | None, res: Resource, warnings: list[str],
                          call: str) -> tuple[bool, Obj | None]:
        attrs = await self._in_row(dataclasses.replace(request, obj=obj), row)
        response = await self._call_guarded(hook, attrs, request, warnings,
                                            FAILED_OPEN_MUTATION + call)
        if response is None or not response.patch:
            return False, obj
        audit.annotate(PATCH_ANNOTATION + call, _go_json(
            {"configuration": hook.configuration, "webhook": hook.name,
             # each operation is a Go map (keys sorted), its values raw JSON as answered
             "patch": [dict(sorted(op.items())) for op in response.patch],
             "patchType": "JSONPatch"}), level="Request")
        if attrs.obj is None:
            raise errors.InternalError(
                f'Internal error occurred: admission webhook "{hook.name}" attempted to modify '
                "the object, which is not supported for this operation")
        try:
            patched = patch.json_patch(clone(attrs.obj), response.patch)
        except (patch.PatchFailed, patch.PatchRejected, errors.APIError) as exc:
            raise errors.InternalError(f"Internal error occurred: {exc}") from exc
        if not isinstance(patched, dict):
            raise errors.InternalError("Internal error occurred: the patched object is not an "
                                       "object")
        try:  # a patch can nest deeper than any request may
            bounds.check_depth(patched)
        except bounds.TooDeep as exc:
            raise errors.InternalError(f"Internal error occurred: {exc}") from exc
        stored = await self._to_storage(row, res, patched)
        return stored != obj, stored

    async def _in_row(self, attrs: Attributes, row: Resource) -> Attributes:
        """The request as seen in `row`'s version, its objects converted to it (a custom
        resource whose CRD has a conversion webhook: through `convert`)."""
        seen = _version_of(attrs, row)
        if row.custom is None or row.custom.webhook is None or self.convert is None:
            return dataclasses.replace(seen, obj=_served(row, attrs.obj),
                                       old=_served(row, attrs.old))
        objects = [o for o in (attrs.obj, attrs.old) if o is not None]
        converted = iter(await self.convert(row, objects, row.api_version) if objects else [])
        return dataclasses.replace(seen, obj=next(converted) if attrs.obj is not None else None,
                                   old=next(converted) if attrs.old is not None else None)

    async def _to_storage(self, row: Resource, res: Resource, obj: Obj) -> Obj:
        if row.custom is not None and row.custom.webhook is not None and \
                self.convert is not None:
            return (await self.convert(row, [obj], res.stored_api_version))[0]
        return _to_storage(row, res, obj)

    async def validate(self, res: Resource, request: Attributes, warnings: list[str]) -> None:
        """Run the validating hooks concurrently; raise the first refusal in hook order."""
        if (res.group, res.plural) in hooks_api.EXEMPT:
            return
        hooks = [(i, h, row) for i, h in enumerate(self.hooks(False))
                 if (row := self._selected(h, request, res)) is not None]
        if not hooks:
            return
        async def one(index: int, hook: Hook, row: Resource) -> hooks_api.Response | None:
            return await self._call_guarded(hook, await self._in_row(request, row), request,
                                            warnings,
                                            f"{FAILED_OPEN_VALIDATING}round_0_index_{index}")

        results = await asyncio.gather(*(one(i, h, row) for i, h, row in hooks),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def any_hooks(self, mutating: bool) -> bool:
        return bool(self.store.list(MUTATING_KEY if mutating else VALIDATING_KEY))

    # --- one call -----------------------------------------------------------------------

    async def _call_guarded(self, hook: Hook, attrs: Attributes, request: Attributes,
                            warnings: list[str],
                            failed_open: str) -> hooks_api.Response | None:
        """Call a hook; None when it failed and `failurePolicy: Ignore` lets the request on
        (the audit annotation `failed_open` says so)."""
        if attrs.dry_run and hook.side_effects not in ("None", "NoneOnDryRun"):
            raise errors.BadRequest(f'admission webhook "{hook.name}" does not support dry run')
        try:
            if hook.match_conditions and not self._conditions_hold(hook, attrs, request):
                return None
            response = await self._call(hook, attrs, request)
        except CallFailed as exc:
            if hook.failure_policy == "Ignore":
                log.warning("Failed calling webhook, failing open %s: %s", hook.name, exc)
                audit.annotate(failed_open, "true")
                return None
            raise call_error(hook, str(exc)) from exc
        for key, value in response.audit_annotations.items():
            if isinstance(value, str):  # kube's AddAnnotation: a bad or taken key is dropped
                audit.annotate(f"{hook.name}/{key}", value)
        warnings.extend(response.warnings)
        if not response.allowed:
            raise Denied(hooks_api.denial(hook.name, response.status))
        return response

    def _conditions_hold(self, hook: Hook, attrs: Attributes, request: Attributes) -> bool:
        """kube's matchConditions variables: `object`, `oldObject`, `request` (the
        AdmissionRequest) and `authorizer` (the request user's, `api.cel.authz`)."""
        if MATCH_CONDITIONS is None:
            raise CallFailed("matchConditions are not supported by this server "
                             "(it has no CEL evaluator)")
        user = _user()
        review = hooks_api.review_request(hook, "", attrs, request, user)["request"]
        own = {"apiGroup": request.group, "resource": request.resource,
               "subresource": request.subresource, "namespace": request.namespace,
               "name": request.name}
        variables = {"object": attrs.obj, "oldObject": attrs.old, "request": review,
                     "authorizer": authz.variable(user, own),
                     admission_policy.AUTHORIZE: access.cel_authorizer()}
        try:
            return MATCH_CONDITIONS(hook.match_conditions, variables)
        except Exception as exc:  # an evaluation error: failurePolicy decides
            raise CallFailed(f"failed to evaluate matchConditions: {exc}") from exc

    async def _call(self, hook: Hook, attrs: Attributes,
                    request: Attributes) -> hooks_api.Response:
        if hook.review_version is None:
            raise CallFailed("could not create admission objects: webhook does not accept "
                             "known AdmissionReview versions")
        uid = str(uuid.uuid4())
        review = hooks_api.review_request(hook, uid, attrs, request, _user())
        try:
            answer = await self.post(hook.client_config, hook.timeout, orjson.dumps(review))
        except CallFailed as exc:
            raise CallFailed(f"failed to call webhook: {exc}") from exc
        try:
            return hooks_api.read_response(hook, uid, answer)
        except hooks_api.InvalidResponse as exc:
            raise CallFailed(f"received invalid webhook response: {exc}") from exc

    async def post(self, client_config: Obj, seconds: int, body: bytes) -> Any:
        """POST `body` to a webhook (`url` or `service`, within `seconds`) and decode its JSON
        answer; CallFailed with Go's words (`Post "URL": ...`)."""
        try:
            context = self._context(client_config.get("caBundle"))
        except (ssl.SSLError, ValueError) as exc:
            raise CallFailed(f"could not get REST client: unable to load root certificates: "
                             f"{exc}") from exc
        url = _url(client_config, seconds)
        try:
            target = self._target(client_config, url)
            async with asyncio.timeout(seconds):
                return await self._exchange(target, context, body)
        except TimeoutError as exc:
            raise CallFailed(f'Post "{url}": context deadline exceeded') from exc
        except CallFailed as exc:
            raise CallFailed(f'Post "{url}": {exc}') from exc

    async def _exchange(self, target: Target, context: ssl.SSLContext, body: bytes) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            async with self._client().post(target.dial_url, data=body, headers=headers,
                                           ssl=context, server_hostname=target.server_name,
                                           allow_redirects=False) as response:
                data = await _read_bounded(response)
                status = response.status
        except aiohttp.ClientConnectorCertificateError as exc:
            raise CallFailed(_tls_text(exc.certificate_error, target)) from exc
        except aiohttp.ClientSSLError as exc:
            raise CallFailed(f"tls: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise CallFailed(_dial_text(exc)) from exc
        except aiohttp.ClientError as exc:
            raise CallFailed(str(exc) or type(exc).__name__) from exc
        if not 200 <= status < 300:
            raise CallFailed(_status_text(status, data))
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CallFailed(f"invalid character in the answer: {exc}") from exc

    def _context(self, ca_bundle: Any) -> ssl.SSLContext:
        key = str(ca_bundle or "")
        context = self._contexts.get(key)
        if context is None:
            context = ssl.create_default_context()
            if key:
                context.load_verify_locations(cadata=base64.b64decode(key).decode())
            if len(self._contexts) >= CONTEXT_CACHE:
                self._contexts.pop(next(iter(self._contexts)))
            self._contexts[key] = context
        return context

    def _target(self, client_config: Obj, url: str) -> Target:
        service = client_config.get("service")
        if client_config.get("url") or not isinstance(service, dict):
            return Target(url, url, None)
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        port = int(service.get("port") or 443)
        address = resolve_service(self.store, namespace, name, port)
        parts = urlsplit(url)
        return Target(url, parts._replace(netloc=address).geturl(), parts.hostname)


def _url(client_config: Obj, seconds: int) -> str:
    """The URL a webhook is called at, with upstream's `?timeout=Ns`."""
    query = f"timeout={seconds}s"
    if client_config.get("url"):
        url = str(client_config["url"])
        return f"{url}{'&' if '?' in url else '?'}{query}"
    service = client_config.get("service")
    service = service if isinstance(service, dict) else {}
    host = f"{service.get('name', '')}.{service.get('namespace', '')}.svc"
    return f"https://{host}:{int(service.get('port') or 443)}{service.get('path') or ''}?{query}"


def _user() -> Obj:
    """The UserInfo of the request being admitted."""
    current = access.current()
    return current[0].info() if current is not None else access.ADMIN.info()


def resolve_service(store: Store, namespace: str, name: str, port: int) -> str:
    """host:port of one ready endpoint of the Service (kube's endpoint service resolver)."""
    entry = store.get("core/services", namespace, name)
    if entry is None:
        raise CallFailed(f'service "{name}" not found')
    spec = entry.obj.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return f"{spec.get('externalName', '')}:{port}"
    svc_port = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
    if svc_port is None:
        raise CallFailed(f'no service port {port} found for service "{name}"')
    endpoints = store.get("core/endpoints", namespace, name)
    if endpoints is None:
        raise CallFailed(f'endpoints "{name}" not found')
    for subset in endpoints.obj.get("subsets") or []:
        for ep_port in subset.get("ports") or []:
            if (ep_port.get("name") or "") != (svc_port.get("name") or ""):
                continue
            addresses = subset.get("addresses") or []
            if addresses:
                ip = random.choice(addresses).get("ip", "")
                host = f"[{ip}]" if ":" in ip else ip
                return f"{host}:{ep_port.get('port')}"
    raise CallFailed(f'no active endpoints for service "{name}"')


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    data = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        data += chunk
        if len(data) > MAX_RESPONSE:
            raise CallFailed(f"the response is larger than {MAX_RESPONSE} bytes")
    return bytes(data)


def _dial_text(exc: aiohttp.ClientConnectorError) -> str:
    """Go's net.OpError text for a failed dial."""
    host = exc.host if ":" not in exc.host else f"[{exc.host}]"
    os_error = exc.os_error
    if isinstance(os_error, ConnectionRefusedError):
        return f"dial tcp {host}:{exc.port}: connect: connection refused"
    if isinstance(os_error, OSError) and "Name or service not known" in str(os_error):
        return f"dial tcp: lookup {exc.host}: no such host"
    return f"dial tcp {host}:{exc.port}: {os_error.strerror or os_error}"


def _tls_text(error: Exception, target: Target) -> str:
    text = str(getattr(error, "verify_message", "") or error)
    if "mismatch" in text.lower():
        name = target.server_name or urlsplit(target.url).hostname or ""
        return f"tls: failed to verify certificate: x509: certificate is not valid for {name}"
    return "tls: failed to verify certificate: x509: certificate signed by unknown authority"


def _status_text(status: int, data: bytes) -> str:
    """client-go's error for a non-2xx answer: its Status message, or the generic text."""
    with contextlib.suppress(orjson.JSONDecodeError):
        body = orjson.loads(data)
        if isinstance(body, dict) and body.get("kind") == "Status" and body.get("message"):
            return str(body["message"])
    if status == 404:
        return "the server could not find the requested resource"
    if status >= 500:
        text = data[:1024].decode(errors="replace").strip()
        return f'an error on the server ("{text}") has prevented the request from succeeding'
    return f"the server responded with the status code {status} but did not return more " \
           "information"


# --- versions ------------------------------------------------------------------------------

def _equivalents(res: Resource) -> list[Resource]:
    """The other served versions of the same stored resource, storage version first (none
    for a custom resource whose CRD converts through a webhook: this module converts nothing
    through the network)."""
    if res.custom is not None and res.custom.webhook is not None:
        return []
    rows = [r for r in resources.ALL
            if r.storage_key == res.storage_key and r.stored and r != res]
    return sorted(rows, key=lambda r: r.converted)


def _version_of(attrs: Attributes, row: Resource) -> Attributes:
    """The request as addressed to `row`'s version (objects left as they are)."""
    return dataclasses.replace(attrs, group=row.group, version=row.version,
                               resource=row.plural, kind=row.kind)


def _served(row: Resource, obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    if row.custom is not None:
        return crd_model.convert(obj, row.api_version)
    return conversion.from_storage(obj, row.api_version) if row.converted else obj


def _to_storage(row: Resource, res: Resource, obj: Obj) -> Obj:
    if row.custom is not None:
        return crd_model.convert(obj, res.stored_api_version)
    return conversion.to_storage(obj, row.api_version) if row.converted else obj

"""A registry v2 client on aiohttp: manifests and blobs, with token and basic auth.

`Registry` speaks to one repository. Every request goes through `_get`, which answers a 401
once: for a `Bearer` challenge it fetches a token from the realm (GET with `service` and
`scope`, Basic credentials when the caller has some, as docker and containerd's fallback do)
and retries; for `Basic` it retries with the credentials. A token is kept for the client's
life (one pull). Failures carry containerd's text: a token server's refusal is `failed to
authorize: failed to fetch anonymous token: unexpected status from GET request to URL: 401
Unauthorized` (`oauth` instead of `anonymous` with credentials); a 401 after that is `pull
access denied, repository does not exist or may require authorization: ...`; a 404 manifest
is `REF: not found`.

Every read is bounded: manifests by `manifest.MAX_MANIFEST`, token and error bodies by
64 KiB, blobs by their descriptor's size. `blob_to` streams a blob into a file, hashing it as
it arrives, and stops as soon as it exceeds its size; the caller renames the file only
after the digest matched.
"""

from __future__ import annotations

import hashlib
import io
import json
import urllib.parse
from collections.abc import Collection
from typing import BinaryIO

import aiohttp
from yarl import URL

from tinykube.images import auth
from tinykube.images import manifest as mf
from tinykube.images.errors import (
    ContentError,
    NotFound,
    PullError,
    RegistryUnavailable,
    ResolveError,
    Unauthorized,
)
from tinykube.images.reference import Reference, endpoint

MAX_SMALL = 64 << 10  # token responses and error bodies
CHUNK = 1 << 16


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise ResolveError(f"{what} too large: {resp.content_length} bytes (limit {limit})")
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise ResolveError(f"{what} too large: more than {limit} bytes")
    return bytes(buf)


def _status(resp: aiohttp.ClientResponse) -> str:
    return f"{resp.status} {resp.reason or ''}".strip()


def _unexpected(resp: aiohttp.ClientResponse) -> str:
    return f"unexpected status from {resp.method} request to {resp.url}: {_status(resp)}"


class Registry:
    """The v2 API of one repository; `creds` None means anonymous; `base` another endpoint
    serving it (a mirror) instead of the reference's registry."""

    def __init__(self, session: aiohttp.ClientSession, ref: Reference, *,
                 creds: auth.Credentials | None = None, insecure: Collection[str] = (),
                 base: str = "") -> None:
        self.session = session
        self.ref = ref
        self.base = base or endpoint(ref.registry, insecure)
        self.creds = creds
        self.authorization = ""
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"Registry({self.base}/{self.ref.repository}, authorized={bool(self.authorization)})"

    def _url(self, kind: str, obj: str) -> str:
        return f"{self.base}/v2/{self.ref.repository}/{kind}/{obj}"

    async def _token(self, challenge: auth.Challenge) -> None:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise Unauthorized(f"failed to authorize: invalid token realm {realm!r}")
        query = {k: challenge.params[k] for k in ("service", "scope") if k in challenge.params}
        query.setdefault("scope", f"repository:{self.ref.repository}:pull")
        headers = {"Authorization": auth.basic_header(self.creds)} if self.creds else {}
        kind = "oauth" if self.creds else "anonymous"
        # sorted and escaped as Go's url.Values.Encode, so the URL in errors is containerd's
        sep = "&" if "?" in realm else "?"
        url = URL(f"{realm}{sep}{urllib.parse.urlencode(sorted(query.items()))}", encoded=True)
        try:
            async with self.session.get(url, headers=headers) as resp:
                if resp.status != 200:
                    raise Unauthorized(f"failed to authorize: failed to fetch {kind} token: "
                                       f"{_unexpected(resp)}")
                body = await _read_bounded(resp, MAX_SMALL, "token response")
        except aiohttp.ClientError as exc:
            raise Unauthorized(f"failed to authorize: failed to fetch {kind} token: {exc}") from exc
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError) as exc:
            raise Unauthorized(f"failed to authorize: token response is not JSON: {exc}") from exc
        if not isinstance(token, str) or not token:
            raise Unauthorized("failed to authorize: token response has no token")
        self.authorization = f"Bearer {token}"
        self.token_fetches += 1

    async def _answer(self, resp: aiohttp.ClientResponse, retried: bool) -> None:
        challenge = auth.parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        if retried or challenge.scheme not in ("bearer", "basic"):
            error = challenge.params.get("error")
            message = f"server message: {error}: authorization failed" if error else (
                "authorization failed")
            raise Unauthorized("pull access denied, repository does not exist or may require "
                               f"authorization: {message}")
        if challenge.scheme == "bearer":
            await self._token(challenge)
        elif self.creds:
            self.authorization = auth.basic_header(self.creds)
        else:
            raise Unauthorized("pull access denied, repository does not exist or may require "
                               "authorization: authorization failed: no basic auth credentials")

    async def _get(self, url: str, headers: dict[str, str],
                   failed: type[PullError] = RegistryUnavailable) -> aiohttp.ClientResponse:
        """GET `url`, answering one auth challenge; the caller closes the response. A
        transport failure raises `failed` (resolving or copying, as the caller is)."""
        for retried in (False, True):
            h = dict(headers)
            if self.authorization:
                h["Authorization"] = self.authorization
            try:
                resp = await self.session.get(url, headers=h)
            except aiohttp.ClientError as exc:
                where = "httpReadSeeker: failed open: " if failed is ContentError else ""
                raise failed(f'{where}failed to do request: Get "{url}": {exc}') from exc
            if resp.status != 401:
                return resp
            resp.release()
            await self._answer(resp, retried)
        raise AssertionError("unreachable")

    async def manifest(self, obj: str) -> tuple[bytes, str, str]:
        """The body, Content-Type and Docker-Content-Digest of manifest `obj` (tag or digest),
        the body's sha256 checked against the header and against `obj` if it is a digest."""
        resp = await self._get(self._url("manifests", obj), {"Accept": mf.ACCEPT})
        async with resp:
            if resp.status == 404:
                raise NotFound(f"{self.ref}: not found")
            if resp.status != 200:
                raise RegistryUnavailable(_unexpected(resp))
            body = await _read_bounded(resp, mf.MAX_MANIFEST, "manifest")
            ctype = resp.headers.get("Content-Type", "")
            header = resp.headers.get("Docker-Content-Digest", "")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if header and header != digest:
            raise ResolveError(f"manifest digest mismatch: Docker-Content-Digest {header}, "
                               f"content {digest}")
        if obj.startswith("sha256:") and obj != digest:
            raise ResolveError(f"manifest digest mismatch: asked for {obj}, content {digest}")
        return body, ctype, digest

    async def blob_to(self, desc: mf.Descriptor, out: BinaryIO) -> None:
        """Stream blob `desc` into `out`, checking size and sha256 as it arrives."""
        resp = await self._get(self._url("blobs", desc.digest), {}, ContentError)
        async with resp:
            if resp.status != 200:
                raise ContentError(f"{desc.digest}: {_unexpected(resp)}")
            if resp.content_length is not None and resp.content_length != desc.size:
                raise ContentError(f"unexpected commit size {resp.content_length}, expected "
                                   f"{desc.size}: failed precondition")
            h, n = hashlib.sha256(), 0
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    n += len(chunk)
                    if n > desc.size:
                        raise ContentError(f"unexpected commit size more than {desc.size}, "
                                           f"expected {desc.size}: failed precondition")
                    h.update(chunk)
                    out.write(chunk)
            except aiohttp.ClientError as exc:
                raise ContentError(f"{desc.digest}: read failed after {n} bytes: {exc}") from exc
        if n != desc.size:
            raise ContentError(f"unexpected commit size {n}, expected {desc.size}: "
                               "failed precondition")
        got = "sha256:" + h.hexdigest()
        if got != desc.digest:
            raise ContentError(f"unexpected commit digest {got}, expected {desc.digest}: "
                               "failed precondition")

    async def blob(self, desc: mf.Descriptor, limit: int) -> bytes:
        """A small blob (an image config) in memory, checked as `blob_to` checks."""
        if desc.size > limit:
            raise ContentError(f"{desc.digest}: {desc.size} bytes, more than {limit}")
        buf = io.BytesIO()
        await self.blob_to(desc, buf)
        return buf.getvalue()

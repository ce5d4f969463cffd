"""A tiny registry v2 in aiohttp on loopback, for what a real registry never does.

Images are built in memory (`layer` makes a gzip tar of `Member`s, `Fake.add_image` the config
and manifest). Knobs make it misbehave: serve other bytes for a blob (`tamper`), cut a blob
halfway and drop the connection (`truncate`), send half and then hang until cancelled
(`hang`, with `half_sent` set once it did), lie in `Docker-Content-Digest`, demand Basic auth.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from tinykube.images import manifest as mf


@dataclasses.dataclass
class Member:
    name: str
    data: bytes | None = None  # None: a directory (unless `link`/`symlink`)
    mode: int = 0o644
    symlink: str = ""
    hardlink: str = ""
    owner: tuple[int, int] = (0, 0)
    xattrs: dict[str, str] = dataclasses.field(default_factory=dict)


BASE_MEMBERS = [Member("bin/", None, 0o755), Member("bin/sh", b"#!sh\n", 0o755),
                Member("etc/", None, 0o755), Member("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]


def tar(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode, info.mtime = m.mode, 1700000000
            info.uid, info.gid = m.owner
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in m.xattrs.items()}
            if m.symlink:
                info.type, info.linkname = tarfile.SYMTYPE, m.symlink
                tf.addfile(info)
            elif m.hardlink:
                info.type, info.linkname = tarfile.LNKTYPE, m.hardlink
                tf.addfile(info)
            elif m.data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
    return buf.getvalue()


def _compress(data: bytes, how: str) -> bytes:
    if how == "zstd":
        import zstandard
        return bytes(zstandard.ZstdCompressor().compress(data))
    return gzip.compress(data, mtime=0) if how == "gzip" else data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Fake:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.tamper: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.hang: set[str] = set()
        self.half_sent = asyncio.Event()
        self.lie_digest = False
        self.basic: tuple[str, str] | None = None
        self.host = ""
        self.served: list[str] = []  # blobs sent in full

    def add_image(self, repo: str, tag: str, layers: list[bytes], *,
                  diff_ids: list[str] | None = None, compress: str = "gzip") -> str:
        blobs = [_compress(t, compress) for t in layers]
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["/bin/sh"]},
                             "rootfs": {"type": "layers",
                                        "diff_ids": diff_ids or [sha(t) for t in layers]}}
                            ).encode()
        for b in (*blobs, config):
            self.blobs[sha(b)] = b
        body = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": sha(b), "size": len(b)} for b in blobs]}
                          ).encode()
        self.manifests[f"{repo}:{tag}"] = (body, mf.OCI_MANIFEST)
        self.manifests[f"{repo}:{sha(body)}"] = (body, mf.OCI_MANIFEST)
        return sha(body)

    def _authorized(self, request: web.Request) -> bool:
        if self.basic is None:
            return True
        want = base64.b64encode(":".join(self.basic).encode()).decode()
        return request.headers.get("Authorization") == f"Basic {want}"

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        key = f"{request.match_info['repo']}:{request.match_info['ref']}"
        if key not in self.manifests:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
        body, ctype = self.manifests[key]
        digest = sha(b"lie") if self.lie_digest else sha(body)
        return web.Response(body=body, content_type=ctype.split(";")[0],
                            headers={"Docker-Content-Digest": digest})

    async def blob(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        digest = request.match_info["digest"]
        if digest not in self.blobs:
            return web.Response(status=404)
        data = self.tamper.get(digest, self.blobs[digest])
        if digest not in self.truncate and digest not in self.hang:
            self.served.append(digest)
            return web.Response(body=data)
        resp = web.StreamResponse()
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[: len(data) // 2])
        self.half_sent.set()
        if digest in self.hang:
            await asyncio.Event().wait()  # until the client goes away
        assert request.transport is not None
        request.transport.close()
        return resp


@asynccontextmanager
async def serve(fake: Fake) -> AsyncIterator[Fake]:
    app = web.Application()
    app.router.add_get("/v2/{repo:.+}/manifests/{ref}", fake.manifest)
    app.router.add_get("/v2/{repo:.+}/blobs/{digest}", fake.blob)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    fake.host = f"127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()

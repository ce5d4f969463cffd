"""A whole pull, as containerd's CRI `PullImage` does it: resolve, fetch, verify, unpack.

1. Resolve the reference: GET its manifest (the four media types accepted); an index or
   manifest list gives the entry for this machine's platform, fetched by digest. Both
   bodies are stored by digest.
2. Fetch the config (bounded, in memory) and every layer not yet unpacked, concurrently,
   each into `tmp/` with its size and sha256 checked as it streams; renamed into `blobs/`
   when verified.
3. Unpack the layers in order, each in a worker thread as soon as its blob (and the layer
   below) is there, into a temporary directory that becomes `layers/HEX` only once its
   diff_id matched. A cancelled pull stops the thread (at its next read) and waits for it
   before the directory is removed.
4. Record the image (tag -> manifest digest).

Mirrors (`--registry-mirror`, as containerd's `hosts.toml` mirrors) are tried in order before
the registry itself, anonymously; a mirror that has not the image (404) or cannot be reached
passes the pull to the next. If all fail, the first error other than not-found is raised, or
not-found, as containerd's resolver does. Blobs come from the endpoint that resolved.

Any failure cancels the transfers still running and leaves nothing partial in the cache.
Errors are re-raised with the normalised reference set, so `str(error)` is containerd's
`failed to pull and unpack image "REF": ...`. Concurrent pulls of one layer in one process
wait for each other (a lock per diff_id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import time
from collections.abc import Collection, Mapping, Sequence

import aiohttp

from tinykube.images import manifest as mf
from tinykube.images import reference
from tinykube.images.auth import Credentials
from tinykube.images.errors import (
    ContentError,
    ImageError,
    NotFound,
    RegistryUnavailable,
    ResolveError,
)
from tinykube.images.registry import Registry
from tinykube.images.store import Image, Layer, Store
from tinykube.images.unpack import Form, LayerDir, unpack


@dataclasses.dataclass
class Pulled:
    """What the kubelet reports: the image, its reference, size and how long it took."""

    image: Image
    ref: str
    seconds: float
    fetched: int  # bytes transferred for blobs


class Puller:
    """Pulls into `store`; `insecure`: registries spoken to over plain HTTP (loopback
    registries always are); `platform`: the one to choose from indexes; `max_layer` and
    `max_unpacked` bound one layer's blob and its uncompressed tar; `mirrors`: registry
    (`docker.io`, `host:port`) -> mirror endpoints (`host:port` or URLs), tried first."""

    def __init__(self, store: Store, *, insecure: Collection[str] = (),
                 mirrors: Mapping[str, Sequence[str]] | None = None,
                 platform: mf.Platform | None = None, max_layer: int = 16 << 30,
                 max_unpacked: int = 64 << 30,
                 timeout: aiohttp.ClientTimeout | None = None) -> None:
        self.store = store
        self.insecure = insecure
        self.mirrors = dict(mirrors or {})
        self.platform = platform or mf.this_platform()
        self.max_layer = max_layer
        self.max_unpacked = max_unpacked
        self.timeout = timeout or aiohttp.ClientTimeout(total=None, sock_connect=30,
                                                        sock_read=120)
        self.form = Form.OVERLAY if os.geteuid() == 0 else Form.OCI
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"Puller({self.store!r}, platform={self.platform})"

    async def pull(self, image: str, *, creds: Credentials | None = None) -> Pulled:
        """Pull `image` (any reference form); `ImageError` with containerd's text on failure."""
        ref = reference.parse(image)
        start = time.monotonic()
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                record, fetched = await self._pull_any(session, ref, creds)
        except ImageError as exc:
            exc.image = str(ref)
            raise
        return Pulled(record, str(ref), time.monotonic() - start, fetched)

    def _mirror_base(self, mirror: str) -> str:
        if mirror.startswith(("http://", "https://")):
            return mirror.rstrip("/")
        return reference.endpoint(mirror, self.insecure)

    async def _pull_any(self, session: aiohttp.ClientSession, ref: reference.Reference,
                        creds: Credentials | None) -> tuple[Image, int]:
        endpoints = [Registry(session, ref, insecure=self.insecure, base=self._mirror_base(m))
                     for m in self.mirrors.get(ref.registry, ())]
        endpoints.append(Registry(session, ref, creds=creds, insecure=self.insecure))
        failures: list[ImageError] = []
        for reg in endpoints:
            try:
                return await self._pull(reg, ref)
            except (NotFound, RegistryUnavailable) as exc:  # try the next endpoint
                failures.append(exc)
        raise next((e for e in failures if not isinstance(e, NotFound)), failures[0])

    async def _resolve(self, reg: Registry, ref: reference.Reference
                       ) -> tuple[mf.Manifest, bytes, str, str]:
        body, ctype, digest = await reg.manifest(ref.object)
        doc = mf.parse(body, ctype)
        index = ""
        if isinstance(doc, mf.Index):
            self._keep(body, digest)
            index = digest
            chosen = mf.choose(doc, self.platform)
            body, ctype, digest = await reg.manifest(chosen.digest)
            doc = mf.parse(body, ctype or chosen.media_type)
            if isinstance(doc, mf.Index):
                raise ResolveError(f"index {chosen.digest} inside an index is not supported")
        self._keep(body, digest)
        return doc, body, digest, index

    def _keep(self, body: bytes, digest: str) -> None:
        if not self.store.has_blob(digest):
            with self.store.temp_file() as (f, path):
                f.write(body)
                f.close()
                self.store.commit_blob(path, digest)

    async def _config(self, reg: Registry, desc: mf.Descriptor) -> bytes:
        if self.store.has_blob(desc.digest):
            return self.store.blob_path(desc.digest).read_bytes()
        data = await reg.blob(desc, mf.MAX_CONFIG)
        self._keep(data, desc.digest)
        return data

    async def _fetch(self, reg: Registry, desc: mf.Descriptor) -> int:
        """The blob `desc` into `blobs/` (nothing if it is there); bytes transferred."""
        if desc.size > self.max_layer:
            raise ContentError(f"{desc.digest}: {desc.size} bytes, more than {self.max_layer}")
        if self.store.has_blob(desc.digest):
            return 0
        with self.store.temp_file() as (f, path):
            await reg.blob_to(desc, f)
            f.close()
            self.store.commit_blob(path, desc.digest)
        return desc.size

    async def _unpack(self, desc: mf.Descriptor, diff_id: str, lowers: list[LayerDir]) -> int:
        lock = self._locks.setdefault(diff_id, asyncio.Lock())
        async with lock:
            if self.store.layer(diff_id) is not None:
                return self.store.layer_size(diff_id)
            size = 0
            with self.store.temp_dir() as tmp:
                dest = LayerDir(tmp / "fs", self.form)
                dest.root.mkdir()
                stop = threading.Event()
                work = asyncio.ensure_future(asyncio.to_thread(
                    unpack, self.store.blob_path(desc.digest), dest, lowers[::-1], diff_id,
                    max_bytes=self.max_unpacked, stop=stop))
                try:
                    size = await asyncio.shield(work)
                except asyncio.CancelledError:
                    # the thread writes into tmp: stop it and let it finish before tmp goes
                    stop.set()
                    await asyncio.wait([work])
                    raise
                self.store.commit_layer(tmp, diff_id, self.form, size)
        if not lock.locked():
            self._locks.pop(diff_id, None)
        return size

    async def _pull(self, reg: Registry, ref: reference.Reference) -> tuple[Image, int]:
        doc, body, digest, index = await self._resolve(reg, ref)
        config = await self._config(reg, doc.config)
        ids = mf.diff_ids(config, len(doc.layers))
        pending = [(d, i) for d, i in zip(doc.layers, ids, strict=True)
                   if self.store.layer(i) is None]
        fetches = {d.digest: asyncio.ensure_future(self._fetch(reg, d)) for d, _ in pending}
        layers: list[Layer] = []
        lowers: list[LayerDir] = []
        try:
            for desc, diff_id in zip(doc.layers, ids, strict=True):
                if desc.digest in fetches:
                    await fetches[desc.digest]
                unpacked = await self._unpack(desc, diff_id, lowers)
                layer = self.store.layer(diff_id)
                assert layer is not None
                lowers.append(layer)
                layers.append(Layer(desc.digest, diff_id, desc.size, unpacked))
        finally:
            for task in fetches.values():
                task.cancel()
            await asyncio.gather(*fetches.values(), return_exceptions=True)
        fetched = sum(t.result() for t in fetches.values())
        by_digest = f"{ref.name}@{index or digest}"  # the name a pod's imageID shows
        names = [by_digest] if ref.digest else [str(ref), by_digest]
        record = Image(digest, doc.config.digest, doc.config.size, layers, len(body),
                       names=names, index=index)
        return self.store.add(record, names[0]), fetched


def image_config(store: Store, image: Image) -> dict[str, object]:
    """The image config's `config` section (Entrypoint, Cmd, Env, User, WorkingDir...)."""
    doc = json.loads(store.blob_path(image.config).read_bytes())
    section = doc.get("config") or {}
    return dict(section) if isinstance(section, dict) else {}

"""Pulling real images from real registries on loopback (docker-registry, skopeo, umoci).

The busybox test image is built offline with umoci (`oci_registry.build_busybox`), pushed with
skopeo to a plain registry and, by an OCI index, as one platform of two. A second registry
instance on the same storage demands Bearer tokens from a token server with one user. The
pulled root filesystem is compared with `umoci unpack`'s of the same image: the same entries,
kinds, modes, owners, link targets and contents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import oci_registry
from tinykube.images import errors, rootfs
from tinykube.images import manifest as mf
from tinykube.images.auth import Credentials
from tinykube.images.pull import Puller
from tinykube.images.store import Store

pytestmark = pytest.mark.skipif(bool(oci_registry.missing_tools()),
                                reason=f"missing {oci_registry.missing_tools()}")


@dataclass
class Env:
    work: Path
    layout: Path
    plain: oci_registry.Registry
    secure: oci_registry.Registry
    tokens: oci_registry.TokenServer
    index_digest: str


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("images")
    layout = oci_registry.build_busybox(work, "1")
    oci_registry.build_busybox(work, "2")  # a second image (other layer digests) for the index
    storage = work / "registry-data"
    with oci_registry.TokenServer(work, {"alice": "s3cret"}) as tokens, \
            oci_registry.registry(work, storage) as plain, \
            oci_registry.registry(work, storage, tokens) as secure:
        oci_registry.push(layout, "1", f"{plain.host}/demo/busybox:1")
        oci_registry.push(layout, "2", f"{plain.host}/demo/busybox:2")
        index = oci_registry.push_index(plain.host, "demo/busybox", "1", "2", "multi")
        yield Env(work, layout, plain, secure, tokens, index)


def _store(tmp_path: Path) -> Store:
    return Store(tmp_path / "images")


async def test_pull_by_tag_matches_umoci_unpack(env: Env, tmp_path: Path) -> None:
    store = _store(tmp_path)
    pulled = await Puller(store).pull(f"{env.plain.host}/demo/busybox:1")
    assert pulled.ref == f"{env.plain.host}/demo/busybox:1"
    assert len(pulled.image.layers) == 2
    root = rootfs.create(store, "c1", pulled.image, overlay=False)
    reference = oci_registry.umoci_unpack(env.layout, "1", tmp_path / "umoci")
    ours, theirs = oci_registry.listing(root), oci_registry.listing(reference)
    assert ours == theirs
    assert "www/deleteme.txt" not in ours  # the whiteout of layer 2
    assert sorted(n for n in ours if n.startswith("www/old/")) == ["www/old/c"]  # opaque
    assert ours["bin/suid"][1] == 0o4755 and ours["tmp"][1] == 0o1777
    assert ours["bin/abs-sh"] == ("link", 0o777, 0, 0, "/bin/busybox")
    assert os.stat(root / "www/index.html").st_ino == os.stat(root / "www/index-link.html").st_ino


async def test_pull_by_digest_and_cache_reuse(env: Env, tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = await Puller(store).pull(f"{env.plain.host}/demo/busybox:1")
    again = await Puller(store).pull(f"{env.plain.host}/demo/busybox@{first.image.digest}")
    assert again.image.digest == first.image.digest
    assert first.image.names == [f"{env.plain.host}/demo/busybox:1",
                                 f"{env.plain.host}/demo/busybox@{first.image.digest}"]
    assert again.fetched == 0  # every layer was already unpacked
    assert store.find(f"{env.plain.host}/demo/busybox@{first.image.digest}") is not None
    assert store.find(f"{env.plain.host}/demo/busybox:1") is not None


@pytest.mark.parametrize(("platform", "tag"), [
    pytest.param(mf.Platform("linux", "amd64"), "1", id="amd64"),
    pytest.param(mf.Platform("linux", "arm64", "v8"), "2", id="arm64-v8"),
])
async def test_index_platform_choice(env: Env, tmp_path: Path, platform: mf.Platform,
                                     tag: str) -> None:
    store = _store(tmp_path)
    direct = await Puller(store).pull(f"{env.plain.host}/demo/busybox:{tag}")
    chosen = await Puller(store, platform=platform).pull(f"{env.plain.host}/demo/busybox:multi")
    assert chosen.image.digest == direct.image.digest
    assert chosen.image.index == env.index_digest
    name = f"{env.plain.host}/demo/busybox"
    assert f"{name}@{env.index_digest}" in chosen.image.names  # the imageID a pod shows
    by_index = await Puller(store, platform=platform).pull(f"{name}@{env.index_digest}")
    assert by_index.image.digest == direct.image.digest and by_index.fetched == 0
    assert store.find(f"{name}@{env.index_digest}") == by_index.image


async def test_index_without_this_platform(env: Env, tmp_path: Path) -> None:
    puller = Puller(_store(tmp_path), platform=mf.Platform("linux", "s390x"))
    ref = f"{env.plain.host}/demo/busybox:multi"
    with pytest.raises(errors.NoMatchingPlatform) as exc:
        await puller.pull(ref)
    assert str(exc.value) == (f'failed to pull and unpack image "{ref}": failed to resolve '
                              f'reference "{ref}": no match for platform in manifest: not found')


async def test_not_found_message(env: Env, tmp_path: Path) -> None:
    ref = f"{env.plain.host}/demo/busybox:nope"
    with pytest.raises(errors.NotFound) as exc:
        await Puller(_store(tmp_path)).pull(ref)
    assert str(exc.value) == (f'failed to pull and unpack image "{ref}": failed to resolve '
                              f'reference "{ref}": {ref}: not found')
    assert exc.value.code == "NotFound"
    assert errors.event_message("img", exc.value) == (
        f'Failed to pull image "img": rpc error: code = NotFound desc = {exc.value}')


async def test_token_auth_pulls_with_the_right_password(env: Env, tmp_path: Path) -> None:
    store = _store(tmp_path)
    pulled = await Puller(store).pull(f"{env.secure.host}/demo/busybox:1",
                                      creds=Credentials("alice", "s3cret"))
    assert len(pulled.image.layers) == 2
    assert ("alice", "repository:demo/busybox:pull") in env.tokens.requests


@pytest.mark.parametrize(("creds", "kind"), [
    pytest.param(Credentials("alice", "wrong"), "oauth", id="wrong-password"),
    pytest.param(None, "anonymous", id="anonymous"),
])
async def test_token_auth_refused(env: Env, tmp_path: Path, creds: Credentials | None,
                                  kind: str) -> None:
    ref = f"{env.secure.host}/demo/busybox:1"
    with pytest.raises(errors.Unauthorized) as exc:
        await Puller(_store(tmp_path)).pull(ref, creds=creds)
    url = (f"{env.tokens.realm}?scope=repository%3Ademo%2Fbusybox%3Apull&service=tk-registry")
    assert str(exc.value) == (
        f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
        f"failed to authorize: failed to fetch {kind} token: unexpected status from GET "
        f"request to {url}: 401 Unauthorized")


async def test_overlay_rootfs_shares_layers(env: Env, tmp_path: Path) -> None:
    store = _store(tmp_path)
    if not rootfs.overlay_supported(store):
        pytest.skip("overlay mounts need root and overlayfs")
    pulled = await Puller(store).pull(f"{env.plain.host}/demo/busybox:1")
    roots = [rootfs.create(store, f"c{i}", pulled.image) for i in range(2)]
    try:
        copy = rootfs.create(store, "copy", pulled.image, overlay=False)
        assert oci_registry.listing(roots[0]) == oci_registry.listing(copy)
        (roots[0] / "www/index.html").write_text("changed\n")  # copy-up: the other is intact
        assert (roots[1] / "www/index.html").read_text().startswith("<h1>")
    finally:
        for name in ("c0", "c1", "copy"):
            rootfs.remove(store, name)
    assert not any((store.root / "containers").iterdir())


async def test_registry_stopped_before_a_blob(env: Env, tmp_path: Path) -> None:
    """The registry stops between the manifest and the big layer: the pull fails with the
    request's error, and the cache has no layer, no image and nothing in tmp/."""
    storage = env.work / "registry-data"
    store = _store(tmp_path)
    with oci_registry.registry(env.work, storage) as doomed:
        ref = f"{doomed.host}/demo/busybox:1"
        puller = Puller(store)
        original = puller._fetch

        async def fetch_then_stop(reg, desc):  # type: ignore[no-untyped-def]
            if desc.size > 100_000:  # the busybox layer
                doomed.stop()
            return await original(reg, desc)

        puller._fetch = fetch_then_stop  # type: ignore[method-assign]
        with pytest.raises(errors.ContentError) as exc:
            await puller.pull(ref)
    assert str(exc.value).startswith(
        f'failed to pull and unpack image "{ref}": failed to copy: httpReadSeeker: failed open: '
        f'failed to do request: Get "http://{doomed.host}/v2/demo/busybox/blobs/sha256:')
    assert not any((store.root / "layers").iterdir())
    assert store.find(ref) is None
    assert not any((store.root / "tmp").iterdir())


@pytest.mark.slow
async def test_python_image_matches_umoci_unpack(env: Env, tmp_path: Path) -> None:
    """The bigger image (the host's python3.11 and its standard library, ~1,000 entries on
    the busybox layers): overlay and copy roots both equal umoci's unpack."""
    oci_registry.build_python(env.work, env.layout, "py")
    ref = f"{env.plain.host}/demo/python:3.11"
    oci_registry.push(env.layout, "py", ref)
    store = _store(tmp_path)
    pulled = await Puller(store).pull(ref)
    theirs = oci_registry.listing(oci_registry.umoci_unpack(env.layout, "py", tmp_path / "u"))
    assert len(theirs) > 500
    copy = rootfs.create(store, "copy", pulled.image, overlay=False)
    assert oci_registry.listing(copy) == theirs
    if rootfs.overlay_supported(store):
        try:
            assert oci_registry.listing(rootfs.create(store, "ovl", pulled.image)) == theirs
        finally:
            rootfs.remove(store, "ovl")

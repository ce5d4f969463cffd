"""Pulls from a fake registry that misbehaves: tampered blobs, wrong diff_ids, lies, cuts,
escaping layers; whatever fails, nothing partial is left in the cache."""

from __future__ import annotations

import asyncio
import gzip
import os
from pathlib import Path

import pytest

from tests.unit.images.fake_registry import BASE_MEMBERS, Fake, Member, serve, sha, tar
from tinykube.images import errors, rootfs, unpack
from tinykube.images.auth import Credentials
from tinykube.images.pull import Puller
from tinykube.images.store import Store
from tinykube.testing import free_port

BASE = BASE_MEMBERS


def _empty_cache(store: Store) -> None:
    assert not any((store.root / "layers").iterdir()), "a layer was left in the cache"
    assert not any((store.root / "tmp").iterdir()), "a temporary file was left behind"
    assert store.images == {}


async def test_pull_and_unpack(tmp_path: Path) -> None:
    fake = Fake()
    digest = fake.add_image("app", "v1", [tar(BASE), tar([Member("etc/.wh.passwd", b"")])])
    async with serve(fake):
        store = Store(tmp_path)
        pulled = await Puller(store).pull(f"{fake.host}/app:v1")
    assert pulled.image.digest == digest and pulled.fetched > 0
    root = rootfs.create(store, "c", pulled.image, overlay=False)
    assert (root / "bin/sh").read_bytes() == b"#!sh\n"
    assert not (root / "etc/passwd").exists()


async def test_tampered_blob_refused(tmp_path: Path) -> None:
    fake = Fake()
    good = gzip.compress(tar(BASE), mtime=0)
    fake.add_image("app", "v1", [tar(BASE)])
    bad = bytearray(good)
    bad[-12] ^= 0xFF
    fake.tamper[sha(good)] = bytes(bad)
    ref = "{host}/app:v1"
    async with serve(fake):
        store = Store(tmp_path)
        with pytest.raises(errors.ContentError) as exc:
            await Puller(store).pull(ref.format(host=fake.host))
    assert str(exc.value) == (
        f'failed to pull and unpack image "{fake.host}/app:v1": failed to copy: unexpected '
        f"commit digest {sha(bytes(bad))}, expected {sha(good)}: failed precondition")
    assert not store.has_blob(sha(good))
    _empty_cache(store)


async def test_wrong_diff_id_refused(tmp_path: Path) -> None:
    fake = Fake()
    claimed = sha(b"not this layer")
    fake.add_image("app", "v1", [tar(BASE)], diff_ids=[claimed])
    async with serve(fake):
        store = Store(tmp_path)
        with pytest.raises(errors.UnpackError) as exc:
            await Puller(store).pull(f"{fake.host}/app:v1")
    assert str(exc.value) == (
        f'failed to pull and unpack image "{fake.host}/app:v1": failed to extract layer '
        f'{claimed}: wrong diff id calculated on extraction "{sha(tar(BASE))}"')
    _empty_cache(store)


async def test_docker_content_digest_checked(tmp_path: Path) -> None:
    fake = Fake()
    fake.add_image("app", "v1", [tar(BASE)])
    fake.lie_digest = True
    async with serve(fake):
        with pytest.raises(errors.ResolveError, match="manifest digest mismatch: "
                                                      "Docker-Content-Digest"):
            await Puller(Store(tmp_path)).pull(f"{fake.host}/app:v1")


async def test_manifest_over_4mib_refused(tmp_path: Path) -> None:
    fake = Fake()
    fake.manifests["app:big"] = (b" " * (4 << 20) + b"{}", "application/json")
    async with serve(fake):
        with pytest.raises(errors.ResolveError, match="manifest too large"):
            await Puller(Store(tmp_path)).pull(f"{fake.host}/app:big")


@pytest.mark.parametrize("cut", ["truncate", "hang"])
async def test_interrupted_blob_leaves_nothing(tmp_path: Path, cut: str) -> None:
    """A connection cut halfway, or the pull cancelled while the blob streams (the agent
    stopping): no blob, no layer, no image, nothing in tmp/."""
    fake = Fake()
    big = tar([*BASE, Member("big", os.urandom(1 << 20))])
    fake.add_image("app", "v1", [tar(BASE), big])
    getattr(fake, cut).add(sha(gzip.compress(big, mtime=0)))
    async with serve(fake):
        store = Store(tmp_path)
        task = asyncio.ensure_future(Puller(store).pull(f"{fake.host}/app:v1"))
        if cut == "hang":
            await asyncio.wait_for(fake.half_sent.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(errors.ContentError):
                await task
    assert not store.has_blob(sha(gzip.compress(big, mtime=0)))
    assert not (store.root / "layers" / sha(big)[7:]).exists()
    assert not any((store.root / "tmp").iterdir())
    assert store.images == {}


async def test_basic_auth(tmp_path: Path) -> None:
    fake = Fake()
    fake.add_image("app", "v1", [tar(BASE)])
    fake.basic = ("bob", "pw")
    async with serve(fake):
        pulled = await Puller(Store(tmp_path)).pull(f"{fake.host}/app:v1",
                                                    creds=Credentials("bob", "pw"))
        assert pulled.image.layers
        with pytest.raises(errors.Unauthorized, match="pull access denied, repository does not "
                                                      "exist or may require authorization"):
            await Puller(Store(tmp_path / "2")).pull(f"{fake.host}/app:v1")


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none"])
async def test_layer_compressions(tmp_path: Path, compress: str) -> None:
    """gzip, zstd (with the zstandard package, as `pip install tinykube[zstd]` brings) and
    uncompressed layers, each with its diff_id checked."""
    if compress == "zstd" and unpack.zstd_module() is None:
        pytest.skip("neither zstandard nor compression.zstd is installed")
    fake = Fake()
    fake.add_image("app", "v1", [tar(BASE), tar([Member("etc/motd", b"hi\n")])],
                   compress=compress)
    async with serve(fake):
        store = Store(tmp_path)
        image = (await Puller(store).pull(f"{fake.host}/app:v1")).image
    root = rootfs.create(store, "c", image, overlay=False)
    assert (root / "etc/motd").read_bytes() == b"hi\n"
    assert (root / "bin/sh").stat().st_mode & 0o777 == 0o755


def test_zstd_refused_without_a_decompressor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setattr(unpack, "zstd_module", lambda: None)
    blob = tmp_path / "layer"
    blob.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 32)
    (tmp_path / "fs").mkdir()
    with pytest.raises(errors.UnpackError, match="zstd-compressed layer, but neither the "
                                                 "zstandard package nor Python's compression"):
        unpack.unpack(blob, unpack.LayerDir(tmp_path / "fs", unpack.Form.OCI), [], sha(b""))


ESCAPES = [
    pytest.param([], [Member("../escaped", b"x")], "path escapes the root filesystem",
                 id="dotdot"),
    pytest.param([], [Member("/escaped", b"x")], "absolute path in layer", id="absolute"),
    pytest.param([Member("etc", symlink="{outside}")], [Member("etc/passwd", b"x")],
                 "parent etc is a symlink in a lower layer", id="lower-layer-symlink-parent"),
    pytest.param([], [Member("etc", symlink="{outside}"), Member("etc/passwd", b"x")],
                 "parent etc is a symlink", id="same-layer-symlink-parent"),
    pytest.param([], [Member("x", hardlink="../../outside/secret")],
                 "path escapes the root filesystem", id="hardlink-dotdot"),
    pytest.param([Member("lnk", symlink="{outside}/secret")], [Member("x", hardlink="lnk")],
                 "which is not a file of the image", id="hardlink-to-symlink"),
    pytest.param([], [Member("x", hardlink="nothing/here")],
                 "which is not a file of the image", id="hardlink-to-nothing"),
]


@pytest.mark.parametrize(("lower", "upper", "why"), ESCAPES)
async def test_escaping_layer_refused(tmp_path: Path, lower: list[Member], upper: list[Member],
                                      why: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host file\n")

    def fix(ms: list[Member]) -> list[Member]:
        return [Member(m.name, m.data, m.mode, m.symlink.format(outside=outside), m.hardlink)
                for m in ms]
    fake = Fake()
    fake.add_image("app", "v1", [tar([*BASE, *fix(lower)]), tar(fix(upper))])
    async with serve(fake):
        store = Store(tmp_path / "cache")
        with pytest.raises(errors.UnpackError, match=why):
            await Puller(store).pull(f"{fake.host}/app:v1")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "host file\n"
    assert not (tmp_path / "escaped").exists()
    assert store.images == {}


async def test_file_replacing_a_symlink_writes_no_further(tmp_path: Path) -> None:
    """A layer's symlink to a host file, then a regular file of the same name (same layer
    or next): the symlink is replaced, the host file is untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host file\n")
    fake = Fake()
    fake.add_image("app", "v1", [
        tar([*BASE, Member("a", symlink=str(outside / "secret")), Member("a", b"mine\n"),
             Member("b", symlink=str(outside / "secret"))]),
        tar([Member("b", b"mine too\n")])])
    async with serve(fake):
        store = Store(tmp_path / "cache")
        image = (await Puller(store).pull(f"{fake.host}/app:v1")).image
    root = rootfs.create(store, "c", image, overlay=False)
    assert (root / "a").read_text() == "mine\n" and not (root / "a").is_symlink()
    assert (root / "b").read_text() == "mine too\n" and not (root / "b").is_symlink()
    assert (outside / "secret").read_text() == "host file\n"


@pytest.mark.parametrize(("mirror_has", "upstream_has", "want"), [
    pytest.param(True, False, "mirror", id="mirror-serves"),
    pytest.param(False, True, "upstream", id="mirror-404-upstream-serves"),
    pytest.param(None, True, "upstream", id="mirror-down-upstream-serves"),
    pytest.param(False, False, "{ref}: not found", id="both-404"),
    pytest.param(None, False, 'failed to do request: Get "http://{mirror}/v2/app/manifests/v1"',
                 id="mirror-down-upstream-404"),
])
async def test_mirrors(tmp_path: Path, mirror_has: bool | None, upstream_has: bool,
                       want: str) -> None:
    """Mirrors first, then the registry; when all fail, the first error other than
    not-found is the one raised (containerd's resolver), else not-found."""
    mirror, upstream = Fake(), Fake()
    for fake, has in ((mirror, mirror_has), (upstream, upstream_has)):
        if has:
            fake.add_image("app", "v1", [tar(BASE)])
    async with serve(mirror), serve(upstream):
        mirror_host = mirror.host if mirror_has is not None else f"127.0.0.1:{free_port()}"
        puller = Puller(Store(tmp_path), mirrors={upstream.host: [f"http://{mirror_host}"]})
        ref = f"{upstream.host}/app:v1"
        if want in ("mirror", "upstream"):
            await puller.pull(ref)
            assert bool(mirror.served) == (want == "mirror")
            assert bool(upstream.served) == (want == "upstream")
            return
        with pytest.raises(errors.ResolveError) as exc:
            await puller.pull(ref)
    assert str(exc.value).startswith(  # a connection error's own text follows
        f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
        + want.format(ref=ref, mirror=mirror_host))


@pytest.mark.skipif(os.geteuid() != 0, reason="owners and xattrs are kept only as root")
async def test_owners_modes_and_xattrs_kept(tmp_path: Path) -> None:
    """Numeric owners, setgid and sticky directories, setuid files and `SCHILY.xattr`
    attributes survive unpacking, in the copy and in the overlay."""
    fake = Fake()
    fake.add_image("app", "v1", [tar([
        *BASE, Member("srv/", None, 0o2775, owner=(1000, 1001)),
        Member("srv/data", b"d", 0o640, owner=(1000, 1001), xattrs={"user.tk": "kept"}),
        Member("srv/tmp/", None, 0o1777), Member("bin/su", b"su", 0o4755),
        Member("srv/link", symlink="data", owner=(1000, 1001))])])
    async with serve(fake):
        store = Store(tmp_path)
        image = (await Puller(store).pull(f"{fake.host}/app:v1")).image
    roots = [rootfs.create(store, "copy", image, overlay=False)]
    if rootfs.overlay_supported(store):
        roots.append(rootfs.create(store, "ovl", image))
    try:
        for root in roots:
            got = {n: (st.st_mode & 0o7777, st.st_uid, st.st_gid) for n in
                   ("srv", "srv/data", "srv/tmp", "bin/su", "srv/link")
                   for st in [os.lstat(root / n)]}
            assert got == {"srv": (0o2775, 1000, 1001), "srv/data": (0o640, 1000, 1001),
                           "srv/tmp": (0o1777, 0, 0), "bin/su": (0o4755, 0, 0),
                           "srv/link": (0o777, 1000, 1001)}
            assert os.getxattr(root / "srv/data", "user.tk") == b"kept"
    finally:
        rootfs.remove(store, "ovl")


async def test_concurrent_pulls_unpack_once(tmp_path: Path) -> None:
    fake = Fake()
    fake.add_image("app", "v1", [tar(BASE), tar([Member("etc/motd", b"hi")])])
    async with serve(fake):
        store = Store(tmp_path)
        puller = Puller(store)
        a, b = await asyncio.gather(*(puller.pull(f"{fake.host}/app:v1") for _ in range(2)))
    assert a.image.digest == b.image.digest
    assert len(list((store.root / "layers").iterdir())) == 2
    assert not any((store.root / "tmp").iterdir())


async def test_cancel_during_unpack_waits_for_the_thread(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled while a layer unpacks in its thread: the pull's cancellation completes only
    after the thread has stopped, so its temporary directory is removed after the last write
    (not while the thread still writes into it, as the first version did)."""
    import threading

    from tinykube.images import pull as pull_module
    started, finished = threading.Event(), threading.Event()
    real = pull_module.unpack

    def slow_unpack(*args, stop: threading.Event, **kwargs):  # type: ignore[no-untyped-def]
        started.set()
        try:
            assert stop.wait(10), "never told to stop"
            return real(*args, stop=stop, **kwargs)  # stops at its first read
        finally:
            finished.set()
    monkeypatch.setattr(pull_module, "unpack", slow_unpack)
    fake = Fake()
    fake.add_image("app", "v1", [tar(BASE)])
    async with serve(fake):
        store = Store(tmp_path)
        task = asyncio.ensure_future(Puller(store).pull(f"{fake.host}/app:v1"))
        assert await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set()
    _empty_cache(store)

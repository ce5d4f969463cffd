"""The pure parts of the image library, as tables: references, endpoints, credentials,
challenges, pull policy, platform choice; and the cache's GC and both whiteout forms."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.unit.images.fake_registry import BASE_MEMBERS, Fake, Member, serve, tar
from tinykube.images import auth, errors, policy, reference, rootfs
from tinykube.images import manifest as mf
from tinykube.images.pull import Puller
from tinykube.images.store import Store
from tinykube.images.unpack import Form


@pytest.mark.parametrize(("image", "want"), [
    pytest.param("nginx", "docker.io/library/nginx:latest", id="short"),
    pytest.param("nginx:1.11", "docker.io/library/nginx:1.11", id="tag"),
    pytest.param("user/app", "docker.io/user/app:latest", id="hub-user"),
    pytest.param("docker.io/nginx", "docker.io/library/nginx:latest", id="hub-explicit"),
    pytest.param("localhost/app:1", "localhost/app:1", id="localhost"),
    pytest.param("127.0.0.1:5000/demo/busybox:1", "127.0.0.1:5000/demo/busybox:1", id="port"),
    pytest.param("quay.io/a/b/c@sha256:" + "a" * 64, "quay.io/a/b/c@sha256:" + "a" * 64,
                 id="digest"),
    pytest.param("reg.io/app:v1@sha256:" + "b" * 64, "reg.io/app:v1@sha256:" + "b" * 64,
                 id="tag-and-digest"),
    pytest.param("my-reg:5000/ns__x/a.b-c", "my-reg:5000/ns__x/a.b-c:latest", id="separators"),
])
def test_reference_normalised(image: str, want: str) -> None:
    assert str(reference.parse(image)) == want


@pytest.mark.parametrize("image", [
    pytest.param("Nginx", id="uppercase"), pytest.param("nginx:", id="empty-tag"),
    pytest.param("nginx@sha256:abc", id="short-digest"), pytest.param("a//b", id="empty-part"),
    pytest.param("nginx:" + "x" * 129, id="long-tag"), pytest.param("", id="empty"),
    pytest.param("-app", id="leading-dash"),
])
def test_reference_invalid(image: str) -> None:
    with pytest.raises(errors.InvalidReference) as exc:
        reference.parse(image)
    assert str(exc.value) == f'couldn\'t parse image name "{image}": invalid reference format'
    assert exc.value.reason == "InvalidImageName"
    assert errors.event_message(image, exc.value) == (
        f'Failed to apply default image tag "{image}": {exc.value}')


@pytest.mark.parametrize(("registry", "insecure", "want"), [
    pytest.param("docker.io", (), "https://registry-1.docker.io", id="hub"),
    pytest.param("127.0.0.1:5000", (), "http://127.0.0.1:5000", id="loopback-v4"),
    pytest.param("127.8.9.10", (), "http://127.8.9.10", id="loopback-net"),
    pytest.param("[::1]:5000", (), "http://[::1]:5000", id="loopback-v6"),
    pytest.param("localhost:5000", (), "http://localhost:5000", id="localhost"),
    pytest.param("reg.example:5000", (), "https://reg.example:5000", id="remote"),
    pytest.param("reg.example:5000", ("reg.example:5000",), "http://reg.example:5000",
                 id="insecure-host-port"),
    pytest.param("reg.example", ("reg.example",), "http://reg.example", id="insecure-host"),
])
def test_endpoint(registry: str, insecure: tuple[str, ...], want: str) -> None:
    assert reference.endpoint(registry, insecure) == want


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CONFIG = json.dumps({"auths": {
    "https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpw")},
    "127.0.0.1:5000": {"username": "u", "password": "p"},
    "127.0.0.1:5000/team": {"auth": _b64("team:tpw")},
    "http://reg.example/": {"auth": _b64("r:with:colon")},
}})


@pytest.mark.parametrize(("image", "want"), [
    pytest.param("nginx", ("hubuser", "hubpw"), id="hub-v1-key"),
    pytest.param("127.0.0.1:5000/other/app", ("u", "p"), id="host-key"),
    pytest.param("127.0.0.1:5000/team/app", ("team", "tpw"), id="longest-path-wins"),
    pytest.param("reg.example/x", ("r", "with:colon"), id="scheme-ignored-colon-in-password"),
    pytest.param("quay.io/x", None, id="no-entry"),
])
def test_credentials_lookup(image: str, want: tuple[str, str] | None) -> None:
    secret = {".dockerconfigjson": _b64(CONFIG)}
    creds = auth.lookup([auth.from_secret(secret)], reference.parse(image))
    assert (creds.username, creds.password) == want if creds else want is None


def test_credentials_pod_secret_before_node_file(tmp_path: Path) -> None:
    node = tmp_path / "config.json"
    node.write_text(json.dumps({"auths": {"quay.io": {"auth": _b64("node:n")}}}))
    pod = auth.parse_docker_config(json.dumps({"auths": {"quay.io": {"auth": _b64("pod:p")}}}))
    creds = auth.lookup([pod, auth.from_file(node)], reference.parse("quay.io/x"))
    assert creds == auth.Credentials("pod", "p")
    assert auth.from_file(tmp_path / "missing.json") == {}


@pytest.mark.parametrize("data", [
    pytest.param("not json", id="not-json"), pytest.param("[]", id="not-object"),
    pytest.param('{"auths": {"x": {"auth": "!!"}}}', id="bad-base64"),
    pytest.param(json.dumps({"auths": {"x": {"auth": _b64("nocolon")}}}), id="no-colon"),
    pytest.param(" " * (1 << 20) + "{}", id="too-large"),
])
def test_credentials_refused(data: str) -> None:
    with pytest.raises(auth.CredentialError):
        auth.parse_docker_config(data)


def test_legacy_dockercfg() -> None:
    legacy = json.dumps({"reg.example": {"auth": _b64("a:b")}})
    creds = auth.from_secret({".dockercfg": _b64(legacy)})
    assert creds == {"reg.example": auth.Credentials("a", "b")}


@pytest.mark.parametrize(("header", "scheme", "params"), [
    pytest.param('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                 'scope="repository:library/nginx:pull"', "bearer",
                 {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                  "scope": "repository:library/nginx:pull"}, id="bearer"),
    pytest.param('Bearer realm="r",error="insufficient_scope"', "bearer",
                 {"realm": "r", "error": "insufficient_scope"}, id="error"),
    pytest.param('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"},
                 id="basic"),
    pytest.param('Bearer realm="a\\"b", service=s', "bearer", {"realm": 'a"b', "service": "s"},
                 id="escaped-and-bare"),
    pytest.param("", "", {}, id="empty"),
])
def test_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    got = auth.parse_challenge(header)
    assert (got.scheme, dict(got.params)) == (scheme, params)


@pytest.mark.parametrize(("pull_policy", "image", "present", "want"), [
    pytest.param("", "nginx", True, True, id="default-no-tag-always"),
    pytest.param("", "nginx:latest", True, True, id="default-latest-always"),
    pytest.param("", "nginx:1.11", True, False, id="default-tag-present"),
    pytest.param("", "nginx:1.11", False, True, id="default-tag-absent"),
    pytest.param("", "nginx@sha256:" + "a" * 64, True, False, id="default-digest"),
    pytest.param("", "localhost:5000/app", True, True, id="default-port-no-tag"),
    pytest.param("Always", "nginx:1.11", True, True, id="always"),
    pytest.param("IfNotPresent", "nginx:latest", True, False, id="ifnotpresent-present"),
    pytest.param("IfNotPresent", "nginx:latest", False, True, id="ifnotpresent-absent"),
    pytest.param("Never", "nginx:1.11", True, False, id="never-present"),
])
def test_pull_policy(pull_policy: str, image: str, present: bool, want: bool) -> None:
    assert policy.should_pull(pull_policy, image, present) is want


def test_pull_policy_never_absent() -> None:
    with pytest.raises(errors.NeverPull) as exc:
        policy.should_pull("Never", "nginx:1.11", False)
    assert str(exc.value) == 'Container image "nginx:1.11" is not present with pull policy of Never'
    assert exc.value.reason == "ErrImageNeverPull"
    assert errors.event_message("nginx:1.11", exc.value) == str(exc.value)


def _index(*platforms: mf.Platform | None) -> mf.Index:
    return mf.Index(mf.OCI_INDEX, tuple(
        mf.Descriptor(mf.OCI_MANIFEST, f"sha256:{i:064x}", 1, p) for i, p in enumerate(platforms)))


P = mf.Platform


@pytest.mark.parametrize(("entries", "want", "chosen"), [
    pytest.param([P("linux", "arm64", "v8"), P("linux", "amd64")], P("linux", "amd64"), 1,
                 id="amd64"),
    pytest.param([P("linux", "arm"), P("linux", "arm", "v7")], P("linux", "arm", "v7"), 1,
                 id="exact-variant-preferred"),
    pytest.param([P("linux", "arm64")], P("linux", "arm64", "v8"), 0,
                 id="arm64-no-variant-is-v8"),
    pytest.param([P("linux", "arm", "v6"), P("linux", "arm", "v7")], P("linux", "arm", "v7"), 1,
                 id="arm-v7"),
    pytest.param([P("unknown", "unknown"), P("linux", "amd64")], P("linux", "amd64"), 1,
                 id="attestation-skipped"),
    pytest.param([None, P("windows", "amd64"), P("linux", "amd64")], P("linux", "amd64"), 2,
                 id="no-platform-and-windows-skipped"),
])
def test_platform_choice(entries: list[mf.Platform | None], want: mf.Platform,
                         chosen: int) -> None:
    assert mf.choose(_index(*entries), want).digest == f"sha256:{chosen:064x}"


def test_platform_none_matches() -> None:
    with pytest.raises(errors.NoMatchingPlatform):
        mf.choose(_index(P("linux", "arm", "v7")), P("linux", "arm", "v6"))


async def test_gc_by_size_oldest_unused_first(tmp_path: Path) -> None:
    """Three images, a shared base layer: GC under a bound removes the least recently used
    unused image first, keeps images in use, and keeps a layer another image still needs."""
    now = [1000.0]
    store = Store(tmp_path, clock=lambda: now[0])
    fake = Fake()
    base = tar(BASE_MEMBERS)
    for name in ("a", "b", "c"):
        fake.add_image(name, "1", [base, tar([Member(f"{name}.bin", bytes(50_000))])])
    async with serve(fake):
        puller = Puller(store)
        images = {}
        for name in ("a", "b", "c"):
            now[0] += 10
            images[name] = (await puller.pull(f"{fake.host}/{name}:1")).image
    now[0] += 10
    store.touch(images["a"].digest)  # a used most recently; b is the oldest
    total = store.usage()
    assert store.gc(total) == []  # within the bound: nothing removed
    removed = store.gc(total - 1, in_use={images["b"].digest})
    assert [i.digest for i in removed] == [images["c"].digest]  # b is in use
    assert store.find(f"{fake.host}/c:1") is None
    assert store.layer(images["a"].layers[0].diff_id) is not None  # the shared base stays
    assert store.layer(images["c"].layers[1].diff_id) is None
    assert not store.has_blob(images["c"].layers[1].digest)
    removed = store.gc(0)
    assert [i.digest for i in removed] == [images["b"].digest, images["a"].digest]
    assert store.usage() == 0 and not any((store.root / "layers").iterdir())
    reopened = Store(tmp_path)
    assert reopened.images == {}


async def test_gc_keeps_images_of_containers(tmp_path: Path) -> None:
    fake = Fake()
    fake.add_image("a", "1", [tar(BASE_MEMBERS)])
    async with serve(fake):
        store = Store(tmp_path)
        image = (await Puller(store).pull(f"{fake.host}/a:1")).image
    rootfs.create(store, "ctr", image, overlay=False)
    assert store.gc(0) == []
    rootfs.remove(store, "ctr")
    assert [i.digest for i in store.gc(0)] == [image.digest]


WHITEOUTS = [tar([*BASE_MEMBERS, Member("www/", None, 0o755), Member("www/gone", b"x"),
                  Member("www/old/", None, 0o700), Member("www/old/a", b"a"),
                  Member("www/keep", b"k"), Member("www/redo/", None, 0o755),
                  Member("www/redo/lower", b"l")]),
             tar([Member("www/.wh.gone", b""), Member("www/old/.wh..wh..opq", b""),
                  Member("www/old/new", b"n")]),
             tar([Member("www/old/.wh.new", b""), Member("www/old/newer", b"n2"),
                  Member("www/.wh.keep", b""), Member("www/keep/", None, 0o755),
                  Member("www/keep/inside", b"i"), Member("www/.wh.redo", b""),
                  Member("www/redo/", None, 0o755), Member("www/redo/upper", b"u")])]


@pytest.mark.parametrize("form", [Form.OVERLAY, Form.OCI])
async def test_whiteouts_in_both_forms(tmp_path: Path, form: Form) -> None:
    """Both layer forms give the same root: deleted files gone, the opaque directory hiding
    only lower layers, a whiteout then a directory of the same name in one layer."""
    if form is Form.OVERLAY and os.geteuid() != 0:
        pytest.skip("overlay-form whiteouts are character devices: root only")
    fake = Fake()
    fake.add_image("w", "1", WHITEOUTS)
    async with serve(fake):
        store = Store(tmp_path)
        puller = Puller(store)
        puller.form = form
        image = (await puller.pull(f"{fake.host}/w:1")).image
    want = ["keep", "keep/inside", "old", "old/newer", "redo", "redo/upper"]
    root = rootfs.create(store, "c", image, overlay=False)
    assert sorted(str(p.relative_to(root / "www")) for p in (root / "www").rglob("*")) == want
    assert (root / "www/old").stat().st_mode & 0o777 == 0o700
    if form is Form.OVERLAY and rootfs.overlay_supported(store):
        mounted = rootfs.create(store, "m", image)
        try:
            assert (store.root / "containers/m/mounted").exists()
            assert sorted(str(p.relative_to(mounted / "www"))
                          for p in (mounted / "www").rglob("*")) == want
        finally:
            rootfs.remove(store, "m")


def test_store_reopens_and_clears_leftovers(tmp_path: Path) -> None:
    """A crashed pull's temporary files go when the store opens; records persist."""
    store = Store(tmp_path)
    (store.root / "tmp" / "partial-blob").write_bytes(b"half")
    (store.root / "tmp" / "partial-layer").mkdir()
    (store.root / "tmp" / "partial-layer" / "ro").mkdir(mode=0o500)
    Store(tmp_path)
    assert not any((tmp_path / "tmp").iterdir())

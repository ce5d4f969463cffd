"""Image garbage collection (`images.gc`): the kubelet's thresholds and candidate order as
tables, and collections over a real cache on an injected clock: what goes, what stays (in
use, too young), the bytes freed, the events and the Node's images refreshed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.images.fake_registry import BASE_MEMBERS, Fake, Member, serve, tar
from tinykube.images import gc, rootfs
from tinykube.images.pull import Puller
from tinykube.images.store import Image, Store

POLICY = gc.Policy(high=85, low=80, min_age=120)


@pytest.mark.parametrize(("usage", "capacity", "want"), [
    pytest.param(0, 1000, 0, id="empty"),
    pytest.param(849, 1000, 0, id="below-high"),
    pytest.param(850, 1000, 50, id="at-high-frees-to-low"),
    pytest.param(1000, 1000, 200, id="full"),
    pytest.param(1500, 1000, 700, id="over-the-bound"),
    pytest.param(10, 0, 0, id="no-capacity"),
])
def test_amount_to_free(usage: int, capacity: int, want: int) -> None:
    assert gc.amount_to_free(usage, capacity, POLICY) == want


def _image(name: str, *, pulled: float, used: float) -> Image:
    return Image(digest=f"sha256:{name * 64}"[:71], config="", config_size=0, layers=[],
                 manifest_size=1, names=[name], pulled=pulled, last_used=used)


@pytest.mark.parametrize(("in_use", "now", "want"), [
    pytest.param(set(), 1000.0, ["c", "a", "b"], id="least-recently-used-first"),
    pytest.param({"a"}, 1000.0, ["c", "b"], id="in-use-kept"),
    pytest.param(set(), 700.0, ["c", "a"], id="too-young-kept"),  # b pulled at 600
    pytest.param({"a", "b", "c"}, 1000.0, [], id="all-in-use"),
])
def test_candidates(in_use: set[str], now: float, want: list[str]) -> None:
    images = [_image("a", pulled=100, used=500), _image("b", pulled=600, used=900),
              _image("c", pulled=100, used=200)]
    digests = {i.names[0]: i.digest for i in images}
    chosen = gc.candidates(images, {digests[n] for n in in_use}, now=now, min_age=120)
    assert [i.names[0] for i in chosen] == want


def test_policy_refuses_low_above_high() -> None:
    with pytest.raises(ValueError, match="low"):
        gc.Policy(high=50, low=60)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.changes = 0

    async def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def changed(self) -> None:
        self.changes += 1


async def _cache(tmp_path: Path, now: list[float]) -> tuple[Store, dict[str, Image]]:
    """Three images (a shared base layer, 50 kB each of their own), pulled 10 s apart."""
    store = Store(tmp_path, clock=lambda: now[0])
    fake = Fake()
    base = tar(BASE_MEMBERS)
    for name in ("a", "b", "c"):
        fake.add_image(name, "1", [base, tar([Member(f"{name}.bin", bytes(50_000))])])
    images = {}
    async with serve(fake):
        puller = Puller(store)
        for name in ("a", "b", "c"):
            now[0] += 10
            images[name] = (await puller.pull(f"{fake.host}/{name}:1")).image
    return store, images


async def test_collection_frees_down_to_the_low_threshold(tmp_path: Path) -> None:
    now = [1000.0]
    store, images = await _cache(tmp_path, now)
    rootfs.create(store, "ctr", images["a"], overlay=False)  # a runs in a container
    now[0] += 300  # all older than the minimum age
    store.touch(images["b"].digest)  # b used more recently than c
    usage = store.usage()
    own = images["c"].layers[1].size + store.layer_size(images["c"].layers[1].diff_id)
    # the bound puts usage just over the high threshold; removing c alone reaches the low one
    capacity = usage * 100 // 86
    rec = Recorder()
    collector = gc.ImageGC(store, gc.Policy(capacity=capacity, min_age=120),
                           clock=lambda: now[0], in_use=set, event=rec.event,
                           on_change=rec.changed)
    amount = gc.amount_to_free(usage, capacity, collector.policy)
    assert 0 < amount <= own
    freed = await collector.collect()
    assert freed >= amount and store.usage() == usage - freed
    assert sorted(store.images) == sorted([images["a"].digest, images["b"].digest])
    assert not store.has_blob(images["c"].layers[1].digest)
    assert store.layer(images["c"].layers[0].diff_id) is not None  # the shared base stays
    assert (rec.events, rec.changes) == ([], 1)
    assert await collector.collect() == 0  # below the high threshold now
    rootfs.remove(store, "ctr")


async def test_in_use_and_young_images_stay_and_the_failure_is_reported(
        tmp_path: Path) -> None:
    now = [1000.0]
    store, images = await _cache(tmp_path, now)
    now[0] += 115  # at 1145: a (pulled at 1010) and b (1020) are old enough, c (1030) is not
    rec = Recorder()
    collector = gc.ImageGC(store, gc.Policy(capacity=1, min_age=120), clock=lambda: now[0],
                           in_use=lambda: {images["b"].digest}, event=rec.event,
                           on_change=rec.changed)
    before = store.usage()
    await collector.run_once()  # only a may go: not enough, a first failure (no event)
    assert sorted(store.images) == sorted([images["b"].digest, images["c"].digest])
    freed = before - store.usage()
    assert rec.changes == 1 and freed > 0
    amount = before - 0  # capacity 1: low threshold 0 bytes
    assert rec.events == [("Warning", "FreeDiskSpaceFailed",
                           "Failed to garbage collect required amount of images. Attempted "
                           f"to free {amount} bytes, but only found {freed} bytes eligible "
                           "to free.")]
    await collector.run_once()  # the second failure in a row is an ImageGCFailed event too
    assert [r for _, r, _ in rec.events] == ["FreeDiskSpaceFailed", "FreeDiskSpaceFailed",
                                             "ImageGCFailed"]
    assert rec.events[-1][2].startswith("Failed to garbage collect required amount")


async def test_no_collection_during_a_pull(tmp_path: Path) -> None:
    now = [1000.0]
    store, _images = await _cache(tmp_path, now)
    now[0] += 1000
    rec = Recorder()
    collector = gc.ImageGC(store, gc.Policy(capacity=1, min_age=0), clock=lambda: now[0],
                           in_use=set, event=rec.event, on_change=rec.changed)
    store.pulling = 1
    assert await collector.collect() == 0 and len(store.images) == 3
    store.pulling = 0
    usage = store.usage()
    assert await collector.collect() == usage  # a 1-byte bound: everything goes
    assert store.images == {} and store.usage() == 0 and rec.events == []

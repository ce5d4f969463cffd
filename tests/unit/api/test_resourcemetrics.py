"""The resource metrics math: a scrape decoded, two points made a rate, the objects served."""

from __future__ import annotations

import pytest

from tinykube.api import resourcemetrics as rm
from tinykube.api.resourcemetrics import Batch, Point, Storage, Usage

T0 = 1_700_000_000_000  # ms

SCRAPE = f"""# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{{container="app",namespace="ns",pod="web"}} 2.5 {T0}
container_cpu_usage_seconds_total{{container="side",namespace="ns",pod="web"}} 0.5 {T0 + 1}
container_memory_working_set_bytes{{container="app",namespace="ns",pod="web"}} 5.24288e+07 {T0}
container_memory_working_set_bytes{{container="side",namespace="ns",pod="web"}} 1024 {T0 + 1}
container_start_time_seconds{{container="app",namespace="ns",pod="web"}} 1.6999999e+09
node_cpu_usage_seconds_total 1000.25 {T0}
node_memory_working_set_bytes 1.6e+09 {T0}
pod_cpu_usage_seconds_total{{namespace="ns",pod="web"}} 3 {T0}
resource_scrape_error 0
"""


def test_decode_a_whole_scrape() -> None:
    batch = rm.decode(SCRAPE, default_ms=1)
    assert batch.node == Point(T0, 1_000_250_000_000, 1_600_000_000)
    assert batch.pods == {("ns", "web"): {
        "app": Point(T0, 2_500_000_000, 52_428_800, start=1_699_999_900_000),
        "side": Point(T0 + 1, 500_000_000, 1024)}}


@pytest.mark.parametrize(("text", "node", "pods"), [
    pytest.param("node_cpu_usage_seconds_total 5\nnode_memory_working_set_bytes 7",
                 Point(42, 5_000_000_000, 7), [], id="default-timestamp"),
    pytest.param("node_cpu_usage_seconds_total 0 5\nnode_memory_working_set_bytes 7 5",
                 None, [], id="node-without-cpu-dropped"),
    pytest.param("node_memory_working_set_bytes 7 5", None, [], id="node-half-dropped"),
    pytest.param('container_cpu_usage_seconds_total{container="a",namespace="n",pod="p"} 1 5\n'
                 'container_memory_working_set_bytes{container="a",namespace="n",pod="p"} 2 5\n'
                 'container_cpu_usage_seconds_total{container="b",namespace="n",pod="p"} 1 5\n',
                 None, [], id="pod-with-an-incomplete-container-dropped"),
    pytest.param('container_cpu_usage_seconds_total{container="a",namespace="n",pod="p"} 1 5\n'
                 'container_memory_working_set_bytes{container="a",namespace="n",pod="p"} 2 5\n'
                 'container_cpu_usage_seconds_total{container="a",namespace="n",pod="q"} 1 5\n',
                 None, [("n", "p")], id="other-pods-kept"),
    pytest.param("", None, [], id="empty"),
])
def test_decode_drops_incomplete_points(text: str, node: Point | None,
                                        pods: list[tuple[str, str]]) -> None:
    batch = rm.decode(text, default_ms=42)
    assert batch.node == node
    assert list(batch.pods) == pods


@pytest.mark.parametrize(("last", "prev", "expected"), [
    pytest.param(Point(T0 + 15_000, 3_000_000_000, 100), Point(T0, 1_500_000_000, 50),
                 Usage(cpu=100_000_000, memory=100, timestamp=T0 + 15_000, window=15_000),
                 id="a-tenth-of-a-core"),
    pytest.param(Point(T0 + 2_000, 4_000_000_000, 1), Point(T0, 0, 1),
                 Usage(cpu=2_000_000_000, memory=1, timestamp=T0 + 2_000, window=2_000),
                 id="two-cores"),
    pytest.param(Point(T0 + 1_000, 5, 1), Point(T0, 5, 1),
                 Usage(cpu=0, memory=1, timestamp=T0 + 1_000, window=1_000), id="idle"),
    pytest.param(Point(T0 + 3, 10, 1), Point(T0, 9, 1),
                 Usage(cpu=333, memory=1, timestamp=T0 + 3, window=3), id="rounds-down"),
    pytest.param(Point(T0, 5, 1), Point(T0, 1, 1), None, id="no-window"),
    pytest.param(Point(T0 + 1_000, 1, 1), Point(T0, 5, 1), None, id="cpu-went-down"),
    pytest.param(Point(T0 + 1_000, 9, 1, start=1), Point(T0, 5, 1, start=2), None,
                 id="start-went-back"),
])
def test_usage(last: Point, prev: Point, expected: Usage | None) -> None:
    assert rm.usage(last, prev) == expected


def _batch(*containers: tuple[str, Point], node: Point | None = None) -> Batch:
    return Batch(node=node, pods={("ns", "p"): dict(containers)} if containers else {})


S = 1_000_000_000  # one core-second in ns

# (id, scrapes: [(node, batch)], the pod's container usages afterwards, or None)
STORAGE = [
    ("one-scrape-is-not-enough", [("n1", _batch(("c", Point(T0, S, 10))))], None),
    ("two-scrapes-a-rate", [("n1", _batch(("c", Point(T0, S, 10)))),
                            ("n1", _batch(("c", Point(T0 + 15_000, 2 * S, 20))))],
     {"c": Usage(66_666_666, 20, T0 + 15_000, 15_000)}),
    ("same-point-again-keeps-prev", [("n1", _batch(("c", Point(T0, S, 10)))),
                                     ("n1", _batch(("c", Point(T0 + 15_000, 2 * S, 20)))),
                                     ("n1", _batch(("c", Point(T0 + 15_000, 2 * S, 20))))],
     {"c": Usage(66_666_666, 20, T0 + 15_000, 15_000)}),
    ("restart-starts-over", [("n1", _batch(("c", Point(T0, 5 * S, 10, start=T0 - 60_000)))),
                             ("n1", _batch(("c", Point(T0 + 15_000, S, 10,
                                                                start=T0 + 10_000))))],
     None),
    ("restarted-a-while-ago-is-fresh", [("n1", _batch(("c", Point(T0, 5 * S, 10)))),
                                        ("n1", _batch(("c", Point(T0 + 15_000, S, 10,
                                                                  start=T0 + 1_000))))],
     {"c": Usage(71_428_571, 10, T0 + 15_000, 14_000)}),
    ("fresh-container-from-its-start", [("n1", _batch(("c", Point(T0, 3 * S, 10,
                                                                  start=T0 - 12_000))))],
     {"c": Usage(250_000_000, 10, T0, 12_000)}),
    ("too-fresh-waits", [("n1", _batch(("c", Point(T0, S, 10, start=T0 - 9_000))))], None),
    ("every-container-needs-two", [("n1", _batch(("a", Point(T0, S, 1)))),
                                   ("n1", _batch(("a", Point(T0 + 1_000, S, 1)),
                                                 ("b", Point(T0 + 1_000, S, 1))))], None),
    ("gone-from-the-scrape", [("n1", _batch(("c", Point(T0, S, 10)))),
                              ("n1", _batch(("c", Point(T0 + 1_000, S, 10)))),
                              ("n1", _batch())], None),
    ("moved-to-another-node", [("n1", _batch(("c", Point(T0, S, 10)))),
                               ("n1", _batch(("c", Point(T0 + 1_000, S, 10)))),
                               ("n2", _batch(("c", Point(T0 + 2_000, S, 10, start=T0 + 1_500))))],
     None),
]


@pytest.mark.parametrize(("scrapes", "expected"), [s[1:] for s in STORAGE],
                         ids=[s[0] for s in STORAGE])
def test_storage_pods(scrapes: list[tuple[str, Batch]],
                      expected: dict[str, Usage] | None) -> None:
    storage = Storage(resolution=15)
    for node, batch in scrapes:
        storage.store(node, batch)
    assert storage.pod(("ns", "p")) == expected


def test_storage_nodes_and_forgetting() -> None:
    storage = Storage(resolution=15)
    storage.store("n1", Batch(node=Point(T0, 10 * S, 500)))
    assert storage.node("n1") is None
    storage.store("n1", Batch(node=Point(T0 + 10_000, 25 * S, 700)))
    assert storage.node("n1") == Usage(1_500_000_000, 700, T0 + 10_000, 10_000)
    assert storage.node("n2") is None
    storage.forget("n1")
    assert storage.node("n1") is None
    assert storage.nodes() == set()


@pytest.mark.parametrize(("nanocores", "text"), [
    (0, "0"), (1, "1n"), (1_500, "1500n"), (2_000, "2u"), (944_000_000, "944m"),
    (870_435_152, "870435152n"), (2_000_000_000, "2"),
])
def test_cpu_quantity(nanocores: int, text: str) -> None:
    assert rm.cpu_quantity(nanocores) == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0"), (1000, "1k"), (1023, "1023"), (1024, "1Ki"), (52_428_800, "50Mi"),
    (59_736_064, "58336Ki"), (52_428_801, "52428801"), (1 << 30, "1Gi"),
])
def test_memory_quantity(size: int, text: str) -> None:
    assert rm.memory_quantity(size) == text


@pytest.mark.parametrize(("ms", "text"), [
    (0, "0s"), (1, "0.001s"), (1_997, "1.997s"), (15_000, "15s"), (15_010, "15.01s"),
    (65_500, "1m5.5s"), (3_600_000, "1h0m0s"), (3_723_000, "1h2m3s"), (-1_500, "-1.5s"),
])
def test_go_duration(ms: int, text: str) -> None:
    assert rm.go_duration(ms) == text


def test_pod_metrics_object() -> None:
    pod = {"metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"},
                        "uid": "u1"},
           "spec": {"containers": [{"name": "side"}, {"name": "app"}]}}
    usages = {"app": Usage(100_000_000, 52_428_800, T0 + 15_000, 15_000),
              "side": Usage(0, 1024, T0 + 14_000, 14_500)}
    assert rm.pod_metrics(pod, usages, "2026-12-01T00:00:00Z") == {
        "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "web", "namespace": "ns",
                     "creationTimestamp": "2026-12-01T00:00:00Z", "labels": {"app": "web"}},
        "timestamp": "2023-11-14T22:13:34Z", "window": "14.5s",
        "containers": [{"name": "side", "usage": {"cpu": "0", "memory": "1Ki"}},
                       {"name": "app", "usage": {"cpu": "100m", "memory": "50Mi"}}]}


def test_node_metrics_object() -> None:
    node = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}
    assert rm.node_metrics(node, Usage(1_234_567, 1 << 30, T0, 15_000), "now") == {
        "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "n1", "creationTimestamp": "now",
                     "labels": {"kubernetes.io/hostname": "n1"}},
        "timestamp": "2023-11-14T22:13:20Z", "window": "15s",
        "usage": {"cpu": "1234567n", "memory": "1Gi"}}

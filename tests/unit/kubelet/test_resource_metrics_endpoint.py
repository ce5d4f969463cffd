"""The kubelet's /metrics/resource: cgroup counters and /proc read, written as a kubelet does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinykube.api import resourcemetrics as rm
from tinykube.kubelet import cgroups, resourcemetrics
from tinykube.kubelet.resourcemetrics import Container

V2 = {"cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
      "memory.current": "60000000\n",
      "memory.stat": "anon 52428800\nfile 7000000\nactive_file 1000000\ninactive_file 6000000\n"}
V1_MEMORY = {"memory.usage_in_bytes": "60000000\n",
             "memory.stat": "cache 7000000\ninactive_file 1\ntotal_inactive_file 6000000\n"}
V1_CPUACCT = {"cpuacct.usage": "2500000000\n"}

# (id, [(version, memory?, cpu?, files)], expected (cpu ns, working set) or None)
LAYOUTS = [
    ("v2", [(2, True, True, V2)], (2_500_000_000, 54_000_000)),
    ("hybrid: v1 memory, v2 cpu.stat", [(1, True, False, V1_MEMORY),
                                        (2, False, True, {"cpu.stat": V2["cpu.stat"]})],
     (2_500_000_000, 54_000_000)),
    ("v1 only: memory and cpuacct", [(1, True, False, V1_MEMORY),
                                     (1, False, True, V1_CPUACCT)],
     (2_500_000_000, 54_000_000)),
    ("inactive above usage: 0", [(2, True, True, {**V2, "memory.current": "10\n"})],
     (2_500_000_000, 0)),
    ("no memory hierarchy", [(2, False, True, V2)], None),
    ("no cgroup directory (a virtual pod)", [(2, True, True, {})], None),
]


@pytest.mark.parametrize(("layout", "expected"), [case[1:] for case in LAYOUTS],
                         ids=[case[0] for case in LAYOUTS])
def test_usage_from_cgroup_files(tmp_path: Path, layout: list[tuple[int, bool, bool, dict]],
                                 expected: tuple[int, int] | None) -> None:
    hierarchies = []
    for index, (version, memory, cpu, files) in enumerate(layout):
        root = tmp_path / str(index)
        leaf = root / "tinykube-node1" / "uid-1" / "app"
        leaf.mkdir(parents=True)
        for name, text in files.items():
            (leaf / name).write_text(text)
        hierarchies.append(cgroups.Hierarchy(root, version, memory=memory, cpu=cpu))
    assert cgroups.Cgroups("node1", hierarchies=hierarchies).usage("uid-1", "app") == expected


STAT = "cpu  100 20 30 4000 50 6 7 8 9 10\ncpu0 50 10 15 2000 25 3 3 4 0 0\nintr 1\n"
MEMINFO = ("MemTotal:       24683584 kB\nMemFree:        23000000 kB\n"
           "MemAvailable:   24051512 kB\nInactive(file):    98696 kB\nHugePages_Total: 0\n")


def test_node_figures_from_proc() -> None:
    ticks = resourcemetrics._CLOCK_TICKS
    assert resourcemetrics.node_cpu_seconds(STAT) == (100 + 20 + 30 + 6 + 7 + 8) / ticks
    assert resourcemetrics.node_working_set(MEMINFO) == (24683584 - 23000000 - 98696) * 1024


@pytest.mark.parametrize(("stat", "meminfo"), [
    pytest.param("intr 1\n", MEMINFO, id="no-cpu-line"),
    pytest.param(STAT, "MemFree: 1 kB\n", id="no-memtotal"),
])
def test_bad_proc_is_a_scrape_error(tmp_path: Path, stat: str, meminfo: str) -> None:
    (tmp_path / "stat").write_text(stat)
    (tmp_path / "meminfo").write_text(meminfo)
    text = resourcemetrics.render([], cgroups.Cgroups("n", hierarchies=[]), proc=tmp_path)
    assert "resource_scrape_error 1.0" in text.decode()
    assert rm.decode(text.decode(), 1).node is None


def _pod(name: str, uid: str, statuses: list[dict], init: list[dict] | None = None) -> dict:
    return {"metadata": {"namespace": "ns", "name": name, "uid": uid},
            "status": {"containerStatuses": statuses, "initContainerStatuses": init or []}}


RUNNING = {"running": {"startedAt": "2026-12-01T00:00:00Z"}}


def test_running_containers_from_statuses() -> None:
    pods = [
        _pod("a", "u1", [{"name": "app", "state": RUNNING},
                         {"name": "done", "state": {"terminated": {"exitCode": 0}}}],
             init=[{"name": "sidecar", "state": {"running": {}}}]),
        _pod("b", "u2", [{"name": "waiting", "state": {"waiting": {"reason": "X"}}}]),
        {"metadata": {"namespace": "ns", "name": "new", "uid": "u3"}},
    ]
    assert resourcemetrics.running_containers(pods) == [
        Container("ns", "a", "u1", "sidecar", None),
        Container("ns", "a", "u1", "app", 1_796_083_200.0)]


# What a kubelet writes for the tree below (timestamps masked as <ts>, the node's CPU <cpu>)
GOLDEN = Path(__file__).parents[2] / "testdata" / "kubelet_resource_metrics.txt"


def test_exposition_golden_and_read_back(tmp_path: Path) -> None:
    """The exposition of two containers with cgroups and one without (left out), and what
    the API server's decoder reads back from it."""
    root = tmp_path / "cg"
    for name in ("app", "side"):
        leaf = root / "tinykube-n1" / "uid-1" / name
        leaf.mkdir(parents=True)
        for file, text in V2.items():
            (leaf / file).write_text(text)
    groups = cgroups.Cgroups("n1", hierarchies=[cgroups.Hierarchy(root, 2, True, True)])
    (tmp_path / "stat").write_text(STAT)
    (tmp_path / "meminfo").write_text(MEMINFO)
    containers = [Container("ns", "web", "uid-1", "app", 1_764_547_200.0),
                  Container("ns", "web", "uid-1", "side"),
                  Container("ns", "virtual", "uid-2", "c", 1_764_547_200.0)]
    text = resourcemetrics.render(containers, groups, proc=tmp_path).decode()
    cpu = resourcemetrics.node_cpu_seconds(STAT)
    masked = re.sub(r" \d{13}$", " <ts>", text, flags=re.MULTILINE)
    assert masked == GOLDEN.read_text().replace("<cpu>", repr(cpu))
    batch = rm.decode(text, default_ms=0)
    assert set(batch.pods) == {("ns", "web")}
    assert {n: (p.cpu, p.memory, p.start) for n, p in batch.pods["ns", "web"].items()} == {
        "app": (2_500_000_000, 54_000_000, 1_764_547_200_000),
        "side": (2_500_000_000, 54_000_000, 0)}
    assert batch.node is not None and batch.node.memory == 1_622_925_312

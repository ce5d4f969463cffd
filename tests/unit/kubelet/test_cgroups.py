"""Container cgroups: memory limits in bytes, OOM counters, and the layout in a fake tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinykube.kubelet import cgroups


@pytest.mark.parametrize(("limit", "expected"), [
    pytest.param("64Mi", 64 << 20, id="binary"),
    pytest.param("1G", 10**9, id="decimal"),
    pytest.param("1e9", 10**9, id="exponent"),
    pytest.param("500m", 1, id="millibytes-round-up"),
    pytest.param("1536", 1536, id="plain"),
    pytest.param(None, None, id="no-limit"),
])
def test_memory_limit(limit: str | None, expected: int | None) -> None:
    container = {"resources": {"limits": {"memory": limit}}} if limit else {}
    assert cgroups.memory_limit(container) == expected


@pytest.mark.parametrize(("version", "file", "text", "count"), [
    pytest.param(2, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", 1, id="v2"),
    pytest.param(1, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", 2,
                 id="v1"),
    pytest.param(1, "other", "", 0, id="missing"),
])
def test_oom_counters(tmp_path: Path, version: int, file: str, text: str, count: int) -> None:
    (tmp_path / file).write_text(text)
    assert cgroups._oom_count(tmp_path, version) == count


def test_layout_and_limits_in_a_tree(tmp_path: Path) -> None:
    """In a plain directory standing for a v1 memory hierarchy: the layout, the limit written,
    the paths a `kubectl exec` joins, and the removal of the pod's directories."""
    tree = cgroups.Hierarchy(tmp_path, 1, memory=True)
    groups = cgroups.Cgroups("node1", hierarchies=[tree])
    paths = groups.container("uid-1", "web", 64 << 20)
    leaf = tmp_path / "tinykube-node1" / "uid-1" / "web"
    assert paths == [str(leaf)] == groups.paths("uid-1", "web")
    assert (leaf / "memory.limit_in_bytes").read_text() == str(64 << 20)
    (leaf / "memory.limit_in_bytes").unlink()  # rmdir, as for a real cgroup, needs it empty
    groups.remove("uid-1")
    assert not (tmp_path / "tinykube-node1" / "uid-1").exists()
    assert groups.available and not cgroups.Cgroups("x", hierarchies=[]).available

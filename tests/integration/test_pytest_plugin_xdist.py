"""The pytest plugin under pytest-xdist: every worker starts its own cluster, and the session
leaves no data directory or process behind."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.integration.plugin_sessions import data_dirs, plugin_args, tinykube_processes

pytest_plugins = ["pytester"]


@pytest.fixture
def inner_tmp(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return tmp


XDIST_TESTS = textwrap.dedent('''
    import os, pathlib
    import pytest

    @pytest.mark.parametrize("i", range(4))
    def test_which_cluster(tinykube_cluster, i):
        out = pathlib.Path(os.environ["CLUSTERS_OUT"])
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        with open(out / f"{worker}-{i}", "w") as f:
            f.write(tinykube_cluster.api_url)
''')


@pytest.mark.slow
def test_each_xdist_worker_has_its_own_cluster(pytester: pytest.Pytester, inner_tmp: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    out = pytester.path / "out"
    out.mkdir()
    monkeypatch.setenv("CLUSTERS_OUT", str(out))
    pytester.makepyfile(test_x=XDIST_TESTS)
    result = pytester.runpytest_subprocess(*plugin_args(), "-n", "2", "-p",
                                           "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=4)
    by_worker: dict[str, set[str]] = {}
    for f in out.iterdir():
        by_worker.setdefault(f.name.split("-")[0], set()).add(f.read_text())
    assert len(by_worker) == 2, by_worker  # both workers ran tests
    urls = [next(iter(u)) for u in by_worker.values()]
    assert all(len(u) == 1 for u in by_worker.values()) and len(set(urls)) == 2
    assert data_dirs(inner_tmp) == []
    assert tinykube_processes(inner_tmp) == []

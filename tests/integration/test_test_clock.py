"""The test clock through the pytest plugin: a user's suite marked `tinykube(test_clock=True)`
moves `tinykube_cluster.clock`, and the cluster reacts as if that much time had passed (issue
16's checks), in far less wall time. Run with pytester, as test_pytest_plugin.py runs the
plugin; pods (a liveness probe, a Job's TTL) are test_test_clock_pods.py's.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS
from tests.integration.plugin_sessions import data_dirs, plugin_args

pytest_plugins = ["pytester"]

USER_TESTS = textwrap.dedent('''
    import itertools
    import json
    import os
    import subprocess

    import pytest

    from tinykube.clock_client import ClockError

    pytestmark = pytest.mark.tinykube(test_clock=True)

    CRONJOB = """
    apiVersion: batch/v1
    kind: CronJob
    metadata: {name: every5}
    spec:
      schedule: "*/5 * * * *"
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: Never
              containers: [{name: c, image: busybox}]
    """


    def test_the_clock_stands_still_until_advanced(tinykube_cluster):
        clock = tinykube_cluster.clock
        before = clock.now()
        assert clock.enabled()
        assert clock.now() == before
        assert (clock.advance(90) - before).total_seconds() == 90
        assert clock.now() == clock.advance(0)
        with pytest.raises(ClockError, match="must be a non-negative number"):
            clock.advance(-1)


    def test_a_cronjob_every_5_minutes_makes_3_jobs_in_15(tinykube_cluster, k8s_namespace):
        k8s_namespace.apply(CRONJOB)
        tinykube_cluster.clock.advance(1)  # the controller saw it; nothing was due yet
        jobs = lambda: json.loads(k8s_namespace.kubectl("get", "jobs", "-o", "json").stdout)
        assert jobs()["items"] == []
        tinykube_cluster.clock.advance(15 * 60)
        names = [j["metadata"]["name"] for j in jobs()["items"]]
        assert len(names) == 3, names
        # the name's suffix is the scheduled time in minutes: every 5th minute, 5 apart
        minutes = sorted(int(name.rsplit("-", 1)[1]) for name in names)
        assert [b - a for a, b in itertools.pairwise(minutes)] == [5, 5]
        assert all(m % 5 == 0 for m in minutes)


    @pytest.mark.parametrize("binary", os.environ["CLOCK_KUBECTLS"].split(os.pathsep))
    def test_ages_in_kubectl_get_follow_the_clock(tinykube_cluster, k8s_namespace, binary):
        k8s_namespace.kubectl("create", "configmap", "aged")
        tinykube_cluster.clock.advance(6 * 60)
        table = subprocess.run([binary, "get", "configmap", "aged"], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        assert table[1].split() == ["aged", "0", "6m"]
''')


@pytest.fixture
def inner_tmp(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The inner session's temporary directory (where the plugin puts its data dirs)."""
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("CLOCK_KUBECTLS", os.pathsep.join(b for _, b in KUBECTLS))
    return tmp


def test_a_suite_moves_the_clock_of_its_cluster(pytester: pytest.Pytester,
                                                inner_tmp: Path) -> None:
    pytester.makepyfile(test_clocked=USER_TESTS)
    result = pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", "-v",
                                           timeout=300)
    result.assert_outcomes(passed=2 + len(KUBECTLS))
    assert data_dirs(inner_tmp) == []

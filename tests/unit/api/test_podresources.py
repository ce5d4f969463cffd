"""A pod's effective requests (kube's `PodRequests`): containers, sidecars, init peak, overhead."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from tinykube.api.podresources import pod_requests


def c(name: str, restart: str | None = None, **requests: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "resources": {"requests": requests}}
    if restart:
        container["restartPolicy"] = restart
    return container


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"containers": [c("a", cpu="100m"), c("b", cpu="200m", memory="1Mi")]},
                 {"cpu": Fraction(3, 10), "memory": Fraction(2**20)}, id="sum-of-containers"),
    pytest.param({"initContainers": [c("i", cpu="2")], "containers": [c("a", cpu="1")]},
                 {"cpu": Fraction(2)}, id="init-peak-wins"),
    pytest.param({"initContainers": [c("s", "Always", cpu="500m"), c("i", cpu="1")],
                  "containers": [c("a", cpu="1")]},
                 {"cpu": Fraction(3, 2)}, id="sidecar-counts-in-both-phases"),
    pytest.param({"initContainers": [c("i", cpu="1"), c("s", "Always", cpu="500m")],
                  "containers": [c("a", cpu="100m")]},
                 {"cpu": Fraction(1)}, id="init-before-the-sidecar-runs-alone"),
    pytest.param({"containers": [c("a", cpu="1")], "overhead": {"cpu": "250m"}},
                 {"cpu": Fraction(5, 4)}, id="overhead-added"),
    pytest.param({"containers": [{"name": "a"}]}, {}, id="no-requests"),
])
def test_pod_requests(spec: dict[str, Any], expected: dict[str, Fraction]) -> None:
    assert {k: v for k, v in pod_requests({"spec": spec}).items() if v} == expected

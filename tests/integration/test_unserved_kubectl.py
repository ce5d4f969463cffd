"""What both kubectls print for the API tinykube does not serve: the 404's message names the
missing subresource and the alternative, inside kubectl's own wording of the error."""

from __future__ import annotations

import pytest

from tests.conftest import Kubectl

pytestmark = [pytest.mark.kubectl]

# (arguments, what kubectl's error line contains)
COMMANDS = {
    "debug-ephemeral": (("debug", "web", "--image=busybox", "--profile=general"),
                        "tinykube does not serve pods/ephemeralcontainers; kubectl debug "
                        "--copy-to makes a copy of the pod"),
    "services-proxy": (("get", "--raw", "/api/v1/namespaces/default/services/kubernetes/proxy/"),
                       "tinykube does not serve services/proxy"),
    "raw-nodes-proxy": (("get", "--raw", "/api/v1/nodes/n/proxy/stats/summary"),
                        "Error from server (NotFound): the server could not find the requested "
                        "resource (tinykube does not serve nodes/proxy"),
}


@pytest.mark.parametrize(("args", "expected"), COMMANDS.values(), ids=COMMANDS.keys())
def test_kubectl_prints_what_is_not_served(kubectl: Kubectl, args: tuple[str, ...],
                                           expected: str) -> None:
    kubectl("run", "web", "--image=nginx")
    kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    result = kubectl.run(*args, check=False, timeout=30)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr

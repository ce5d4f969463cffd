"""Which runtime serves a pod: its RuntimeClass's handler, or the agent's default."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.client.config import ClientConfig
from tinykube.client.rest import RESTClient
from tinykube.kubelet.agent import NodeAgent
from tinykube.kubelet.tokens import Token


def runtime_class(name: str, handler: str) -> dict[str, Any]:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": name, "resourceVersion": "1"}, "handler": handler}


@pytest.mark.parametrize(("default", "class_name", "expected"), [
    pytest.param("virtual", None, "virtual", id="default-virtual"),
    pytest.param("process", None, "process", id="default-process"),
    pytest.param("virtual", "process", "process", id="class-process"),
    pytest.param("process", "virtual", "virtual", id="class-virtual"),
    pytest.param("virtual", "fast", "process", id="class-with-other-name"),
    pytest.param("virtual", "netns", "netns", id="class-netns"),
    pytest.param("virtual", "gvisor", None, id="unsupported-handler"),
    pytest.param("virtual", "missing", None, id="unknown-class"),
])
async def test_handler_of(tmp_path: Any, default: str, class_name: str | None,
                          expected: str | None) -> None:
    client = RESTClient(ClientConfig(server="http://127.0.0.1:1"))
    agent = NodeAgent(client, "n1", pod_cidr="127.244.0.0/24", default_runtime=default,
                      root_dir=tmp_path, kubelet_token="t")
    for name, handler in (("virtual", "virtual"), ("process", "process"), ("netns", "netns"),
                          ("fast", "process"), ("gvisor", "runsc")):
        agent.runtime_classes.cache.put(name, runtime_class(name, handler))
    pod = {"metadata": {"name": "p"}, "spec": {"runtimeClassName": class_name}}
    assert agent.handler_of(pod) == expected
    await client.close()


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, {"token": "t0ken", "ca.crt": "CA PEM", "namespace": "demo"},
                 id="mounted"),
    pytest.param({"automountServiceAccountToken": False}, None, id="opted-out"),
])
async def test_service_account_files(tmp_path: Any, spec: dict[str, Any],
                                     expected: dict[str, str] | None) -> None:
    client = RESTClient(ClientConfig(server="https://127.0.0.1:1", token="admin",
                                     ca_data=b"CA PEM"))
    agent = NodeAgent(client, "n1", pod_cidr="127.244.0.0/24", root_dir=tmp_path,
                      kubelet_token="t")
    pod = {"metadata": {"name": "p", "namespace": "demo", "uid": "u1"}, "spec": spec}
    assert agent._service_account_files(pod) is None  # no token requested yet
    now = datetime.datetime.now(datetime.UTC)
    agent.tokens._tokens[("u1", "", 3607)] = Token("t0ken", now, now)  # as `ensure` leaves it
    assert agent._service_account_files(pod) == expected
    await client.close()

"""The kubelet's webhook authentication: request attributes as a table, and the review
(TokenReview, then SubjectAccessReview on the Node) with its cache, against a fake client."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.kubelet.webhookauth import TTL, WebhookAuth, attributes

ATTRS = [
    ("GET", "/containerLogs/default/p/c", ("get", "proxy")),
    ("POST", "/exec/default/p/c", ("create", "proxy")),
    ("GET", "/metrics/resource", ("get", "metrics")),
    ("GET", "/metrics", ("get", "metrics")),
    ("GET", "/stats/summary", ("get", "stats")),
    ("GET", "/logs/syslog", ("get", "log")),
    ("GET", "/metricsx", ("get", "proxy")),
    ("PUT", "/portForward/default/p", ("update", "proxy")),
]


@pytest.mark.parametrize(("method", "path", "expected"), ATTRS)
def test_attributes(method: str, path: str, expected: tuple[str, str]) -> None:
    assert attributes(method, path) == expected


class FakeClient:
    def __init__(self, users: dict[str, str], allowed: set[tuple[str, str, str]]) -> None:
        self.users, self.allowed = users, allowed
        self.calls: list[str] = []

    async def create(self, res: Any, obj: dict[str, Any], *_args: Any) -> dict[str, Any]:
        self.calls.append(res.plural)
        spec = obj["spec"]
        if res.plural == "tokenreviews":
            user = self.users.get(spec["token"])
            return {"status": {"authenticated": user is not None,
                               **({"user": {"username": user, "groups": []}} if user else {})}}
        attrs = spec["resourceAttributes"]
        assert attrs["resource"] == "nodes" and attrs["name"] == "n1"
        key = (spec["user"], attrs["verb"], attrs["subresource"])
        return {"status": {"allowed": key in self.allowed}}


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_review_allows_cached_and_refuses() -> None:
    client = FakeClient({"apiserver-token": "kube-apiserver-kubelet-client", "dev": "dev"},
                        {("kube-apiserver-kubelet-client", "get", "proxy")})
    clock = Clock()
    auth = WebhookAuth(client, "n1", clock=clock)  # type: ignore[arg-type]
    assert await auth("apiserver-token", "GET", "/containerLogs/default/p/c")
    assert client.calls == ["tokenreviews", "subjectaccessreviews"]
    assert await auth("apiserver-token", "GET", "/containerLogs/default/q/c")  # cached
    assert len(client.calls) == 2
    assert not await auth("dev", "GET", "/containerLogs/default/p/c")  # authenticated, denied
    assert not await auth("nobody", "GET", "/containerLogs/default/p/c")  # not authenticated
    assert not await auth("apiserver-token", "POST", "/exec/default/p/c")  # other verb
    clock.now += TTL + 1
    calls = len(client.calls)
    assert await auth("apiserver-token", "GET", "/containerLogs/default/p/c")
    assert len(client.calls) == calls + 2  # the cache expired: reviewed again

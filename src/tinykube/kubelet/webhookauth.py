"""The kubelet endpoint's webhook authentication and authorization, as the kubelet's
`--authentication-token-webhook` and `--authorization-mode=Webhook`.

A request whose bearer token is not the cluster's kubelet token is not refused at once: the
token goes to the API server in a TokenReview, and the user it names to a SubjectAccessReview
of the request's attributes on this Node (`attributes`, the kubelet's own mapping: GET is
`get`, POST `create`...; `/stats` is `nodes/stats`, `/metrics` `nodes/metrics`, `/logs`
`nodes/log`, everything else, logs of containers and exec included, `nodes/proxy`). That is how
the API server reaches a node that joined with a bootstrap token and never saw the kubelet
token: it shows its own kubelet client identity (`kube-apiserver-kubelet-client`), which the
API server itself vouches for. Allowed answers are
cached for `TTL` seconds (the kubelet caches for 2 minutes), in a bounded table.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any

from tinykube.api import errors, resources
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)
TTL = 120.0
MAX_CACHED = 1024
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
_SUBRESOURCES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"))


def attributes(method: str, path: str) -> tuple[str, str]:
    """(verb, nodes subresource) of a kubelet request, as the kubelet's authorizer maps it."""
    verb = _VERBS.get(method.upper(), "*")
    for prefix, subresource in _SUBRESOURCES:
        if path == prefix or path.startswith(prefix + "/"):
            return verb, subresource
    return verb, "proxy"


class WebhookAuth:
    """`await auth(token, method, path)`: may this token's user make this request here?"""

    def __init__(self, client: RESTClient, node: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.node = node
        self.clock = clock
        self._allowed: collections.OrderedDict[tuple[str, str, str], float] = \
            collections.OrderedDict()

    def __repr__(self) -> str:
        return f"WebhookAuth({self.node!r}, cached={len(self._allowed)})"

    async def __call__(self, token: str, method: str, path: str) -> bool:
        verb, subresource = attributes(method, path)
        key = (token, verb, subresource)
        until = self._allowed.get(key)
        if until is not None and until > self.clock():
            return True
        try:
            allowed = await self._review(token, verb, subresource)
        except (errors.APIError, OSError) as exc:
            log.warning("kubelet %s: could not review a request's token: %r", self.node, exc)
            return False
        if allowed:
            self._allowed[key] = self.clock() + TTL
            self._allowed.move_to_end(key)
            while len(self._allowed) > MAX_CACHED:
                self._allowed.popitem(last=False)
        return allowed

    async def _review(self, token: str, verb: str, subresource: str) -> bool:
        review = await self.client.create(
            resources.must("authentication.k8s.io", "v1", "tokenreviews"),
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
             "spec": {"token": token}})
        status: dict[str, Any] = review.get("status") or {}
        if not status.get("authenticated"):
            return False
        user = status.get("user") or {}
        access = await self.client.create(
            resources.must("authorization.k8s.io", "v1", "subjectaccessreviews"),
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
             "spec": {"user": user.get("username", ""), "groups": user.get("groups") or [],
                      "uid": user.get("uid", ""), "extra": user.get("extra") or {},
                      "resourceAttributes": {"verb": verb, "resource": "nodes",
                                             "subresource": subresource,
                                             "name": self.node}}})
        return bool((access.get("status") or {}).get("allowed"))

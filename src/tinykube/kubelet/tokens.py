"""A pod's own identity: bound service-account tokens, as the kubelet's token manager keeps them.

The kubelet never hands a pod its own credentials. For the service-account token a pod mounts
(`/var/run/secrets/kubernetes.io/serviceaccount/token`, and every projected
`serviceAccountToken` source) it asks the API server for a TokenRequest of the pod's
ServiceAccount, bound to the pod (`boundObjectRef` kind Pod, with its uid), for the source's
audience (the API server's when none is named) and `expirationSeconds` (3607 for the
`kube-api-access` default, as upstream's admission plugin writes it). A token is requested
again once 80% of its lifetime has passed, or after 24 hours (`needs_refresh`, the kubelet's
`requiresRefresh`); the pod's volume refresh then writes the new one. A pod with
`automountServiceAccountToken: false` gets no default token.

`ensure` is called (async, through the API) before a pod's runtime sync; the runtimes read the
cache synchronously with `get`.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tinykube.api import errors, resources
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Clock = Callable[[], datetime.datetime]

DEFAULT_SECONDS = 3607  # kube-api-access's projected token, as upstream's admission sets it
MAX_AGE = datetime.timedelta(hours=24)
REFRESH_AT = 0.8  # of the lifetime


@dataclasses.dataclass(frozen=True)
class Token:
    value: str
    issued: datetime.datetime
    expires: datetime.datetime


def needs_refresh(token: Token | None, now: datetime.datetime) -> bool:
    """The kubelet's rule: past 80% of the lifetime, or older than 24 hours."""
    if token is None:
        return True
    lifetime = token.expires - token.issued
    return now >= token.issued + lifetime * REFRESH_AT or now - token.issued > MAX_AGE


def _sources(pod: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(audience, seconds) of every token the pod needs; "" is the API server's audience."""
    spec = pod.get("spec") or {}
    wanted = [] if spec.get("automountServiceAccountToken") is False else [("", DEFAULT_SECONDS)]
    for volume in spec.get("volumes") or ():
        for source in (volume.get("projected") or {}).get("sources") or ():
            token = source.get("serviceAccountToken")
            if isinstance(token, dict):
                wanted.append((str(token.get("audience") or ""),
                               int(token.get("expirationSeconds") or DEFAULT_SECONDS)))
    return list(dict.fromkeys(wanted))


class TokenManager:
    """Requests, caches and refreshes the tokens of this node's pods."""

    def __init__(self, client: RESTClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self._tokens: dict[tuple[str, str, int], Token] = {}  # (pod uid, audience, seconds)
        self._accounts = resources.must("", "v1", "serviceaccounts")

    def __repr__(self) -> str:
        return f"TokenManager(tokens={len(self._tokens)})"

    async def ensure(self, pod: Mapping[str, Any]) -> None:
        """Request the pod's tokens that are missing or due; failures are logged and retried
        at the next sync (the pod then waits, as its mount fails)."""
        uid = str(pod["metadata"]["uid"])
        now = self.clock()
        for audience, seconds in _sources(pod):
            key = (uid, audience, seconds)
            if not needs_refresh(self._tokens.get(key), now):
                continue
            try:
                self._tokens[key] = await self._request(pod, audience, seconds)
            except errors.APIError as error:
                log.warning("token for pod %s/%s: %s", pod["metadata"].get("namespace"),
                            pod["metadata"].get("name"), error)

    async def _request(self, pod: Mapping[str, Any], audience: str, seconds: int) -> Token:
        meta = pod["metadata"]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        body: Obj = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {"expirationSeconds": seconds,
                              "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                                 "name": meta["name"], "uid": meta["uid"]}}}
        if audience:
            body["spec"]["audiences"] = [audience]
        answer = await self.client.create(self._accounts, body, meta["namespace"],
                                          subresource_name=account, subresource="token")
        issued = self.clock()
        status = answer.get("status") or {}
        expires = datetime.datetime.fromisoformat(
            str(status.get("expirationTimestamp")).replace("Z", "+00:00"))
        return Token(str(status.get("token", "")), issued, expires)

    def get(self, pod: Mapping[str, Any], source: Mapping[str, Any] | None = None) -> str | None:
        """The pod's cached token for a projected source (None: the default one)."""
        uid = str(pod["metadata"]["uid"])
        if source is None:
            key = (uid, "", DEFAULT_SECONDS)
        else:
            key = (uid, str(source.get("audience") or ""),
                   int(source.get("expirationSeconds") or DEFAULT_SECONDS))
        token = self._tokens.get(key)
        return token.value if token is not None else None

    def forget(self, uid: str) -> None:
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]

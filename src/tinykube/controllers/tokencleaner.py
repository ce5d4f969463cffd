"""The token cleaner: delete bootstrap token Secrets once they expire.

As kube-controller-manager's `tokencleaner` (pkg/controller/bootstrap/tokencleaner.go): of the
Secrets of `kube-system`, one of type `bootstrap.kubernetes.io/token` whose
`expiration` has passed is deleted, with a uid precondition so that a token created anew under
the same name is never removed by mistake; one not yet expired comes back when it is due.
`expires_in(secret, now)` is the pure decision. Expired tokens stop authenticating at once
(the API server checks the expiration itself), so the cleaner only tidies up.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tinykube.api import bootstraptoken, errors, resources
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)


def expires_in(secret: Mapping[str, Any], now: datetime.datetime) -> float | None:
    """Seconds until the token Secret is due for deletion (<= 0: now); None if never (not a
    bootstrap token, no expiration, or already being deleted)."""
    if secret.get("type") != bootstraptoken.SECRET_TYPE or \
            (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    data = bootstraptoken.secret_data(secret)
    text = data.get("expiration")
    if not text:
        return None
    if bootstraptoken.expired(data, now):
        return 0.0
    when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when - now).total_seconds()


class TokenCleaner(Controller):
    name = "token-cleaner"

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("", "v1", "secrets")
        # the node agents' informer of every Secret, shared: no watch of its own
        self.secrets = shared_informer(client, self.res)
        super().__init__(client, [self.secrets])
        self.now = now or (lambda: datetime.datetime.now(datetime.UTC))
        self.secrets.add_handlers(on_add=self._on_secret,
                                  on_update=lambda _o, n: self._on_secret(n))

    def _on_secret(self, secret: Mapping[str, Any]) -> None:
        if secret.get("type") == bootstraptoken.SECRET_TYPE and \
                secret["metadata"].get("namespace") == bootstraptoken.NAMESPACE:
            self.enqueue(secret)

    async def sync(self, key: str) -> None:
        secret = self.secrets.cache.get(key)
        if secret is None:
            return
        left = expires_in(secret, self.now())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        meta = secret["metadata"]
        log.info("%s: deleting expired bootstrap token %s", self.name, key)
        try:
            await self.client.delete(self.res, meta["name"], meta["namespace"],
                                     preconditions={"uid": meta["uid"]})
        except (errors.NotFound, errors.Conflict):
            return

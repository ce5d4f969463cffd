"""The TTL-after-finished controller: delete finished Jobs `ttlSecondsAfterFinished` later.

As upstream's pkg/controller/ttlafterfinished: a Job that has a TTL and a true `Complete` or
`Failed` condition expires at that condition's `lastTransitionTime` plus the TTL.
`expires_in(job, now)` decides (purely) how long is left; an unexpired Job's key comes back
when it is due. An expired one is read again from the API server (the TTL may have been
changed since the cache saw it) and deleted with `propagationPolicy: Background` and a uid
precondition, so the garbage collector removes its pods and a Job created anew under the
same name is never deleted by mistake.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, resources
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers.replicaset import parse_time

log = logging.getLogger(__name__)


def finished_at(job: Mapping[str, Any]) -> datetime.datetime | None:
    """When the Job finished: its true Complete/Failed condition's transition time."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime")) or \
                parse_time((job.get("status") or {}).get("completionTime"))
    return None


def expires_in(job: Mapping[str, Any], now: datetime.datetime) -> float | None:
    """Seconds until the Job is due for deletion (<= 0: now); None if it never is."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or job["metadata"].get("deletionTimestamp"):
        return None
    finished = finished_at(job)
    if finished is None:
        return None
    return ttl - (now - finished).total_seconds()


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished-controller"

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("batch", "v1", "jobs")
        self.jobs = shared_informer(client, self.res)
        super().__init__(client, [self.jobs])
        self.now = now or clocks.installed().utcnow
        self.jobs.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        job = self.jobs.cache.get(key)
        if job is None:
            return
        left = expires_in(job, self.now())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        meta = job["metadata"]
        try:  # the cache may be old: the TTL may have changed, the Job been recreated
            fresh = await self.client.get(self.res, meta["name"], meta["namespace"])
        except errors.NotFound:
            return
        left = expires_in(fresh, self.now())
        if left is None or left > 0:
            if left is not None:
                self.queue.add_after(key, left)
            return
        log.info("%s: deleting Job %s, finished %s s ago", self.name, key, -left)
        try:
            await self.client.delete(self.res, meta["name"], meta["namespace"],
                                     propagation_policy="Background",
                                     preconditions={"uid": fresh["metadata"]["uid"]})
        except (errors.NotFound, errors.Conflict):
            return

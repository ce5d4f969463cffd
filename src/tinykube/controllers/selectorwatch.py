"""An Event on a Service whose selector still matches no pod a while after it was created.

Manifests create Services before their pods, so "selects nothing" is normal at create time and
is not an apply-time warning (`api/netwarnings.py`). It is a mistake when it lasts: this
controller looks again `grace` seconds after the Service's `creationTimestamp` and, if its
selector matches no pod in its namespace then, records a `Warning` Event `SelectorMatchesNoPods`
on the Service naming the pod that misses the selector by the fewest labels (what `kubectl
describe service` shows under Events). Upstream has no such controller; the Event is tinykube's.

Keys are Service keys. A Service event enqueues its key; `decide` (pure, the clock injected)
says to wait (requeue after the rest of the grace period), to record, or nothing. A Service is
reported once per selector (remembered by uid and selector, bounded); ExternalName and
selector-less Services are never reported (their endpoints are not chosen by a selector), nor
are cluster add-ons (`kubernetes.io/cluster-service: "true"`: tinykube's `kube-dns` selects
`k8s-app=kube-dns`, but its DNS server runs in the components process, not in a pod).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from tinykube.api import resources
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import label_index, namespace_index
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

Obj = Mapping[str, Any]
GRACE = 60.0  # seconds after creation before a Service that selects nothing is reported
REASON = "SelectorMatchesNoPods"
MAX_REMEMBERED = 4096
# add-ons tinykube serves itself, not from pods (kube-dns: the DNS runs in the components process)
CLUSTER_SERVICE_LABEL = "kubernetes.io/cluster-service"


@dataclasses.dataclass(frozen=True)
class Decision:
    message: str | None = None  # record this Event
    requeue_after: float | None = None  # look again then


def _created(service: Obj) -> float | None:
    text = str((service.get("metadata") or {}).get("creationTimestamp") or "")
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def decide(service: Obj, pods: Iterable[Obj], now: float, grace: float = GRACE) -> Decision:
    """What to do about one Service, given the pods of its namespace and the time."""
    spec = service.get("spec") or {}
    selector = dict(spec.get("selector") or {})
    labels_of_service = (service.get("metadata") or {}).get("labels") or {}
    if not selector or spec.get("type") == "ExternalName" \
            or labels_of_service.get(CLUSTER_SERVICE_LABEL) == "true":
        return Decision()
    created = _created(service)
    if created is not None and now - created < grace:
        return Decision(requeue_after=grace - (now - created))
    pods = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    labels = [(p.get("metadata") or {}).get("labels") or {} for p in pods]
    if any(all(lab.get(k) == v for k, v in selector.items()) for lab in labels):
        return Decision()
    wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    namespace = (service.get("metadata") or {}).get("namespace", "")
    message = f"selector {wanted} matches no pod in namespace {namespace} " \
              f"{int(grace)}s after the Service was created"
    from tinykube.api import netwarnings  # only here: it imports pod security (~10 ms of start)

    nearest = netwarnings.nearest_miss(selector, [dict(p) for p in pods])
    if nearest is not None:
        message += f"; nearest: pod {nearest[0]} has {', '.join(nearest[1])}"
    return Decision(message + "; fix the selector or the pods' labels (the Service has no "
                    "endpoints until they agree)")


class SelectorWatchController(Controller):
    name = "service-selector-watch"

    def __init__(self, client: RESTClient, *, grace: float = GRACE,
                 clock: Callable[[], float] = time.time) -> None:
        self.services = shared_informer(client, resources.must("", "v1", "services"))
        self.pods = shared_informer(client, resources.must("", "v1", "pods"))
        super().__init__(client, [self.services, self.pods])
        self.pods.cache.add_index("namespace", namespace_index)
        self.pods.cache.add_index("label", label_index)
        self.grace, self.clock = grace, clock
        self.recorder = events.Recorder(client, self.name)
        self.reported: collections.OrderedDict[tuple[str, str], None] = \
            collections.OrderedDict()
        self.services.add_handlers(on_add=self.enqueue,
                                   on_update=lambda _old, new: self.enqueue(new))

    def _candidates(self, service: Obj, namespace: str) -> Iterator[Obj]:
        """The pods `decide` needs, lazily (it reads none within the grace period): the live pods
        the selector matches, found by label index; only when there are none, the namespace's
        pods (for the nearest miss). A scan of the namespace per Service cost a second of CPU
        per 100 Services at 10,000 pods, 60 s into bench/scale."""
        selector = dict((service.get("spec") or {}).get("selector") or {})
        selected = [p for p in self.pods.cache.select(namespace, selector)
                    if not p["metadata"].get("deletionTimestamp")]
        yield from selected or self.pods.cache.by_index("namespace", namespace)

    async def sync(self, key: str) -> None:
        service = self.services.cache.get(key)
        if service is None:
            return
        namespace = str(service["metadata"].get("namespace", ""))
        decision = decide(service, self._candidates(service, namespace), self.clock(),
                          self.grace)
        if decision.requeue_after is not None:
            self.queue.add_after(key, decision.requeue_after)
        if decision.message is None:
            return
        seen = (str(service["metadata"].get("uid", "")),
                repr(sorted((service.get("spec") or {}).get("selector", {}).items())))
        if seen in self.reported:
            return
        await self.recorder.event(service, "Warning", REASON, decision.message)
        self.reported[seen] = None
        if len(self.reported) > MAX_REMEMBERED:
            self.reported.popitem(last=False)

"""Deployment controller: fenceposts, rolling and recreate steps as tables, a randomized rollout
simulation (5 replicas, maxUnavailable 1: never fewer than 4 ready), status and conditions, and
syncs against a fake client (new ReplicaSet, scaling events, rollback revision)."""

from __future__ import annotations

import dataclasses
import datetime
import random
from typing import Any

import pytest
from workload_fakes import FakeClient

from tinykube.client.controller import StaleCacheError
from tinykube.controllers import deployment
from tinykube.controllers.deployment import Scale

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
STAMP = "2024-05-01T12:00:00Z"
Obj = dict[str, Any]


@pytest.mark.parametrize(("rolling", "replicas", "expected"), [
    pytest.param({}, 10, (3, 2), id="defaults-25%-surge-up-unavailable-down"),
    pytest.param({}, 5, (2, 1), id="defaults-of-5"),
    pytest.param({}, 1, (1, 0), id="defaults-of-1"),
    pytest.param({"maxSurge": 0, "maxUnavailable": 0}, 5, (0, 1), id="both-zero"),
    pytest.param({"maxSurge": "0%", "maxUnavailable": "10%"}, 5, (0, 1), id="percent-zero"),
    pytest.param({"maxSurge": 2, "maxUnavailable": 1}, 5, (2, 1), id="ints"),
    pytest.param({"maxSurge": "50%", "maxUnavailable": "50%"}, 3, (2, 1), id="half-of-3"),
    pytest.param({"maxUnavailable": 10}, 3, (1, 3), id="unavailable-capped"),
    pytest.param({}, 0, (0, 0), id="zero-replicas"),
])
def test_resolve_fenceposts(rolling: Obj, replicas: int, expected: tuple[int, int]) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": rolling}
    assert deployment.resolve_fenceposts(strategy, replicas) == expected


N, O1, O2 = "web-new", "web-old1", "web-old2"


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "new", "olds", "expected"), [
    pytest.param(5, 2, 1, Scale(N, 0, 0), [Scale(O1, 5, 5)], {N: 2}, id="surge-new-up"),
    pytest.param(5, 2, 1, Scale(N, 2, 0), [Scale(O1, 5, 5)], {O1: 4},
                 id="old-down-by-unavailable"),
    pytest.param(5, 2, 1, Scale(N, 2, 0), [Scale(O1, 4, 4)], {N: 3}, id="surge-room-left"),
    pytest.param(5, 2, 1, Scale(N, 3, 0), [Scale(O1, 4, 4)], {}, id="wait-for-new-ready"),
    pytest.param(5, 2, 1, Scale(N, 2, 2), [Scale(O1, 4, 4)], {N: 3}, id="new-up-again"),
    pytest.param(5, 2, 1, Scale(N, 3, 2), [Scale(O1, 4, 4)], {O1: 2}, id="old-down-two"),
    pytest.param(5, 2, 1, Scale(N, 5, 5), [Scale(O1, 1, 1)], {O1: 0}, id="finish"),
    pytest.param(5, 2, 1, Scale(N, 5, 5), [Scale(O1, 0, 0)], {}, id="done"),
    pytest.param(5, 0, 1, Scale(N, 0, 0), [Scale(O1, 5, 5)], {O1: 4}, id="no-surge"),
    pytest.param(5, 2, 1, Scale(N, 2, 0), [Scale(O1, 5, 3)], {O1: 4},
                 id="unhealthy-old-within-budget"),
    pytest.param(5, 2, 1, Scale(N, 2, 2), [Scale(O1, 5, 3)], {O1: 2},
                 id="unhealthy-old-then-available"),
    pytest.param(5, 2, 1, Scale(N, 2, 0), [Scale(O2, 2, 2), Scale(O1, 3, 3)], {O2: 1},
                 id="oldest-rs-first"),
    pytest.param(3, 1, 0, Scale(N, 5, 5), [], {N: 3}, id="scale-down"),
    pytest.param(10, 3, 2, Scale(N, 5, 5), [], {N: 10}, id="scale-up"),
    pytest.param(0, 0, 0, Scale(N, 2, 2), [Scale(O1, 1, 1)], {N: 0}, id="to-zero"),
])
def test_rolling_step(replicas: int, surge: int, unavailable: int, new: Scale,
                      olds: list[Scale], expected: dict[str, int]) -> None:
    assert deployment.rolling_step(replicas=replicas, max_surge=surge,
                                   max_unavailable=unavailable, new=new, olds=olds) == expected


@pytest.mark.parametrize(("new", "olds", "old_pods", "expected"), [
    pytest.param(Scale(N, 0, 0), [Scale(O1, 3, 3)], 3, {O1: 0}, id="old-down"),
    pytest.param(Scale(N, 0, 0), [Scale(O1, 0, 0)], 2, {}, id="wait-for-old-pods"),
    pytest.param(Scale(N, 0, 0), [Scale(O1, 0, 0)], 0, {N: 3}, id="new-up"),
    pytest.param(Scale(N, 3, 3), [Scale(O1, 0, 0)], 0, {}, id="done"),
])
def test_recreate_step(new: Scale, olds: list[Scale], old_pods: int,
                       expected: dict[str, int]) -> None:
    assert deployment.recreate_step(replicas=3, new=new, olds=olds,
                                    old_pods=old_pods) == expected


# --- the rollout simulation ---------------------------------------------------------------------

@dataclasses.dataclass
class SimRS:
    spec: int
    pods: list[bool]  # readiness of each active pod
    seen_available: int = 0  # status as last written by the RS controller (stale on purpose)


def _simulate(seed: int) -> tuple[int, dict[str, SimRS]]:
    """Random interleaving of deployment steps, RS syncs, status writes and pods turning ready;
    returns the fewest ready pods ever seen and the end state."""
    rng = random.Random(seed)
    world = {O1: SimRS(5, [True] * 5, 5), N: SimRS(0, [])}
    fewest = 5

    def deploy_step() -> None:
        new = Scale(N, world[N].spec, min(world[N].spec, world[N].seen_available))
        old = Scale(O1, world[O1].spec, min(world[O1].spec, world[O1].seen_available))
        step = deployment.rolling_step(replicas=5, max_surge=2, max_unavailable=1, new=new,
                                       olds=[old])
        for name, count in step.items():
            world[name].spec = count

    def rs_sync() -> None:
        rs = world[rng.choice([N, O1])]
        while len(rs.pods) < rs.spec:
            rs.pods.append(False)
        while len(rs.pods) > rs.spec:  # not-ready pods go first
            rs.pods.remove(all(rs.pods))  # a False if there is one

    def status_write() -> None:
        rs = world[rng.choice([N, O1])]
        rs.seen_available = sum(rs.pods)

    def kubelet() -> None:
        waiting = [i for i, ready in enumerate(world[N].pods) if not ready]
        if waiting:
            world[N].pods[rng.choice(waiting)] = True

    for _ in range(2000):
        rng.choice([deploy_step, rs_sync, status_write, kubelet])()
        fewest = min(fewest, sum(sum(rs.pods) for rs in world.values()))
    return fewest, world


@pytest.mark.parametrize("seed", range(20))
def test_rollout_of_5_never_below_4_ready(seed: int) -> None:
    fewest, world = _simulate(seed)
    assert fewest >= 4
    assert (world[N].spec, world[N].pods, world[O1].spec) == (5, [True] * 5, 0)


# --- templates, names, cleanup ------------------------------------------------------------------

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}


def test_template_hash_ignores_its_own_label() -> None:
    labelled = {**TEMPLATE, "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}}}
    assert deployment.template_hash(TEMPLATE) == deployment.template_hash(labelled)
    assert deployment.template_hash(TEMPLATE) != deployment.template_hash(TEMPLATE, 1)
    assert set(deployment.template_hash(TEMPLATE)) <= set("bcdfghjklmnpqrstvwxz2456789")


def make_deploy(replicas: int = 5, template: Obj | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 3,
                         "annotations": {"kubernetes.io/change-cause": "v2",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                         "deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": template or TEMPLATE, **spec},
            "status": {}}


def make_rs(name: str, template: Obj, *, replicas: int, available: int, revision: int,
            created: str) -> Obj:
    labelled = {**template, "metadata": {"labels": {
        **template["metadata"]["labels"], "pod-template-hash": name.rsplit("-", 1)[1]}}}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "resourceVersion": "5", "creationTimestamp": created,
                         "labels": labelled["metadata"]["labels"],
                         "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "web", "uid": "d-uid",
                                              "controller": True}]},
            "spec": {"replicas": replicas, "template": labelled},
            "status": {"replicas": replicas, "readyReplicas": available,
                       "availableReplicas": available}}


OLD_TEMPLATE = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.24"}]}}


def test_find_new_compares_templates_without_hash() -> None:
    old = make_rs("web-old", OLD_TEMPLATE, replicas=5, available=5, revision=1,
                  created="2024-01-01T00:00:00Z")
    current = make_rs("web-cur", TEMPLATE, replicas=0, available=0, revision=2,
                      created="2024-02-01T00:00:00Z")
    assert deployment.find_new(make_deploy(), [old, current]) is current
    assert deployment.find_new(make_deploy(template=OLD_TEMPLATE), [old, current]) is old
    assert deployment.find_new(make_deploy(), [old]) is None


def test_new_replicaset_body() -> None:
    body = deployment.new_replicaset(make_deploy(), "web-abc", replicas=2, revision=4,
                                     max_surge=2)
    assert body["metadata"]["labels"] == {"app": "web", "pod-template-hash": "abc"}
    assert body["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "v2", "deployment.kubernetes.io/revision": "4",
        "deployment.kubernetes.io/desired-replicas": "5",
        "deployment.kubernetes.io/max-replicas": "7"}
    assert body["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": "abc"}}
    assert body["spec"]["replicas"] == 2
    assert body["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "abc"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "d-uid"


@pytest.mark.parametrize(("limit", "expected"), [
    pytest.param(0, ["web-a", "web-b"], id="keep-none-but-running"),
    pytest.param(1, ["web-a", "web-b"], id="running-counts-as-kept"),
    pytest.param(2, ["web-a"], id="keep-two"),
    pytest.param(3, [], id="under-limit"),
])
def test_to_clean_up(limit: int, expected: list[str]) -> None:
    olds = [make_rs(f"web-{n}", OLD_TEMPLATE, replicas=0, available=0, revision=i,
                    created=f"2024-01-0{i}T00:00:00Z") for i, n in enumerate("abc", 1)]
    olds[2]["status"]["replicas"] = 1  # still has a pod: never cleaned up
    assert deployment.to_clean_up(olds, limit) == expected


# --- status -----------------------------------------------------------------------------------

def _conditions(status: Obj) -> list[tuple[str, str, str, str]]:
    return [(c["type"], c["status"], c["reason"], c["message"]) for c in status["conditions"]]


@pytest.mark.parametrize(("new_avail", "old_replicas", "created", "expected"), [
    pytest.param(5, 0, False, [
        ("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        ("Progressing", "True", "NewReplicaSetAvailable",
         'ReplicaSet "web-cur" has successfully progressed.')], id="complete"),
    pytest.param(0, 5, True, [
        ("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        ("Progressing", "True", "NewReplicaSetCreated", 'Created new replica set "web-cur"')],
        id="created"),
    pytest.param(2, 3, False, [
        ("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        ("Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "web-cur" is progressing.')],
        id="progressing"),
    pytest.param(2, 0, False, [
        ("Available", "False", "MinimumReplicasUnavailable",
         "Deployment does not have minimum availability."),
        ("Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "web-cur" is progressing.')],
        id="unavailable"),
])
def test_compute_status_conditions(new_avail: int, old_replicas: int, created: bool,
                                   expected: list[tuple[str, str, str, str]]) -> None:
    new = make_rs("web-cur", TEMPLATE, replicas=5, available=new_avail, revision=2,
                  created="2024-02-01T00:00:00Z")
    new["status"]["replicas"] = 5 if not created else 0
    new["status"]["availableReplicas"] = new_avail
    old = make_rs("web-old", OLD_TEMPLATE, replicas=old_replicas, available=old_replicas,
                  revision=1, created="2024-01-01T00:00:00Z")
    status = deployment.compute_status(make_deploy(), new, [old, new], max_unavailable=1,
                                       now=STAMP, created_new=created)
    assert _conditions(status) == expected
    assert status["observedGeneration"] == 3
    assert status["availableReplicas"] == new_avail + old_replicas
    assert status["unavailableReplicas"] == max(0, 5 - new_avail - old_replicas)


def test_condition_times_kept_while_unchanged() -> None:
    deploy = make_deploy()
    earlier = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
               "message": "Deployment has minimum availability.",
               "lastUpdateTime": "2024-01-01T00:00:00Z",
               "lastTransitionTime": "2024-01-01T00:00:00Z"}
    deploy["status"] = {"conditions": [earlier]}
    new = make_rs("web-cur", TEMPLATE, replicas=5, available=5, revision=2,
                  created="2024-02-01T00:00:00Z")
    status = deployment.compute_status(deploy, new, [new], max_unavailable=1, now=STAMP)
    assert status["conditions"][0] == earlier


# --- syncs against a fake client -------------------------------------------------------------

def _controller(client: FakeClient, deploy: Obj, rss: list[Obj]) -> Any:
    ctl = deployment.DeploymentController(client, now=lambda: NOW)  # type: ignore[arg-type]
    ctl.deployments.cache.put("default/web", deploy)
    for rs in rss:
        ctl.replicasets.cache.put(f"default/{rs['metadata']['name']}", rs)
    return ctl


async def test_sync_creates_the_new_replicaset() -> None:
    client = FakeClient()
    old = make_rs("web-old", OLD_TEMPLATE, replicas=5, available=5, revision=1,
                  created="2024-01-01T00:00:00Z")
    ctl = _controller(client, make_deploy(strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}), [old])
    await ctl.sync("default/web")
    name = f"web-{deployment.template_hash(TEMPLATE)}"
    created = [c[2] for c in client.writes() if c[0] == "create"]
    assert [(rs["metadata"]["name"], rs["spec"]["replicas"],
             rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
            for rs in created] == [(name, 2, "2")]
    assert client.events == [("Normal", "ScalingReplicaSet",
                              f"Scaled up replica set {name} from 0 to 2")]
    assert ("patch", "deployments",
            {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "2"}}}) \
        in client.writes()
    status = next(c[2]["status"] for c in client.writes() if c[0] == "patch/status")
    assert status["conditions"][1]["reason"] == "NewReplicaSetCreated"
    client.calls.clear()
    with pytest.raises(StaleCacheError):  # the informer has not shown it yet
        await ctl.sync("default/web")
    assert not client.writes()


async def test_sync_scales_old_down_with_event() -> None:
    client = FakeClient()
    old = make_rs("web-old", OLD_TEMPLATE, replicas=5, available=5, revision=1,
                  created="2024-01-01T00:00:00Z")
    new = make_rs("web-cur", TEMPLATE, replicas=2, available=0, revision=2,
                  created="2024-02-01T00:00:00Z")
    ctl = _controller(client, make_deploy(strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}), [old, new])
    await ctl.sync("default/web")
    updates = [c[2] for c in client.writes() if c[0] == "update"]
    assert [(u["metadata"]["name"], u["spec"]["replicas"]) for u in updates] == [("web-old", 4)]
    assert client.events == [("Normal", "ScalingReplicaSet",
                              "Scaled down replica set web-old from 5 to 4")]


async def test_rollback_gives_the_old_replicaset_a_new_revision() -> None:
    client = FakeClient()
    old = make_rs("web-old", OLD_TEMPLATE, replicas=0, available=0, revision=1,
                  created="2024-01-01T00:00:00Z")
    cur = make_rs("web-cur", TEMPLATE, replicas=5, available=5, revision=2,
                  created="2024-02-01T00:00:00Z")
    ctl = _controller(client, make_deploy(template=OLD_TEMPLATE), [old, cur])
    await ctl.sync("default/web")
    updates = [c[2] for c in client.writes() if c[0] == "update"]
    assert [(u["metadata"]["name"], u["spec"]["replicas"],
             u["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
            for u in updates] == [("web-old", 2, "3")]
    assert ("patch", "deployments",
            {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "3"}}}) \
        in client.writes()


async def test_complete_rollout_cleans_up_history() -> None:
    client = FakeClient()
    olds = [make_rs(f"web-o{i}", OLD_TEMPLATE, replicas=0, available=0, revision=i,
                    created=f"2024-01-0{i}T00:00:00Z") for i in (1, 2)]
    cur = make_rs("web-cur", TEMPLATE, replicas=5, available=5, revision=3,
                  created="2024-02-01T00:00:00Z")
    deploy = make_deploy(revisionHistoryLimit=1)
    deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    ctl = _controller(client, deploy, [*olds, cur])
    await ctl.sync("default/web")
    assert [c for c in client.writes() if c[0] == "delete"] == [
        ("delete", "replicasets", "web-o1")]

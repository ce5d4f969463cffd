"""api.limitrange: LimitRanger's defaults and bounds, and LimitRange defaulting, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api import defaults, limitrange

Obj = dict[str, Any]


def ranged(*items: Obj) -> Obj:
    return {"metadata": {"name": "lr"}, "spec": {"limits": list(items)}}


def pod(*containers: Obj, init: tuple[Obj, ...] = ()) -> Obj:
    spec: Obj = {"containers": list(containers)}
    if init:
        spec["initContainers"] = list(init)
    return {"metadata": {"name": "p"}, "spec": spec}


def box(name: str = "c", **resources: Obj) -> Obj:
    return {"name": name, **({"resources": resources} if resources else {})}


CONTAINER_DEFAULTS = ranged({"type": "Container", "default": {"cpu": "1", "memory": "1Gi"},
                             "defaultRequest": {"cpu": "100m", "memory": "512Mi"}})


@pytest.mark.parametrize(("given", "resources", "annotation"), [
    pytest.param(pod(box()), {"limits": {"cpu": "1", "memory": "1Gi"},
                              "requests": {"cpu": "100m", "memory": "512Mi"}},
                 "LimitRanger plugin set: cpu, memory request for container c; "
                 "cpu, memory limit for container c", id="everything"),
    pytest.param(pod(box(limits={"cpu": "2"})),
                 {"limits": {"cpu": "2", "memory": "1Gi"},
                  "requests": {"cpu": "2", "memory": "512Mi"}},
                 "LimitRanger plugin set: memory request for container c; "
                 "memory limit for container c", id="own-limit-is-own-request"),
    pytest.param(pod(box(requests={"cpu": "1", "memory": "1Gi"},
                         limits={"cpu": "1", "memory": "1Gi"})),
                 {"limits": {"cpu": "1", "memory": "1Gi"},
                  "requests": {"cpu": "1", "memory": "1Gi"}}, None, id="nothing-to-set"),
])
def test_container_defaults(given: Obj, resources: Obj, annotation: str | None) -> None:
    limitrange.apply_defaults(given, CONTAINER_DEFAULTS)
    assert given["spec"]["containers"][0]["resources"] == resources
    assert (given["metadata"].get("annotations") or {}).get(limitrange.ANNOTATION) == annotation


def test_init_containers_are_named_as_such() -> None:
    given = pod(box(), init=(box("setup"),))
    limitrange.apply_defaults(given, ranged({"type": "Container", "defaultRequest": {"cpu": "1"}}))
    assert given["metadata"]["annotations"][limitrange.ANNOTATION] == (
        "LimitRanger plugin set: cpu request for container c; "
        "cpu request for init container setup")


@pytest.mark.parametrize(("item", "given", "found"), [
    pytest.param({"type": "Container", "max": {"cpu": "1"}}, pod(box(limits={"cpu": "2"})),
                 ["maximum cpu usage per Container is 1, but limit is 2"], id="max-limit"),
    pytest.param({"type": "Container", "max": {"cpu": "1"}},
                 pod(box(requests={"cpu": "500m"})),
                 ["maximum cpu usage per Container is 1.  No limit is specified"],
                 id="max-without-limit"),
    pytest.param({"type": "Container", "min": {"memory": "64Mi"}}, pod(box()),
                 ["minimum memory usage per Container is 64Mi.  No request is specified"],
                 id="min-without-request"),
    pytest.param({"type": "Container", "min": {"cpu": "200m"}},
                 pod(box(requests={"cpu": "100m"}), box("d", requests={"cpu": "300m"})),
                 ["minimum cpu usage per Container is 200m, but request is 100m"],
                 id="min-per-container"),
    pytest.param({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
                 pod(box(requests={"cpu": "100m"}, limits={"cpu": "300m"})),
                 ["cpu max limit to request ratio per Container is 2, but provided ratio is "
                  "3.000000"], id="ratio"),
    pytest.param({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
                 pod(box(requests={"cpu": "100m"})),
                 ["cpu max limit to request ratio per Container is 2, but no limit is "
                  "specified or limit is 0"], id="ratio-without-limit"),
    pytest.param({"type": "Pod", "max": {"cpu": "1"}},
                 pod(box(limits={"cpu": "600m"}), box("d", limits={"cpu": "600m"})),
                 ["maximum cpu usage per Pod is 1, but limit is 1200m"], id="pod-sum"),
    pytest.param({"type": "Pod", "max": {"cpu": "1"}},
                 pod(box(limits={"cpu": "600m"}), init=(box("i", limits={"cpu": "2"}),)),
                 ["maximum cpu usage per Pod is 1, but limit is 2"], id="pod-init-peak"),
    pytest.param({"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1"}},
                 pod(box(requests={"cpu": "100m"}, limits={"cpu": "1"})), [], id="within"),
])
def test_pod_violations(item: Obj, given: Obj, found: list[str]) -> None:
    assert limitrange.pod_violations(given, ranged(item)) == found


@pytest.mark.parametrize(("requests", "found"), [
    pytest.param({"storage": "5Gi"},
                 ["maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"],
                 id="max"),
    pytest.param({"storage": "100Mi"},
                 ["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is "
                  "100Mi"], id="min"),
    pytest.param({}, ["minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is "
                      "specified", "maximum storage usage per PersistentVolumeClaim is 2Gi.  "
                      "No request is specified"], id="none"),
    pytest.param({"storage": "1Gi"}, [], id="within"),
])
def test_claim_violations(requests: Obj, found: list[str]) -> None:
    claim = {"spec": {"resources": {"requests": requests}}}
    item = {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"},
            "max": {"storage": "2Gi"}}
    assert limitrange.claim_violations(claim, ranged(item)) == found


@pytest.mark.parametrize(("violations", "text"), [
    pytest.param(["a"], "a", id="one"),
    pytest.param(["a", "b"], "[a, b]", id="several"),
    pytest.param(["a", "a"], "a", id="same-twice"),
])
def test_message(violations: list[str], text: str) -> None:
    assert limitrange.message(violations) == text


@pytest.mark.parametrize(("item", "defaulted"), [
    pytest.param({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}},
                 {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"},
                  "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "1Mi"}},
                 id="from-max-and-min"),
    pytest.param({"type": "Container", "default": {"cpu": "1"}},
                 {"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "1"}},
                 id="request-from-default"),
    pytest.param({"type": "Container"}, {"type": "Container"}, id="nothing"),
    pytest.param({"type": "Pod", "max": {"cpu": "2"}}, {"type": "Pod", "max": {"cpu": "2"}},
                 id="pod-items-untouched"),
])
def test_limit_range_defaulting(item: Obj, defaulted: Obj) -> None:
    assert defaults.apply_defaults("LimitRange", ranged(item))["spec"]["limits"] == [defaulted]

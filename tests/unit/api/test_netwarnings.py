"""The apply-time networking warnings as a table: object + what is stored -> warning texts.

The stored objects are the seed's web.yaml (a headless Service `nginx`, a StatefulSet `web`
whose pods are labelled app=nginx and name their container port `web`); each case changes one
thing. The seed itself, correct, warns about nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.api import netwarnings

Obj = dict[str, Any]
WEB = Path(__file__).parents[2] / "testdata" / "web.yaml"


def seed() -> tuple[Obj, Obj]:
    service, sts = yaml.safe_load_all(WEB.read_text())
    for obj in (service, sts):
        obj["metadata"]["namespace"] = "default"
    return service, sts


def pod(name: str, **spec: Any) -> Obj:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                        "labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "ports": [
                {"name": "web", "containerPort": 80}]}], **spec}}


def lookup_of(*objects: Obj) -> netwarnings.Lookup:
    keys = {"Service": "core/services", "Pod": "core/pods", "StatefulSet": "apps/statefulsets",
            "EndpointSlice": "discovery.k8s.io/endpointslices"}

    def lookup(key: str, namespace: str) -> list[Obj]:
        if key == netwarnings.NAMED_PORT_SERVICES:
            return netwarnings.named_port_services(lookup(netwarnings.SERVICES, namespace))
        return [o for o in objects if keys.get(o["kind"]) == key
                and o["metadata"].get("namespace") == namespace]
    return lookup


def case(name: str) -> tuple[Obj, list[Obj]]:
    """(the object written, the objects stored) for one case."""
    service, sts = seed()
    if name == "seed-service":
        return service, [sts]
    if name == "seed-statefulset":
        return sts, [service]
    if name == "sts-no-service":
        return sts, []
    if name == "sts-service-not-headless":
        service["spec"]["clusterIP"] = "10.96.0.20"
        return sts, [service]
    if name == "pod-subdomain-no-service":
        return pod("lonely", hostname="lonely", subdomain="nginx2"), [service]
    if name == "pod-subdomain-headless":
        return pod("fine", hostname="fine", subdomain="nginx"), [service]
    if name == "service-target-port-undefined":
        service["spec"]["ports"][0]["targetPort"] = "http"
        return service, [sts, pod("web-0")]
    if name == "template-target-port-undefined":
        service["spec"]["ports"][0]["targetPort"] = "http"
        return sts, [service]
    if name == "headless-no-selector":
        del service["spec"]["selector"]
        return service, []
    if name == "headless-no-selector-with-slices":
        del service["spec"]["selector"]
        return service, [{"kind": "EndpointSlice", "metadata": {
            "name": "nginx-1", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "nginx"}}}]
    raise KeyError(name)


# case -> the start of each warning it must give (the rest names the fix)
CASES = {
    "seed-service": [],
    "seed-statefulset": [],
    "sts-no-service": ['spec.serviceName: no Service "nginx" in namespace "default": the pods '
                       "of StatefulSet web get no DNS names (web-0.nginx...) until it exists; "
                       'create a headless Service "nginx" (clusterIP: None) selecting them'],
    "sts-service-not-headless": ['spec.serviceName: Service "nginx" is not headless (clusterIP '
                                 "10.96.0.20)"],
    "pod-subdomain-no-service": ['spec.subdomain: "nginx2" names no Service "nginx2" in '
                                 'namespace "default": lonely.nginx2.default.svc does not '
                                 "resolve"],
    "pod-subdomain-headless": [],
    "service-target-port-undefined": ['spec.ports[0].targetPort: "http" names a port that no '
                                      "container of pod web-0, StatefulSet web defines"],
    "template-target-port-undefined": ['spec.template.spec.containers: Service "nginx" selects '
                                       'these pods and targets port "http", which no container '
                                       "defines"],
    "headless-no-selector": ['spec.selector: headless Service "nginx" has neither a selector '
                             "nor EndpointSlices: its name answers NXDOMAIN; add a selector"],
    "headless-no-selector-with-slices": [],
}


@pytest.mark.parametrize("name", list(CASES))
def test_warnings(name: str) -> None:
    obj, stored = case(name)
    before = copy.deepcopy((obj, stored))
    got = netwarnings.warnings(obj["kind"], obj, lookup_of(*stored))
    assert len(got) == len(CASES[name]), got
    for text, start in zip(got, CASES[name], strict=True):
        assert text.startswith(start), text
        assert "; " in text  # every warning names its fix after the cost
    assert (obj, stored) == before  # checks never change what they read

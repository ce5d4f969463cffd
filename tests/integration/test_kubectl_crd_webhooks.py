"""Custom resources beyond their CRD's schema, end to end with kubectl: a conversion webhook
(a real HTTPS server, tests/webhook_server.py) between v1 and v2 of a CRD, and the garbage
collector deleting custom resources whose owner went and built-in objects a custom resource
owned (Background and Foreground)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tests.webhook_server import WebhookServer, allow

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(Path(tmp_path_factory.mktemp("crd-webhooks")) / "data")
    yield cluster
    cluster.stop()


@pytest.fixture
def kctl(running: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache-kctl"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], running.kubeconfig, cache)


def _configmap(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name}, "data": {"k": "v"}})


GC_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.gc.example.com"},
    "spec": {"group": "gc.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": True}}}]}}


def _owned_by(kind: str, name: str, owner: Obj, api_version: str) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": {
        "name": name, "ownerReferences": [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": True}]}}


def test_garbage_collection_of_custom_resources(kctl: Kubectl) -> None:
    """CRs owned by a ConfigMap go with it; a ConfigMap owned by a CR goes with the CR, also
    in foreground (the CR's finalizer is removed once its dependent is gone)."""
    kctl("apply", "-f", "-", input=json.dumps(GC_CRD))
    kctl("wait", "--for=condition=Established", "crd/widgets.gc.example.com", "--timeout=30s")
    owner = json.loads(kctl("create", "-f", "-", "-o", "json", input=_configmap("gc-owner")))
    kctl("create", "-f", "-", input=json.dumps(
        _owned_by("Widget", "gc-child", owner, "gc.example.com/v1")))
    widget = json.loads(kctl("create", "-f", "-", "-o", "json", input=json.dumps(
        {"apiVersion": "gc.example.com/v1", "kind": "Widget", "metadata": {"name": "gc-top"}})))
    for name in ("gc-dep", "gc-dep2"):
        kctl("create", "-f", "-", input=json.dumps(
            {**_owned_by("ConfigMap", name, widget, "v1"), "data": {"k": "v"}}))
    try:
        kctl("delete", "configmap", "gc-owner")
        until(lambda: kctl.run("get", "widget", "gc-child", check=False).returncode == 1,
              what="the widget owned by the deleted ConfigMap to go")
        kctl("delete", "widget", "gc-top", "--cascade=foreground", "--timeout=30s")
        assert kctl.run("get", "configmap", "gc-dep", check=False).returncode == 1
        assert kctl.run("get", "configmap", "gc-dep2", check=False).returncode == 1
    finally:
        kctl("delete", "crd", "widgets.gc.example.com", "--wait=false")


def _convert(review: Obj) -> Obj:
    """v1 has spec.host and spec.port, v2 spec.address ("host:port")."""
    request = review["request"]
    desired = request["desiredAPIVersion"]
    out = []
    for obj in request["objects"]:
        spec = dict(obj.get("spec") or {})
        if desired.endswith("/v2"):
            spec = {"address": f"{spec.pop('host', '')}:{spec.pop('port', 0)}", **spec}
        else:
            host, _, port = str(spec.pop("address", ":0")).rpartition(":")
            spec = {"host": host, "port": int(port), **spec}
        out.append({**obj, "apiVersion": desired, "spec": spec})
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": request["uid"], "convertedObjects": out,
                         "result": {"status": "Success"}}}


def _conversion_crd(client_config: Obj) -> str:
    def version(name: str, storage: bool, spec: Obj) -> Obj:
        return {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "properties": spec}}}}}
    return json.dumps({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "endpoints.conv.example.com"},
        "spec": {"group": "conv.example.com", "scope": "Namespaced",
                 "names": {"plural": "endpoints", "singular": "endpoint", "kind": "Endpoint"},
                 "conversion": {"strategy": "Webhook", "webhook": {
                     "clientConfig": client_config, "conversionReviewVersions": ["v1"]}},
                 "versions": [
                     version("v1", True, {"host": {"type": "string"},
                                          "port": {"type": "integer"}}),
                     version("v2", False, {"address": {"type": "string"}})]}})


def test_conversion_webhook_between_versions(kctl: Kubectl) -> None:
    """Objects stored in v1 are read, listed, watched and written in v2 through the CRD's
    webhook; with the webhook down, a v2 read fails with kube's message."""
    v1, v2 = "endpoints.v1.conv.example.com", "endpoints.v2.conv.example.com"
    with WebhookServer({"/convert": _convert, "/admit": allow}) as server:
        kctl("apply", "-f", "-", input=_conversion_crd(
            {"url": server.url("/convert"), "caBundle": server.ca_bundle}))
        try:
            kctl("wait", "--for=condition=Established", "crd/endpoints.conv.example.com",
                 "--timeout=30s")
            kctl("create", "-f", "-", input=json.dumps({
                "apiVersion": "conv.example.com/v1", "kind": "Endpoint",
                "metadata": {"name": "one", "labels": {"l": "1"}},
                "spec": {"host": "db", "port": 5432}}))
            got = json.loads(kctl("get", v2, "one", "-o", "json"))
            assert (got["apiVersion"], got["spec"]) == ("conv.example.com/v2",
                                                        {"address": "db:5432"})
            assert got["metadata"]["labels"] == {"l": "1"}
            kctl("apply", "-f", "-", input=yaml.safe_dump({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "conv-admit"},
                "webhooks": [{"name": "admit.conv.example.com", "sideEffects": "None",
                              "admissionReviewVersions": ["v1"], "matchPolicy": "Exact",
                              "clientConfig": {"url": server.url("/admit"),
                                               "caBundle": server.ca_bundle},
                              "rules": [{"operations": ["CREATE"],
                                         "apiGroups": ["conv.example.com"],
                                         "apiVersions": ["v2"], "resources": ["endpoints"]}]}]}))
            kctl("create", "-f", "-", input=json.dumps({
                "apiVersion": "conv.example.com/v2", "kind": "Endpoint",
                "metadata": {"name": "two"}, "spec": {"address": "cache:6379"}}))
            kctl("delete", "validatingwebhookconfiguration", "conv-admit")
            admitted = server.requests["/admit"][0]["request"]["object"]  # in v2, converted
            assert (admitted["apiVersion"], admitted["spec"]) == ("conv.example.com/v2",
                                                                  {"address": "cache:6379"})
            stored = json.loads(kctl("get", v1, "two", "-o", "json"))
            assert stored["spec"] == {"host": "cache", "port": 6379}
            listed = json.loads(kctl("get", v2, "-o", "json"))
            assert [i["spec"]["address"] for i in listed["items"]] == ["db:5432", "cache:6379"]
            kctl("patch", v2, "two", "--type=merge", "-p", '{"spec":{"address":"cache:1"}}')
            assert json.loads(kctl("get", v1, "two", "-o", "jsonpath={.spec}")) == {
                "host": "cache", "port": 1}
            watched = kctl("get", "--raw", "/apis/conv.example.com/v2/namespaces/default/"
                           "endpoints?watch=true&timeoutSeconds=1")
            events = [json.loads(line) for line in watched.splitlines()]
            assert [(e["type"], e["object"]["spec"]) for e in events] == [
                ("ADDED", {"address": "db:5432"}), ("ADDED", {"address": "cache:1"})]
            table = kctl("get", v2)
            assert table.split("\n")[0].split() == ["NAME", "AGE"]
        except BaseException:
            kctl("delete", "crd", "endpoints.conv.example.com", "--wait=false")
            raise
        port = server.port
    try:
        refused = kctl.run("get", v2, "one", check=False)
        assert refused.stderr == (
            "Error from server (InternalError): Internal error occurred: conversion webhook for "
            "conv.example.com/v1, Kind=Endpoint failed: Post "
            f'"https://127.0.0.1:{port}/convert?timeout=30s": dial tcp 127.0.0.1:{port}: '
            "connect: connection refused\n")
        assert "one" in kctl("get", v1, "one", "-o", "name")  # the storage version needs none
    finally:
        kctl("delete", "crd", "endpoints.conv.example.com", "--wait=false")

"""CustomResourceDefinitions end to end: both real kubectls and the official Python client.

A CRD with printer columns, short name, the `all` category, status and scale subresources, a
schema with a default and bounds; then custom resources through `kubectl apply/get/explain/
patch/scale`, kube's refusals (strategic merge patch, schema errors, unknown fields with
Strict), and the CRD's deletion taking its objects and its discovery entry with it.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until

CRD_TEMPLATE = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: crontabs.{group}
    spec:
      group: {group}
      scope: Namespaced
      names:
        plural: crontabs
        singular: crontab
        kind: CronTab
        shortNames: [ct]
        categories: [all]
      versions:
      - name: v1beta1
        served: true
        storage: false
        schema:
          openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
      - name: v1
        served: true
        storage: true
        subresources:
          status: {}
          scale:
            specReplicasPath: .spec.replicas
            statusReplicasPath: .status.replicas
        additionalPrinterColumns:
        - {name: Spec, type: string, jsonPath: .spec.cronSpec}
        - {name: Replicas, type: integer, jsonPath: .spec.replicas}
        - {name: Image, type: string, jsonPath: .spec.image, priority: 1}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                description: The desired schedule.
                properties:
                  cronSpec: {type: string, description: A cron line.}
                  image: {type: string}
                  replicas: {type: integer, minimum: 1, maximum: 10, default: 1}
              status:
                type: object
                properties:
                  replicas: {type: integer}
    """)
CRONTAB_TEMPLATE = textwrap.dedent("""\
    apiVersion: {group}/v1
    kind: CronTab
    metadata:
      name: nightly
    spec:
      cronSpec: "0 3 * * *"
      image: backup:1
    """)


def _crd(group: str) -> str:
    return CRD_TEMPLATE.replace("{group}", group)


def _crontab(group: str) -> str:
    return CRONTAB_TEMPLATE.replace("{group}", group)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module (each test uses its own CRD group)."""
    cluster = start_cluster(Path(tmp_path_factory.mktemp("crds")) / "data")
    yield cluster
    cluster.stop()


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kube(request: pytest.FixtureRequest, running: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(request.param, running.kubeconfig, cache)


def _established(kubectl: Kubectl, group: str) -> bool:
    out = kubectl("get", "crd", f"crontabs.{group}", "-o",
                  "jsonpath={.status.conditions[?(@.type=='Established')].status}")
    return out == "True"


def test_crd_and_custom_resources_with_kubectl(kube: Kubectl) -> None:
    kubectl = kube
    group = f"k{len(kube.binary)}.example.com"
    CRD, CRONTAB = _crd(group), _crontab(group)
    kubectl("apply", "-f", "-", input=CRD)
    until(lambda: _established(kubectl, group), 5, "the CRD to be established")
    status = json.loads(kubectl("get", "crd", f"crontabs.{group}", "-o",
                                "jsonpath={.status}"))
    assert status["acceptedNames"]["shortNames"] == ["ct"]
    assert status["storedVersions"] == ["v1"]

    kubectl("apply", "-f", "-", input=CRONTAB)
    table = kubectl("get", "crontabs").splitlines()
    assert table[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert table[1].split()[:7] == ["nightly", "0", "3", "*", "*", "*", "1"]  # defaulted
    assert "IMAGE" in kubectl("get", "ct", "-o", "wide").splitlines()[0]
    assert f"crontab.{group}/nightly" in kubectl("get", "all")
    explained = kubectl("explain", "crontab.spec")
    assert "cronSpec" in explained and "The desired schedule." in explained

    kubectl("patch", "ct", "nightly", "--type=merge", "-p", '{"spec":{"image":"backup:2"}}')
    refused = kubectl.run("patch", "ct", "nightly", "-p", '{"spec":{"image":"x"}}',
                          check=False)
    assert refused.returncode != 0
    assert ("the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml") in refused.stderr
    kubectl("scale", "ct", "nightly", "--replicas=4")
    kubectl("patch", "ct", "nightly", "--subresource=status", "--type=merge", "-p",
            '{"status":{"replicas":4}}')
    obj = json.loads(kubectl("get", "ct", "nightly", "-o", "json"))
    assert (obj["spec"]["replicas"], obj["spec"]["image"], obj["status"]) == (
        4, "backup:2", {"replicas": 4})
    v1beta1 = json.loads(kubectl("get", f"crontabs.v1beta1.{group}", "nightly",
                                 "-o", "json"))
    assert v1beta1["apiVersion"] == f"{group}/v1beta1"

    invalid = kubectl.run("patch", "ct", "nightly", "--type=merge", "-p",
                          '{"spec":{"replicas":"many"}}', check=False)
    assert ('The CronTab "nightly" is invalid: spec.replicas: Invalid value: "string": '
            'spec.replicas in body must be of type integer: "string"') in invalid.stderr
    unknown = kubectl.run("apply", "-f", "-", check=False,
                          input=CRONTAB.replace("nightly", "other") + "  colour: red\n")
    assert ('CronTab in version "v1" cannot be handled as a CronTab: strict decoding error: '
            'unknown field "spec.colour"') in unknown.stderr

    kubectl("delete", "crd", f"crontabs.{group}", timeout=30)
    assert f"crontabs.{group}" not in kubectl("get", "crd")
    assert "crontabs" not in kubectl("api-resources", f"--api-group={group}")
    gone = kubectl.run("get", "--raw", f"/apis/{group}/v1/namespaces/default/crontabs",
                       check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_custom_objects_api(running: Cluster) -> None:
    api = config.new_client_from_config(str(running.kubeconfig))  # type: ignore[no-untyped-call]
    group = "py.example.com"
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(yaml.safe_load(_crd(group)))

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(f"crontabs.{group}")
        return any(c.type == "Established" and c.status == "True"
                   for c in crd.status.conditions or [])
    until(established, 5, "the CRD to be established")
    objects = client.CustomObjectsApi(api)
    args = (group, "v1", "default", "crontabs")
    created = objects.create_namespaced_custom_object(*args, yaml.safe_load(_crontab(group)))
    assert created["spec"]["replicas"] == 1
    got = objects.get_namespaced_custom_object(*args, "nightly")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    listed = objects.list_namespaced_custom_object(*args, label_selector="")
    assert listed["kind"] == "CronTabList"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["nightly"]
    patched = objects.patch_namespaced_custom_object(*args, "nightly",
                                                     {"spec": {"replicas": 2}})
    assert patched["spec"]["replicas"] == 2
    assert patched["metadata"]["generation"] == 2
    selected = objects.list_namespaced_custom_object(*args,
                                                     field_selector="metadata.name=other")
    assert selected["items"] == []
    objects.delete_namespaced_custom_object(*args, "nightly")
    with pytest.raises(client.ApiException) as missing:
        objects.get_namespaced_custom_object(*args, "nightly")
    assert missing.value.status == 404


def test_namespace_deletion_deletes_custom_resources(running: Cluster) -> None:
    api = config.new_client_from_config(str(running.kubeconfig))  # type: ignore[no-untyped-call]
    group = "ns.example.com"
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(yaml.safe_load(_crd(group)))
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "crs"}})
    objects = client.CustomObjectsApi(api)
    until(lambda: _try_create(objects, group), 5, "the custom resource to be served")
    core.delete_namespace("crs")

    def gone() -> bool:
        try:
            core.read_namespace("crs")
        except client.ApiException as exc:
            return exc.status == 404
        return False
    until(gone, 20, "the namespace to go")
    with pytest.raises(client.ApiException) as missing:
        objects.get_namespaced_custom_object(group, "v1", "crs", "crontabs", "nightly")
    assert missing.value.status == 404


def _try_create(objects: client.CustomObjectsApi, group: str) -> bool:
    try:
        objects.create_namespaced_custom_object(group, "v1", "crs", "crontabs",
                                                yaml.safe_load(_crontab(group)))
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True

"""The official Python client against the kinds issue 12 added, as its own e2e suite calls them
(kubernetes-client/python `kubernetes/e2e_test`): RBAC create/read/list/delete, the two
versions of HorizontalPodAutoscaler and of Event over one storage each, the token and access
reviews, ComponentStatus and the `bindings` collection.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.conftest import Cluster, start_cluster


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("every-kind") / "data")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def api(running: Cluster) -> client.ApiClient:
    return config.new_client_from_config(str(running.kubeconfig))  # type: ignore[no-untyped-call]


def test_cluster_role_and_binding(api: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    role = client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name="e2e-reader", labels={"e2e": "rbac"}),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"],
                                   verbs=["get", "list"])])
    created = rbac.create_cluster_role(role)
    assert created.metadata.uid and created.rules[0].verbs == ["get", "list"]
    binding = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name="e2e-reader"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                  name="e2e-reader"),
        subjects=[client.RbacV1Subject(kind="User", name="alice",
                                       api_group="rbac.authorization.k8s.io")])
    rbac.create_cluster_role_binding(binding)
    read = rbac.read_cluster_role_binding("e2e-reader")
    assert (read.role_ref.kind, read.role_ref.name, read.subjects[0].name) == (
        "ClusterRole", "e2e-reader", "alice")
    listed = rbac.list_cluster_role(label_selector="e2e=rbac")
    assert [r.metadata.name for r in listed.items] == ["e2e-reader"]
    role_in_ns = client.V1Role(metadata=client.V1ObjectMeta(name="e2e-editor"), rules=[
        client.V1PolicyRule(api_groups=["apps"], resources=["deployments"], verbs=["*"])])
    rbac.create_namespaced_role("default", role_in_ns)
    assert rbac.read_namespaced_role("e2e-editor", "default").rules[0].verbs == ["*"]
    with pytest.raises(ApiException) as invalid:
        rbac.create_namespaced_role_binding("default", client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="bad"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Secret",
                                      name="x")))
    assert invalid.value.status == 422
    assert 'roleRef.kind: Unsupported value: "Secret"' in json.loads(invalid.value.body)[
        "message"]
    rbac.delete_cluster_role_binding("e2e-reader")
    rbac.delete_cluster_role("e2e-reader")
    rbac.delete_namespaced_role("e2e-editor", "default")
    with pytest.raises(ApiException) as gone:
        rbac.read_cluster_role("e2e-reader")
    assert gone.value.status == 404


def _update_retrying(read: Any, replace: Any, change: Any, name: str = "web",
                     namespace: str = "default") -> None:
    for _ in range(10):
        obj = read(name, namespace)
        change(obj)
        try:
            replace(name, namespace, obj)
            return
        except client.exceptions.ApiException as failed:
            if failed.status != 409:
                raise
    raise AssertionError("ten conflicts in a row")


def test_hpa_v1_and_v2_are_one_object(api: client.ApiClient) -> None:
    v1 = client.AutoscalingV1Api(api)
    v2 = client.AutoscalingV2Api(api)
    v1.create_namespaced_horizontal_pod_autoscaler("default", client.V1HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V1CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="web"),
            max_replicas=4, target_cpu_utilization_percentage=60)))
    as_v2 = v2.read_namespaced_horizontal_pod_autoscaler("web", "default")
    assert as_v2.spec.min_replicas == 1  # defaulted
    metric = as_v2.spec.metrics[0]
    assert (metric.type, metric.resource.name, metric.resource.target.type,
            metric.resource.target.average_utilization) == ("Resource", "cpu", "Utilization", 60)

    # The HPA controller writes the status meanwhile: a read-modify-write retries on 409,
    # as every client of a controlled object must.
    def add_pods_metric(hpa: Any) -> None:
        hpa.spec.metrics.append(client.V2MetricSpec(type="Pods", pods=client.V2PodsMetricSource(
            metric=client.V2MetricIdentifier(name="qps"),
            target=client.V2MetricTarget(type="AverageValue", average_value="10"))))

    # a v2-only metric survives a v1 read-modify-write in kube's annotation
    _update_retrying(v2.read_namespaced_horizontal_pod_autoscaler,
                     v2.replace_namespaced_horizontal_pod_autoscaler, add_pods_metric)
    as_v1 = v1.read_namespaced_horizontal_pod_autoscaler("web", "default")
    assert as_v1.spec.target_cpu_utilization_percentage == 60
    assert "autoscaling.alpha.kubernetes.io/metrics" in as_v1.metadata.annotations

    def raise_max(hpa: Any) -> None:
        hpa.spec.max_replicas = 6

    _update_retrying(v1.read_namespaced_horizontal_pod_autoscaler,
                     v1.replace_namespaced_horizontal_pod_autoscaler, raise_max)
    again = v2.read_namespaced_horizontal_pod_autoscaler("web", "default")
    assert again.spec.max_replicas == 6
    assert [m.type for m in again.spec.metrics] == ["Resource", "Pods"]
    assert "autoscaling.alpha.kubernetes.io/metrics" not in (again.metadata.annotations or {})


def test_events_k8s_io_and_core_events_share_storage(api: client.ApiClient) -> None:
    events = client.EventsV1Api(api)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    events.create_namespaced_event("default", client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="e2e-event"), event_time=now,
        reporting_controller="example.com/e2e", reporting_instance="e2e-0", action="Tested",
        reason="Tested", type="Normal", note="the e2e ran",
        regarding=client.V1ObjectReference(kind="Pod", name="p", namespace="default")))
    core = client.CoreV1Api(api).read_namespaced_event("e2e-event", "default")
    assert (core.message, core.involved_object.name, core.reporting_component) == (
        "the e2e ran", "p", "example.com/e2e")
    listed = events.list_namespaced_event("default", field_selector="metadata.name=e2e-event")
    assert [(e.note, e.regarding.kind) for e in listed.items] == [("the e2e ran", "Pod")]


def _post(api: client.ApiClient, path: str, body: dict[str, Any]) -> Any:
    return api.call_api(path, "POST", body=body, response_type="object", auth_settings=[
        "BearerToken"], _return_http_data_only=True)


def test_token_and_access_reviews(api: client.ApiClient, running: Cluster) -> None:
    token = (running.data_dir / "admin.token").read_text().strip()
    auth = client.AuthenticationV1Api(api)
    good = auth.create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token=token)))
    assert good.status.authenticated and good.status.user.username == "tinykube-admin"
    bad = auth.create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token="not-a-token")))
    assert bad.status.authenticated is False
    authz = client.AuthorizationV1Api(api)
    review = authz.create_subject_access_review(client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user="alice", resource_attributes=(
            client.V1ResourceAttributes(verb="get", resource="pods", namespace="default")))))
    assert not review.status.allowed  # RBAC grants alice nothing yet
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding("default", {
        "metadata": {"name": "alice-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": "alice"}]})
    review = authz.create_subject_access_review(client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user="alice", resource_attributes=(
            client.V1ResourceAttributes(verb="get", resource="pods", namespace="default")))))
    assert review.status.allowed
    local = authz.create_namespaced_local_subject_access_review("default",
        client.V1LocalSubjectAccessReview(
            metadata=client.V1ObjectMeta(namespace="default"),
            spec=client.V1SubjectAccessReviewSpec(user="alice", resource_attributes=(
                client.V1ResourceAttributes(verb="list", resource="pods",
                                            namespace="default")))))
    assert local.status.allowed
    with pytest.raises(ApiException) as nobody:
        authz.create_subject_access_review(client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(resource_attributes=(
                client.V1ResourceAttributes(verb="get", resource="pods")))))
    assert nobody.value.status == 422
    assert "at least one of user or group must be specified" in json.loads(
        nobody.value.body)["message"]


def test_component_status_and_bindings(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    statuses = core.list_component_status()
    assert [(s.metadata.name, s.conditions[0].type, s.conditions[0].status)
            for s in statuses.items] == [("etcd-0", "Healthy", "True")]
    assert core.read_component_status("etcd-0").conditions[0].message == "ok"
    core.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="unbound"),
        spec=client.V1PodSpec(scheduler_name="nobody", containers=[
            client.V1Container(name="c", image="busybox")])))
    core.create_namespaced_binding("default", client.V1Binding(
        metadata=client.V1ObjectMeta(name="unbound"),
        target=client.V1ObjectReference(kind="Node", name="elsewhere")), _preload_content=False)
    assert core.read_namespaced_pod("unbound", "default").spec.node_name == "elsewhere"
    with pytest.raises(ApiException) as twice:
        core.create_namespaced_binding("default", client.V1Binding(
            metadata=client.V1ObjectMeta(name="unbound"),
            target=client.V1ObjectReference(kind="Node", name="other")),
            _preload_content=False)
    assert twice.value.status == 409
    core.delete_namespaced_pod("unbound", "default", grace_period_seconds=0)

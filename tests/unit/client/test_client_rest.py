"""RESTClient: paths, Status -> error mapping, request shapes (verbs, patch types), watch stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fake_kube_api import TOKEN, FakeKubeAPI, status

from tinykube.api import errors, resources
from tinykube.api.resources import Resource
from tinykube.client.rest import RESTClient, error_from_status, resource_path


def _res(group: str, version: str, plural: str) -> Resource:
    res = resources.lookup(group, version, plural)
    assert res is not None
    return res


SERVICES = _res("", "v1", "services")
NODES = _res("", "v1", "nodes")
SLICES = _res("discovery.k8s.io", "v1", "endpointslices")
DEPLOYMENTS = _res("apps", "v1", "deployments")


@pytest.mark.parametrize(("res", "namespace", "name", "sub", "path"), [
    pytest.param(SERVICES, "default", "web", None, "/api/v1/namespaces/default/services/web",
                 id="core-namespaced"),
    pytest.param(SERVICES, None, None, None, "/api/v1/services", id="core-all-namespaces"),
    pytest.param(NODES, "ignored", "n1", None, "/api/v1/nodes/n1", id="cluster-scoped"),
    pytest.param(SLICES, "kube-system", None, None,
                 "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
                 id="group-list"),
    pytest.param(DEPLOYMENTS, "ns", "d", "status",
                 "/apis/apps/v1/namespaces/ns/deployments/d/status", id="subresource"),
    pytest.param(SERVICES, "ns", "a b", None, "/api/v1/namespaces/ns/services/a%20b",
                 id="quoted-name"),
])
def test_resource_path(res: Resource, namespace: str | None, name: str | None, sub: str | None,
                       path: str) -> None:
    assert resource_path(res, namespace, name, sub) == path


NOT_FOUND = status(404, "NotFound", 'services "web" not found', name="web", kind="services")
INVALID = status(422, "Invalid", 'Service "web" is invalid: spec.ports[0].port: Invalid value',
                 name="web", kind="Service",
                 causes=[{"reason": "FieldValueInvalid", "field": "spec.ports[0].port",
                          "message": "Invalid value: 0"}])


@pytest.mark.parametrize(("code", "body", "content_type", "expected", "message"), [
    pytest.param(404, NOT_FOUND, "application/json", errors.NotFound,
                 'services "web" not found', id="404-notfound"),
    pytest.param(409, status(409, "AlreadyExists", "exists"), "application/json",
                 errors.AlreadyExists, "exists", id="409-alreadyexists"),
    pytest.param(409, status(409, "Conflict", "modified"), "application/json", errors.Conflict,
                 "modified", id="409-conflict"),
    pytest.param(409, {"kind": "Status", "code": 409}, "application/json", errors.Conflict,
                 "HTTP 409", id="409-no-reason"),
    pytest.param(410, status(410, "Expired", "too old"), "application/json", errors.Gone,
                 "too old", id="410-expired"),
    pytest.param(410, status(410, "Gone", "gone"), "application/json", errors.Gone, "gone",
                 id="410-gone"),
    pytest.param(422, INVALID, "application/json", errors.Invalid, INVALID["message"],
                 id="422-invalid"),
    pytest.param(403, status(403, "Forbidden", "no"), "application/json", errors.Forbidden,
                 "no", id="403"),
    pytest.param(401, "Unauthorized", "text/plain", errors.Unauthorized, "Unauthorized",
                 id="401-plain-text"),
    pytest.param(503, "", "text/plain", errors.ServiceUnavailable, "Service Unavailable",
                 id="503-empty-body"),
    pytest.param(504, status(504, "Timeout", "took too long"), "application/json",
                 errors.APIError, "took too long", id="unknown-reason-and-code"),
])
async def test_error_statuses_map_to_error_classes(
        fake_api: FakeKubeAPI, client: RESTClient, code: int, body: Any, content_type: str,
        expected: type[errors.APIError], message: str) -> None:
    payload = orjson.dumps(body) if isinstance(body, dict) else body.encode()
    path = "/api/v1/namespaces/default/services/web"
    fake_api.canned[("GET", path)] = (code, payload, content_type)
    with pytest.raises(errors.APIError) as caught:
        await client.get(SERVICES, "web", "default")
    exc = caught.value
    assert type(exc) is expected
    assert exc.code == code and exc.message == message
    assert exc.status["code"] == code  # type: ignore[attr-defined]
    if isinstance(body, dict):
        assert exc.status == body  # type: ignore[attr-defined]
        assert exc.details == body.get("details")


def test_invalid_keeps_details_for_callers() -> None:
    exc = error_from_status(INVALID, 422)
    assert isinstance(exc, errors.Invalid)
    assert (exc.kind, exc.name) == ("Service", "web")
    assert exc.details is not None and exc.details["causes"][0]["field"] == "spec.ports[0].port"
    assert exc.to_status()["message"] == INVALID["message"]


def _last(api: FakeKubeAPI) -> Any:
    return api.requests[-1]


@pytest.mark.parametrize(("patch_type", "content_type"), [
    pytest.param("merge", "application/merge-patch+json", id="merge"),
    pytest.param("strategic", "application/strategic-merge-patch+json", id="strategic"),
    pytest.param("json", "application/json-patch+json", id="json"),
])
async def test_patch_content_types(fake_api: FakeKubeAPI, client: RESTClient, patch_type: str,
                                   content_type: str) -> None:
    path = "/api/v1/namespaces/default/services/web/status"
    fake_api.canned[("PATCH", path)] = (200, b'{"kind": "Service"}', "application/json")
    body: Any = [{"op": "add", "path": "/x", "value": 1}] if patch_type == "json" else {"x": 1}
    result = await client.patch(SERVICES, "web", body, "default",
                                patch_type=patch_type, subresource="status")  # type: ignore[arg-type]
    assert result == {"kind": "Service"}
    request = _last(fake_api)
    assert request.headers["Content-Type"] == content_type
    assert orjson.loads(request.body) == body


async def test_verbs_send_the_right_requests(fake_api: FakeKubeAPI, client: RESTClient) -> None:
    base = "/api/v1/namespaces/ns/services"
    ok = (200, b"{}", "application/json")
    for method, path in (("POST", base), ("PUT", f"{base}/web"), ("DELETE", f"{base}/web"),
                         ("POST", "/api/v1/namespaces/ns/pods/p/binding"), ("GET", base)):
        fake_api.canned[(method, path)] = ok
    service = {"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "3"}}
    await client.create(SERVICES, service)
    await client.update(SERVICES, service)
    await client.delete(SERVICES, "web", "ns", propagation_policy="Foreground",
                        grace_period_seconds=0)
    await client.create(_res("", "v1", "pods"), {"target": {}}, "ns", subresource_name="p",
                        subresource="binding")
    await client.list(SERVICES, "ns", label_selector="app=web", limit=10, continue_="tok")
    sent = [(r.method, r.path) for r in fake_api.requests]
    assert sent == [("POST", base), ("PUT", f"{base}/web"), ("DELETE", f"{base}/web"),
                    ("POST", "/api/v1/namespaces/ns/pods/p/binding"), ("GET", base)]
    assert orjson.loads(fake_api.requests[2].body) == {
        "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0}
    assert fake_api.requests[4].query == {"labelSelector": "app=web", "limit": "10",
                                          "continue": "tok"}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake_api.requests)


async def test_watch_streams_events_then_raises_gone(fake_api: FakeKubeAPI,
                                                     client: RESTClient) -> None:
    fake_api.create("a")
    fake_api.create("big", note="x" * 300_000)  # one line far above aiohttp's read buffer
    fake_api.bookmark(advance_to=10)  # nobody is watching yet: not in history
    seen: list[tuple[str, str]] = []
    received: list[dict[str, Any]] = []
    async for event_type, obj in client.watch(SERVICES, "default", resource_version="0"):
        seen.append((event_type, obj["metadata"]["name"]))
        received.append(obj)
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "a"), ("ADDED", "big")]
    assert received[1]["note"] == "x" * 300_000
    query = fake_api.requests[-1].query
    assert query == {"watch": "true", "resourceVersion": "0", "allowWatchBookmarks": "true"}

    fake_api.compact()
    with pytest.raises(errors.Gone) as caught:
        async for _ in client.watch(SERVICES, "default", resource_version="2",
                                    timeout_seconds=30, allow_bookmarks=False):
            pass
    assert caught.value.status["reason"] == "Expired"  # type: ignore[attr-defined]
    assert fake_api.requests[-1].query == {"watch": "true", "resourceVersion": "2",
                                           "timeoutSeconds": "30"}


async def test_watch_request_error_is_mapped(fake_api: FakeKubeAPI, client: RESTClient) -> None:
    fake_api.canned[("GET", "/api/v1/namespaces/default/services")] = (
        403, orjson.dumps(status(403, "Forbidden", "no watch for you")), "application/json")
    with pytest.raises(errors.Forbidden, match="no watch for you"):
        async for _ in client.watch(SERVICES, "default", resource_version="1"):
            pass

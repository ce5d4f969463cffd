"""RequestInfo: requests resolved into authorization attributes as kube's factory does."""

from __future__ import annotations

import pytest

from tinykube.apiserver.request_info import Attributes, resolve


def res(verb: str, resource: str, *, group: str = "", version: str = "v1", ns: str = "",
        name: str = "", sub: str = "") -> Attributes:
    return Attributes(verb=verb, resource_request=True, api_group=group, api_version=version,
                      namespace=ns, resource=resource, subresource=sub, name=name)


def url(verb: str, path: str) -> Attributes:
    return Attributes(verb=verb, path=path)


P = "/api/v1/namespaces/default/pods"
CASES: dict[str, tuple[str, str, dict[str, str], Attributes]] = {
    "list": ("GET", P, {}, res("list", "pods", ns="default")),
    "watch": ("GET", P, {"watch": "true"}, res("watch", "pods", ns="default")),
    "watch=1": ("GET", P, {"watch": "1"}, res("watch", "pods", ns="default")),
    "legacy watch path": ("GET", "/api/v1/watch/namespaces/default/pods", {},
                          res("watch", "pods", ns="default")),
    "list by name": ("GET", P, {"fieldSelector": "metadata.name=web"},
                     res("list", "pods", ns="default", name="web")),
    "get": ("GET", P + "/web", {}, res("get", "pods", ns="default", name="web")),
    "head": ("HEAD", P + "/web", {}, res("get", "pods", ns="default", name="web")),
    "create": ("POST", P, {}, res("create", "pods", ns="default")),
    "update": ("PUT", P + "/web", {}, res("update", "pods", ns="default", name="web")),
    "patch": ("PATCH", P + "/web", {}, res("patch", "pods", ns="default", name="web")),
    "delete": ("DELETE", P + "/web", {}, res("delete", "pods", ns="default", name="web")),
    "deletecollection": ("DELETE", P, {}, res("deletecollection", "pods", ns="default")),
    "log": ("GET", P + "/web/log", {}, res("get", "pods", ns="default", name="web",
                                           sub="log")),
    "exec": ("POST", P + "/web/exec", {}, res("create", "pods", ns="default", name="web",
                                              sub="exec")),
    "all namespaces": ("GET", "/api/v1/pods", {}, res("list", "pods")),
    "grouped": ("GET", "/apis/apps/v1/namespaces/x/deployments/d/scale", {},
                res("get", "deployments", group="apps", ns="x", name="d", sub="scale")),
    "cluster scoped": ("GET", "/api/v1/nodes/n1", {}, res("get", "nodes", name="n1")),
    "namespace itself": ("GET", "/api/v1/namespaces/x", {},
                         res("get", "namespaces", ns="x", name="x")),
    "namespace status": ("PUT", "/api/v1/namespaces/x/status", {},
                         res("update", "namespaces", ns="x", name="x", sub="status")),
    "namespaces": ("GET", "/api/v1/namespaces", {}, res("list", "namespaces")),
    "token": ("POST", "/api/v1/namespaces/d/serviceaccounts/app/token", {},
              res("create", "serviceaccounts", ns="d", name="app", sub="token")),
    "version": ("GET", "/version", {}, url("get", "/version")),
    "healthz post": ("POST", "/healthz", {}, url("post", "/healthz")),
    "discovery core": ("GET", "/api", {}, url("get", "/api")),
    "discovery core version": ("GET", "/api/v1", {}, url("get", "/api/v1")),
    "discovery group": ("GET", "/apis/apps", {}, url("get", "/apis/apps")),
    "discovery group version": ("GET", "/apis/apps/v1", {}, url("get", "/apis/apps/v1")),
    "openapi": ("GET", "/openapi/v3/api/v1", {}, url("get", "/openapi/v3/api/v1")),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_resolve(case: str) -> None:
    method, path, query, expected = CASES[case]
    got = resolve(method, path, query)
    assert got == Attributes(**{**expected.__dict__, "path": path})

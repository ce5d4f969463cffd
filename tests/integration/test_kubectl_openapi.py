"""`/openapi/v2` against the real kubectls: what they print for a kind nobody serves.

kubectl validates an object whose group-version the v3 index lacks (or whose kind the v3
document lacks) against `/openapi/v2`, fetched as gnostic protobuf; with no v2 document it
stopped with "the server could not find the requested resource" (issue 9, item 20).
"""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import TESTDATA, Cluster, Kubectl
from tests.integration.api_http import Server

pytestmark = [pytest.mark.kubectl]

WIDGET = """
apiVersion: {api_version}
kind: {kind}
metadata:
  name: w
"""
PROTOBUF_ASKED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@pytest.mark.parametrize(("api_version", "kind"), [
    ("foo.example.com/v1", "Widget"),
    ("apps/v1", "Deploymentt"),
    ("v1", "Servicee"),
], ids=["unknown-group-version", "unknown-kind-in-apps-v1", "unknown-kind-in-core-v1"])
def test_apply_of_an_unknown_kind_prints_no_matches_for_kind(
        kubectl: Kubectl, api_version: str, kind: str) -> None:
    result = kubectl.run("apply", "-f", "-", check=False,
                         input=WIDGET.format(api_version=api_version, kind=kind))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'error: resource mapping not found for name: "w" namespace: "" from "STDIN": '
        f'no matches for kind "{kind}" in version "{api_version}"',
        "ensure CRDs are installed first",
    ]


def test_apply_create_update_and_explain_still_work(kubectl: Kubectl) -> None:
    """kubectl's apply now also reads v2 for patch strategies: a second apply must still
    compute the same merge, and explain still reads v3."""
    manifest = (TESTDATA / "web.yaml").read_text()
    kubectl("apply", "-f", "-", input=manifest)
    changed = kubectl("apply", "-f", "-", input=manifest.replace("replicas: 1", "replicas: 3"))
    assert "statefulset.apps/web configured" in changed
    assert kubectl("get", "sts", "web", "-o", "jsonpath={.spec.replicas}") == "3"
    assert "FIELD: clusterIP <string>" in kubectl("explain", "svc.spec.clusterIP")


@pytest.mark.parametrize(("accept", "content_type"), [
    (PROTOBUF_ASKED, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    ("application/json", "application/json"),
], ids=["protobuf", "json"])
def test_openapi_v2_is_served_with_an_etag(cluster: Cluster, accept: str,
                                           content_type: str) -> None:
    conn = Server(cluster.url, cluster.data_dir).connect()
    reply = conn.request("GET", "/openapi/v2", headers={"Accept": accept})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    etag = reply.headers["ETag"]
    assert etag == f'"{hashlib.sha512(reply.body).hexdigest().upper()}"'
    again = conn.request("GET", "/openapi/v2", headers={"Accept": accept, "If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")
    assert conn.request("GET", "/openapi/v2", headers={"Accept": "text/html"}).status == 406
    conn.close()

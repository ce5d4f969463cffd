"""Every active namespace gets a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.controllers.serviceaccounts import Plan, plan

NS: dict[str, Any] = {"metadata": {"name": "demo"}}
TERMINATING: dict[str, Any] = {"metadata": {"name": "demo", "deletionTimestamp": "now"}}
ROOT_CA = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "kube-root-ca.crt", "namespace": "demo"}, "data": {"ca.crt": "CA"}}
STALE = {**ROOT_CA, "metadata": {**ROOT_CA["metadata"], "resourceVersion": "7"},
         "data": {"ca.crt": "old"}}


@pytest.mark.parametrize(("namespace", "has_account", "root_ca", "ca", "expected"), [
    pytest.param(NS, False, None, "CA", Plan(True, ROOT_CA), id="new-namespace"),
    pytest.param(NS, True, ROOT_CA, "CA", Plan(), id="all-there"),
    pytest.param(NS, True, STALE, "CA",
                 Plan(False, {**ROOT_CA, "metadata": STALE["metadata"]}, True),
                 id="changed-data-is-put-back"),
    pytest.param(NS, False, None, None, Plan(True), id="plain-http-has-no-ca"),
    pytest.param(TERMINATING, False, None, "CA", Plan(), id="terminating"),
    pytest.param(None, False, None, "CA", Plan(), id="gone"),
])
def test_plan(namespace: dict[str, Any] | None, has_account: bool,
              root_ca: dict[str, Any] | None, ca: str | None, expected: Plan) -> None:
    assert plan(namespace, has_account=has_account, root_ca=root_ca, ca_bundle=ca) == expected

"""The ResourceQuota controller's decisions: which quota events call for a recomputation."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.controllers.resourcequota import needs_sync, served

Obj = dict[str, Any]


def rq(hard: dict[str, str], status: Obj | None = None) -> Obj:
    body: Obj = {"metadata": {"name": "q"}, "spec": {"hard": hard}}
    if status is not None:
        body["status"] = status
    return body


SYNCED = {"hard": {"pods": "2"}, "used": {"pods": "1"}}


@pytest.mark.parametrize(("old", "new", "wanted"), [
    pytest.param(None, rq({"pods": "2"}), True, id="new"),
    pytest.param(rq({"pods": "2"}, SYNCED), rq({"pods": "3"}, SYNCED), True, id="hard-changed"),
    pytest.param(rq({"pods": "2"}, SYNCED), rq({"pods": "2"}, {**SYNCED, "used": {"pods": "2"}}),
                 False, id="status-write-ignored"),
    pytest.param(rq({"pods": "2"}), rq({"pods": "2"}), True, id="never-synced"),
    pytest.param(rq({"pods": "2"}, SYNCED), rq({"pods": "2"}, {"hard": {"pods": "2"}}), True,
                 id="used-missing"),
    pytest.param(rq({"cpu": "1000m"}, {"hard": {"cpu": "1"}, "used": {"cpu": "0"}}),
                 rq({"cpu": "1000m"}, {"hard": {"cpu": "1"}, "used": {"cpu": "500m"}}), False,
                 id="same-value-other-spelling"),
])
def test_needs_sync(old: Obj | None, new: Obj, wanted: bool) -> None:
    assert needs_sync(old, new) is wanted


@pytest.mark.parametrize(("group", "plural", "version"), [
    pytest.param("apps", "deployments", "v1", id="apps"),
    pytest.param("batch", "jobs", "v1", id="batch"),
    pytest.param("", "nodes", None, id="cluster-scoped"),
    pytest.param("example.com", "widgets", None, id="not-served"),
])
def test_served(group: str, plural: str, version: str | None) -> None:
    res = served(group, plural)
    assert (res.version if res else None) == version

"""A failed resourceVersion precondition on etcd (`store.etcd.precondition_failed`): when the
client names a version newer than this server's cache (another server answered it), the
request is to run again after a consistent read (`StaleCache`); otherwise, and always with
SQLite, it is the Conflict."""

from __future__ import annotations

import pytest

from tinykube.api import errors
from tinykube.store.etcd import StaleCache, precondition_failed

CASES = [
    ("120", 100, True, True),  # the cache is behind what the client saw
    ("100", 100, True, False),  # the cache holds it: the object changed since
    ("90", 100, True, False),  # an older version: a real conflict
    ("120", 100, False, False),  # SQLite: the cache is the store
    ("abc", 100, True, False),  # not a number: the Conflict, as before
]


@pytest.mark.parametrize(("expected", "cache_rv", "lags", "stale"), CASES)
def test_precondition_failed(expected: str, cache_rv: int, lags: bool, stale: bool) -> None:
    conflict = errors.Conflict.modified("configmaps", "", "c")
    got = precondition_failed(conflict, expected, cache_rv, lags)
    assert isinstance(got, StaleCache) is stale
    assert isinstance(got, errors.Conflict) and got.message == conflict.message
    assert got.details == conflict.details

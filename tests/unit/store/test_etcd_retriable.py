"""Which refusals of etcd a request of the etcd store tries again (`store.etcd.retriable`):
a cut-off member's `no leader` for any request (it ran none of it); for reads also a leader
change or a member's timeout, as clientv3 retries its immutable requests; never a write that
etcd may have committed."""

from __future__ import annotations

import pytest

from tinykube.store.etcd import retriable

CASES = [
    ("etcdserver: no leader", False, True),
    ("etcdserver: no leader", True, True),
    ("etcdserver: leader changed", True, True),
    ("etcdserver: leader changed", False, False),
    ("etcdserver: request timed out", True, True),
    ("etcdserver: request timed out", False, False),
    ("etcdserver: mvcc: required revision has been compacted", True, False),
    ("etcdserver: permission denied", True, False),
    ("UNAVAILABLE", True, False),  # no member reachable: the channel has tried them all
]


@pytest.mark.parametrize(("message", "read", "expected"), CASES)
def test_retriable(message: str, read: bool, expected: bool) -> None:
    assert retriable(message, read=read) is expected

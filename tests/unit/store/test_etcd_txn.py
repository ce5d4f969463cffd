"""The transactions the etcd store sends: what each write compares and what it does."""

from __future__ import annotations

import pytest

from tinykube.store.etcd import EtcdConfig, decode, encode, plan_write

KEY = b"/registry/services/specs/default/web"
IP1, IP2 = b"/registry/ranges/serviceips/10.96.0.7", b"/registry/ranges/serviceips/10.96.0.8"
PORT = b"/registry/ranges/servicenodeports/30080"
SVC1 = {"clusterIPs": ["10.96.0.7"], "ports": [{"port": 80}]}
SVC2 = {"clusterIPs": ["10.96.0.8"], "ports": [{"port": 80, "nodePort": 30080}]}

PLANS = [  # (kind, expected, old spec, new spec, compares, ops)
    ("ADDED", None, None, None, [(KEY, "create", 0)], [("put", KEY, b"v")]),
    ("MODIFIED", 41, None, None, [(KEY, "mod", 41)], [("put", KEY, b"v")]),
    ("DELETED", 41, None, None, [(KEY, "mod", 41)], [("delete", KEY, b"")]),
    # a Service takes its address with it, in the same transaction
    ("ADDED", None, {}, SVC1, [(KEY, "create", 0), (IP1, "create", 0)],
     [("put", KEY, b"v"), ("put", IP1, KEY)]),
    # keeps what it had, takes what is new, frees what it gave up
    ("MODIFIED", 50, SVC1, SVC2, [(KEY, "mod", 50), (IP2, "create", 0), (PORT, "create", 0)],
     [("put", KEY, b"v"), ("put", IP2, KEY), ("put", PORT, KEY), ("delete", IP1, b"")]),
    ("MODIFIED", 50, SVC1, SVC1, [(KEY, "mod", 50)], [("put", KEY, b"v")]),
    ("DELETED", 60, SVC2, {}, [(KEY, "mod", 60)],
     [("delete", KEY, b""), ("delete", IP2, b""), ("delete", PORT, b"")]),
]


@pytest.mark.parametrize(("kind", "expected", "old", "new", "compares", "ops"), PLANS)
def test_plan(kind: str, expected: int | None, old: dict[str, object] | None,
              new: dict[str, object] | None, compares: list[tuple[bytes, str, int]],
              ops: list[tuple[str, bytes, bytes]]) -> None:
    plan = plan_write(kind, KEY, b"v", expected, old, new, owner=KEY)
    assert list(plan.compares) == compares
    assert list(plan.ops) == ops
    assert list(plan.guarded) == [k for k, _, _ in compares[1:]]


def test_stored_value_leaves_out_the_resource_version() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}}
    assert b"resourceVersion" not in encode(obj)
    assert decode(encode(obj), 12)["metadata"] == {"name": "a", "resourceVersion": "12"}


@pytest.mark.parametrize(("url", "endpoints", "tls"), [
    ("etcd://127.0.0.1:2379", ("127.0.0.1:2379",), False),
    ("etcds://10.0.0.1:2379,10.0.0.2:2379", ("10.0.0.1:2379", "10.0.0.2:2379"), True),
])
def test_config(url: str, endpoints: tuple[str, ...], tls: bool) -> None:
    config = EtcdConfig.parse(url)
    assert (config.endpoints, config.tls) == (endpoints, tls)


@pytest.mark.parametrize("url", ["http://127.0.0.1:2379", "etcd://", "etcd://host",
                                 "etcd://host:port"])
def test_bad_config(url: str) -> None:
    with pytest.raises(ValueError):
        EtcdConfig.parse(url)

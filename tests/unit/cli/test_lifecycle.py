"""Tables for the lifecycle commands' pure parts: merging kubeconfigs, picking a component's
log lines."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.cli.lifecycle import merge_kubeconfig, selected


def config(*names: str, current: str | None = None, server: str = "s") -> dict[str, Any]:
    return {"clusters": [{"name": n, "cluster": {"server": server}} for n in names],
            "users": [{"name": n, "user": {"token": "t"}} for n in names],
            "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in names],
            "current-context": current or (names[0] if names else None)}


@pytest.mark.parametrize(("target", "source", "names", "current"), [
    ({}, config("tinykube-a"), ["tinykube-a"], "tinykube-a"),
    (config("kind-kind"), config("tinykube-a"), ["kind-kind", "tinykube-a"], "tinykube-a"),
    (config("tinykube-a", "tinykube-b", current="tinykube-b"), config("tinykube-a"),
     ["tinykube-b", "tinykube-a"], "tinykube-a"),
], ids=["into-empty", "beside-another", "replaces-same-name"])
def test_merge_kubeconfig(target: dict[str, Any], source: dict[str, Any], names: list[str],
                          current: str) -> None:
    merged = merge_kubeconfig(target, source)
    for section in ("clusters", "users", "contexts"):
        assert [e["name"] for e in merged[section]] == names
    assert merged["current-context"] == current


def test_merge_replaces_the_old_server() -> None:
    merged = merge_kubeconfig(config("tinykube-a", server="old"),
                              config("tinykube-a", server="new"))
    assert merged["clusters"] == [{"name": "tinykube-a", "cluster": {"server": "new"}}]


LOG = [
    "default runtime: virtual (...)",
    "2026-12-02 03:00:00,001 WARNING tinykube.dns.server: slow upstream",
    "2026-12-02 03:00:00,002 ERROR tinykube.kubelet.agent: pod failed",
    "Traceback (most recent call last):",
    "  File x",
    "2026-12-02 03:00:00,003 INFO tinykube.dns.controller: synced",
    "2026-12-02 03:00:00,004 INFO tinykube.apiserver.server: listening",
]


@pytest.mark.parametrize(("component", "expected"), [
    (None, LOG),
    ("dns", [LOG[1], LOG[5]]),
    ("kubelet", [LOG[2], LOG[3], LOG[4]]),  # the traceback goes with its record
    ("apiserver", [LOG[6]]),
    ("proxy", []),
])
def test_selected_lines(component: str | None, expected: list[str]) -> None:
    assert list(selected(iter(LOG), component, [False])) == expected

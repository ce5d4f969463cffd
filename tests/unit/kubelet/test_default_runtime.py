"""`tinykube up`'s default runtime choice and `--registry-mirror` parsing (cli/up.py)."""

from __future__ import annotations

import shutil

import click
import pytest

from tinykube.cli import up


@pytest.mark.parametrize(("given", "network", "runc", "expected"), [
    pytest.param(None, "netns", True, "container", id="netns-with-runc"),
    pytest.param(None, "netns", False, "virtual", id="netns-without-runc"),
    pytest.param(None, "host", True, "virtual", id="host-mode"),
    pytest.param("process", "netns", True, "process", id="flag-wins"),
])
def test_choose_default_runtime(monkeypatch: pytest.MonkeyPatch, given: str | None,
                                network: str, runc: bool, expected: str) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/sbin/runc" if runc else None)
    runtime, why = up.choose_default_runtime(given, network)
    assert runtime == expected and why


def test_container_flag_without_runc_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(click.UsageError, match="install the runc package"):
        up.choose_default_runtime("container", "netns")


@pytest.mark.parametrize(("values", "expected"), [
    pytest.param(("mirror.local:5000",), {"docker.io": ["mirror.local:5000"]}, id="hub"),
    pytest.param(("http://m:1", "quay.io=q:2", "quay.io=q:3"),
                 {"docker.io": ["http://m:1"], "quay.io": ["q:2", "q:3"]}, id="several"),
])
def test_parse_mirrors(values: tuple[str, ...], expected: dict[str, list[str]]) -> None:
    assert up.parse_mirrors(values) == expected

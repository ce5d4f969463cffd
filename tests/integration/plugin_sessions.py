"""Helpers for the pytest plugin's pytester tests: how to load the plugin in an inner
session, and what a session may leave behind."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


def plugin_args() -> list[str]:
    """`-p` the plugin unless this tinykube is installed with its entry point (then pytest
    loads it by itself, and a second registration would fail)."""
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if "tinykube" in names else ["-p", "tinykube.pytest_plugin"]


def data_dirs(tmp: Path) -> list[Path]:
    """The plugin's data directories under `tmp` (the clients make temporary files of their
    own there: the official ones write the kubeconfig's CA to one)."""
    return list(tmp.glob("tinykube-pytest-*"))


def tinykube_processes(root: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(root) in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found

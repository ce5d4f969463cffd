"""The DNS workers' command lines (`dns.workers.worker_argv`) as a table, and the `up` flag
combinations `--dns-workers` refuses. The processes themselves are test_dns_workers.py's."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tinykube.cli import up
from tinykube.dns.app import DNSOptions
from tinykube.dns.workers import worker_argv

BASE = ["py", "-m", "tinykube", "dns", "--join"]


@pytest.mark.parametrize(("options", "address", "kubeconfig", "rest"), [
    pytest.param(DNSOptions(upstream=None), ("127.0.0.1", 15353), None,
                 ["--listen", "127.0.0.1:15353", "--fallback-port", "0", "--cluster-domain",
                  "cluster.local", "--ttl", "5", "--pod-records", "insecure",
                  "--upstream", "none"], id="defaults, no upstream"),
    pytest.param(DNSOptions(upstream=[("10.0.0.2", 53), ("fd00::1", 5353)], domain="corp",
                            ttl=30, pod_records="verified", log_queries=True),
                 ("::1", 53), "/d/kubeconfig",
                 ["--listen", "[::1]:53", "--fallback-port", "0", "--cluster-domain", "corp",
                  "--ttl", "30", "--pod-records", "verified",
                  "--upstream", "10.0.0.2:53,[fd00::1]:5353", "--kubeconfig", "/d/kubeconfig",
                  "--log-queries"], id="everything given, IPv6"),
])
def test_worker_argv(options: DNSOptions, address: tuple[str, int], kubeconfig: str | None,
                     rest: list[str]) -> None:
    assert worker_argv(options, address, kubeconfig, python="py") == BASE + rest


@pytest.mark.parametrize(("args", "words"), [
    pytest.param(("--network", "netns"), "--dns-workers applies to the host network only",
                 id="netns"),
    pytest.param(("--test-clock",), "--dns-workers does not go with --test-clock",
                 id="test-clock"),
])
def test_up_refuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: tuple[str, ...],
                    words: str) -> None:
    monkeypatch.setattr(up, "check_netns_mode", lambda *_: None)
    monkeypatch.setattr(up, "spawn_components", lambda: pytest.fail("started"))
    monkeypatch.setattr(up, "spawn_rootless_components", lambda: pytest.fail("started"))
    result = CliRunner().invoke(up.command, ["--data-dir", str(tmp_path), "--dns-workers", "2",
                                             *args])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())

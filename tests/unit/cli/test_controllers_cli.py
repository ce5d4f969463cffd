"""`tinykube controllers` and `up` refuse leader election durations that cannot work, as
client-go refuses them; `tinykube node` says what a join needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tinykube.cli.main import cli

REFUSED = [
    (["--leader-elect-lease-duration", "5s"],
     "the lease duration must be greater than the renew deadline"),
    (["--leader-elect-renew-deadline", "2s"],
     "the renew deadline must be greater than 1.2 times the retry period"),
    (["--leader-elect-retry-period", "soon"], "is not a duration"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED)
def test_bad_durations_are_refused(args: list[str], message: str, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")
    result = CliRunner().invoke(cli, ["controllers", "--kubeconfig", str(config), *args])
    assert result.exit_code == 2 and message in result.output, result.output


NODE = [
    (["--name", "n2", "--token", "abcdef.0123456789abcdef"],
     "--token needs --server and --ca-cert-hash"),
    (["--name", "n2"], "name the cluster with --kubeconfig, or join with --token"),
]


@pytest.mark.parametrize(("args", "message"), NODE)
def test_node_says_what_a_join_needs(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["node", *args, "--data-dir", str(tmp_path / "n")])
    assert result.exit_code == 2 and message in result.output, result.output

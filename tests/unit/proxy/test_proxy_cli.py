"""`tinykube proxy` is registered and documents its options."""

from __future__ import annotations

from click.testing import CliRunner

from tinykube.cli.main import cli


def test_proxy_command_help() -> None:
    result = CliRunner().invoke(cli, ["proxy", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--kubeconfig", "--min-sync-interval", "--udp-idle-timeout"):
        assert option in result.output

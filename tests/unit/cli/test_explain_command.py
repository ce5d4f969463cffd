"""`tinykube explain` argument handling (the explanations themselves: tests/unit/explain)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tinykube.cli.main import cli


@pytest.mark.parametrize(("args", "message"), [
    (["explain", "a", "b"], "expected NAME or `service NAME`"),
    (["explain", "service", "a", "b"], "expected NAME or `service NAME`"),
    (["explain", "nginx", "--type", "MX"], "'MX' is not one of"),
    (["explain"], "Missing argument"),
], ids=["two-names", "three-words", "bad-type", "nothing"])
def test_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_listed_in_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "explain" in result.output

"""`tinykube up --metric-resolution`: Go-style durations, as metrics-server's flag takes them."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from tinykube.cli import up


@pytest.mark.parametrize(("text", "seconds"), [
    ("15s", 15.0), ("500ms", 0.5), ("1m", 60.0), ("1h", 3600.0), ("2", 2.0), ("1.5s", 1.5),
    ("0.1", 0.1),
])
def test_durations(text: str, seconds: float) -> None:
    assert up.parse_duration(text, "--metric-resolution") == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("fast", "'fast' is not a duration such as 15s, 500ms or 1m"),
    ("1h30m", "'1h30m' is not a duration such as 15s, 500ms or 1m"),
    ("15x", "'15x' is not a duration such as 15s, 500ms or 1m"),
    ("50ms", "'50ms' is shorter than 100ms"),
    ("0", "'0' is shorter than 100ms"),
])
def test_refused(text: str, message: str) -> None:
    with pytest.raises(click.BadParameter, match=message):
        up.parse_duration(text, "--metric-resolution")


def test_a_bad_value_is_a_usage_error() -> None:
    result = CliRunner().invoke(up.command, ["--metric-resolution", "soon"])
    assert result.exit_code == 2
    assert "Invalid value for --metric-resolution: 'soon' is not a duration" in result.output

"""`tinykube up --ui-listen`: a bad address is refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tinykube.cli import up


@pytest.mark.parametrize("address", ["nope", "127.0.0.1:", ":80"])
def test_a_bad_ui_address_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           address: str) -> None:
    monkeypatch.setattr(up, "spawn_components", lambda: pytest.fail("started"))
    result = CliRunner().invoke(up.command, ["--data-dir", str(tmp_path), "--ui-listen",
                                             address])
    assert result.exit_code == 2
    assert f"Invalid value for --ui-listen: expected HOST:PORT, got '{address}'" in \
        result.output

"""`tinykube up --network netns` as an unprivileged user: what it refuses, in its words."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tinykube.cli import up
from tinykube.network import userns


@pytest.mark.parametrize(("missing", "args", "words"), [
    pytest.param("user namespaces are disabled: the sysctl user.max_user_namespaces is 0 "
                 "(an administrator can raise it)", (),
                 "here user namespaces are disabled: the sysctl user.max_user_namespaces is 0",
                 id="no-user-namespaces"),
    pytest.param("`nft` is not installed: install the nftables package", (),
                 "here `nft` is not installed", id="no-nft"),
    pytest.param(None, ("--single-process",), "--single-process cannot be used with rootless",
                 id="single-process"),
])
def test_rootless_up_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          missing: str | None, args: tuple[str, ...],
                                          words: str) -> None:
    monkeypatch.setattr(up.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(userns, "missing", lambda proxy=True: missing)
    monkeypatch.setattr(up, "spawn_rootless_components", lambda: pytest.fail("started"))
    result = CliRunner().invoke(up.command, ["--network", "netns", "--data-dir",
                                             str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())


def test_rootless_default_runtime_is_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up.os, "geteuid", lambda: 1000)
    runtime, why = up.choose_default_runtime(None, "netns")
    assert runtime == "process" and "runc containers are not run rootless" in why

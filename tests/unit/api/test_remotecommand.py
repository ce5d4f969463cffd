"""The remote command protocol's pure parts: frames, the final Status, window sizes."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api import remotecommand


@pytest.mark.parametrize(("message", "parsed"), [
    (b"\x01hello", (1, b"hello")),
    (b"\x03", (3, b"")),
    (b"\xff\x00", (255, b"\x00")),
    (b"", (-1, b"")),
])
def test_parse(message: bytes, parsed: tuple[int, bytes]) -> None:
    assert remotecommand.parse(message) == parsed
    if message:
        assert remotecommand.frame(*parsed) == message


@pytest.mark.parametrize(("code", "status"), [
    (0, {"metadata": {}, "status": "Success"}),
    (7, {"metadata": {}, "status": "Failure",
         "message": "command terminated with non-zero exit code: exit status 7",
         "reason": "NonZeroExitCode",
         "details": {"causes": [{"reason": "ExitCode", "message": "7"}]}}),
])
def test_exit_status(code: int, status: dict[str, Any]) -> None:
    assert remotecommand.exit_status(code) == status


@pytest.mark.parametrize(("data", "size"), [
    (b'{"Width": 80, "Height": 24}', (24, 80)),
    (b'{"Width": 80}', None),
    (b"not json", None),
    (b"[1, 2]", None),
    (b"[" * 100_000, None),  # a hostile resize message: no RecursionError
])
def test_window_size(data: bytes, size: tuple[int, int] | None) -> None:
    assert remotecommand.window_size(data) == size

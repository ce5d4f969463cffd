"""Container logs: rendering options, runs and `previous`, the size bound, following."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path

import pytest

from tinykube.kubelet.logs import ContainerLog, render, since_cutoff

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
RECORDS = [b"2026-01-01T00:00:01.000000000Z one\n", b"2026-01-01T00:00:02.000000000Z two\n",
           b"2026-01-01T00:00:03.000000000Z three\n"]


@pytest.mark.parametrize(("options", "expected"), [
    pytest.param({}, b"one\ntwo\nthree\n", id="plain"),
    pytest.param({"timestamps": True}, b"".join(RECORDS), id="timestamps"),
    pytest.param({"tail": 2}, b"two\nthree\n", id="tail"),
    pytest.param({"tail": 0}, b"", id="tail-zero"),
    pytest.param({"since": since_cutoff(T0 + datetime.timedelta(seconds=2))},
                 b"two\nthree\n", id="since"),
    pytest.param({"limit": 6}, b"one\ntw", id="limit-bytes"),
])
def test_render(options: dict[str, object], expected: bytes) -> None:
    assert render(RECORDS, timestamps=bool(options.pop("timestamps", False)),
                  **options) == expected  # type: ignore[arg-type]


def fixed_log(tmp_path: Path, max_bytes: int = 1 << 20) -> ContainerLog:
    ticks = itertools.count(1)
    return ContainerLog(tmp_path, max_bytes=max_bytes,
                        now=lambda: T0 + datetime.timedelta(seconds=next(ticks)))


def test_lines_are_stamped_and_partial_lines_wait(tmp_path: Path) -> None:
    log = fixed_log(tmp_path)
    log.start_run()
    log.write(b"one\ntw")
    log.write(b"o\n")
    log.write(b"tail without newline")
    log.end_run()
    assert log.records() == [b"2026-01-01T00:00:01.000000000Z one\n",
                             b"2026-01-01T00:00:02.000000000Z two\n",
                             b"2026-01-01T00:00:03.000000000Z tail without newline\n"]


def test_a_new_run_moves_the_last_one_to_previous(tmp_path: Path) -> None:
    log = fixed_log(tmp_path)
    assert not log.has_previous()
    for text in (b"first\n", b"second\n", b"third\n"):
        log.start_run()
        log.write(text)
        log.end_run()
    assert render(log.records(), timestamps=False) == b"third\n"
    assert render(log.records(previous=True), timestamps=False) == b"second\n"


def test_size_is_bounded(tmp_path: Path) -> None:
    log = fixed_log(tmp_path, max_bytes=4096)
    log.start_run()
    for number in range(500):
        log.write(b"line %d\n" % number)
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total <= 4096
    assert render(log.records(), timestamps=False).endswith(b"line 499\n")


async def test_follow_sees_stored_then_new_lines_until_the_run_ends(tmp_path: Path) -> None:
    log = fixed_log(tmp_path)
    log.start_run()
    log.write(b"before\n")
    stream = log.follow(timestamps=False, since=None, tail=None)
    assert await anext(stream) == b"before\n"
    log.write(b"after\n")
    assert await anext(stream) == b"after\n"
    log.end_run()
    assert [chunk async for chunk in stream] == []

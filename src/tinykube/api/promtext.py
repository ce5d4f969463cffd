"""The Prometheus text exposition format (version 0.0.4), read: what a kubelet's
`/metrics/resource` answers and the API server's metrics scraper reads (`resourcemetrics`).

One sample a line: `name{label="value",...} value [timestamp]`, the timestamp in milliseconds
since the epoch; `#` lines (HELP, TYPE) and blank lines carry no samples. Label values escape
`\\`, `"` and newlines with a backslash. Values are Go floats (`1.5e+07`, `NaN`, `+Inf`).

`parse` is small and strict where it matters: a malformed line raises `ParseError` naming its
line number, so a scrape that went wrong is reported, never half-read. It is our own (as
metrics-server uses its own decoder): the API server then needs no parser library at start-up,
and the scraper reads a node's figures in one pass.
"""

from __future__ import annotations

import dataclasses
import re

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class ParseError(ValueError):
    """A line that is not in the exposition format."""


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None = None


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, chars = [], iter(text)
    for char in chars:
        out.append(_ESCAPES.get(next(chars, ""), "\\") if char == "\\" else char)
    return "".join(out)


def _labels(line: str, start: int, number: int) -> tuple[dict[str, str], int]:
    """The labels of `line` from the `{` at `start`; and where they end."""
    labels: dict[str, str] = {}
    position = start + 1
    while True:
        if line[position:].lstrip().startswith("}"):  # `{}`, or a trailing comma
            return labels, line.index("}", position) + 1
        match = _LABEL.match(line, position)
        if match is None:
            raise ParseError(f"line {number}: malformed labels: {line!r}")
        labels[match[1]] = _unescape(match[2])
        position = match.end()
        if match[3] == "}":
            return labels, position


def _sample(line: str, number: int) -> Sample:
    name = _NAME.match(line)
    if name is None:
        raise ParseError(f"line {number}: no metric name: {line!r}")
    labels: dict[str, str] = {}
    end = name.end()
    if end < len(line) and line[end] == "{":
        labels, end = _labels(line, end, number)
    fields = line[end:].split()
    if len(fields) not in (1, 2):
        raise ParseError(f"line {number}: expected a value and an optional timestamp: "
                         f"{line!r}")
    try:
        value = float(fields[0])
        timestamp = int(fields[1]) if len(fields) == 2 else None
    except ValueError:
        raise ParseError(f"line {number}: bad value or timestamp: {line!r}") from None
    return Sample(name[0], labels, value, timestamp)


def parse(text: str) -> list[Sample]:
    """Every sample of an exposition, in order (ParseError on a malformed line)."""
    samples = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            samples.append(_sample(line, number))
    return samples

"""Timestamps and ages, as kube-apiserver's printers show them.

`human_duration` is a port of apimachinery's `duration.HumanDuration` (a short, rounded-down age
such as `5m30s` or `3d4h`); `translate_timestamp` is the printers' `translateTimestampSince`,
which shows `<unknown>` for a missing or zero timestamp.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

UNKNOWN = "<unknown>"


def human_duration(delta: timedelta) -> str:
    """apimachinery `duration.HumanDuration`: a short, rounded-down age (`5m30s`, `3d4h`)."""
    seconds = math.trunc(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d" if rest == 0 else f"{days}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{years}y"


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC3339 (or MicroTime) string as an aware datetime; None if missing or Go's zero time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    return parsed


def translate_timestamp(value: Any, now: datetime) -> str:
    """The age of a timestamp string (`translateTimestampSince`); `<unknown>` when unset."""
    moment = parse_timestamp(value)
    if moment is None:
        return UNKNOWN
    return human_duration(now - moment)

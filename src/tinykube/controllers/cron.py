"""Cron schedules as the CronJob controller reads them (robfig/cron's `ParseStandard`).

kube-controller-manager parses `spec.schedule` with robfig/cron v3's standard parser, so this
module follows it rather than another cron dialect: five fields (minute, hour, day of month,
month, day of week) or a descriptor (`@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/
`@midnight`, `@hourly`, `@every <duration>`); `*`, `?` (same as `*`), lists, ranges, steps
(`a/n` runs from a to the field's end), month and weekday names (`JAN`, `mon`). Day of month
and day of week combine as robfig does: if either field starts with `*` or `?`, both must
match; otherwise either may (classic cron's OR). `TZ=`/`CRON_TZ=` prefixes are refused, as
kube's validation refuses them (the `timeZone` field names the zone instead).

`Schedule.next(after)` is the first activation strictly after `after`, computed in the
schedule's time zone (so a daily schedule follows the zone's wall clock across DST changes)
and returned as an aware datetime. No cron library is used: croniter, the well-known one, is
its own dialect (seconds fields, `L`, `#`, other DOM/DOW rules), and matching kube's parser
exactly is about a hundred lines.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import zoneinfo

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 6))
_MONTHS = {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_SEARCH_YEARS = 5  # robfig gives up after five years without a match (e.g. `0 0 30 2 *`)


class ScheduleError(ValueError):
    """The schedule cannot be parsed; the message is robfig/cron's wording."""


def _value(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ScheduleError(f"failed to parse int from {text}: strconv.Atoi: parsing "
                            f'"{text}": invalid syntax')
    return int(text)


def _parse_field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        range_text, _, step_text = part.partition("/")
        step = _value(step_text, {}) if step_text else 1
        if range_text in ("*", "?"):
            start, end = low, high
        else:
            first, dash, last = range_text.partition("-")
            start = _value(first, names)
            end = _value(last, names) if dash else (high if step_text else start)
        if start < low:
            raise ScheduleError(f"beginning of range ({start}) below minimum ({low}): {part}")
        if end > high:
            raise ScheduleError(f"end of range ({end}) above maximum ({high}): {part}")
        if start > end:
            raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): "
                                f"{part}")
        if step <= 0:
            raise ScheduleError(f"step of range should be a positive number: {part}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _parse_every(text: str) -> float:
    spec = text.removeprefix("@every ").strip()
    if not spec or _DURATION.sub("", spec):
        raise ScheduleError(f"failed to parse duration @every {spec}: time: invalid duration "
                            f'"{spec}"')
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(spec))
    return max(1.0, float(int(seconds)))  # robfig rounds down to whole seconds, at least one


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A parsed schedule: the allowed values per field, or a fixed interval (`@every`)."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    any_day: bool = False  # day of month or day of week was `*`/`?`: both must match
    every: float | None = None  # seconds, for `@every`
    zone: datetime.tzinfo = datetime.UTC

    def _day_matches(self, day: datetime.date) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        return (dom and dow) if self.any_day else (dom or dow)

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first activation strictly after `after` (None if there is none in five years)."""
        if self.every is not None:
            whole = after.replace(microsecond=0)
            return whole + datetime.timedelta(seconds=self.every)
        local = after.astimezone(self.zone).replace(second=0, microsecond=0, tzinfo=None)
        start = local + datetime.timedelta(minutes=1)
        day = start.date()
        for _ in range(366 * _SEARCH_YEARS):
            if day.month in self.months and self._day_matches(day):
                found = self._first_time(day, start)
                if found is not None:
                    return found
            day += datetime.timedelta(days=1)
        return None

    def _first_time(self, day: datetime.date,
                    start: datetime.datetime) -> datetime.datetime | None:
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                wall = datetime.datetime.combine(day, datetime.time(hour, minute))
                if wall < start:
                    continue
                aware = wall.replace(tzinfo=self.zone)
                # a wall time skipped by a DST change does not exist: move on
                if aware.astimezone(datetime.UTC).astimezone(self.zone).replace(
                        tzinfo=None) != wall:
                    continue
                return aware.astimezone(datetime.UTC)
        return None


def time_zone(name: str | None) -> datetime.tzinfo:
    """The zone a CronJob's `timeZone` names (UTC, as the controller's default, if none)."""
    if not name:
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name}") from exc


def parse(text: str, zone: datetime.tzinfo = datetime.UTC) -> Schedule:
    """`spec.schedule` parsed as robfig/cron's standard parser does."""
    text = text.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if text.startswith("@every "):
        return Schedule(every=_parse_every(text), zone=zone)
    if text.startswith("@"):
        if text not in _DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {text}")
        text = _DESCRIPTORS[text]
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    names: tuple[dict[str, int], ...] = ({}, {}, {}, _MONTHS, _DAYS)
    minutes, hours, days, months, weekdays = (
        _parse_field(field, low, high, table)
        for field, (_, low, high), table in zip(fields, _FIELDS, names, strict=True))
    any_day = fields[2][0] in "*?" or fields[4][0] in "*?"
    return Schedule(minutes, hours, days, months, weekdays, any_day=any_day, zone=zone)

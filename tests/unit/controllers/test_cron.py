"""Cron schedules as robfig/cron's standard parser reads them: what parses, and the next time."""

from __future__ import annotations

import datetime

import pytest

from tinykube.controllers import cron

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text \
        else datetime.datetime.fromisoformat(text)


# schedule, after (UTC), the next activation (UTC)
NEXT = [
    ("every-minute", "* * * * *", "2026-01-01T10:00:30", "2026-01-01T10:01:00"),
    ("strictly-after", "* * * * *", "2026-01-01T10:01:00", "2026-01-01T10:02:00"),
    ("every-5-min", "*/5 * * * *", "2026-01-01T10:01:00", "2026-01-01T10:05:00"),
    ("range-step", "10-30/10 * * * *", "2026-01-01T10:21:00", "2026-01-01T10:30:00"),
    ("start-step", "50/5 * * * *", "2026-01-01T10:56:00", "2026-01-01T11:50:00"),
    ("list", "0 8,20 * * *", "2026-01-01T09:00:00", "2026-01-01T20:00:00"),
    ("hourly", "@hourly", "2026-01-01T10:00:00", "2026-01-01T11:00:00"),
    ("daily", "@daily", "2026-01-01T10:00:00", "2026-01-02T00:00:00"),
    ("weekly-sunday", "@weekly", "2026-01-01T10:00:00", "2026-01-04T00:00:00"),
    ("monthly", "@monthly", "2026-01-15T10:00:00", "2026-02-01T00:00:00"),
    ("yearly", "@yearly", "2026-01-15T10:00:00", "2027-01-01T00:00:00"),
    ("month-names", "0 0 1 mar,JUN *", "2026-01-15T10:00:00", "2026-03-01T00:00:00"),
    ("day-names", "0 9 * * MON-FRI", "2026-01-02T10:00:00", "2026-01-05T09:00:00"),
    # both day fields restricted: either may match (Jan 3rd 2026 is a Saturday, the 2nd a Friday)
    ("dom-or-dow", "0 0 3 * 5", "2026-01-01T10:00:00", "2026-01-02T00:00:00"),
    # one of them `*` or `?`: both must match (the next Friday the 13th is in February)
    ("dom-and-star", "0 0 13 * ?", "2026-01-14T00:00:00", "2026-02-13T00:00:00"),
    ("leap-day", "0 0 29 2 *", "2026-01-01T00:00:00", "2028-02-29T00:00:00"),
    ("every-duration", "@every 90s", "2026-01-01T10:00:00.5", "2026-01-01T10:01:30"),
]


@pytest.mark.parametrize(("schedule", "after", "expected"), [n[1:] for n in NEXT],
                         ids=[n[0] for n in NEXT])
def test_next_activation(schedule: str, after: str, expected: str) -> None:
    assert cron.parse(schedule).next(at(after)) == at(expected)


# schedule, zone, after (UTC), next (UTC): the zone's wall clock, across DST changes
ZONED = [
    ("winter", "0 9 * * *", "Europe/Berlin", "2026-01-10T00:00:00", "2026-01-10T08:00:00"),
    ("summer", "0 9 * * *", "Europe/Berlin", "2026-07-10T00:00:00", "2026-07-10T07:00:00"),
    # 02:30 does not exist on 2026-03-29 in Berlin: that day is skipped
    ("spring-gap", "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00",
     "2026-03-30T00:30:00"),
    ("new-york", "0 0 * * *", "America/New_York", "2026-01-10T00:00:00",
     "2026-01-10T05:00:00"),
]


@pytest.mark.parametrize(("schedule", "zone", "after", "expected"), [z[1:] for z in ZONED],
                         ids=[z[0] for z in ZONED])
def test_next_activation_in_a_time_zone(schedule: str, zone: str, after: str,
                                        expected: str) -> None:
    assert cron.parse(schedule, cron.time_zone(zone)).next(at(after)) == at(expected)


def test_an_impossible_date_has_no_next_time() -> None:
    assert cron.parse("0 0 30 2 *").next(at("2026-01-01T00:00:00")) is None


# schedule, robfig/cron's (and so kube's) error
INVALID = [
    ("four-fields", "* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("six-fields", "0 * * * * *", "expected exactly 5 fields, found 6: [0 * * * * *]"),
    ("minute-range", "60 * * * *", "end of range (60) above maximum (59): 60"),
    ("dom-zero", "0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("reversed", "0 5-1 * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("word", "0 0 * * fooday", 'failed to parse int from fooday: strconv.Atoi: parsing '
     '"fooday": invalid syntax'),
    ("descriptor", "@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("tz-prefix", "TZ=UTC 0 * * * *",
     "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
    ("cron-tz-prefix", "CRON_TZ=Europe/Berlin 0 * * * *",
     "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
]


@pytest.mark.parametrize(("schedule", "message"), [i[1:] for i in INVALID],
                         ids=[i[0] for i in INVALID])
def test_invalid_schedules(schedule: str, message: str) -> None:
    with pytest.raises(cron.ScheduleError) as caught:
        cron.parse(schedule)
    assert str(caught.value) == message


def test_unknown_time_zone() -> None:
    with pytest.raises(cron.ScheduleError, match="unknown time zone Mars/Olympus"):
        cron.time_zone("Mars/Olympus")
    assert cron.time_zone(None) is UTC

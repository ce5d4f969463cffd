"""The kubelet's token manager decisions: which tokens a pod needs and when to refresh."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.kubelet import tokens
from tinykube.kubelet.tokens import Token

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
ONE_HOUR = Token("t", T0, T0 + HOUR)
TWO_DAYS = Token("t", T0, T0 + 48 * HOUR)

REFRESH: dict[str, tuple[Token | None, datetime.timedelta, bool]] = {
    "none yet": (None, datetime.timedelta(0), True),
    "fresh": (ONE_HOUR, datetime.timedelta(minutes=10), False),
    "just before 80%": (ONE_HOUR, datetime.timedelta(minutes=47), False),
    "at 80%": (ONE_HOUR, datetime.timedelta(minutes=48), True),
    "expired": (ONE_HOUR, 2 * HOUR, True),
    "long-lived, under a day": (TWO_DAYS, 23 * HOUR, False),
    "long-lived, over a day": (TWO_DAYS, 25 * HOUR, True),
}


@pytest.mark.parametrize("case", REFRESH, ids=list(REFRESH))
def test_needs_refresh(case: str) -> None:
    token, age, due = REFRESH[case]
    assert tokens.needs_refresh(token, T0 + age) is due


def projected(**source: Any) -> dict[str, Any]:
    return {"name": "v", "projected": {"sources": [{"serviceAccountToken": source}]}}


SOURCES: dict[str, tuple[dict[str, Any], list[tuple[str, int]]]] = {
    "default": ({}, [("", 3607)]),
    "automount off": ({"automountServiceAccountToken": False}, []),
    "projected with audience": (
        {"volumes": [projected(audience="vault", expirationSeconds=600, path="t")]},
        [("", 3607), ("vault", 600)]),
    "projected, automount off": (
        {"automountServiceAccountToken": False, "volumes": [projected(path="t")]},
        [("", 3607)]),
}


@pytest.mark.parametrize("case", SOURCES, ids=list(SOURCES))
def test_sources(case: str) -> None:
    spec, wanted = SOURCES[case]
    assert tokens._sources({"spec": spec}) == wanted

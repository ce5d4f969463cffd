"""Quantities print as `Quantity.String()` prints them (the form kube-apiserver's messages use)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tinykube.api import quantity


@pytest.mark.parametrize(("written", "printed"), [
    pytest.param("2", "2", id="integer"),
    pytest.param("2000m", "2", id="milli-to-whole"),
    pytest.param("1.5", "1500m", id="fraction-to-milli"),
    pytest.param("0.5", "500m", id="half"),
    pytest.param("0", "0", id="zero"),
    pytest.param("100", "100", id="hundred"),
    pytest.param("1024", "1024", id="decimal-1024-stays"),
    pytest.param("1000M", "1G", id="decimal-suffix-grows"),
    pytest.param("2048Mi", "2Gi", id="binary-suffix-grows"),
    pytest.param("1536Mi", "1536Mi", id="binary-not-whole-gi"),
    pytest.param("0.5Gi", "512Mi", id="binary-fraction"),
    pytest.param("0.5Ki", "512", id="binary-under-1024-prints-decimal"),
    pytest.param("129e6", "129e6", id="exponent"),
    pytest.param("1e3", "1e3", id="exponent-kept"),
    pytest.param("0.0000000001", "1n", id="rounded-up-to-nano"),
    pytest.param("-1", "-1", id="negative"),
    pytest.param(1, "1", id="json-int"),
    pytest.param(0.25, "250m", id="json-float"),
])
def test_canonical_text(written: object, printed: str) -> None:
    assert quantity.text(written) == printed


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1Kb", "--1", True, None, [1]])
def test_not_a_quantity(bad: object) -> None:
    assert quantity.parse(bad) is None


def test_values_compare_across_suffixes() -> None:
    assert quantity.parse("1Gi") == (Fraction(2**30), quantity.BINARY)
    assert quantity.parse("1000m") == (Fraction(1), quantity.DECIMAL)

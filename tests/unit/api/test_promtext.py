"""The Prometheus text parse: samples, labels with escapes, timestamps, and refusals."""

from __future__ import annotations

import math

import pytest

from tinykube.api import promtext
from tinykube.api.promtext import Sample

PARSED = [
    pytest.param("node_cpu_usage_seconds_total 357.35491 1696000000123",
                 [Sample("node_cpu_usage_seconds_total", {}, 357.35491, 1696000000123)],
                 id="no-labels-with-timestamp"),
    pytest.param("resource_scrape_error 0", [Sample("resource_scrape_error", {}, 0.0)],
                 id="no-timestamp"),
    pytest.param('container_memory_working_set_bytes{container="c",namespace="ns",pod="p"} '
                 "5.2428800e+07 1696000000000",
                 [Sample("container_memory_working_set_bytes",
                         {"container": "c", "namespace": "ns", "pod": "p"}, 52428800.0,
                         1696000000000)], id="labels-go-float"),
    pytest.param('x{a="q\\"uo\\\\te\\nd", b = "2" ,} 1', [Sample(
        "x", {"a": 'q"uo\\te\nd', "b": "2"}, 1.0)], id="escapes-spaces-trailing-comma"),
    pytest.param("x{} 1", [Sample("x", {}, 1.0)], id="empty-labels"),
    pytest.param("# HELP x [STABLE] help text\n# TYPE x counter\n\nx 2\n",
                 [Sample("x", {}, 2.0)], id="comments-and-blank-lines"),
    pytest.param("a 1\nb:c_d 2 5", [Sample("a", {}, 1.0), Sample("b:c_d", {}, 2.0, 5)],
                 id="several-in-order"),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse(text: str, expected: list[Sample]) -> None:
    assert promtext.parse(text) == expected


@pytest.mark.parametrize(("text", "check"), [
    pytest.param("x NaN", math.isnan, id="nan"),
    pytest.param("x +Inf", lambda v: v == math.inf, id="inf"),
])
def test_special_values(text: str, check: object) -> None:
    assert callable(check) and check(promtext.parse(text)[0].value)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("{a=\"b\"} 1", "line 1: no metric name", id="no-name"),
    pytest.param('x{a="b} 1', "line 1: malformed labels", id="unterminated-value"),
    pytest.param("x{a=b} 1", "line 1: malformed labels", id="unquoted-value"),
    pytest.param("ok 1\nx", "line 2: expected a value", id="no-value"),
    pytest.param("x 1 2 3", "line 1: expected a value", id="too-many-fields"),
    pytest.param("x one", "line 1: bad value", id="bad-value"),
    pytest.param("x 1 1.5", "line 1: bad value or timestamp", id="fractional-timestamp"),
])
def test_refusals(text: str, message: str) -> None:
    with pytest.raises(promtext.ParseError, match=message):
        promtext.parse(text)

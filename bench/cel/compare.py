"""Compare the two CEL libraries on PyPI on kube's cases: correctness and speed.

    pip install cel-python common-expression-language
    PYTHONPATH=src python3 bench/cel/compare.py

Runs the core groups of tests/testdata/cel_cases.yaml (those that need no kube library) on
`cel` (common-expression-language) and `celpy` (cel-python), both as shipped, and times one
typical rule on each. The result is in README.md ("Dependencies").
"""

from __future__ import annotations

import datetime
import pathlib
import time
from typing import Any

import cel
import celpy
import yaml
from celpy import celtypes

from tinykube.api.apiextensions import rules

CASES = yaml.safe_load((pathlib.Path(__file__).parents[2] / "tests" / "testdata" /
                        "cel_cases.yaml").read_text())
RULE = "self.spec.replicas <= self.spec.maxReplicas && self.spec.items.all(x, x.size() < 64)"
OBJECT = {"spec": {"replicas": 3, "maxReplicas": 10, "items": [f"item-{i}" for i in range(10)]}}


def _celpy_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return celtypes.TimestampType(value)
    if isinstance(value, datetime.timedelta):
        return celtypes.DurationType(value)
    if isinstance(value, bytes):
        return celtypes.BytesType(value)
    if isinstance(value, dict):
        return celtypes.MapType({celtypes.StringType(k): _celpy_value(v)
                                 for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([_celpy_value(v) for v in value])
    return celpy.json_to_cel(value)


def run_cel(expression: str, value: Any) -> Any:
    return cel.evaluate(expression, {"self": value})


def run_celpy(expression: str, value: Any) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression)).evaluate({"self": _celpy_value(value)})


def correctness() -> dict[str, tuple[int, int]]:
    scores = {"cel": [0, 0], "celpy": [0, 0]}
    for case in CASES:
        if case.get("library") == "kube":
            continue
        value = rules.to_cel(case["schema"], case["value"])
        expected = [(e, True) for e in case.get("valid") or []] + \
            [(e, True) for e in case.get("differs") or {}] + \
            [(e, False) for e in case.get("errors") or {}]
        for expression, ok in expected:
            for name, runner in (("cel", run_cel), ("celpy", run_celpy)):
                scores[name][1] += 1
                try:
                    result = runner(expression, value)
                    passed = ok and bool(result is True or result == celtypes.BoolType(True))
                except Exception:
                    passed = not ok
                scores[name][0] += passed
    return {k: (v[0], v[1]) for k, v in scores.items()}


def speed() -> dict[str, float]:
    value = rules.to_cel({"type": "object"}, OBJECT) | OBJECT
    program = cel.compile(RULE)
    env = celpy.Environment()
    celpy_program = env.program(env.compile(RULE))
    out = {}
    for name, call, n in (("cel", lambda: program.execute({"self": value}), 5000),
                          ("celpy", lambda: celpy_program.evaluate(
                              {"self": _celpy_value(value)}), 50)):
        start = time.perf_counter()
        for _ in range(n):
            call()
        out[name] = (time.perf_counter() - start) / n * 1e6
    return out


if __name__ == "__main__":
    for name, (passed, total) in correctness().items():
        print(f"{name}: {passed}/{total} of kube's core cases")
    for name, micros in speed().items():
        print(f"{name}: {micros:.0f} us per evaluation of {RULE!r}")

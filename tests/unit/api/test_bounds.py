"""Bounds on decoded documents: nesting depth at 200 everywhere, goyaml's alias-expansion rule."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tinykube.api import bounds


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def laughs(levels: int, width: int) -> bytes:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]"
              for i in range(1, levels)]
    return "\n".join(lines).encode()


@pytest.mark.parametrize(("depth", "refused"), [(0, False), (1, False), (200, False),
                                                (201, True), (900, True)])
def test_check_depth_allows_200_levels(depth: int, refused: bool) -> None:
    if refused:
        with pytest.raises(bounds.TooDeep, match="exceeded max depth of 200"):
            bounds.check_depth(nested(depth))
    else:
        bounds.check_depth(nested(depth))


YAML_ACCEPTED = {
    "plain": (b"a: [1, {b: c}]", {"a": [1, {"b": "c"}]}),
    "a few aliases": (b"x: &x {k: v}\ny: *x\nz: [*x, *x]",
                      {"x": {"k": "v"}, "y": {"k": "v"}, "z": [{"k": "v"}, {"k": "v"}]}),
    "merge keys": (b"base: &b {a: 1}\nmore: {<<: *b, c: 2}",
                   {"base": {"a": 1}, "more": {"a": 1, "c": 2}}),
    "200 levels": (b"[" * 200 + b"]" * 200, None),
    "empty": (b"", None),
    "small laughs (under goyaml's 1,000 nodes)": (laughs(3, 9), None),
}


@pytest.mark.parametrize(("body", "expected"), YAML_ACCEPTED.values(), ids=YAML_ACCEPTED.keys())
def test_load_yaml_matches_pyyaml_on_documents_goyaml_accepts(body: bytes, expected: Any) -> None:
    loaded = bounds.load_yaml(body)
    assert loaded == yaml.safe_load(body)
    if expected is not None:
        assert loaded == expected


YAML_REFUSED = {
    "billion laughs": (laughs(9, 9), bounds.ExcessiveAliasing, "excessive aliasing"),
    "laughs past any memory": (laughs(40, 10), bounds.ExcessiveAliasing, "excessive aliasing"),
    "alias of itself": (b"&a [*a]", bounds.ExcessiveAliasing, "anchor value contains itself"),
    "201 flow levels": (b"[" * 201 + b"]" * 201, bounds.TooDeep, "max depth of 200"),
    "201 block levels": ("\n".join(" " * i + "- " for i in range(0, 402, 2)).encode() + b"x",
                         bounds.TooDeep, "max depth of 200"),
    "100,000 levels (crashes the C composer)": (b"[" * 100_000, bounds.TooDeep,
                                                "max depth of 200"),
    "deep only through aliases": (
        b"a0: &a0 " + b"[" * 150 + b"x" + b"]" * 150 + b"\nb: " + b"[" * 60 + b"*a0"
        + b"]" * 60, bounds.TooDeep, "max depth of 200"),
}


@pytest.mark.parametrize(("body", "error", "message"), YAML_REFUSED.values(),
                         ids=YAML_REFUSED.keys())
def test_load_yaml_refuses(body: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        bounds.load_yaml(body)


@pytest.mark.parametrize(("decoded", "distinct", "refused"), [
    (1000, 1, False),          # goyaml checks only past 1,000 decoded nodes
    (1001, 900, False),        # and 100 aliased ones
    (100_000, 999, True),      # 99.0% aliased, over the 99% allowed
    (100_000, 1001, False),
    (4_000_000, 3_500_000, True),   # past 4,000,000 nodes only 10% may be aliased
])
def test_goyaml_alias_ratio(decoded: int, distinct: int, refused: bool) -> None:
    if refused:
        with pytest.raises(bounds.ExcessiveAliasing):
            bounds._check_aliasing(decoded=decoded, distinct=distinct)
    else:
        bounds._check_aliasing(decoded=decoded, distinct=distinct)

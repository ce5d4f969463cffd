"""Query parameters read the way kube-apiserver reads them (Go's strconv), with its errors."""

from __future__ import annotations

import re

from aiohttp import web

from tinykube.api import errors

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


def parse_bool(value: str | None) -> bool:
    """Go's strconv.ParseBool, which kube-apiserver uses for boolean parameters."""
    return value in _TRUE


_GO_INT = re.compile(r"[+-]?[0-9]+")


def int_param(request: web.Request, name: str) -> int | None:
    """An integer query parameter, or None when absent or empty; 400 worded as Go's strconv
    words it (kube-apiserver passes its parameter decoding error through) when malformed."""
    value = request.query.get(name, "")
    if not value:
        return None
    if not _GO_INT.fullmatch(value) or not -(2**63) <= int(value) < 2**63:
        problem = "invalid syntax" if _GO_INT.fullmatch(value) is None else "value out of range"
        raise errors.BadRequest(f'strconv.ParseInt: parsing "{value}": {problem}')
    return int(value)


def resource_version_param(request: web.Request) -> int | None:
    """The `resourceVersion` parameter of a list or watch: tinykube's versions are integers."""
    value = request.query.get("resourceVersion", "")
    if not value:
        return None
    if not value.isdigit() or not value.isascii():
        raise errors.BadRequest(f'resourceVersion: Invalid value: "{value}": strconv.ParseUint: '
                                f'parsing "{value}": invalid syntax')
    return int(value)

"""The test clock's control endpoint (`tinykube up --test-clock`), a tinykube extension.

  * `GET /tinykube/v1/clock`: `{"testClock": bool, "now": RFC 3339 with microseconds}`;
  * `POST /tinykube/v1/clock/advance` with `{"seconds": N}`: move the test clock N seconds on
    and answer once the cluster is quiescent (`tinykube.clock`): `{"now", "steps"}`;
  * `POST /tinykube/v1/clock/progress`: a bookmark to every open watch now (the components
    process's quiescence check); `{"resourceVersion": "R"}`.

They are non-resource URLs: RBAC decides who may call them (the admin and the components,
which share its token). Without a test clock, advance is a BadRequest that says so.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from tinykube import clock as clocks
from tinykube.api import errors

PATH = "/tinykube/v1/clock"

Progress = Callable[[], Awaitable[int]]


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), headers={"Content-Type": "application/json"})


def _now() -> str:
    return clocks.installed().utcnow().isoformat(timespec="microseconds").replace("+00:00", "Z")


async def serve(request: web.Request, path: str, driver: clocks.ClockDriver | None,
                progress: Progress) -> web.Response:
    """Answer one request below PATH."""
    action = path.removeprefix(PATH).strip("/")
    if action == "" and request.method == "GET":
        return _json({"testClock": driver is not None, "now": _now()})
    if request.method != "POST" or action not in ("advance", "progress"):
        raise errors.NotFound.path()
    if action == "progress":
        return _json({"resourceVersion": str(await progress())})
    if driver is None:
        raise errors.BadRequest("the cluster runs on the wall clock: start it with "
                                "`tinykube up --test-clock` to advance time")
    seconds = _seconds(await request.read())
    try:
        steps = await driver.advance(seconds)
    except TimeoutError as exc:
        raise errors.Timeout(f"the cluster did not settle: {exc}") from None
    return _json({"now": _now(), "steps": steps})


def _seconds(body: bytes) -> float:
    try:
        value = orjson.loads(body or b"{}").get("seconds")
    except (orjson.JSONDecodeError, AttributeError):
        raise errors.BadRequest('the body must be a JSON object: {"seconds": N}') from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or value < 0:
        raise errors.BadRequest(f"seconds: must be a non-negative number, got {value!r}")
    return float(value)

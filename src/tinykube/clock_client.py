"""Moving a running cluster's test clock from outside it (`tinykube up --test-clock`).

`TestClockClient` calls the API server's clock endpoint (`apiserver.clockapi`) with the admin's
kubeconfig: `now()` is the cluster's time, `advance(seconds)` moves it and returns once the
cluster is quiescent at the new time (`tinykube.clock`). Used by the pytest plugin's
`cluster.clock` and `tinykube clock`.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from tinykube.background import AdminAPI

PATH = "/tinykube/v1/clock"  # as apiserver.clockapi


class ClockError(RuntimeError):
    """The API server refused (no test clock) or could not settle."""


class TestClockClient:
    __test__ = False  # not a pytest class

    def __init__(self, kubeconfig: Path) -> None:
        self._api = AdminAPI.from_kubeconfig(kubeconfig)

    def __repr__(self) -> str:
        return f"TestClockClient({self._api.server})"

    def enabled(self) -> bool:
        """Whether the cluster runs on a test clock."""
        return bool(self._get()["testClock"])

    def now(self) -> datetime.datetime:
        """The cluster's time."""
        return _parse(self._get()["now"])

    def advance(self, seconds: float, *, timeout: float = 300) -> datetime.datetime:
        """Move the clock `seconds` on; return the new time once every reaction due by then
        has been applied (waiting at most `timeout` real seconds for the answer)."""
        status, body = self._api.request("POST", f"{PATH}/advance", {"seconds": seconds},
                                         timeout=timeout)
        if status != 200:
            raise ClockError(_message(status, body))
        return _parse(body["now"])

    def _get(self) -> dict[str, object]:
        status, body = self._api.request("GET", PATH)
        if status != 200:
            raise ClockError(_message(status, body))
        return dict(body)


def _parse(text: object) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _message(status: int, body: object) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    return f"{status}: {message or body}"

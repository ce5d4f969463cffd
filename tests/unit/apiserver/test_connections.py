"""What the API server answers for each request aiohttp's HTTP parser refuses (a Status)."""

from __future__ import annotations

import pytest
from aiohttp import http_exceptions

from tinykube.apiserver import connections

CASES = {
    "request-line": (http_exceptions.LineTooLong(b"/api...", connections.MAX_REQUEST_LINE), 414,
                     "RequestURITooLong", "Request-URI Too Long: the request line is longer "
                     "than 1052672 bytes"),
    "header": (http_exceptions.LineTooLong(b"X-Big...", connections.MAX_HEADER_FIELD), 431,
               "RequestHeaderFieldsTooLarge", "Request Header Fields Too Large: a header is "
               "longer than 1048576 bytes"),
    "too-many": (http_exceptions.BadHttpMessage("Too many headers received"), 431,
                 "RequestHeaderFieldsTooLarge",
                 "Request Header Fields Too Large: Too many headers received"),
    "malformed": (http_exceptions.BadHttpMessage("Invalid header"), 400, "BadRequest",
                  "malformed HTTP request: Invalid header"),
}


@pytest.mark.parametrize(("exc", "code", "reason", "message"), CASES.values(), ids=CASES.keys())
def test_refusal_is_a_status(exc: Exception, code: int, reason: str, message: str) -> None:
    status = connections.refusal(400, exc).to_status()
    assert (status["code"], status["reason"], status["message"]) == (code, reason, message)

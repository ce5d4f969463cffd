"""The HTTP connections of the API server: kube-apiserver's header limits, and a Status for
every request the HTTP parser refuses.

kube-apiserver runs Go's net/http with `MaxHeaderBytes` 1 MiB: the request line and headers
together may be that large (plus the 4 KiB of slack Go adds), so a long URL (a label selector
of tens of KiB) is an ordinary request. aiohttp's defaults are 8190 bytes for the request line
and for each header, and it refuses anything longer with a plain-text 400 that kubectl and the
client libraries cannot read.

Here the request line may be `MAX_REQUEST_LINE` bytes and each header `MAX_HEADER_FIELD` bytes;
the number of headers stays at aiohttp's 128, so one request's head is bounded by about
129 MiB of buffered bytes. A request beyond a limit, or one the parser cannot read, gets a
`Status` like every other failure: 414 for the request line, 431 for a header, 400 for
anything malformed, with the parser's complaint in the message.

aiohttp has no public hook for the response to a request it could not parse: its connection
handler (`RequestHandler.handle_error`) writes it. `StatusRunner` is an `AppRunner` whose server
makes `StatusRequestHandler`s, which override exactly that method.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import http_exceptions, web, web_protocol

from tinykube.api import errors

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 1 << 20  # Go's http.DefaultMaxHeaderBytes, kube-apiserver's limit
MAX_REQUEST_LINE = MAX_HEADER_BYTES + 4096  # Go reads MaxHeaderBytes plus 4 KiB of slack
MAX_HEADER_FIELD = MAX_HEADER_BYTES
HANDLER_OPTIONS: dict[str, Any] = {"max_line_size": MAX_REQUEST_LINE,
                                   "max_field_size": MAX_HEADER_FIELD}


class URITooLong(errors.APIError):
    code = 414
    reason = "RequestURITooLong"


class HeaderFieldsTooLarge(errors.APIError):
    code = 431
    reason = "RequestHeaderFieldsTooLarge"


def refusal(status: int, exc: BaseException | None) -> errors.APIError:
    """The Status for a request aiohttp's parser refused with `status` (pure)."""
    if isinstance(exc, http_exceptions.LineTooLong):
        limit = exc.args[1]
        if limit == MAX_REQUEST_LINE:
            return URITooLong(f"Request-URI Too Long: the request line is longer than "
                              f"{MAX_REQUEST_LINE} bytes")
        return HeaderFieldsTooLarge(f"Request Header Fields Too Large: a header is longer "
                                    f"than {limit} bytes")
    if isinstance(exc, http_exceptions.BadHttpMessage) and "Too many headers" in exc.message:
        return HeaderFieldsTooLarge(f"Request Header Fields Too Large: {exc.message}")
    if status < 500:
        problem = exc.message if isinstance(exc, http_exceptions.HttpProcessingError) else ""
        return errors.BadRequest(f"malformed HTTP request: {problem or 'unreadable'}")
    return errors.InternalError(f"an internal error occurred: {exc}")


class StatusRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, except that its own error responses are Statuses."""

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another response
            raise ConnectionError("the response started before the error")
        if status >= 500:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
        else:
            log.debug("refused a request aiohttp could not parse: %s", exc)
        error = refusal(status, exc)
        response = web.Response(body=error.body(), status=error.code,
                                content_type="application/json")
        response.force_close()
        return response


class _StatusServer(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return StatusRequestHandler(self, loop=self._loop, **self._kwargs)


class StatusRunner(web.AppRunner):
    """An AppRunner whose connections are `StatusRequestHandler`s with `HANDLER_OPTIONS`."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **HANDLER_OPTIONS, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _StatusServer(server.request_handler, request_factory=server.request_factory,
                             handler_cancellation=server.handler_cancellation,
                             loop=asyncio.get_running_loop(), **server._kwargs)

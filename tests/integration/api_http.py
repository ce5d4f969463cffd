"""A bare HTTPS client for the API tests: raw status, headers and bytes, nothing interpreted.

The API tests check what goes over the wire (status codes, Status bodies, Warning headers), so
they use `http.client` rather than tinykube's own client, with the data directory's CA
(`ca.crt`) and admin token (`admin.token`). One `Connection` keeps its socket open across
requests, which the durability test needs to write fast.
"""

from __future__ import annotations

import dataclasses
import http.client
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

JSON = "application/json"


@dataclasses.dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclasses.dataclass(frozen=True)
class Server:
    """Where the API server is and how to authenticate to it."""

    url: str
    data_dir: Path

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "ca.crt"))

    def connect(self, timeout: float = 30) -> Connection:
        return Connection(self, timeout)


class Connection:
    """One keep-alive HTTPS connection that sends the admin token unless told otherwise."""

    def __init__(self, server: Server, timeout: float = 30) -> None:
        parsed = urllib.parse.urlsplit(server.url)
        assert parsed.hostname is not None and parsed.port is not None
        self._token = server.token
        self._http = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=timeout,
                                                 context=server.ssl_context())

    def request(self, method: str, path: str,
                body: bytes | dict[str, Any] | Iterator[bytes] | None = None, *,
                headers: dict[str, str] | None = None,
                token: str | None = "admin") -> Reply:
        """Send one request; `token=None` sends no Authorization header, any other string
        other than "admin" is sent as the bearer token instead of the real one. An iterator
        body is sent with chunked encoding (no Content-Length)."""
        sent = {"Content-Type": JSON, "Accept": JSON, **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {self._token if token == 'admin' else token}"
        data = orjson.dumps(body) if isinstance(body, dict) else body
        self._http.request(method, path, body=data, headers=sent,
                           encode_chunked=isinstance(data, Iterator))
        response = self._http.getresponse()
        return Reply(response.status, response.headers, response.read())

    def close(self) -> None:
        self._http.close()


def names_and_versions(conn: Connection, path: str) -> dict[str, str]:
    """name -> resourceVersion of every object a list returns (all pages)."""
    found: dict[str, str] = {}
    token = ""
    while True:
        query = urllib.parse.urlencode({"limit": 500, "continue": token})
        reply = conn.request("GET", f"{path}?{query}")
        assert reply.status == 200, reply.body
        page = reply.json()
        for item in page["items"]:
            meta = item["metadata"]
            found[f"{meta.get('namespace', '')}/{meta['name']}"] = meta["resourceVersion"]
        token = page["metadata"].get("continue", "")
        if not token:
            return found

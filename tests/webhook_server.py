"""A real HTTPS webhook server for tests: aiohttp on 127.0.0.1 in a thread of its own, with a
certificate from the test's own CA (made with `cryptography`).

`WebhookServer(paths)` serves each path with a function from the decoded request body (an
AdmissionReview or ConversionReview) to the answer; `ca_bundle` is the base64 PEM a
configuration's `caBundle` takes; `requests` records what each path received.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Obj = dict[str, Any]
Answer = Callable[[Obj], Obj]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certs(directory: Path, dns_names: tuple[str, ...]) -> tuple[bytes, Path, Path]:
    """(CA PEM, server cert file, server key file): a CA and a serving cert for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("webhook-test-ca"))
          .issuer_name(_name("webhook-test-ca")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    names += [x509.DNSName(n) for n in dns_names]
    cert = (x509.CertificateBuilder().subject_name(_name("webhook"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / "webhook.crt", directory / "webhook.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file


class WebhookServer:
    """Serves `paths` over HTTPS until `stop` (also a context manager)."""

    def __init__(self, paths: dict[str, Answer], *,
                 dns_names: tuple[str, ...] = ("hooks.default.svc",)) -> None:
        self.paths = paths
        self.requests: dict[str, list[Obj]] = {p: [] for p in paths}
        self._dir = tempfile.TemporaryDirectory(prefix="tk-webhook-")
        ca_pem, cert, key = make_certs(Path(self._dir.name), dns_names)
        self.ca_bundle = base64.b64encode(ca_pem).decode()
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        answer = self.paths.get(request.path)
        if answer is None:
            return web.Response(status=404, text="no such hook")
        body = await request.json()
        self.requests[request.path].append(body)
        return web.json_response(answer(body))

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._context)
        self._loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> WebhookServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the webhook server did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._dir.cleanup()

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def allow(review: Obj, **response: Any) -> Obj:
    """An AdmissionReview answer to `review` (allowed unless `response` says otherwise)."""
    return {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True, **response}}


def json_patch(operations: list[Obj]) -> str:
    return base64.b64encode(json.dumps(operations).encode()).decode()

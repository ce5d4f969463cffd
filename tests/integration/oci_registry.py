"""Local registries and test images, built offline: docker-registry, umoci, skopeo, busybox.

`Registry` runs Debian's `docker-registry serve CONFIG` (distribution v2) on a free loopback
port with its storage in a test directory, waits until `/v2/` answers, and stops it by PID
(never Debian's service: policy-rc.d blocks it anyway). With `token=` it demands Bearer tokens
from a `TokenServer`: an aiohttp app in a thread that signs RS256 JWTs with `cryptography`
(no PyJWT here), the certificate in the `x5c` header and in the registry's rootcertbundle; it
checks Basic credentials when users are configured, and answers 401 to a wrong password, as
a real token server does.

`build_busybox` makes the test image with umoci from the host's busybox-static: layer 1 has
busybox, `/www/index.html`, `/www/deleteme.txt` and `/www/old/{a,b}`; layer 2 (written with
`tarfile`, added with `umoci raw add-layer`) deletes `deleteme.txt` with a `.wh.` whiteout and
makes `/www/old` opaque with one new file `c`. `push` copies an OCI layout to a registry with
skopeo; `push_index` puts an OCI index of two platforms (amd64 = this image, arm64/v8 = a
second one) under a tag.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tinykube.testing import free_port

TOOLS = ("docker-registry", "skopeo", "umoci", "busybox")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run(*cmd: str, cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr}"
    return done.stdout


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A distribution token server on a loopback port, in a thread of its own."""

    def __init__(self, directory: Path, users: dict[str, str] | None = None) -> None:
        self.users = users or {}
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tk-token")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = directory / "token-cert.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port(udp=False)
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.requests: list[tuple[str, str]] = []  # (user or "", scope)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._runner: web.AppRunner | None = None
        self._loop: object = None

    def _jwt(self, claims: dict[str, object]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64url(sig)}"

    async def _token(self, request: web.Request) -> web.Response:
        user = ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(user) != password:
                return web.json_response({"details": "wrong credentials"}, status=401)
        elif self.users:
            return web.json_response({"details": "authentication required"}, status=401)
        scope = request.query.get("scope", "")
        self.requests.append((user, scope))
        access = []
        if scope:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name,
                           "actions": [a for a in actions.split(",") if a == "pull"]})
        now = int(time.time())
        token = self._jwt({"iss": "tk-issuer", "sub": user or "anonymous",
                           "aud": request.query.get("service"), "exp": now + 300,
                           "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
                           "access": access})
        return web.json_response({"token": token, "expires_in": 300})

    def _serve(self) -> None:
        import asyncio
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_get("/token", self._token)
        self._runner = web.AppRunner(app)
        loop.run_until_complete(self._runner.setup())
        loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def __enter__(self) -> TokenServer:
        self._thread.start()
        assert self._ready.wait(10), "token server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        import asyncio
        loop = self._loop
        assert isinstance(loop, asyncio.AbstractEventLoop)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)


class Registry:
    """`docker-registry serve` on 127.0.0.1:PORT with its storage in `storage`."""

    def __init__(self, directory: Path, storage: Path, token: TokenServer | None = None) -> None:
        self.port = free_port(udp=False)
        self.host = f"127.0.0.1:{self.port}"
        config = {"version": 0.1, "log": {"level": "error"},
                  "storage": {"filesystem": {"rootdirectory": str(storage)},
                              "delete": {"enabled": True}},
                  "http": {"addr": self.host}}
        if token is not None:
            config["auth"] = {"token": {"realm": token.realm, "service": "tk-registry",
                                        "issuer": "tk-issuer",
                                        "rootcertbundle": str(token.cert_path)}}
        self.config = directory / f"registry-{self.port}.json"  # YAML is a superset of JSON
        self.config.write_text(json.dumps(config))
        self.log = (directory / f"registry-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not self._answers():
            assert self.proc.poll() is None, (directory / f"registry-{self.port}.log").read_text()
            assert time.monotonic() < deadline, "docker-registry did not start"
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
        except urllib.error.HTTPError:
            return True  # 401 from the token-auth instance: it is up
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def registry(directory: Path, storage: Path, token: TokenServer | None = None
             ) -> Iterator[Registry]:
    reg = Registry(directory, storage, token)
    try:
        yield reg
    finally:
        reg.stop()


def _layer_two() -> bytes:
    """The second layer: a whiteout, an opaque directory with a new file, a new file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name: str, data: bytes | None = None, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        add("www/", mode=0o755)
        add("www/.wh.deleteme.txt", b"")
        add("www/old/", mode=0o755)
        add("www/old/.wh..wh..opq", b"")
        add("www/old/c", b"new c\n")
        add("www/version.txt", b"v2\n")
    return buf.getvalue()


def build_busybox(work: Path, tag: str = "1") -> Path:
    """An OCI layout at `work/layout` holding the busybox test image under `tag`."""
    layout = work / "layout"
    if not layout.exists():
        _run("umoci", "init", "--layout", str(layout))
    image = f"{layout}:{tag}"
    _run("umoci", "new", "--image", image)
    bundle = work / f"bundle-{tag}"
    _run("umoci", "unpack", "--image", image, str(bundle))
    root = bundle / "rootfs"
    for d in ("bin", "www/old", "etc", "tmp", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "bin/busybox")
    for applet in ("sh", "ls", "cat", "httpd", "echo", "wget"):
        os.symlink("busybox", root / "bin" / applet)
    os.symlink("/bin/busybox", root / "bin/abs-sh")  # an absolute symlink, as real images have
    os.chmod(root / "tmp", 0o1777)
    (root / "bin/suid").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "bin/suid", 0o4755)
    (root / "www/index.html").write_text("<h1>hello from busybox httpd</h1>\n")
    (root / "www/deleteme.txt").write_text("to be deleted\n")
    (root / "www/old/a").write_text("a\n")
    (root / "www/old/b").write_text("b\n")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    os.link(root / "www/index.html", root / "www/index-link.html")
    _run("umoci", "repack", "--image", image, str(bundle))
    shutil.rmtree(bundle)
    layer2 = work / f"layer2-{tag}.tar"
    layer2.write_bytes(_layer_two())
    _run("umoci", "raw", "add-layer", "--image", image, str(layer2))
    _run("umoci", "config", "--image", image, "--config.entrypoint", "/bin/httpd",
         "--config.cmd", "-f", "--config.cmd", "-p", "--config.cmd", "8080",
         "--config.env", "PATH=/bin", "--config.workingdir", "/www",
         "--architecture", "amd64", "--os", "linux")
    return layout


def push(layout: Path, tag: str, dest: str) -> None:
    """`skopeo copy oci:LAYOUT:TAG docker://DEST` over plain HTTP."""
    _run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:{tag}", f"docker://{dest}")


def _get_manifest(host: str, repo: str, ref: str) -> tuple[bytes, str]:
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ref}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read(), resp.headers["Content-Type"]


def push_index(host: str, repo: str, amd64_tag: str, arm64_tag: str, tag: str) -> str:
    """Tag an OCI index of `repo:amd64_tag` (linux/amd64) and `repo:arm64_tag`
    (linux/arm64/v8); return its digest."""
    entries = []
    for ref, plat in ((arm64_tag, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                      (amd64_tag, {"os": "linux", "architecture": "amd64"})):
        body, ctype = _get_manifest(host, repo, ref)
        entries.append({"mediaType": ctype, "size": len(body), "platform": plat,
                        "digest": "sha256:" + hashlib.sha256(body).hexdigest()})
    index = json.dumps({"schemaVersion": 2, "manifests": entries,
                        "mediaType": "application/vnd.oci.image.index.v1+json"}).encode()
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", data=index,
                                 method="PUT", headers={
                                     "Content-Type": "application/vnd.oci.image.index.v1+json"})
    with urllib.request.urlopen(req, timeout=10):
        pass
    return "sha256:" + hashlib.sha256(index).hexdigest()


def umoci_unpack(layout: Path, tag: str, dest: Path) -> Path:
    """umoci's own unpack of the image (the reference our rootfs is compared with)."""
    _run("umoci", "unpack", "--image", f"{layout}:{tag}", str(dest))
    return dest / "rootfs"


def listing(root: Path) -> dict[str, tuple[str, int, int, int, str]]:
    """Every entry below `root`: kind, mode, uid, gid and the link target or content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            kind = ("dir" if path.is_dir() and not path.is_symlink() else
                    "link" if path.is_symlink() else "file")
            extra = (os.readlink(path) if kind == "link" else
                     hashlib.sha256(path.read_bytes()).hexdigest()[:12] if kind == "file" else "")
            out[str(path.relative_to(root))] = (kind, st.st_mode & 0o7777, st.st_uid, st.st_gid,
                                                extra)
    return out


def _needed_libs(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    return [w for w in out.split() if w.startswith("/") and ".so" in w]


def build_python(work: Path, layout: Path, tag: str = "py") -> None:
    """A bigger image on top of the busybox one (tag "1"): the host's Debian python3.11, its
    shared libraries and standard library (no tests, no site-packages), as the trial's a2b."""
    bundle = work / f"bundle-{tag}"
    _run("umoci", "unpack", "--image", f"{layout}:1", str(bundle))
    root = bundle / "rootfs"
    python = "/usr/bin/python3.11"
    wanted = {python, *_needed_libs(python)}
    for so in Path("/usr/lib/python3.11/lib-dynload").glob("*.so"):
        wanted.update(_needed_libs(str(so)))
    for src in sorted(wanted):
        dest = root / src.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(src), dest)
    os.symlink("python3.11", root / "usr/bin/python3")
    skip = shutil.ignore_patterns("test", "tests", "idlelib", "tkinter", "turtledemo",
                                  "__pycache__", "site-packages", "dist-packages")
    shutil.copytree("/usr/lib/python3.11", root / "usr/lib/python3.11", ignore=skip,
                    symlinks=True, dirs_exist_ok=True)
    _run("umoci", "repack", "--image", f"{layout}:{tag}", str(bundle))
    shutil.rmtree(bundle)
    _run("umoci", "config", "--image", f"{layout}:{tag}", "--clear=config.entrypoint",
         "--config.entrypoint", "/usr/bin/python3", "--clear=config.cmd",
         "--config.cmd", "-m", "--config.cmd", "http.server", "--config.cmd", "8000")

"""The live map (`tinykube ui`) in a real browser: Debian's headless Chromium, driven over its
DevTools protocol (an aiohttp websocket: no Playwright, no driver binary).

The seed (its headless Service `nginx` and StatefulSet `web`, two replicas, each pod held by a
readiness gate so the test decides when it is Ready) runs on virtual pods. The page, opened by
the link `tinykube ui` prints, shows `nginx` with `web-0` and `web-1` ready under it; then
web-1's gate turns False and the page shows it not ready within a second, without a reload.
Clicking web-1 opens its explanation. A screenshot is kept under the test's tmp dir (printed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.conftest import TESTDATA, Cluster, Kubectl, start_cluster, until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (Debian's package)")
GATE = "tinykube.io/gate"


class Page:
    """One browser tab over the DevTools protocol: commands by id, answers awaited."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.ids = ws, 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        await self.ws.send_json({"id": self.ids, "method": method, "params": params})
        for _ in range(10000):  # events arrive in between; bounded
            message = await asyncio.wait_for(self.ws.receive_json(), 10)
            if message.get("id") == self.ids:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result") or {})
        raise AssertionError(f"no answer to {method}")

    async def eval(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def until(self, expression: str, seconds: float = 15) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if value := await self.eval(expression):
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"the page never satisfied {expression}")


@contextlib.asynccontextmanager
async def browser(tmp: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--remote-debugging-port=0",
        f"--user-data-dir={tmp / 'chromium'}", "--disable-gpu", "--no-first-run",
        "--window-size=1400,900", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        endpoint = ""
        for _ in range(200):  # its first lines; the DevTools one comes early
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            if found := re.search(r"DevTools listening on (ws://\S+)", line):
                endpoint = found.group(1)
                break
            if not line:
                break
        assert endpoint, "chromium did not start its DevTools endpoint"
        port = endpoint.split(":")[2].split("/")[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with session.ws_connect(page_url, max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        process.kill()
        await process.wait()


def seed(replicas: int = 2) -> str:
    """The seed manifest, its pods gated (readinessGates) and without the node selector."""
    service, statefulset = yaml.safe_load_all((TESTDATA / "web.yaml").read_text())
    spec = statefulset["spec"]
    spec["replicas"] = replicas
    spec["podManagementPolicy"] = "Parallel"
    pod = spec["template"]["spec"]
    pod.pop("nodeSelector")
    pod["readinessGates"] = [{"conditionType": GATE}]
    return yaml.safe_dump_all([service, statefulset])


def set_gate(kctl: Kubectl, pod: str, ok: bool) -> None:
    patch = {"status": {"conditions": [{"type": GATE, "status": str(ok)}]}}
    kctl("patch", "pod", pod, "--subresource=status", "--type=strategic", "-p",
         json.dumps(patch))


@pytest.fixture
def map_cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", "--default-runtime", "virtual")
    yield running
    running.stop()


def ui_link(cluster: Cluster) -> str:
    result = subprocess.run([sys.executable, "-m", "tinykube", "ui", "--kubeconfig",
                             str(cluster.kubeconfig)], capture_output=True, text=True,
                            timeout=30, check=True)
    return result.stdout.strip()


def endpoint_ready(pod: str) -> str:
    return (f"(() => {{ const e = document.querySelector('[data-service=\"default/nginx\"] "
            f"[data-pod=\"{pod}\"]'); return e ? e.dataset.ready : ''; }})()")


async def test_the_live_map_shows_web_1_turn_not_ready(map_cluster: Cluster, tmp_path: Path
                                                       ) -> None:
    kctl = Kubectl(shutil.which("kubectl") or "kubectl", map_cluster.kubeconfig, tmp_path)
    assert any("live map, DNS query log and traces at http://127.0.0.1:" in line
               for line in map_cluster.output)
    kctl("apply", "-f", "-", input=seed())
    until(lambda: {"web-0", "web-1"} <= set(kctl("get", "pods", "-o", "name").replace(
        "pod/", "").split()), 30, "the pods")
    for pod in ("web-0", "web-1"):
        set_gate(kctl, pod, True)
    kctl("wait", "--for=condition=Ready", "pod/web-0", "pod/web-1", "--timeout=30s")
    link = ui_link(map_cluster)
    assert "?token=" in link
    async with browser(tmp_path) as page:
        await page.send("Page.enable")
        await page.send("Page.navigate", url=link)
        await page.until("document.querySelector('#status')?.textContent === 'live'")
        await page.until(f"{endpoint_ready('web-0')} === 'true' && "
                         f"{endpoint_ready('web-1')} === 'true'")
        assert "nginx.default.svc.cluster.local" in await page.eval(
            "document.querySelector('[data-service=\"default/nginx\"]').innerText")
        set_gate(kctl, "web-1", False)
        changed = time.monotonic()
        await page.until(f"{endpoint_ready('web-1')} === 'false'", seconds=5)
        took = time.monotonic() - changed
        assert await page.eval(endpoint_ready("web-0")) == "true"
        await page.eval("document.querySelector('[data-service=\"default/nginx\"] "
                        "[data-pod=\"web-1\"] .name').click()")
        text = await page.until("document.querySelector('#explain').textContent")
        assert "web-1" in text and "not Ready" in text
        shot = await page.send("Page.captureScreenshot", format="png")
        path = tmp_path / "live-map.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        print(f"screenshot: {path}")
    assert took < 1.0, f"the page showed web-1 not ready {took:.2f}s after the change"
    assert path.stat().st_size > 1000

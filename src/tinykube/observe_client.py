"""Reading a running cluster's observer (`observe.server`) from outside it: the CLI's side.

The observer's URL is in `observe.json` beside the admin kubeconfig (the data directory of
`tinykube up`); the token is the kubeconfig's. The DNS query log is switched on and off through
the API (the ConfigMap `kube-system/tinykube-dns-querylog`, `dns.querylog`), as drills are.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tinykube.background import AdminAPI

INFO_FILE = "observe.json"  # as observe.app
QUERYLOG_CONFIGMAP, NAMESPACE = "tinykube-dns-querylog", "kube-system"  # as dns.querylog


class ObserverUnavailable(RuntimeError):
    """No observer to read (the cluster is not running, or runs without one)."""


class ObserveAPI:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/") + "/", token

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path) -> ObserveAPI:
        info = kubeconfig.parent / INFO_FILE
        try:
            url = json.loads(info.read_text())["url"]
        except (OSError, ValueError, KeyError) as error:
            raise ObserverUnavailable(f"no observer found ({info}: {error}); is the cluster "
                                      "running (`tinykube up`)?") from None
        return cls(url, AdminAPI.from_kubeconfig(kubeconfig).token)

    def link(self) -> str:
        """The URL that opens the live map in a browser (it sets the token's cookie)."""
        return f"{self.url}?{urllib.parse.urlencode({'token': self.token})}"

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        request = urllib.request.Request(f"{self.url}{path.lstrip('/')}?{query}",
                                         headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.URLError as error:
            raise ObserverUnavailable(f"cannot reach the observer at {self.url}: {error}") \
                from None


def set_query_log(kubeconfig: Path, *, enabled: bool, size: int | None = None,
                  sample: int | None = None) -> None:
    """Write the query log's ConfigMap (created on first use)."""
    data = {"enabled": "true" if enabled else "false"}
    if size is not None:
        data["size"] = str(size)
    if sample is not None:
        data["sample"] = str(sample)
    api = AdminAPI.from_kubeconfig(kubeconfig)
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    status, body = api.request("PATCH", f"{path}/{QUERYLOG_CONFIGMAP}", {"data": data},
                               content_type="application/merge-patch+json")
    if status == 404:
        status, body = api.request("POST", path, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": QUERYLOG_CONFIGMAP, "namespace": NAMESPACE}, "data": data})
    if status not in (200, 201):
        raise RuntimeError(f"writing the query log settings: {status} {body}")


def wait_log_state(api: ObserveAPI, enabled: bool, timeout: float = 10) -> bool:
    """Wait (polling, with a deadline) until the DNS's log is on or off as asked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bool(api.get("api/dns/log", limit=0).get("enabled")) == enabled:
            return True
        time.sleep(0.1)
    return False

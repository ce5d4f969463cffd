"""`tinykube ui`, `tinykube trace` and `tinykube dns log`: read a running cluster's observer.

    tinykube ui                      the live map's link (with the token); --open opens it
    tinykube dns log [-f] [--pod P] [--name N] [--rcode NXDOMAIN]
    tinykube dns log --enable [--sample N] [--size N] | --disable
    tinykube trace [-f] [--service NS/NAME] [--pod NS/NAME]

The formatting is pure (`log_line`, `timeline`), the I/O is `observe_client`'s.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

FOLLOW_INTERVAL = 0.5  # seconds between polls with -f
FOLLOW_LIMIT = 10 ** 7  # polls: -f ends by Ctrl-C, this only bounds the loop


def _kubeconfig(given: str | None) -> Path:
    import os

    from tinykube.cli.up import default_data_dir

    return Path(given or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
                or default_data_dir() / "kubeconfig")


def _api(kubeconfig: str | None) -> Any:
    from tinykube.observe_client import ObserveAPI, ObserverUnavailable

    try:
        return ObserveAPI.from_kubeconfig(_kubeconfig(kubeconfig))
    except ObserverUnavailable as error:
        raise click.ClickException(str(error)) from None


def _clock(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).strftime("%H:%M:%S.%f")[:-3]


def log_line(entry: dict[str, Any]) -> str:
    """One query log entry as a line (CoreDNS's log plugin order, joined to the cluster)."""
    if entry.get("event"):
        return f"{_clock(entry['time'])} -- {entry['note']}"
    client = entry["pod"] or entry["client"] or "?"
    answers = ", ".join(" ".join(a.split()[2:]) for a in entry["answers"]) or "-"
    line = (f"{_clock(entry['time'])} {client} {entry['proto']} {entry['type']} "
            f"{entry['name']} {entry['rcode']} {answers} {entry['latencyMs']:.3f}ms")
    if entry["source"]:
        line += f" [{entry['source']}]"
    return line + (f" ({entry['note']})" if entry["note"] else "")


def timeline(trace: dict[str, Any]) -> list[str]:
    """A trace as a timeline: each step after the previous one, and the total."""
    lines = [f"{_clock(trace['start'])} {trace['subject']}"
             + ("" if trace["closed"] else " (in progress)")]
    for step in trace["steps"]:
        detail = f"  {step['detail']}" if step["detail"] else ""
        lines.append(f"  +{step['afterPreviousMs']:9.3f} ms  {step['step']:<22}"
                     f"(at {step['sinceStartMs']:.3f} ms){detail}")
    lines.append(f"  = {trace['totalMs']:.3f} ms from api-write to the last step")
    return lines


def _follow(fetch: Callable[[], bool], follow: bool) -> None:
    for _ in range(FOLLOW_LIMIT):
        fetch()
        if not follow:
            return
        time.sleep(FOLLOW_INTERVAL)


@click.command(name="ui")
@click.option("--kubeconfig", default=None, help="The cluster's admin kubeconfig (default: "
              "$KUBECONFIG, else the default data dir's).")
@click.option("--open", "open_browser", is_flag=True, help="Open it in a browser too.")
def ui(kubeconfig: str | None, open_browser: bool) -> None:
    """Print the live map's link: Services -> EndpointSlices -> pods, live."""
    link = _api(kubeconfig).link()
    click.echo(link)
    if open_browser:
        import webbrowser

        webbrowser.open(link)


@click.command(name="trace")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new traces.")
@click.option("--service", default="", metavar="NS/NAME")
@click.option("--pod", default="", metavar="NS/NAME")
@click.option("-o", "--output", type=click.Choice(["timeline", "json"]), default="timeline")
@click.option("--kubeconfig", default=None, help="The cluster's admin kubeconfig.")
def trace(follow: bool, service: str, pod: str, output: str, kubeconfig: str | None) -> None:
    """Propagation traces: API write -> EndpointSlice -> DNS model -> first answer -> proxy."""
    api, seen = _api(kubeconfig), {"id": 0}

    def fetch() -> bool:
        found = api.get("api/traces", since=seen["id"], service=service, pod=pod)["traces"]
        for item in found:
            if follow and not item["closed"]:
                break  # printed once complete
            seen["id"] = item["id"]
            click.echo(json.dumps(item) if output == "json" else "\n".join(timeline(item)))
        return bool(found)

    _follow(fetch, follow)


def log(follow: bool, pod: str, name: str, rcode: str, output: str, kubeconfig: str | None,
        enable: bool, disable: bool, sample: int | None, size: int | None) -> None:
    from tinykube import observe_client

    path = _kubeconfig(kubeconfig)
    if enable or disable:
        observe_client.set_query_log(path, enabled=enable, size=size, sample=sample)
        state = "on" if enable else "off"
        if not observe_client.wait_log_state(_api(kubeconfig), enable):
            raise click.ClickException(f"the cluster DNS did not turn its query log {state}")
        click.echo(f"DNS query log {state}")
        return
    api, seen = _api(kubeconfig), {"seq": 0}

    def fetch() -> bool:
        body = api.get("api/dns/log", since=seen["seq"], pod=pod, name=name, rcode=rcode)
        if not body["enabled"]:
            raise click.ClickException("the DNS query log is off: `tinykube dns log --enable`")
        for entry in body["entries"]:
            click.echo(json.dumps(entry) if output == "json" else log_line(entry))
        seen["seq"] = body["last"]
        return bool(body["entries"])

    _follow(fetch, follow)

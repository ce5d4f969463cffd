"""A cluster's lifecycle: `tinykube status`, `logs`, `down`, `reset` and `kubeconfig`.

Every command finds its cluster by data directory: the default one, `--name NAME`
(`$XDG_DATA_HOME/tinykube-NAME`, as `tinykube up --name NAME` makes) or `--data-dir DIR`. What
runs there is read from the data directory itself, so these commands need no registry of
clusters: `up.lock` holds the running API server's PID and URL (see `apiserver.datadir`),
`up.log` the output of a detached `up` (`tinykube up --detach`), `kubeconfig` the admin's
credentials. A PID counts as running only while it is a live `tinykube` process (a stale lock
file names a PID the kernel may have handed to something else).

`kubeconfig --merge` writes the cluster's entries into `$KUBECONFIG` (its first file) or
`~/.kube/config`, replacing entries of the same names and making its context current, as
`kind export kubeconfig` does.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from tinykube import background
from tinykube.cli.up import check_name, default_data_dir

LOCK_FILE = "up.lock"  # apiserver.datadir.LOCK_FILE; not imported: the CLI stays light
# COMPONENT of `tinykube logs COMPONENT` -> the logger names of its log lines
COMPONENTS = {
    "apiserver": ("tinykube.apiserver", "tinykube.store"),
    "controllers": ("tinykube.controllers",),
    "kubelet": ("tinykube.kubelet", "tinykube.images"),
    "dns": ("tinykube.dns",),
    "proxy": ("tinykube.proxy",),
    "network": ("tinykube.network",),
}
COUNTED = [("namespaces", "/api/v1/namespaces"), ("nodes", "/api/v1/nodes"),
           ("pods", "/api/v1/pods"), ("services", "/api/v1/services"),
           ("deployments", "/apis/apps/v1/deployments")]


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="The cluster's data directory (default: the one of --name, else "
                     "$XDG_DATA_HOME/tinykube).")(f)
    return click.option("--name", default=None, callback=lambda _c, _p, v: check_name(v),
                        help="The cluster started with `tinykube up --name NAME`.")(f)


def data_dir_of(name: str | None, data_dir: Path | None) -> Path:
    return data_dir or default_data_dir(name)


def label(data_dir: Path) -> str:
    if data_dir == default_data_dir():
        return "tinykube"
    return data_dir.name if data_dir.name.startswith("tinykube-") else str(data_dir)


def holder(data_dir: Path) -> dict[str, Any]:
    """What up.lock says (PID, URL), if a live tinykube process holds it; else {}."""
    try:
        record = json.loads((data_dir / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    pid = record.get("pid")
    if not isinstance(pid, int) or not is_tinykube(pid):
        return {}
    return dict(record)


def is_tinykube(pid: int) -> bool:
    if not background.alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"tinykube" in part for part in cmdline)


def uptime(pid: int) -> float | None:
    """Seconds since `pid` started (from /proc), or None."""
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return boot - start_ticks / os.sysconf("SC_CLK_TCK")


def human(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60}m"


def children(pid: int) -> list[tuple[int, str]]:
    """The direct children of `pid` (the components process), with their command lines."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                found.append((int(proc.name), cmd))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


def dns_address(data_dir: Path) -> str | None:
    """The cluster DNS address a detached `up` printed, if any."""
    log = data_dir / background.LOG_FILE
    if not log.exists():
        return None
    found = None
    for line in background.read_from(log, 0):
        if line.startswith(background.DNS_PREFIX):
            found = line.split()[4]
    return found


def status_lines(data_dir: Path) -> list[str]:
    record = holder(data_dir)
    if not record:
        return [f"{label(data_dir)}: not running (data in {data_dir})"]
    pid = int(record["pid"])
    up = uptime(pid)
    lines = [f"{label(data_dir)}: running (PID {pid}"
             + (f", up {human(up)})" if up is not None else ")"),
             f"  data dir:    {data_dir}"]
    lines += [f"  components:  PID {child} ({cmd})" for child, cmd in children(pid)]
    lines.append(f"  API server:  {record.get('url', 'starting')}")
    if dns := dns_address(data_dir):
        lines.append(f"  cluster DNS: {dns}")
    kubeconfig = data_dir / "kubeconfig"
    lines.append(f"  kubeconfig:  {kubeconfig}")
    if (data_dir / background.LOG_FILE).exists():
        lines.append(f"  log:         {data_dir / background.LOG_FILE}")
    if record.get("url") and kubeconfig.exists():
        lines += api_lines(background.AdminAPI.from_kubeconfig(kubeconfig))
    return lines


def api_lines(api: background.AdminAPI) -> list[str]:
    import importlib.metadata

    try:
        _, version = api.request("GET", "/version")
        counts = []
        for name, path in COUNTED:
            code, body = api.request("GET", path)
            if code == 200:
                counts.append(f"{len(body.get('items', []))} {name}")
    except OSError as exc:
        return [f"  API server does not answer: {exc}"]
    return [f"  versions:    tinykube {importlib.metadata.version('tinykube')}, Kubernetes "
            f"{version.get('gitVersion', '?')}",
            f"  objects:     {', '.join(counts)}"]


@click.command("status")
@cluster_options
def status(name: str | None, data_dir: Path | None) -> None:
    """What runs: PIDs, addresses, versions, uptime, object counts."""
    directory = data_dir_of(name, data_dir)
    for line in status_lines(directory):
        click.echo(line)
    if not holder(directory):
        raise SystemExit(3)  # as `systemctl status` says "not running"


def selected(lines: Iterator[str], component: str | None, state: list[bool]) -> Iterator[str]:
    """The lines of `component` (by logger name; continuation lines such as tracebacks go
    with the record before them); all of them if None. `state` carries whether the last
    record matched, across calls."""
    prefixes = COMPONENTS.get(component or "", ())
    for line in lines:
        if component is None:
            yield line
            continue
        parts = line.split(maxsplit=4)
        if len(parts) >= 4 and parts[1][:1].isdigit() and parts[3].endswith(":"):
            state[0] = parts[3].rstrip(":").startswith(prefixes)
        elif len(parts) >= 4 and parts[1][:1].isdigit():
            state[0] = False
        if state[0]:
            yield line


@click.command("logs")
@cluster_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the cluster "
              "stops (or Ctrl-C).")
@click.argument("component", required=False, type=click.Choice(sorted(COMPONENTS)))
def logs(name: str | None, data_dir: Path | None, follow: bool,
         component: str | None) -> None:
    """The output of a detached cluster (up.log), or one component's log lines."""
    directory = data_dir_of(name, data_dir)
    log = directory / background.LOG_FILE
    if not log.exists():
        raise click.ClickException(f"no log in {directory}: only `tinykube up --detach` "
                                   "writes one (a foreground `up` prints to its terminal)")
    state = [False]
    offset = 0
    while True:
        with open(log, "rb") as f:
            f.seek(offset)
            chunk = f.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        offset += len(complete)
        for line in selected(iter(complete.decode(errors="replace").splitlines()), component,
                             state):
            click.echo(line)
        if not follow or not holder(directory):
            return
        time.sleep(0.2)


@click.command("down")
@cluster_options
@click.option("--timeout", type=float, default=60, show_default=True,
              help="Seconds to wait for a clean stop before SIGKILL.")
def down(name: str | None, data_dir: Path | None, timeout: float) -> None:
    """Stop a running (detached) cluster; its data stays."""
    directory = data_dir_of(name, data_dir)
    stop(directory, timeout)


def stop(directory: Path, timeout: float) -> None:
    record = holder(directory)
    if not record:
        click.echo(f"{label(directory)} is not running")
        return
    pid = int(record["pid"])
    clean = background.stop_pid(pid, timeout=timeout)
    click.echo(f"stopped {label(directory)} (PID {pid})" +
               ("" if clean else f": killed after {timeout:g}s"))


@click.command("reset")
@cluster_options
@click.option("--yes", is_flag=True, help="Do not ask.")
def reset(name: str | None, data_dir: Path | None, yes: bool) -> None:
    """Stop the cluster and delete its data directory (every object, certificates, log)."""
    directory = data_dir_of(name, data_dir)
    if not directory.exists():
        click.echo(f"{directory} does not exist: nothing to reset")
        return
    if not yes:
        click.confirm(f"Delete {directory} and everything in it?", abort=True)
    stop(directory, 60)
    shutil.rmtree(directory)
    click.echo(f"deleted {directory}")


def merge_kubeconfig(target: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """`target` with `source`'s clusters, users and contexts (replacing same-named ones) and
    `source`'s current context."""
    merged = dict(target)
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        names = {entry["name"] for entry in source.get(section, [])}
        kept = [e for e in (target.get(section) or []) if e.get("name") not in names]
        merged[section] = kept + list(source.get(section, []))
    merged["current-context"] = source.get("current-context")
    merged.setdefault("preferences", {})
    return merged


def kubeconfig_target() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


@click.command("kubeconfig")
@cluster_options
@click.option("--merge", is_flag=True, help="Write the context into $KUBECONFIG or "
              "~/.kube/config (and make it current) instead of printing the kubeconfig.")
def kubeconfig(name: str | None, data_dir: Path | None, merge: bool) -> None:
    """Print the cluster's kubeconfig, or merge it into yours."""
    import yaml

    directory = data_dir_of(name, data_dir)
    source_path = directory / "kubeconfig"
    if not source_path.exists():
        raise click.ClickException(f"no kubeconfig in {directory}: start the cluster first")
    if not merge:
        click.echo(source_path.read_text(), nl=False)
        return
    source = yaml.safe_load(source_path.read_text())
    target_path = kubeconfig_target()
    target = (yaml.safe_load(target_path.read_text()) or {}) if target_path.exists() else {}
    merged = merge_kubeconfig(target, source)
    target_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(merged, f, sort_keys=False)
    click.echo(f"Set kubectl context to \"{source['current-context']}\" in {target_path}")

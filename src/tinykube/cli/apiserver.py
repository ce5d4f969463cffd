"""`tinykube apiserver`: one more API server of a cluster whose store is etcd.

`tinykube up --store etcd://...` makes the data directory (CA, serving certificate, tokens) and
runs the first API server with the controllers and nodes; `tinykube apiserver --store ...
--data-dir DIR --listen HOST:PORT` runs another on the same etcd and directory, with a lock file
and a kubeconfig (`kubeconfig-PORT`) of its own. It serves the same objects, resourceVersions
and watches, and lists itself in the `kubernetes` Service's endpoints while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from tinykube.cli.standalone import run_loop
from tinykube.cli.up import (
    default_data_dir,
    feature_options,
    parse_duration,
    parse_features,
    split_listen,
)

STORE_HELP = "etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS with the --etcd-* files)."


def etcd_options(function: click.decorators.FC) -> click.decorators.FC:
    """The etcd flags shared by `tinykube up` and `tinykube apiserver`."""
    for option in reversed((
            click.option("--etcd-cafile", type=click.Path(path_type=Path, exists=True),
                         default=None, help="CA certificate of the etcd members (etcds://)."),
            click.option("--etcd-certfile", type=click.Path(path_type=Path, exists=True),
                         default=None, help="Client certificate for etcd (etcds://)."),
            click.option("--etcd-keyfile", type=click.Path(path_type=Path, exists=True),
                         default=None, help="Client key for etcd (etcds://)."),
            click.option("--etcd-compaction-interval", default="5m", show_default=True,
                         metavar="DURATION", help="How often etcd is compacted, as "
                         "kube-apiserver's flag of that name."))):
        function = option(function)
    return function


def check_store(store: str) -> None:
    from tinykube.apiserver.server import check_store_url

    try:
        check_store_url(store)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None


@click.command()
@click.option("--store", required=True, help=STORE_HELP)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="The cluster's data directory (made by `tinykube up --store`).")
@click.option("--listen", default="127.0.0.1:6444", show_default=True, metavar="HOST:PORT")
@click.option("--insecure-http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@etcd_options
@feature_options
@click.option("-v", "--verbose", count=True, help="More logging.")
def command(store: str, data_dir: Path | None, listen: str, insecure_http: bool,
            etcd_cafile: Path | None, etcd_certfile: Path | None, etcd_keyfile: Path | None,
            etcd_compaction_interval: str, feature_gates: str, runtime_config: str,
            verbose: int) -> None:
    """Run one more API server of a cluster on etcd."""
    from tinykube.apiserver.server import APIServerOptions

    features = parse_features(feature_gates, runtime_config)
    check_store(store)
    logging.basicConfig(level=logging.WARNING - 10 * verbose,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = data_dir or default_data_dir()
    host, port = split_listen(listen, "--listen")
    if not (data_dir / "ca.crt").exists() and not insecure_http:
        raise click.ClickException(f"{data_dir} has no cluster CA: run `tinykube up --store "
                                   f"{store} --data-dir {data_dir}` first")
    options = APIServerOptions(
        data_dir=data_dir, host=host, port=port, tls=not insecure_http, store=store,
        etcd_cafile=etcd_cafile, etcd_certfile=etcd_certfile, etcd_keyfile=etcd_keyfile,
        etcd_compaction_interval=parse_duration(etcd_compaction_interval,
                                                "--etcd-compaction-interval"),
        lock_file=f"apiserver-{port}.lock", kubeconfig_file=f"kubeconfig-{port}",
        kubeconfig_name=f"tinykube-{port}", features=features)
    run_loop(_serve(options))  # uvloop and a server's GC thresholds, as `tinykube up`


def add_context(kubeconfig: Path, name: str, server: str) -> None:
    """Add (or point again) a cluster and context `name` for this API server to the kubeconfig
    `tinykube up` wrote, with its user and CA, leaving its current context alone."""
    import yaml

    from tinykube import private

    if not kubeconfig.exists():
        return
    config = yaml.safe_load(kubeconfig.read_text()) or {}
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    current = contexts.get(config.get("current-context", ""))
    if current is None or current.get("cluster") not in clusters:
        return
    cluster = {**clusters[current["cluster"]], "server": server}
    config["clusters"] = [c for c in config["clusters"] if c["name"] != name] + [
        {"name": name, "cluster": cluster}]
    config["contexts"] = [c for c in config["contexts"] if c["name"] != name] + [
        {"name": name, "context": {**current, "cluster": name}}]
    private.write(kubeconfig, yaml.safe_dump(config, sort_keys=False))


async def _serve(options: object) -> None:
    from tinykube.apiserver.datadir import DataDirInUse
    from tinykube.apiserver.server import APIServerOptions, open_apiserver

    assert isinstance(options, APIServerOptions)
    try:
        running = await open_apiserver(options)
    except DataDirInUse as exc:
        raise click.ClickException(str(exc)) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    click.echo(f"tinykube API server ready at {running.url} (store {options.store})",
               err=False)
    add_context(options.data_dir / "kubeconfig", options.kubeconfig_name, running.url)
    click.echo(f"export KUBECONFIG={options.data_dir / options.kubeconfig_file}")
    try:
        await stop.wait()
    finally:
        await running.stop()
    click.echo("tinykube apiserver stopped", err=True)

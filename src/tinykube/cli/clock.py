"""`tinykube clock`: read or move the test clock of a cluster started with `--test-clock`.

    tinykube clock now [--kubeconfig FILE]
    tinykube clock advance SECONDS [--kubeconfig FILE]

`advance` returns once every reaction due by the new time has been applied (see
`tinykube.clock`). The kubeconfig defaults to $KUBECONFIG, then the default data directory's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tinykube.cli.up import default_data_dir

if TYPE_CHECKING:
    from tinykube.clock_client import TestClockClient


def _client(kubeconfig: Path | None) -> TestClockClient:
    from tinykube.clock_client import TestClockClient

    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = kubeconfig or (Path(env) if env else default_data_dir() / "kubeconfig")
    return TestClockClient(path)


@click.group("clock")
def command() -> None:
    """Read or move the cluster's test clock (`tinykube up --test-clock`)."""


_KUBECONFIG = click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False,
                                                           path_type=Path),
                           help="The cluster's admin kubeconfig.")


@command.command("now")
@_KUBECONFIG
def now(kubeconfig: Path | None) -> None:
    """Print the cluster's time (RFC 3339)."""
    from tinykube.clock_client import ClockError

    try:
        click.echo(_client(kubeconfig).now().isoformat())
    except ClockError as exc:
        raise click.ClickException(str(exc)) from None


@command.command("advance")
@click.argument("seconds", type=click.FloatRange(0))
@_KUBECONFIG
def advance(seconds: float, kubeconfig: Path | None) -> None:
    """Move the test clock SECONDS on; return once the cluster is quiescent."""
    from tinykube.clock_client import ClockError

    try:
        click.echo(_client(kubeconfig).advance(seconds).isoformat())
    except ClockError as exc:
        raise click.ClickException(str(exc)) from None

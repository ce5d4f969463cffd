"""Shared start-up of components that run alone against any API server.

`serve` (`tinykube dns|proxy`) loads the kubeconfig (explicit file, `$KUBECONFIG`, in-cluster
credentials, `~/.kube/config`), opens one client, runs the component until SIGINT or SIGTERM,
and then says it stopped. `run_components` (`tinykube controllers|node`) does the same for a
set of `components`, and reports a component's failure.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click

from tinykube.client.config import load
from tinykube.client.rest import RESTClient

if TYPE_CHECKING:
    from tinykube.components import ComponentOptions


async def serve(kubeconfig: str | None, name: str,
                component: Callable[[RESTClient], Awaitable[None]]) -> None:
    """Run `component(client)` until a signal cancels it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    async with RESTClient(load(kubeconfig)) as client:
        try:
            await component(client)
        except asyncio.CancelledError:
            click.echo(f"tinykube {name} stopped")


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop if there is one (without importing the API server's modules, as
    `cluster.run_forever` would: a node starts faster), with the cyclic GC tuned for a server
    as `tinykube up`'s processes are (`launch.tune_gc`)."""
    from tinykube.launch import tune_gc

    tune_gc()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main)
    else:
        uvloop.run(main)


async def run_components(options: ComponentOptions, *, running: str, stopped: str) -> None:
    """Start the components `options` name (`tinykube controllers`, `tinykube node`), say
    `running`, run them until SIGINT or SIGTERM or until one fails, stop them and say
    `stopped`; a failure to start or a component's failure is a ClickException."""
    from tinykube.components import start_components
    from tinykube.launch import run_until

    try:
        components = await start_components(options, announce=lambda line: click.echo(line))
    except OSError as exc:
        raise click.ClickException(f"could not start: {exc}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    click.echo(running)
    try:
        failure = await run_until(components.tasks, stop)
    finally:
        await components.stop()
    if failure is not None:
        raise click.ClickException(f"stopped: {failure}")
    click.echo(stopped, err=True)

"""Shared start-up of a component that runs alone against any API server (`tinykube dns|proxy`).

It loads the kubeconfig (explicit file, `$KUBECONFIG`, in-cluster credentials, `~/.kube/config`),
opens one client, runs the component until SIGINT or SIGTERM, and then says it stopped.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import click

from tinykube.client.config import load
from tinykube.client.rest import RESTClient


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
    `cluster.run_forever` would: a node starts faster)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main)
    else:
        uvloop.run(main)

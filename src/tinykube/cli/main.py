"""The `tinykube` command: one click group, one module per subcommand.

Subcommands are imported lazily by name so that `tinykube --help` stays fast and a component's
dependencies load only when that component runs.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# subcommand name -> module defining a click command named `command` (or `module:name`)
SUBCOMMANDS = {
    "up": "tinykube.cli.up",
    "apiserver": "tinykube.cli.apiserver",
    "dns": "tinykube.cli.dns",
    "proxy": "tinykube.cli.proxy",
    "node": "tinykube.cli.node",
    "controllers": "tinykube.cli.controllers",
    "token": "tinykube.cli.token",
    "status": "tinykube.cli.lifecycle:status",
    "logs": "tinykube.cli.lifecycle:logs",
    "down": "tinykube.cli.lifecycle:down",
    "reset": "tinykube.cli.lifecycle:reset",
    "kubeconfig": "tinykube.cli.lifecycle:kubeconfig",
    "ui": "tinykube.cli.observe:ui",
    "trace": "tinykube.cli.observe:trace",
    "explain": "tinykube.cli.explain",
    "clock": "tinykube.cli.clock",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = SUBCOMMANDS.get(cmd_name)
        if module is None:
            return None
        module, _, attribute = module.partition(":")
        command: Any = getattr(importlib.import_module(module), attribute or "command")
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="tinykube")
def cli() -> None:
    """tinykube: Kubernetes Services, cluster DNS and a service proxy on one machine."""


def main() -> None:
    if sys.argv[1:2] == ["up"]:  # the `tinykube` script: as early as it gets here
        import gc

        gc.disable()  # until `launch.tune_gc`, as `python -m tinykube up` (see `__main__`)
        from tinykube import launch

        launch.spawn_early(sys.argv[2:])
    cli()

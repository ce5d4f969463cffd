"""`tinykube token create|list`: bootstrap tokens for `tinykube node --token`, as kubeadm's.

`create` makes the token's Secret (`join.token_secret`) and, the first time, what a join needs
(`join.ensure_join_objects`: cluster-info and the RBAC), then prints the token, or with
`--print-join-command` the whole `tinykube node` command line with the CA hash. `list` prints
the tokens as `kubeadm token list` does (TOKEN, TTL, EXPIRES, USAGES, DESCRIPTION,
EXTRA GROUPS).
"""

from __future__ import annotations

import asyncio
import datetime

import click

from tinykube.cli.controllers import kubeconfig_path
from tinykube.cli.up import parse_duration

KUBECONFIG = click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False),
                          default=None, help="An admin kubeconfig (default: $KUBECONFIG, "
                          "~/.kube/config).")


@click.group()
def command() -> None:
    """Bootstrap tokens that let a node join (`tinykube node --token`)."""


@command.command("create")
@KUBECONFIG
@click.argument("token", required=False)
@click.option("--ttl", default="24h", show_default=True, metavar="DURATION",
              help="How long the token is valid; 0 for ever.")
@click.option("--description", default="", help="A human-readable note on the Secret.")
@click.option("--groups", default="system:bootstrappers:kubeadm:default-node-token",
              show_default=True, help="Comma-separated extra groups the token authenticates "
              "as (each system:bootstrappers:...).")
@click.option("--print-join-command", is_flag=True,
              help="Print the `tinykube node` command that joins with this token.")
def create(kubeconfig: str | None, token: str | None, ttl: str, description: str,
           groups: str, print_join_command: bool) -> None:
    """Create a bootstrap token (a random one unless TOKEN is given) and print it."""
    from tinykube import join
    from tinykube.api import bootstraptoken as bootstrap_tokens

    token = token or join.generate_token()
    if bootstrap_tokens.parse(token) is None:
        raise click.BadParameter(f"{token!r} is not of the form [a-z0-9]{{6}}.[a-z0-9]{{16}}",
                                 param_hint="TOKEN")
    lifetime = None if ttl in ("0", "0s") else datetime.timedelta(
        seconds=parse_duration(ttl, "--ttl"))
    extra = tuple(g.strip() for g in groups.split(",") if g.strip())
    bad = [g for g in extra if not g.startswith("system:bootstrappers:")]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} does not start with system:bootstrappers:",
                                 param_hint="--groups")
    server, ca_hash = asyncio.run(_create(kubeconfig_path(kubeconfig), token, lifetime,
                                          description, extra))
    if print_join_command:
        click.echo(f"tinykube node --server {server} --token {token} --ca-cert-hash {ca_hash} "
                   "--name NODE")
    else:
        click.echo(token)


async def _create(kubeconfig: str, token: str, ttl: datetime.timedelta | None,
                  description: str, groups: tuple[str, ...]) -> tuple[str, str]:
    from tinykube import join
    from tinykube.api import errors, resources
    from tinykube.client.config import load
    from tinykube.client.rest import RESTClient

    config = load(kubeconfig)
    if not config.ca_data:
        raise click.ClickException("the kubeconfig names no CA (certificate-authority-data): "
                                   "a joining node could not pin it")
    secret = join.token_secret(token, ttl=ttl, now=join.now(), description=description,
                               groups=groups)
    async with RESTClient(config) as client:
        await join.ensure_join_objects(client, config.server, config.ca_data)
        try:
            await client.create(resources.must("", "v1", "secrets"), secret, "kube-system")
        except errors.AlreadyExists as exc:
            raise click.ClickException(f"token {token.partition('.')[0]} exists "
                                       "already") from exc
        except errors.APIError as exc:
            raise click.ClickException(str(exc)) from exc
    return config.server, join.ca_cert_hash(config.ca_data)


@command.command("list")
@KUBECONFIG
def list_command(kubeconfig: str | None) -> None:
    """List the bootstrap tokens."""
    rows = asyncio.run(_list(kubeconfig_path(kubeconfig)))
    header = ("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


async def _list(kubeconfig: str) -> list[tuple[str, ...]]:
    from tinykube import join
    from tinykube.api import bootstraptoken as bootstrap_tokens
    from tinykube.api import resources
    from tinykube.client.config import load
    from tinykube.client.rest import RESTClient

    async with RESTClient(load(kubeconfig)) as client:
        listed = await client.list(resources.must("", "v1", "secrets"), "kube-system")
    now = join.now()
    rows: list[tuple[str, ...]] = []
    for secret in listed.get("items") or []:
        if secret.get("type") != bootstrap_tokens.SECRET_TYPE:
            continue
        data = bootstrap_tokens.secret_data(secret)
        expires = data.get("expiration", "")
        ttl = "<forever>"
        if expires:
            left = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) - now
            hours = int(left.total_seconds() // 3600)
            ttl = "<invalid>" if left.total_seconds() <= 0 else f"{hours}h"
        usages = ",".join(k.removeprefix("usage-bootstrap-") for k, v in sorted(data.items())
                          if k.startswith("usage-bootstrap-") and v == "true")
        rows.append((f"{data.get('token-id', '')}.{data.get('token-secret', '')}", ttl,
                     expires or "<never>", usages, data.get("description", "<none>") or
                     "<none>", data.get("auth-extra-groups", "")))
    return rows

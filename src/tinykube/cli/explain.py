"""`tinykube explain`: what a DNS name resolves to and why, or where a Service's traffic goes.

    tinykube explain NAME [--type A|AAAA|SRV|PTR] [--from POD] [-n NS] [-o json]
    tinykube explain service NAME [-n NS] [-o json]

It reads the objects through the API (any kubeconfig, as kubectl does) and runs the cluster
DNS's and the proxy's own code over them (`tinykube.explain`). The exit status is 0 when the
name resolves (or the Service is found), 1 when it does not.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from tinykube.client.config import load
from tinykube.client.rest import RESTClient
from tinykube.explain import explain_name, explain_service, gather, render


async def _run(kubeconfig: str | None, words: tuple[str, ...], options: dict[str, Any]
               ) -> dict[str, Any]:
    async with RESTClient(load(kubeconfig)) as client:
        snap = await gather(client)
    if len(words) == 2 and words[0] in ("service", "svc"):
        return explain_service(snap, words[1], namespace=options["namespace"])
    return explain_name(snap, words[0], **options)


@click.command(name="explain")
@click.argument("words", nargs=-1, required=True, metavar="NAME | service NAME")
@click.option("--type", "qtype", type=click.Choice(["A", "AAAA", "SRV", "PTR"],
                                                   case_sensitive=False), default="A",
              show_default=True, help="the record type the pod asks for.")
@click.option("--from", "from_pod", default=None, metavar="POD",
              help="the asking pod (NAME or NS/NAME); default: a pod in --namespace.")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config).")
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--pod-records", type=click.Choice(["insecure", "verified", "disabled"]),
              default="insecure", show_default=True, help="the cluster DNS's pod-record mode.")
def command(words: tuple[str, ...], qtype: str, from_pod: str | None, namespace: str,
            output: str, kubeconfig: str | None, cluster_domain: str, pod_records: str) -> None:
    """Explain what NAME resolves to from a pod and why, or where Service NAME's traffic goes."""
    if len(words) > 2 or (len(words) == 2 and words[0] not in ("service", "svc")):
        raise click.UsageError("expected NAME or `service NAME`")
    options = {"qtype": qtype, "from_pod": from_pod, "namespace": namespace,
               "domain": cluster_domain, "pod_records": pod_records}
    try:
        result = asyncio.run(_run(kubeconfig, words, options))
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(result, indent=2) if output == "json" else render.text(result),
               nl=output == "json")
    ok = result.get("found") if result["kind"] == "ServiceExplanation" else result["answeredBy"]
    raise SystemExit(0 if ok else 1)

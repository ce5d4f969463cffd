"""The nftables applier against a real kernel: a scratch network namespace (root, nft).

Runs on both event loops (conftest): uvloop refused to write an empty stdin to a command that
had already exited, which once stopped the proxy at its first conntrack flush.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from proxyobjects import endpoint, endpoint_slice, port, service

from tinykube.proxy import nftables, ports
from tinykube.proxy.nftproxy import NftNode, NftSyncer, PolicyInputs

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("conntrack") is None,
    reason="needs root, nft and conntrack")]

NODE = nftables.NodeConfig("a", "10.244.0.0/16", "10.96.0.0/12", ("10.96.0.10",))


@pytest.fixture
def netns(scratch_netns: str) -> str:
    return scratch_netns


def objects(ips: list[str]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return ([service("dns", "10.96.0.53", port(53, "dns", "UDP"))],
            [endpoint_slice("dns", [endpoint(ip) for ip in ips], [port(53, "dns", "UDP")])])


def nft(netns: str, *args: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", *args], capture_output=True,
                          text=True, check=True).stdout


def backends(netns: str) -> str:
    return nft(netns, "list", "table", "ip", "tinykube")


async def test_full_load_then_element_updates_and_udp_flushes(netns: str) -> None:
    node = NftNode(NODE, netns)
    syncer = NftSyncer([node])
    await syncer.sync(*objects(["10.244.0.2", "10.244.0.3"]))
    assert (node.stats.full_loads, node.stats.updates) == (1, 0)
    assert "10.244.0.3 . 53" in backends(netns)
    await syncer.sync(*objects(["10.244.0.2"]))
    assert (node.stats.full_loads, node.stats.updates, node.stats.flushed) == (1, 1, 1)
    assert "10.244.0.3" not in backends(netns) and not syncer.wants_retry
    await syncer.sync(*objects(["10.244.0.2"]))  # nothing changed: no nft run at all
    assert node.stats.updates == 1


async def test_a_refused_update_is_followed_by_a_full_load(netns: str) -> None:
    node = NftNode(NODE, netns)
    await node.apply(nftables.render(ports.service_ports(*objects(["10.244.0.2"])), NODE))
    nft(netns, "delete", "table", "ip", "tinykube")  # now an element update cannot apply
    await node.apply(nftables.render(ports.service_ports(*objects(["10.244.0.4"])), NODE))
    assert node.stats.full_loads == 2 and "10.244.0.4 . 53" in backends(netns)


async def test_a_node_that_fails_is_retried_and_does_not_stop_the_others(netns: str) -> None:
    other = nftables.NodeConfig("b", NODE.pod_cidr, NODE.service_cidr)
    good, gone = NftNode(NODE, netns), NftNode(other, "tkt-no-such-namespace")
    syncer = NftSyncer([gone, good])
    await syncer.sync(*objects(["10.244.0.2"]))
    assert syncer.wants_retry and list(syncer.failed) == ["b"]
    assert good.stats.full_loads == 1 and "10.244.0.2 . 53" in backends(netns)


def policy_inputs(web_ip: str) -> PolicyInputs:
    pods = [{"metadata": {"name": n, "namespace": "default", "labels": {"app": n}},
             "spec": {"nodeName": "a"}, "status": {"phase": "Running", "podIP": ip}}
            for n, ip in (("db", "10.244.0.2"), ("web", web_ip))]
    policy = {"metadata": {"name": "db", "namespace": "default"}, "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}}
    return PolicyInputs([policy], pods, [{"metadata": {"name": "default"}}])


async def test_policy_table_beside_the_service_table(netns: str) -> None:
    inputs = [policy_inputs("10.244.0.3")]
    node = NftNode(NODE, netns)
    syncer = NftSyncer([node], policy_inputs=lambda: inputs[0])
    await syncer.sync(*objects(["10.244.0.2"]))
    (policies,) = syncer.policy_nodes
    table = nft(netns, "list", "table", "ip", "tinykube-netpol")
    assert "10.244.0.2 : jump ingress-" in table and "10.244.0.3" in table
    inputs[0] = policy_inputs("10.244.0.7")  # the client pod was replaced: elements only
    await syncer.sync(*objects(["10.244.0.2"]))
    assert (policies.stats.full_loads, policies.stats.updates) == (1, 1)
    assert node.stats.updates == 0  # the service table did not change
    table = nft(netns, "list", "table", "ip", "tinykube-netpol")
    assert "10.244.0.7" in table and "10.244.0.3" not in table
    await syncer.close()
    assert "tinykube" not in nft(netns, "list", "tables")

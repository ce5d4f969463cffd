"""A partition of one etcd member under load through two API servers (root).

The members run in network-namespace "hosts" on one switch (`tinykube.testing_netns_hosts`);
cutting one member's link to the switch leaves it running and reachable by its clients (their
relay does not cross the switch) but alone, in both directions. Four clients get, put and
compare-and-swap one ConfigMap through both API servers before, during and after the cut of the
etcd leader (the member both API servers' clients are most likely on is not chosen on purpose).
While it is cut,
writes go on through the majority; the whole history is linearizable, so no read through either
API server was stale; once the link is back, the member has caught up with the others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.etcd_cluster import api_servers, needs_etcd
from tests.integration.etcd_register import RegisterLoad
from tinykube.testing_etcd import ETCDCTL, IN_HOST_PEER_PORT, Member
from tinykube.testing_linearize import OK
from tinykube.testing_linearize import check as check_linearizable
from tinykube.testing_netns_hosts import HostNetwork

pytestmark = [needs_etcd, pytest.mark.root, pytest.mark.usefixtures("host_network_unchanged"),
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="needs root and iproute2")]
KEY = "/registry/configmaps/default/register"


def local_revision(member: Member) -> int | None:
    """The register's mod revision in `member`'s own store (a serializable read), or None."""
    out = subprocess.run(
        [ETCDCTL, f"--endpoints={member.endpoint}", "--command-timeout=3s", "get", KEY,
         "--consistency=s", "-w", "json"], env={**os.environ, "ETCDCTL_API": "3"},
        capture_output=True, text=True, timeout=10, check=False)
    if out.returncode != 0:
        return None
    kvs = json.loads(out.stdout).get("kvs") or []
    return int(kvs[0]["mod_revision"]) if kvs else None


def test_a_cut_off_member_stalls_nothing_and_catches_up(tmp_path: Path) -> None:
    hosts = HostNetwork(3)
    with api_servers(tmp_path, hosts) as (etcd, _, servers):
        load = RegisterLoad(servers)
        cut_at = load.after_answers(40)
        cut = etcd.members.index(etcd.leader())
        other = hosts.address((cut + 1) % 3)
        assert hosts.reachable(cut, other, IN_HOST_PEER_PORT)
        hosts.cut(cut)
        assert not hosts.reachable(cut, other, IN_HOST_PEER_PORT)  # the cut cuts
        # the majority goes on: ten writes succeed while the member is cut (within 90 s:
        # the election after the cut takes seconds under load), and more answers come
        load.after_writes(10, since=cut_at)
        load.after_answers(20)
        restored_at = load.clock()
        hosts.restore(cut)
        load.after_answers(40)
        history = load.finish(servers[0])
        final = int(servers[0].connect().request(
            "GET", "/api/v1/namespaces/default/configmaps/register").json()[
                "metadata"]["resourceVersion"])
        deadline = time.monotonic() + 20
        while (seen := local_revision(etcd.members[cut])) != final and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        assert seen == final, (seen, final)  # the member caught up
    load.check_outcomes()
    during = [o for o in history if o.kind != "get" and o.output == OK
              and cut_at < o.call and o.ret < restored_at]
    assert len(during) >= 10, load.outcomes()  # writes went on without the member
    assert check_linearizable(history, initial="init") == [], load.outcomes()

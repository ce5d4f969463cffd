"""A partition of one etcd member under load through two API servers (root).

The members run in network-namespace "hosts" on one switch (`tinykube.testing_netns_hosts`);
cutting one member's link to the switch leaves it running and reachable by its clients (their
relay does not cross the switch) but alone, in both directions. The cut member is member 0,
made the leader or a follower first (`etcdctl move-leader`, the table's two rows); the first
API server has every member, the second member 0 alone. Through both servers, four clients
get, put and compare-and-swap one ConfigMap (`etcd_register`), and four writers, a watcher and
a lister per server create, update, watch and list ConfigMaps (`etcd_writes`), before, during
and after the cut. While it is cut, writes go on through the majority; the register's history
is linearizable, no consistent list missed a write acknowledged before it was sent, no
acknowledged write is lost, each writer's resourceVersions rise and each watch stream is
ordered, without duplicate or gap, and agrees with the final state; the second server answers
no consistent list from its cut-off member (it fails, or waits for the link), and serves again
once it is back; the member then has caught up with the others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import until
from tests.integration.etcd_cluster import api_servers, needs_etcd
from tests.integration.etcd_register import RegisterLoad
from tests.integration.etcd_writes import WriteLoad, stale_lists, verify
from tinykube.testing_etcd import ETCDCTL, IN_HOST_PEER_PORT, Member
from tinykube.testing_linearize import OK
from tinykube.testing_linearize import check as check_linearizable
from tinykube.testing_netns_hosts import HostNetwork

pytestmark = [needs_etcd, pytest.mark.root, pytest.mark.usefixtures("host_network_unchanged"),
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="needs root and iproute2")]
KEY = "/registry/configmaps/default/register"
CUT = 0  # the member cut off; the second API server's store is this member alone


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


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_a_cut_off_member_stalls_nothing_and_catches_up(tmp_path: Path, role: str) -> None:
    hosts = HostNetwork(3)
    with api_servers(tmp_path, hosts, pin_second=CUT) as (etcd, _, servers):
        member = etcd.members[CUT]
        etcd.move_leader(member if role == "leader" else etcd.members[CUT + 1])
        writes = WriteLoad(servers, "w-")
        load = RegisterLoad(servers)
        cut_at = load.after_answers(40)
        assert (etcd.leader() is member) == (role == "leader")
        other = hosts.address(CUT + 1)
        assert hosts.reachable(CUT, other, IN_HOST_PEER_PORT)
        hosts.cut(CUT)
        # from here on (not from before the cut, whose link-down takes a while under load:
        # lists answered in that while are not stale), the member is cut off
        cut_time = time.monotonic()
        assert not hosts.reachable(CUT, other, IN_HOST_PEER_PORT)  # the cut cuts
        # the majority goes on: ten writes succeed while the member is cut (within 90 s:
        # the election after the cut takes seconds under load), and more answers come
        load.after_writes(10, since=cut_at)
        load.after_answers(20)
        restored_at, restored_time = load.clock(), time.monotonic()
        hosts.restore(CUT)
        load.after_answers(40)
        history = load.finish(servers[0])
        pinned = writes.listers[1]  # its server's one member is back: it answers again
        until(lambda: any(a.status == 200 and a.call > restored_time for a in pinned.answers),
              30, "a consistent list through the pinned server after the cut")
        writes.stop()
        verify(servers[0], writes.writers, writes.watchers, "w-")
        final = int(servers[0].connect().request(
            "GET", "/api/v1/namespaces/default/configmaps/register").json()[
                "metadata"]["resourceVersion"])
        deadline = time.monotonic() + 20
        while (seen := local_revision(member)) != final and time.monotonic() < deadline:
            time.sleep(0.2)
        assert seen == final, (seen, final)  # the member caught up
    load.check_outcomes()
    during = [o for o in history if o.kind != "get" and o.output == OK
              and cut_at < o.call and o.ret < restored_at]
    assert len(during) >= 10, load.outcomes()  # writes went on without the member
    assert writes.acks(since=cut_time), [  # the writers' load went on
        (len(w.acks), w.failed, w.acks[-1].call - cut_time if w.acks else None)
        for w in writes.writers]
    assert check_linearizable(history, initial="init") == [], load.outcomes()
    acks = writes.acks()
    for lister in writes.listers:  # no consistent list was stale
        assert stale_lists(lister.answers, acks) == [], lister.outcomes()
    # the pinned server's member cannot serve a quorum read while cut off: its lists failed
    during = [a for a in pinned.answers if cut_time < a.call < restored_time]
    assert during and all(a.status != 200 or a.ret > restored_time for a in during), \
        pinned.outcomes()

"""A partition of one etcd member under load through two API servers.

The members' peer traffic passes through loopback relays the test owns
(`tinykube.testing_peer_relay`); cutting one member's relays leaves it running and reachable by
its clients but alone, in both directions. Four clients get, put and compare-and-swap one
ConfigMap through both API servers before, during and after the cut of the etcd leader (the
member both API servers' clients are most likely on is not chosen on purpose). While it is cut,
writes go on through the majority; the whole history is linearizable, so no read through either
API server was stale; once the relays are back, the member has caught up with the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.integration.etcd_cluster import api_servers, needs_etcd
from tests.integration.etcd_register import RegisterLoad
from tinykube.testing_etcd import ETCDCTL, Member
from tinykube.testing_linearize import OK
from tinykube.testing_linearize import check as check_linearizable
from tinykube.testing_peer_relay import PeerRelays

pytestmark = needs_etcd
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
    relays = PeerRelays(3)
    with api_servers(tmp_path, relays) as (etcd, _, servers):
        load = RegisterLoad(servers)
        cut_at = load.after_answers(40)
        cut = etcd.members.index(etcd.leader())
        relays.cut(cut)
        # the majority goes on: ten writes succeed while the member is cut (within 90 s:
        # the election after the cut takes seconds under load), and more answers come
        load.after_writes(10, since=cut_at)
        load.after_answers(20)
        restored_at = load.clock()
        relays.restore(cut)
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
    assert relays.refused > 0  # the cut did cut something
    load.check_outcomes()
    during = [o for o in history if o.kind != "get" and o.output == OK
              and cut_at < o.call and o.ret < restored_at]
    assert len(during) >= 10, load.outcomes()  # writes went on without the member
    assert check_linearizable(history, initial="init") == [], load.outcomes()

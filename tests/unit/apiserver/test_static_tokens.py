"""kube's token file (`--token-auth-file`): its CSV lines as users, and the component
identities `tinykube up` keeps in it across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinykube.apiserver import static_tokens
from tinykube.apiserver.rbac import User

LINES: dict[str, tuple[str, dict[str, User]]] = {
    "user, uid, one group": ("t1,alice,u1,devs\n",
                             {"t1": User("alice", ("devs", "system:authenticated"), "u1")}),
    "several groups, quoted": ('t2,bob,u2,"a,b"\n',
                               {"t2": User("bob", ("a", "b", "system:authenticated"), "u2")}),
    "no groups": ("t3,carol,u3\n", {"t3": User("carol", ("system:authenticated",), "u3")}),
    "short and blank lines are skipped": ("\nt4,dave\n,eve,u5\n", {}),
}


@pytest.mark.parametrize("case", LINES, ids=list(LINES))
def test_parse(case: str) -> None:
    text, users = LINES[case]
    assert static_tokens.parse(text) == users


def test_ensure_keeps_existing_tokens_and_adds_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    scheduler = User("system:kube-scheduler")
    first = static_tokens.ensure(path, [scheduler])
    assert static_tokens.ensure(path, [scheduler]) == first
    both = static_tokens.ensure(path, [scheduler, User("system:kube-proxy")])
    assert both["system:kube-scheduler"] == first["system:kube-scheduler"]
    assert path.stat().st_mode & 0o077 == 0
    tokens = static_tokens.TokenFile(path)
    assert tokens.user(both["system:kube-proxy"]) == User("system:kube-proxy",
                                                         ("system:authenticated",))
    assert tokens.user("nope") is None

"""Static bearer tokens: kube-apiserver's `--token-auth-file`, which tinykube uses to give its
own components identities of their own.

The file is `tokens.csv` in the data directory, in kube's format: one line per token,
`token,user,uid,"group1,group2"` (groups optional, quoted when there are several). It is read
when the API server starts, as kube reads it (a change needs a restart). `ensure` adds a line,
with a new random token, for each wanted identity the file does not have yet and returns every
identity's token, so a second `tinykube up` keeps the tokens a running component holds. What an
identity may do is RBAC's: the component users are kube's (`system:kube-scheduler` ...), bound
by the default policy.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable
from pathlib import Path

from tinykube import private
from tinykube.apiserver.rbac import User

AUTHENTICATED = "system:authenticated"


def parse(text: str) -> dict[str, User]:
    """token -> user, from the file's text (short or blank lines are skipped, as kube's
    reader refuses them at start; here a bad line only loses its token)."""
    users: dict[str, User] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 3 or not row[0] or not row[1]:
            continue
        groups = [g for g in (row[3].split(",") if len(row) > 3 and row[3] else []) if g]
        if AUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        users[row[0]] = User(row[1], tuple(groups), row[2])
    return users


def render(users: dict[str, User]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for token, user in users.items():
        groups = [g for g in user.groups if g != AUTHENTICATED]
        writer.writerow([token, user.name, user.uid, ",".join(groups)])
    return out.getvalue()


class TokenFile:
    """The tokens of `path`, as a token authenticator (`access.token_authenticators`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users = parse(path.read_text()) if path.exists() else {}

    def __repr__(self) -> str:
        return f"TokenFile({self.path}, {len(self.users)} tokens)"

    def user(self, token: str) -> User | None:
        return self.users.get(token)


def ensure(path: Path, wanted: Iterable[User]) -> dict[str, str]:
    """user name -> token for every wanted identity, adding lines for the missing ones."""
    users = parse(path.read_text()) if path.exists() else {}
    tokens = {user.name: token for token, user in users.items()}
    changed = False
    for user in wanted:
        if user.name not in tokens:
            token = secrets.token_urlsafe(32)
            users[token] = user
            tokens[user.name] = token
            changed = True
    if changed:
        private.write(path, render(users))
    return tokens

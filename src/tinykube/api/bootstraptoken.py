"""Bootstrap tokens' format and Secret layout (kubeadm's, `bootstrap.kubernetes.io/token`).

A token is `<token-id>.<token-secret>`, 6 and 16 characters of `[a-z0-9]`; its Secret is
`kube-system/bootstrap-token-<token-id>`. Shared by the API server's authenticator
(`apiserver.bootstrap_tokens`) and the `tinykube token` commands.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from collections.abc import Mapping
from typing import Any

TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
NAMESPACE = "kube-system"
GROUP_PATTERN = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")

Obj = Mapping[str, Any]


def parse(token: str) -> tuple[str, str] | None:
    """(token-id, token-secret) of a bootstrap token, or None if it is not shaped as one."""
    match = TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


def secret_data(secret: Obj) -> dict[str, str]:
    """The Secret's data, decoded (undecodable values are left out)."""
    decoded = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            decoded[key] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    return decoded


def expired(data: Mapping[str, str], now: datetime.datetime) -> bool:
    """Whether the token's `expiration` has passed (an unparsable one counts as passed)."""
    text = data.get("expiration")
    if not text:
        return False
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        return True
    return now >= when

"""Who tinykube's own components are to the API server: kube's users for them.

A table (`COMPONENTS`): component -> the user it authenticates as (a static token, see
`apiserver.static_tokens`) and the User-Agent it sends, so the audit log and RBAC see
`system:kube-scheduler` where kube-apiserver would. Only the components listed have an
identity of their own; the others still share the admin's credential (the README says which).
Imports nothing: `cluster` (which makes the tokens) and `components` (which uses them) both
read it.
"""

from __future__ import annotations

VERSION = "v1.32.0"

# component -> (user, groups); bound by kube's default policy (apiserver/rbac_defaults.yaml)
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kube-scheduler": ("system:kube-scheduler", ()),
    # the userspace proxy only (host network); the netns mode's nftables proxy also enforces
    # NetworkPolicies, which kube-proxy's role does not cover, and keeps the admin's client
    "kube-proxy": ("system:kube-proxy", ()),
}


def user_agent(component: str) -> str:
    """kube's form: `NAME/VERSION (OS/ARCH) kubernetes/COMMIT`, with tinykube for the commit."""
    return f"{component}/{VERSION} (linux/amd64) tinykube"

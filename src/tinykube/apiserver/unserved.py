"""The 404s of API paths tinykube does not serve: what is missing, and what to use instead.

kube-apiserver answers an API path it has no handler for (an unknown group, version, resource
or subresource) with `404 NotFound` and the message "the server could not find the requested
resource". tinykube serves a subset of the API, so a client meets that 404 for things a real
cluster has. It keeps the reason, the code and kube's sentence (clients branch on the first two
and some match the third) and adds what tinykube does not serve and, where there is one, the
alternative:

    the server could not find the requested resource (tinykube does not serve
    pods/proxy; connect to the pod IP directly)

`ALTERNATIVES` is the table of known gaps, keyed by (group, resource, subresource); a group-wide
row has an empty resource. A path the table does not name still says what is not served. A
resource that tinykube starts to serve never reaches this module (the route finds it first), so a
stale row is harmless.
"""

from __future__ import annotations

from tinykube.api import errors

NOT_FOUND = "the server could not find the requested resource"

# (group, resource, subresource) -> what to do instead, "" when there is nothing.
ALTERNATIVES: dict[tuple[str, str, str], str] = {
    ("", "pods", "ephemeralcontainers"): "kubectl debug --copy-to makes a copy of the pod with "
                                         "the debug container",
    ("", "pods", "proxy"): "connect to the pod IP directly",
    ("", "services", "proxy"): "connect to the Service's cluster IP, which tinykube's service "
                               "proxy forwards, or to a pod IP",
    ("", "nodes", "proxy"): "kubectl logs serves container logs",
    ("", "pods", "resize"): "change the pod's resources by recreating it",
}


def _alternative(group: str, resource: str, subresource: str) -> str:
    if subresource:
        return ALTERNATIVES.get((group, resource, subresource), "")
    return ALTERNATIVES.get((group, resource, "")) or ALTERNATIVES.get((group, "", ""), "")


def _what(group: str, version: str, resource: str, subresource: str) -> str:
    group_version = f"{group}/{version}" if group else version
    if subresource:
        return f"{resource}/{subresource}" + (f" in {group}" if group else "")
    if resource:
        return f"{resource} in {group_version}"
    if version:
        return group_version
    return f"the {group} API group"


def not_found(group: str, version: str = "", resource: str = "",
              subresource: str = "") -> errors.NotFound:
    """kube-apiserver's 404 for a path it does not serve, saying what tinykube lacks."""
    what = _what(group, version, resource, subresource)
    alternative = _alternative(group, resource, subresource)
    detail = f"tinykube does not serve {what}" + (f"; {alternative}" if alternative else "")
    return errors.NotFound(f"{NOT_FOUND} ({detail})", details={})

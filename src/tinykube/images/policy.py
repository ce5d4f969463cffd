"""`imagePullPolicy` as Kubernetes applies it (pure functions).

The API server defaults an empty policy from the image: `Always` for `:latest` or no tag
(unless the image names a digest), `IfNotPresent` otherwise. The kubelet then pulls on
`Always` every time (a cached manifest digest makes that a manifest request and nothing
more), on `IfNotPresent` only when the image is absent, and never on `Never`, where an absent
image is `ErrImageNeverPull`.
"""

from __future__ import annotations

from tinykube.images.errors import NeverPull

ALWAYS, IF_NOT_PRESENT, NEVER = "Always", "IfNotPresent", "Never"


def default_policy(image: str) -> str:
    """The policy the API server gives a container whose `imagePullPolicy` is empty."""
    name = image.partition("@")[0]
    if "@" in image:
        return IF_NOT_PRESENT
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    return ALWAYS if tag in ("", "latest") else IF_NOT_PRESENT


def should_pull(policy: str, image: str, present: bool) -> bool:
    """Whether the kubelet pulls `image` now; `NeverPull` for `Never` and an absent image."""
    policy = policy or default_policy(image)
    if policy == ALWAYS:
        return True
    if policy == NEVER:
        if not present:
            raise NeverPull(image)
        return False
    return not present

"""A scratch network namespace for loading nftables scripts into a real kernel (root, nft)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_netns() -> Iterator[str]:
    """A new, empty network namespace (`tkt-` + 8 hex digits), deleted afterwards."""
    name = f"tkt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def load(netns: str, script: str) -> None:
    """`nft -f -` of `script` in `netns`; fails the test with nft's message if refused."""
    result = subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=script,
                            text=True, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr

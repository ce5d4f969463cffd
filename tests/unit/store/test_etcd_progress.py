"""Which etcd versions' requested progress notifications the store trusts (etcd#15220)."""

from __future__ import annotations

import pytest

from tinykube.store.etcd import reliable_progress

VERSIONS = [("3.4.23", False), ("3.4.30", False), ("3.4.31", True), ("3.5.12", False),
            ("3.5.13", True), ("3.5.21", True), ("3.6.0", True), ("3.6.0-rc.1", True),
            ("3.3.27", False), ("", False), ("unknown", False)]


@pytest.mark.parametrize(("version", "reliable"), VERSIONS, ids=[v or "none" for v, _ in VERSIONS])
def test_reliable_progress(version: str, reliable: bool) -> None:
    assert reliable_progress(version) is reliable

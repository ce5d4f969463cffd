"""Every async proxy test runs on both event loops `tinykube` may use: asyncio's and uvloop's
(their transports differ: uvloop's are not `asyncio.Transport` subclasses). `scratch_netns` is a
namespace to load nftables scripts into (root and nft, else the test is skipped)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

sys.path.insert(0, str(Path(__file__).parent))

import scratch


@pytest.fixture
def scratch_netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nft")
    with scratch.scratch_netns() as name:
        yield name


@pytest.fixture(scope="session", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    if request.param == "uvloop":
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()

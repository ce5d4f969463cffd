"""Every async proxy test runs on both event loops `tinykube` may use: asyncio's and uvloop's
(their transports differ: uvloop's are not `asyncio.Transport` subclasses)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop


@pytest.fixture(scope="session", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    if request.param == "uvloop":
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()

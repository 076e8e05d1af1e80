"""The health gate against a hostile production (a real server in a process of its own): it ends
by its deadline whatever production does, reads little of what it is sent, and follows a
redirect only where production may go."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

import pytest

from conductor.releases.deploy import HealthResult, health_gate
from smoke import parse_app_config
from smoke.health import offsite_reason
from tests.helpers import MEMORY_BOUND, MemoryPeak
from tests.hostile_http import EVIL_HOST, HostileServer

log = logging.getLogger(__name__)

#: the gate's limit where production never gets healthy: short, so the bound shows
LIMIT = 3.0
#: how late past its limit a gate may end: the issue's bound
LATE = 1.0
#: an outer bound only, where production gets healthy (a quick machine never waits for it)
AMPLE = 60.0


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


@dataclass(frozen=True)
class Measured:
    result: HealthResult
    seconds: float
    #: the most the process's resident memory rose while the gate ran, in bytes
    growth: int


async def measured(gate: Awaitable[HealthResult]) -> Measured:
    """Run ``gate``: its result, how long it took and how far the memory rose."""
    started = time.perf_counter()
    with MemoryPeak() as memory:
        # an outer bound only: a gate without a deadline fails here instead of hanging
        async with asyncio.timeout(AMPLE):
            result = await gate
    seconds = time.perf_counter() - started
    log.info("%s: %.2f s, peak RSS %s", result.summary, seconds, memory.mib)
    return Measured(result, seconds, memory.growth)


async def test_a_slow_loris_ends_by_the_deadline(hostile: HostileServer) -> None:
    # the status line, then one byte of a header every 2 s: no read ever times out
    gate = await measured(health_gate(f"{hostile.url}/loris", limit_s=LIMIT, interval=0.5))

    assert not gate.result.healthy
    assert gate.result.attempts == 1
    assert gate.result.last == "no complete answer within the gate's 3.0 s"
    assert gate.result.summary.endswith("no complete answer within the gate's 3.0 s")
    assert LIMIT <= gate.seconds < LIMIT + LATE
    assert gate.growth < MEMORY_BOUND


async def test_an_endless_body_is_not_read_and_is_not_healthy(hostile: HostileServer) -> None:
    # 1 MiB chunks as fast as the socket takes them: hundreds of MB in the gate's 3 s if read
    gate = await measured(health_gate(f"{hostile.url}/endless", limit_s=LIMIT, interval=0.5))

    assert not gate.result.healthy
    assert gate.result.last == "status 200, but its body ran past 64 KiB"
    assert gate.result.attempts >= 2  # each check closed after 64 KiB, the next one made
    assert gate.seconds < LIMIT + LATE
    assert gate.growth < MEMORY_BOUND


async def test_a_redirect_off_the_allowed_hosts_fails_at_once_naming_the_host(
    hostile: HostileServer,
) -> None:
    app = parse_app_config({"production_url": hostile.url, "allowed_hosts": ["sso.example.com"]})
    gate = await measured(
        health_gate(f"{hostile.url}/away", limit_s=LIMIT, interval=0.5, offsite=app.offsite)
    )

    assert not gate.result.healthy
    assert gate.result.last == offsite_reason(EVIL_HOST)
    assert EVIL_HOST in gate.result.summary
    # not asked again, nor waited out: production would only send it there again
    assert gate.result.attempts == 1
    assert gate.seconds < LIMIT
    assert gate.growth < MEMORY_BOUND


async def test_without_allowed_hosts_only_the_urls_own_host_is_followed(
    hostile: HostileServer,
) -> None:
    away = await health_gate(f"{hostile.url}/away", limit_s=LIMIT)
    assert (away.healthy, away.attempts, away.last) == (False, 1, offsite_reason(EVIL_HOST))

    # localhost is the same server, but another host than 127.0.0.1
    other = await health_gate(f"{hostile.url}/other-host", limit_s=LIMIT)
    assert other.last == offsite_reason(f"localhost:{hostile.port}")


async def test_a_few_503s_then_200_passes(hostile: HostileServer) -> None:
    result = await health_gate(f"{hostile.url}/flaky/3", limit_s=AMPLE, interval=0.05)

    assert result.healthy, result.summary
    assert result.attempts == 4
    assert result.summary.startswith("healthy after 4 checks")


async def test_a_redirect_to_an_allowed_host_is_followed(hostile: HostileServer) -> None:
    app = parse_app_config(
        {"production_url": hostile.url, "allowed_hosts": [f"localhost:{hostile.port}"]}
    )
    result = await health_gate(
        f"{hostile.url}/other-host", limit_s=AMPLE, interval=0.05, offsite=app.offsite
    )

    assert result.healthy, result.summary
    assert result.attempts == 1

"""The seal's health check against a hostile production (a real server in a process of its own):
bounded by the health timeout however production trickles, at most 64 KiB of body read, and a
redirect off production named, not followed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from smoke import CheckResult, parse_app_config
from smoke.runner import check_health
from tests.helpers import MEMORY_BOUND, MemoryPeak
from tests.hostile_http import EVIL_HOST, HostileServer

log = logging.getLogger(__name__)

#: the health timeout where production never answers in full: short, so the bound shows
TIMEOUT = 3.0
#: how late past its timeout the check may end
LATE = 1.0


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


async def checked(url: str, path: str) -> tuple[CheckResult, bool, float, int]:
    """The health check of ``path``: its result, whether production was unreachable, how long
    it took and how far the memory rose."""
    app = parse_app_config({"production_url": url, "health_path": path, "health_timeout": TIMEOUT})
    started = time.perf_counter()
    with MemoryPeak() as memory:
        result, unreachable = await check_health(app)
    seconds = time.perf_counter() - started
    log.info("%s: %s in %.2f s, peak RSS %s", path, result.reason, seconds, memory.mib)
    return result, unreachable, seconds, memory.growth


async def test_a_slow_loris_times_out_on_time(hostile: HostileServer) -> None:
    result, unreachable, seconds, growth = await checked(hostile.url, "/loris")

    assert (result.ok, result.status, result.reason) == (False, None, "timed out after 3.0 s")
    assert not unreachable  # something answered: the pages get their own verdicts
    assert TIMEOUT <= seconds < TIMEOUT + LATE
    assert growth < MEMORY_BOUND


async def test_an_endless_body_is_not_read(hostile: HostileServer) -> None:
    result, unreachable, seconds, growth = await checked(hostile.url, "/endless")

    assert (result.ok, result.status) == (False, 200)
    assert result.reason == "status 200, but its body ran past 64 KiB"
    assert not unreachable
    assert seconds < TIMEOUT  # read to 64 KiB and closed, not read until the timeout
    assert growth < MEMORY_BOUND


async def test_a_redirect_off_production_names_the_host(hostile: HostileServer) -> None:
    result, _, seconds, _ = await checked(hostile.url, "/away")

    assert (result.ok, result.status) == (False, 302)
    assert result.reason == (
        f"redirected to another host: {EVIL_HOST} (not production, not in allowed_hosts)"
    )
    assert seconds < TIMEOUT

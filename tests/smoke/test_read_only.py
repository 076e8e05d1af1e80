"""Read-only by construction, against a hostile production (``tests/smoke/hostile.py``): pages
that try every way a browser can write, and a server that counts whatever reaches it.

The control shows each way really writes in a plain Chromium; the runner lets none through,
whatever the order pages load and close, and reports every attempt on the check whose page
made it. Both run in each Chromium a seal may use: Debian's headless shell (the default where it
is installed) and its full browser.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, async_playwright

from smoke import BlockedRequest, SmokeResult, Verdict, readonly
from smoke.config import FULL_CHROMIUM, HEADLESS_SHELL
from smoke.readonly import PagePool
from smoke.runner import LAUNCH_ARGS, PlaywrightRunner
from tests.helpers import suite
from tests.smoke.hostile import (
    CHECK_TIMEOUT,
    EXPECTED,
    LEAVER_EXPECTED,
    PAGES,
    HostileApp,
    hostile_checks,
)

#: the checks a page's writes may be reported on: its own (a popup's writes are its opener's)
_FAMILY = {
    "popup": {"popup", "popup-noopener", "popup-other"},
    "orphan": {"orphan"},
}


#: each Chromium a seal may run in; one missing here is skipped, not passed
BROWSERS = [
    pytest.param(
        path,
        id=name,
        marks=pytest.mark.skipif(not os.access(path, os.X_OK), reason=f"{path} is not installed"),
    )
    for name, path in (("headless-shell", HEADLESS_SHELL), ("full", FULL_CHROMIUM))
]


@pytest.fixture
async def hostile() -> AsyncIterator[HostileApp]:
    async with HostileApp() as app:
        yield app


async def _quiet_for_a_moment() -> None:
    """Whatever a closing browser would still send arrives within this."""
    await asyncio.sleep(1.0)


async def _until(reached: Callable[[], bool], *, within: float = 60.0) -> None:
    """Until ``reached()`` holds (looked at every 50 ms), for at most ``within`` seconds: an
    outer bound, the assertions after it say what never came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if reached():
            return
        await asyncio.sleep(0.05)


#: seconds the control gives a page, the browser or Playwright's driver to close: a bound, never
#: a wait (a hostile popup closing itself as it is closed can leave Playwright's close unanswered)
_CLOSE_BOUND = 30.0


def _descendants() -> set[int]:
    """The pids of this process's descendants (Linux's ``/proc``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


async def _bounded(closing: Awaitable[object]) -> None:
    with suppress(Exception):
        await asyncio.wait_for(closing, _CLOSE_BOUND)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _writer(blocked: BlockedRequest) -> str | None:
    """The hostile page a write names (``/w/<name>/…``), if it names one."""
    if blocked.method in ("RTCPEERCONNECTION", "WEBTRANSPORT"):
        return _name(urlsplit(blocked.url).path)
    parts = urlsplit(blocked.url).path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "w" else None


def _attempts(result: SmokeResult, name: str) -> set[tuple[str, str]]:
    check = next(c for c in result.checks if c.path == f"/h/{name}")
    return {(b.method, urlsplit(b.url).path) for b in check.blocked}


@pytest.mark.parametrize("chromium", BROWSERS)
async def test_the_control_every_way_writes_without_the_runner(
    hostile: HostileApp, chromium: str
) -> None:
    """In a plain Chromium the hostile pages reach the server by every way the runner stops:
    the test below could fail. The pages stay open until the server has heard each way
    (however long a busy machine takes), then close, and the beacon sent on the way out is
    waited for."""
    ways = {"POST", "PUT", "PATCH", "DELETE", "WEBSOCKET"}
    # forms, fetch and XHR, beacons, pings, CSP reports, popups, frames, workers, sockets
    writers = {
        "form",
        "fetch",
        "beacon",
        "ping",
        "csp",
        "popup",
        "iframe",
        "workers",
        "socket",
        "orphan",
        "leave",
    }

    def reached() -> set[str]:
        return {path for _, path in hostile.reached.writes}

    def every_way_heard() -> bool:
        paths = reached()
        return (
            ways <= {method for method, _ in hostile.reached.writes}
            and {path.split("/")[2] for path in paths} >= writers
            and "/w/workers/worker-shared-fetch" in paths
            and hostile.reached.udp > 0
        )

    before = _descendants()
    playwright = await async_playwright().start()
    try:
        browser = await playwright.chromium.launch(executable_path=chromium, args=list(LAUNCH_ARGS))
        context = await browser.new_context()
        pages = [await context.new_page() for _ in PAGES]
        await asyncio.gather(
            *(
                page.goto(f"{hostile.url}/h/{name}", wait_until="domcontentloaded")
                for page, name in zip(pages, PAGES, strict=True)
            ),
            return_exceptions=True,
        )
        await _until(every_way_heard)
        await asyncio.gather(
            *(_bounded(page.close()) for page in context.pages if not page.is_closed())
        )
        await _until(lambda: "/w/beacon/pagehide" in reached())
        await _bounded(browser.close())
    finally:
        await _bounded(playwright.stop())
        for pid in _descendants() - before:  # whatever a close left running
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    await _quiet_for_a_moment()

    methods = {method for method, _ in hostile.reached.writes}
    assert ways <= methods
    assert {path.split("/")[2] for path in reached()} >= writers
    assert "/w/workers/worker-shared-fetch" in reached()  # a shared worker, unrouted
    assert "/w/beacon/pagehide" in reached()  # sent as the page closed
    assert hostile.reached.udp > 0  # WebRTC: STUN, TURN and peer checks over UDP


async def _run_hostile(
    hostile: HostileApp, *, max_parallel: int, reverse: bool, chromium: str
) -> SmokeResult:
    checks = hostile_checks()
    if reverse:
        checks.reverse()
    result = await PlaywrightRunner(max_parallel=max_parallel).run(
        suite(hostile.url, smoke=checks, health_path="/up", chromium_path=chromium)
    )
    await _quiet_for_a_moment()
    return result


@pytest.mark.parametrize(
    ("max_parallel", "reverse"),
    [(8, False), (1, True)],
    ids=["all-at-once", "one-by-one-reversed"],
)
@pytest.mark.parametrize("chromium", BROWSERS)
async def test_nothing_reaches_a_hostile_production_and_every_attempt_is_reported(
    hostile: HostileApp, max_parallel: int, reverse: bool, chromium: str
) -> None:
    result = await _run_hostile(
        hostile, max_parallel=max_parallel, reverse=reverse, chromium=chromium
    )

    # Zero writes reached the server: no request but GET/HEAD, no WebSocket, no UDP, no TURN.
    assert hostile.reached.writes == []
    assert (hostile.reached.udp, hostile.reached.tcp) == (0, 0)
    assert result.verdict is Verdict.GREEN, result.summary

    # Every attempt is reported on the check whose page made it…
    for name, expected in EXPECTED.items():
        assert expected <= _attempts(result, name), name
    assert {("WEBSOCKET", "/w/socket/same"), ("WEBSOCKET", "/w/socket/other")} <= _attempts(
        result, "socket"
    )
    assert {("RTCPEERCONNECTION", "/h/webrtc"), ("WEBTRANSPORT", "/h/webrtc")} <= _attempts(
        result, "webrtc"
    )
    shared = {("POST", "/w/workers/worker-shared-fetch"), ("PUT", "/w/workers/worker-shared-xhr")}
    assert shared <= _attempts(result, "workers")
    # …and a write that names its page is reported on no other check. (A worker's WebSocket
    # reaches the dead end as a bare CONNECT naming no page: it is reported on every check
    # open at the time, and is left out here.)
    for check in result.checks[1:]:
        own = _FAMILY.get(_name(check.path), {_name(check.path)})
        for blocked in check.blocked:
            writer = _writer(blocked)
            if writer is not None:
                assert writer in own, (check.path, blocked)
    # the workers' sockets were refused at the dead end, and heard
    assert BlockedRequest("CONNECT", f"127.0.0.1:{hostile.port}") in result.blocked
    assert result.summary.endswith(f"{len(result.blocked)} writes blocked")


async def test_the_browser_s_own_traffic_is_refused_but_not_reported(hostile: HostileApp) -> None:
    """Chromium's updater and sign-in probes go to the dead end too: not to production, and not
    reported as a page's writes (no referrer, another host)."""
    result = await PlaywrightRunner().run(
        suite(hostile.url, smoke=[{"path": "/h/blank", "expect_text": "blank"}], health_path="/up")
    )
    assert result.verdict is Verdict.GREEN and result.blocked == (), result.blocked


# -- the page pool: a page reused by the next check ----------------------------------------------


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[Page]:
    """The pages the pool hands out, one per check, in order."""
    pages: list[Page] = []
    take = PagePool.take

    async def spy(pool: PagePool) -> Page:
        page = await take(pool)
        pages.append(page)
        return page

    monkeypatch.setattr(PagePool, "take", spy)
    return pages


@pytest.mark.parametrize("max_parallel", [1, 2])
async def test_a_reused_page_s_writes_stay_on_the_check_that_made_them(
    hostile: HostileApp, handed: list[Page], monkeypatch: pytest.MonkeyPatch, max_parallel: int
) -> None:
    """Six checks on one or two pages (the pool hands each freed page to the next check):
    each page writes every 5 ms without a referrer, up to the moment it is led out, and on
    every way out. All of it is reported on the check whose page sent it, none on the check
    that reused the page next."""
    # A page is kept for the next check once it has been led out to about:blank, within the
    # runner's 5 s (else it is closed, and the next check gets a new one). Through hundreds of
    # refused ticks a second a busy machine takes seconds to lead one out (4 s seen): here the
    # lead-out is waited for, so the pages are reused however busy the machine.
    monkeypatch.setattr(readonly, "_CLOSE_TIMEOUT", 60.0)
    names = [f"leaver-{n}" for n in range(1, 7)]
    # each page's text comes once a tick was refused: at once, or (a busy machine's runner
    # refusing hundreds of ticks a second) later than the default 15 s: an outer bound
    checks = [
        {"path": f"/h/{name}", "expect_text": "leaver page", "timeout": CHECK_TIMEOUT}
        for name in names
    ]
    result = await PlaywrightRunner(max_parallel=max_parallel).run(
        suite(hostile.url, smoke=checks, health_path="/up")
    )
    await _quiet_for_a_moment()

    assert result.verdict is Verdict.GREEN, result.summary
    assert len(handed) == 6 and len(set(handed)) == max_parallel  # the pages were reused
    assert hostile.reached.writes == []
    for name in names:
        check = next(c for c in result.checks if c.path == f"/h/{name}")
        # its page's writes, on the way out too, all of them on this check…
        assert {("POST", f"/w/{name}/{how}") for how in LEAVER_EXPECTED} <= _attempts(result, name)
        # …and none of another check's, though it got the page right after that check
        assert {_writer(b) for b in check.blocked} == {name}, check.blocked


async def test_a_late_answer_of_the_last_check_does_not_tell_on_the_next(
    hostile: HostileApp, handed: list[Page]
) -> None:
    """The first check gives up on a navigation whose answer (a redirect to another host) comes
    late: once the next check has loaded its page and is still waiting for its text (2.5 s
    more). The redirect is the first check's business, not a reason to fail the second. (The
    first check cannot have its answer before it gives up, however slow the machine: the
    server sends it only once the next check's page has loaded.)

    The failed check's page is closed, not handed to the next check: its navigation was still
    pending (it never left about:blank), and its late end would have shown Chromium's error
    page in the middle of the next check's navigation (seen in CI, on a page that streamed
    forever)."""
    checks = [
        {"path": "/h/late-redirect", "timeout": 0.5},
        {"path": "/h/slow-text", "expect_text": "slow text", "timeout": CHECK_TIMEOUT},
    ]
    result = await PlaywrightRunner(max_parallel=1).run(
        suite(hostile.url, smoke=checks, health_path="/up")
    )
    late, slow = result.checks[1:]
    assert late.reason == "timed out after 0.5 s"
    assert slow.ok, slow.reason
    assert hostile.requests.count(("GET", "/h/late-redirect")) == 1  # it was answered, late
    assert hostile.reached.writes == []
    first, second = handed
    assert first is not second and first.is_closed()

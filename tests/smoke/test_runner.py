"""PlaywrightRunner against the real sample app on 127.0.0.1, in real Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from smoke import CheckResult, SmokeCheck, Verdict
from smoke.protocol import SmokeRunner
from smoke.readonly import ROUTE_GRACE, ReadOnlyGuard
from smoke.runner import (
    _GRACE,
    LAUNCH_ARGS,
    WAIT_EVERY,
    WAIT_FIRST,
    PlaywrightRunner,
    Waiting,
    check_page,
    chromium,
)
from smoke.sample_app import SampleApp, serve_in_thread
from tests.helpers import IN_VAIN, suite
from tests.hostile_http import HostileServer

#: a check's timeout when its config names none
DEFAULT_TIMEOUT = SmokeCheck(path="/").timeout


async def test_the_runner_is_a_smoke_runner() -> None:
    runner: SmokeRunner = PlaywrightRunner()
    assert runner is not None


async def test_sample_suite_is_green(sample_app: SampleApp) -> None:
    seen: list[CheckResult] = []
    result = await PlaywrightRunner().run(suite(sample_app.url), on_check=seen.append)

    assert result.verdict is Verdict.GREEN, result.summary
    assert result.summary == "6/6 checks passed"
    assert len(result.checks) == 6 and all(c.ok for c in result.checks)
    health, *pages = result.checks
    assert (health.kind, health.path, health.status) == ("health", "/up", 200)
    assert [p.path for p in pages] == ["/", "/signin", "/tasks", "/changelog", "/devops"]
    assert {p.kind for p in pages} == {"page"}
    assert pages[-1].status == 404  # /devops is expected to be missing
    assert all(c.duration_ms > 0 for c in result.checks)
    assert result.duration_ms >= max(c.duration_ms for c in result.checks)
    assert result.blocked == () and result.error is None
    # on_check: once per check, the health check first
    assert len(seen) == 6 and seen[0] == health and set(seen) == set(result.checks)
    assert sample_app.posts == 0


async def test_a_page_answering_500_is_red(sample_app: SampleApp) -> None:
    sample_app.set_status("/tasks", 500)
    result = await PlaywrightRunner().run(suite(sample_app.url))

    assert result.verdict is Verdict.RED
    assert result.summary == "1 of 6 failed: /tasks (status 500)"
    (failed,) = result.failed
    assert (failed.path, failed.status, failed.reason) == ("/tasks", 500, "status 500")


async def test_an_unexpected_status_names_both(sample_app: SampleApp) -> None:
    checks = [{"path": "/", "expect_status": 404}]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    assert result.verdict is Verdict.RED
    assert result.summary == "1 of 2 failed: / (status 200, expected 404)"


async def test_a_missing_selector_is_red(sample_app: SampleApp) -> None:
    sample_app.break_signin()
    checks = [{"path": "/signin", "selector": "form input[type=password]", "timeout": IN_VAIN}]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    assert result.verdict is Verdict.RED
    assert result.summary == "1 of 2 failed: /signin (selector form input[type=password] not found)"
    assert result.failed[0].status == 200
    # bounded by the check's own timeout: one that waited the default would take that long at
    # least, however quick the machine
    assert result.failed[0].duration_ms < DEFAULT_TIMEOUT * 1000


async def test_a_hidden_or_invalid_selector_says_so(sample_app: SampleApp) -> None:
    checks = [
        {"path": "/", "selector": "head title", "timeout": IN_VAIN},
        {"path": "/signin", "selector": "form[", "timeout": IN_VAIN},
    ]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    assert result.verdict is Verdict.RED
    hidden, invalid = result.failed
    assert hidden.reason == "selector head title not visible"
    assert invalid.reason is not None
    assert invalid.reason.startswith("selector form[ is invalid: ")


async def test_missing_text_is_red(sample_app: SampleApp) -> None:
    checks = [{"path": "/", "expect_text": "Pricing", "timeout": IN_VAIN}]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    assert result.verdict is Verdict.RED
    assert result.summary == '1 of 2 failed: / (text "Pricing" not found)'


def test_a_routed_fetch_outlives_its_check_so_the_check_s_timeout_names_a_slow_page() -> None:
    """The guard gives production's answer to a check's navigation until the check's deadline
    and a grace more: given up at the deadline itself, the fetch would fail the navigation as
    a network error first ("connection timed out"), racing the check's own timeout."""
    guard = ReadOnlyGuard(api=object())  # type: ignore[arg-type]
    page: Any = object()
    guard.deadlines[page] = time.perf_counter() + 1.0
    left = guard._time_left((page, 0))
    assert left is not None and 1000 + 1000 * ROUTE_GRACE - 50 < left <= 1000 + 1000 * ROUTE_GRACE
    guard.deadlines[page] = time.perf_counter() - 10.0  # long past: never 0 (no timeout)
    assert guard._time_left((page, 0)) == 1.0
    assert guard._time_left(None) is None  # a worker's request: the driver's default


async def test_a_page_slower_than_its_timeout_is_red(sample_app: SampleApp) -> None:
    sample_app.slow_seconds = 60.0  # far past the check's 1 s, however loaded the machine
    checks = [{"path": "/", "expect_text": "Studio"}, {"path": "/slow", "timeout": 1}]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    assert result.verdict is Verdict.RED
    assert result.summary == "1 of 3 failed: /slow (timed out after 1.0 s)"
    slow = result.failed[0]
    assert slow.status is None and slow.duration_ms >= 1000
    # the runner did not wait for the answer: the page was still on its way when it ended
    assert sample_app.slow_answered == 0
    assert slow.duration_ms < 60_000


async def test_health_answering_503_is_red_and_the_pages_still_run(sample_app: SampleApp) -> None:
    sample_app.set_status("/up", 503)
    result = await PlaywrightRunner().run(suite(sample_app.url))

    assert result.verdict is Verdict.RED
    assert result.summary == "1 of 6 failed: /up (status 503)"
    assert result.checks[0].kind == "health" and result.checks[0].status == 503
    assert all(c.ok for c in result.checks[1:])


async def test_a_refused_connection_is_red_without_a_browser(
    dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_browser(*args: object, **kwargs: object) -> None:
        raise AssertionError("the browser must not be launched when nothing answers")

    monkeypatch.setattr("smoke.runner.launched", no_browser)
    seen: list[CheckResult] = []
    result = await PlaywrightRunner().run(suite(dead_url), on_check=seen.append)

    assert result.verdict is Verdict.RED
    assert result.summary == (
        "production unreachable: /up (connection refused); 5 page checks not run"
    )
    health, *pages = result.checks
    assert health.reason == "connection refused" and health.status is None
    assert all(p.not_run and p.reason == "not run: production unreachable" for p in pages)
    assert len(seen) == 6
    # refused at once: not waited out (a run that waited for the health check's timeout would
    # take that long at least, however quick the machine)
    assert result.duration_ms < suite(dead_url).health_timeout * 1000


async def test_a_refused_page_in_the_browser(dead_url: str) -> None:
    app = suite(dead_url)
    async with chromium(app.chromium_path) as session:
        # an outer bound: the refusal comes at once
        result = await check_page(session, app, SmokeCheck(path="/", timeout=60))
    assert (result.ok, result.reason, result.status) == (False, "connection refused", None)


class Gathering(SampleApp):
    """The sample app whose ``/slow`` answers no request before ``together`` of them have come
    (or half a minute went by), then each after its ``slow_seconds``: pages that are out at the
    same time are seen so, however long a busy machine takes to send them."""

    def __init__(self, together: int) -> None:
        super().__init__(slow_seconds=1.5)
        self.together = together
        self.arrived = 0
        self._all_here = asyncio.Event()

    async def _slow(self, request: web.Request) -> web.Response:
        self.arrived += 1
        if self.arrived >= self.together:
            self._all_here.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_here.wait(), 30)
        return await super()._slow(request)


@pytest.fixture
def gathering() -> Iterator[Gathering]:
    app = Gathering(together=3)
    with serve_in_thread(app):
        yield app


async def test_pages_run_in_parallel(gathering: Gathering) -> None:
    # an outer bound: each page shows its text 1.5 s after all three asked for it
    checks = [{"path": "/slow", "expect_text": "Finally", "timeout": 60} for _ in range(3)]
    result = await PlaywrightRunner().run(suite(gathering.url, smoke=checks))

    assert result.verdict is Verdict.GREEN, result.summary
    pages = result.checks[1:]
    assert all(p.duration_ms >= 1500 for p in pages)
    # the three pages were waiting on production at the same time (a count the server keeps,
    # not a timing on a shared machine)
    assert gathering.slow_peak == 3


# -- read-only by construction -------------------------------------------------------------------


async def test_the_writes_page_really_writes_without_the_runner(sample_app: SampleApp) -> None:
    """The control: /writes does POST when nothing stops it (and the server counts POSTs)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{sample_app.url}/api/echo", content=b"x")
    assert response.status_code == 200 and sample_app.posts == 1

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=suite(sample_app.url).chromium_path, args=list(LAUNCH_ARGS)
        )
        page = await browser.new_page()
        await page.goto(f"{sample_app.url}/writes")
        deadline = asyncio.get_running_loop().time() + 60  # an outer bound: they come at once
        while asyncio.get_running_loop().time() < deadline:
            if sample_app.posts >= 3:
                break
            await asyncio.sleep(0.05)
        await browser.close()
    assert sample_app.posts == 3  # the fetch and the form, on top of the httpx control
    assert sample_app.requests.count(("POST", "/api/echo")) == 3


async def test_writes_never_reach_production(sample_app: SampleApp) -> None:
    # an outer bound: the page shows its text once its writes were tried
    checks = [{"path": "/writes", "expect_text": "writes attempted", "timeout": 60}]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    await asyncio.sleep(0.3)  # nothing arrives late either
    assert sample_app.posts == 0
    assert ("GET", "/writes") in sample_app.requests
    # blocked writes are reported, but do not by themselves fail the check
    assert result.verdict is Verdict.GREEN, result.summary
    assert result.summary == "2/2 checks passed; 2 writes blocked"
    writes = result.checks[1]
    assert writes.ok and writes.path == "/writes"
    assert [(b.method, b.url) for b in writes.blocked] == [
        ("POST", f"{sample_app.url}/api/echo"),
        ("POST", f"{sample_app.url}/api/echo"),
    ]
    assert result.blocked == writes.blocked
    assert writes.to_dict()["blocked"][0] == {"method": "POST", "url": f"{sample_app.url}/api/echo"}


async def test_in_parallel_each_blocked_write_is_named_on_its_own_check(
    sample_app: SampleApp,
) -> None:
    """The pages share one context: the writes are still pinned to the page that made them."""
    checks = [
        {"path": "/", "expect_text": "Studio"},
        {"path": "/writes", "expect_text": "writes attempted", "timeout": 60},
        {"path": "/signin", "selector": "form input[type=password]"},
    ]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))
    assert result.verdict is Verdict.GREEN, result.summary
    assert sample_app.posts == 0
    by_path = {c.path: c for c in result.checks}
    assert len(by_path["/writes"].blocked) == 2
    assert by_path["/"].blocked == () and by_path["/signin"].blocked == ()


# -- the runner itself cannot run: verdict error --------------------------------------------------


async def test_missing_chromium_is_an_error_naming_the_path(
    sample_app: SampleApp, tmp_path: Path
) -> None:
    missing = tmp_path / "no-chromium"
    result = await PlaywrightRunner().run(suite(sample_app.url, chromium_path=str(missing)))

    assert result.verdict is Verdict.ERROR
    assert result.error is not None and str(missing) in result.error
    assert str(missing) in result.summary
    assert result.checks == ()


async def test_a_chromium_that_is_not_executable_is_an_error(
    sample_app: SampleApp, tmp_path: Path
) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("not a browser")
    fake.chmod(0o644)
    result = await PlaywrightRunner().run(suite(sample_app.url, chromium_path=str(fake)))

    assert result.verdict is Verdict.ERROR
    assert result.error == f"Chromium at {fake} is not executable"


async def test_a_browser_that_fails_to_launch_is_an_error(
    sample_app: SampleApp, tmp_path: Path
) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'this is not chromium' >&2\nexit 3\n")
    fake.chmod(0o755)
    result = await PlaywrightRunner().run(suite(sample_app.url, chromium_path=str(fake)))

    assert result.verdict is Verdict.ERROR
    assert result.error is not None
    assert result.error.startswith(f"Chromium at {fake} failed to launch")
    assert "\n" not in result.error


async def test_an_unexpected_exception_is_an_error_not_a_raise(
    sample_app: SampleApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("smoke.runner.check_health", broken)
    result = await PlaywrightRunner().run(suite(sample_app.url))

    assert result.verdict is Verdict.ERROR
    assert result.error == "unexpected RuntimeError: disk on fire"


async def test_a_broken_progress_callback_does_not_cost_the_verdict(
    sample_app: SampleApp,
) -> None:
    def explode(result: CheckResult) -> None:
        raise ValueError("display broke")

    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=[]), on_check=explode)
    assert result.verdict is Verdict.GREEN and result.summary == "1/1 checks passed"


async def test_the_health_timeout_is_specific(sample_app: SampleApp) -> None:
    sample_app.slow_seconds = 60.0  # far past the health check's 0.5 s, however loaded the machine
    app = suite(sample_app.url, health_path="/slow", health_timeout=0.5, smoke=[])
    result = await PlaywrightRunner().run(app)

    assert result.verdict is Verdict.RED
    assert result.summary == "1 of 1 failed: /slow (timed out after 0.5 s)"


# -- redirects: production stays production ----------------------------------------------------


async def test_a_page_sent_to_another_host_fails_naming_it_and_is_not_followed(
    sample_app: SampleApp,
) -> None:
    checks = [
        {"path": "/away", "expect_text": "Changelog"},  # → http://localhost:<port>/changelog
        {"path": "/hop", "expect_text": "Changelog"},  # → /changelog on production: followed
    ]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    away, hop = result.checks[1:]
    assert not away.ok and away.status is None
    assert away.reason == (
        f"redirected to another host: localhost:{sample_app.port} "
        "(not production, not in allowed_hosts)"
    )
    assert hop.ok and hop.status == 200
    # the other host was never asked: the one /changelog request is the hop's
    assert sample_app.requests.count(("GET", "/changelog")) == 1
    assert result.summary.startswith("1 of 3 failed: /away (redirected to another host: localhost")


async def test_an_allowed_host_is_followed(sample_app: SampleApp) -> None:
    checks = [{"path": "/away", "expect_text": "Changelog"}]
    app = suite(sample_app.url, smoke=checks, allowed_hosts=["localhost"], health_path="/up-away")
    result = await PlaywrightRunner().run(app)
    assert result.verdict is Verdict.GREEN, result.summary
    assert sample_app.requests.count(("GET", "/changelog")) == 1


@pytest.mark.parametrize(
    ("path", "why"),
    [("/bad-redirect", "Invalid IPv6 URL"), ("/bad-port", "Port out of range 0-65535")],
)
async def test_a_redirect_to_no_url_at_all_fails_at_once_naming_it(path: str, why: str) -> None:
    """A redirect the guard cannot even parse fails its check for that reason, at once: not a
    navigation held until the check times out."""
    with HostileServer() as hostile:
        app = suite(hostile.url, health_path="/up", smoke=[{"path": path, "timeout": 30}])
        result = await PlaywrightRunner().run(app)
    _, check = result.checks
    assert not check.ok
    assert check.reason is not None
    assert check.reason.startswith(f"redirected to an invalid URL ({why}): "), check.reason
    assert check.duration_ms < 15_000  # not the check's 30 s


async def test_a_guard_that_fails_still_answers_the_request(
    sample_app: SampleApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong in the guard, the request is answered (refused) and the check says
    why, on time; the other checks are not touched."""
    read = ReadOnlyGuard._read

    async def failing(guard: ReadOnlyGuard, route: Any) -> None:
        if route.request.url.endswith("/signin"):
            raise RuntimeError("the guard broke")
        await read(guard, route)

    monkeypatch.setattr(ReadOnlyGuard, "_read", failing)
    checks = [{"path": "/", "expect_text": "Studio"}, {"path": "/signin", "timeout": 30}]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))
    _, home, signin = result.checks
    assert home.ok, home.reason
    assert (signin.ok, signin.reason) == (False, "navigation failed: the guard broke")
    assert signin.duration_ms < 15_000  # not the check's 30 s


async def test_a_health_check_sent_to_another_host_fails_naming_it(sample_app: SampleApp) -> None:
    app = suite(sample_app.url, smoke=[{"path": "/"}], health_path="/up-away")
    result = await PlaywrightRunner().run(app)
    health = result.checks[0]
    assert not health.ok and health.status == 302
    assert health.reason == (
        f"redirected to another host: localhost:{sample_app.port} "
        "(not production, not in allowed_hosts)"
    )
    assert ("GET", "/up") not in sample_app.requests  # not followed


# -- a page that streams forever ---------------------------------------------------------------


async def test_a_page_that_streams_forever_fails_on_time_and_is_let_go() -> None:
    # its head at once, then a chunk every 100 ms, never ending: the load event never comes
    checks = [
        {"path": "/stream", "timeout": 3},
        # answers once nothing reads /stream any more (an outer bound of 60 s)
        {"path": "/when-let-go", "expect_text": "let go", "timeout": 60},
    ]
    with HostileServer() as hostile:
        app = suite(hostile.url, health_path="/up", smoke=checks)
        started = time.perf_counter()
        result = await PlaywrightRunner(max_parallel=1).run(app)  # the checks one after the other
        took = time.perf_counter() - started
        async with httpx.AsyncClient() as client:
            lasted = float((await client.get(f"{hostile.url}/lasted/stream")).text)

    health, stream, after = result.checks
    assert health.ok
    assert (stream.ok, stream.status, stream.reason) == (False, None, "timed out after 3.0 s")
    # failed by its own timeout, well within the runner's grace past it
    assert 3000 <= stream.duration_ms < (3 + _GRACE) * 1000
    # the rest of the suite ran after it
    assert after.ok, after.reason
    assert result.summary == "1 of 3 failed: /stream (timed out after 3.0 s)"
    # production stopped streaming it as its check ended (Playwright's fetch reads a whole body
    # before it hands it over: it went on reading until its own 30 s, past the check)
    assert lasted < 3 + _GRACE
    logging.getLogger(__name__).info(
        "the streaming page failed in %d ms, was read for %.2f s; the run took %.2f s",
        stream.duration_ms,
        lasted,
        took,
    )


async def test_a_slow_check_says_what_it_waits_for_while_it_waits(sample_app: SampleApp) -> None:
    """A selector that never comes: the runner says so after WAIT_FIRST seconds and then every
    WAIT_EVERY, each time with how long of the check's budget it has waited, all before the
    check's verdict; a check done sooner says nothing."""
    budget = WAIT_FIRST + 2 * WAIT_EVERY + 1.0
    told: list[tuple[str, object]] = []
    checks = [{"path": "/", "selector": "#never-there", "timeout": budget}]
    runner = PlaywrightRunner(on_wait=lambda wait: told.append(("wait", wait)))
    result = await runner.run(
        suite(sample_app.url, smoke=checks), on_check=lambda check: told.append(("done", check))
    )

    assert result.failed[0].reason == "selector #never-there not found"
    waits = [wait for kind, wait in told if kind == "wait"]
    assert [kind for kind, _ in told][-1] == "done"  # every word of waiting came before
    assert all(isinstance(wait, Waiting) for wait in waits)
    assert len(waits) >= 2, told
    seconds = [wait.waited for wait in waits if isinstance(wait, Waiting)]
    assert seconds == sorted(seconds)
    assert WAIT_FIRST <= seconds[0] < budget
    assert seconds[-1] < budget + _GRACE
    for wait in waits:
        assert isinstance(wait, Waiting)
        assert (wait.path, wait.what, wait.budget) == ("/", "selector #never-there", budget)

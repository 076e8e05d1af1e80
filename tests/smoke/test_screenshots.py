"""The screenshot of each failed page: taken by the real runner in Chromium before the page
closes, never costing a verdict; and written to disk under names no check path can steer."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page

from smoke import CheckResult, SmokeCheck, SmokeResult, Verdict
from smoke import runner as smoke_runner
from smoke.runner import PlaywrightRunner, check_page, chromium
from smoke.sample_app import SampleApp
from smoke.screenshots import screenshot_name, write_screenshots
from tests.helpers import IN_VAIN, png, png_size, suite

#: Playwright's default viewport: the screenshot is of the viewport, not the full page
VIEWPORT = (1280, 720)


async def test_each_failed_page_has_a_screenshot_of_the_viewport_and_passing_ones_none(
    sample_app: SampleApp,
) -> None:
    sample_app.set_status("/tasks", 500)
    sample_app.set_status("/up", 503)
    checks = [
        {"path": "/", "expect_text": "Studio"},
        {"path": "/tasks", "expect_text": "Faster task list"},
        # the page loads, then its text is waited for in vain (a loaded machine still gets
        # the page there first, so the failure is the text's and the page is shown)
        {"path": "/changelog", "expect_text": "Nowhere to be seen", "timeout": IN_VAIN},
    ]
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=checks))

    assert result.verdict is Verdict.RED, result.summary
    health, home, tasks, changelog = result.checks
    assert not health.ok and health.screenshot is None  # the health check has no page
    assert home.ok and home.screenshot is None
    for failed in (tasks, changelog):
        assert not failed.ok and failed.screenshot is not None, failed
        assert png_size(failed.screenshot) == VIEWPORT
        assert 1_000 < len(failed.screenshot) < 1_000_000  # a rendered page, not a blank
    assert tasks.screenshot != changelog.screenshot  # each of its own page
    # the bytes stay out of the record, the repr and the comparison
    assert "screenshot" not in tasks.to_dict()
    assert "PNG" not in repr(tasks)
    assert tasks == CheckResult.from_dict(tasks.to_dict())


async def test_checks_that_never_got_a_page_have_none(dead_url: str) -> None:
    result = await PlaywrightRunner().run(suite(dead_url))
    assert result.verdict is Verdict.RED and result.checks[1].not_run
    assert all(check.screenshot is None for check in result.checks)


async def test_a_page_that_never_arrived_has_none_and_costs_no_wait(
    sample_app: SampleApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its navigation still pending, the page is blank: no screenshot is waited for (Chromium is
    never asked for one, which would wait its whole 2 s)."""
    sample_app.slow_seconds = 60.0  # far past the check's 1 s, however loaded the machine
    asked: list[Page] = []
    take = Page.screenshot

    async def counted(page: Page, **kwargs: Any) -> bytes:
        asked.append(page)
        return await take(page, **kwargs)

    monkeypatch.setattr(Page, "screenshot", counted)
    app = suite(sample_app.url)
    async with chromium(app.chromium_path) as browser:
        slow = await check_page(browser, app, SmokeCheck(path="/slow", timeout=1))

    assert slow.reason == "timed out after 1.0 s" and slow.screenshot is None
    assert asked == []


# -- a page that will not be photographed -------------------------------------------------------

#: a page whose renderer spins forever once loaded: no screenshot can be had of it
BUSY = (
    "<!doctype html><title>busy</title><p>loading</p>"
    "<script>addEventListener('load', () => setTimeout(() => { while (true) {} }, 10))</script>"
)


@pytest.fixture
async def busy_url() -> AsyncIterator[str]:
    app = web.Application()

    async def up(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def busy(request: web.Request) -> web.Response:
        return web.Response(text=BUSY, content_type="text/html")

    app.router.add_get("/up", up)
    app.router.add_get("/busy", busy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_a_screenshot_that_cannot_be_had_costs_two_seconds_not_the_verdict(
    busy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # when the check began, and when its screenshot was tried and given up
    at: dict[str, float] = {}
    check, shoot = smoke_runner.check_page, smoke_runner.screenshot

    async def timed_check(*args: Any, **kwargs: Any) -> CheckResult:
        at["check"] = time.perf_counter()
        return await check(*args, **kwargs)

    async def timed_shot(page: Page) -> bytes | None:
        at["shot"] = time.perf_counter()
        try:
            return await shoot(page)
        finally:
            at["shot over"] = time.perf_counter()

    monkeypatch.setattr(smoke_runner, "check_page", timed_check)
    monkeypatch.setattr(smoke_runner, "screenshot", timed_shot)
    checks = [{"path": "/busy", "expect_text": "never there", "timeout": IN_VAIN}]
    result = await PlaywrightRunner().run(suite(busy_url, smoke=checks))

    assert result.verdict is Verdict.RED
    busy = result.checks[1]
    assert busy.reason == 'text "never there" not found'  # the check's own reason
    assert busy.screenshot is None
    # the check's time: not the screenshot's (it was over before the screenshot was tried)
    assert at["check"] + busy.duration_ms / 1000 <= at["shot"] + 0.001, (at, busy.duration_ms)
    # ~2.5 s for the screenshot; never a hang (Playwright's own screenshot timeout is 30 s: an
    # attempt that waited for it would take longer than this)
    assert at["shot over"] - at["shot"] < 25


# -- file names and writing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/", "01-root.png"),
        ("/signin", "01-signin.png"),
        ("/Tasks/Ünïcode?q=1&x=2", "01-tasks-n-code-q-1-x-2.png"),
        ("/../../etc/passwd", "01-etc-passwd.png"),
        ("..", "01-root.png"),
        ("..\\..\\windows\\system32", "01-windows-system32.png"),
        ("/a\x00b/\n/c", "01-a-b-c.png"),
        ("/" + "x" * 300, "01-" + "x" * 48 + ".png"),
    ],
)
def test_a_file_name_is_safe_whatever_the_path(path: str, name: str) -> None:
    assert screenshot_name(1, path) == name


def _failed(path: str, data: bytes | None) -> CheckResult:
    return CheckResult(path, False, reason="status 500", screenshot=data)


def test_hostile_paths_write_inside_the_directory_only(tmp_path: Path) -> None:
    directory = tmp_path / "seal" / "shots"
    hostile = ["/../../escaped", "/../../../../tmp/x", "/..", "/%2e%2e/%2e%2e/up", "/.png"]
    checks = [CheckResult("/up", True, kind="health")]
    checks += [_failed(path, png(2, 2 + i)) for i, path in enumerate(hostile)]

    written, problems = write_screenshots(checks, directory)

    assert problems == []
    assert sorted(written) == [1, 2, 3, 4, 5]
    everything = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert everything == [
        "seal",
        "seal/shots",
        "seal/shots/01-escaped.png",
        "seal/shots/02-tmp-x.png",
        "seal/shots/03-root.png",
        "seal/shots/04-2e-2e-2e-2e-up.png",
        "seal/shots/05-png.png",
    ]
    for index, file in written.items():
        assert file.parent == directory
        assert png_size(file.read_bytes()) == (2, 2 + index - 1)


def test_a_full_disk_costs_the_file_not_the_others(tmp_path: Path) -> None:
    """``/dev/full`` answers every write with ENOSPC, as a full disk does."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    directory = tmp_path / "shots"
    directory.mkdir()
    (directory / "01-full.png").symlink_to("/dev/full")
    checks = [_failed("/full", png()), _failed("/fine", png())]
    checks.insert(0, CheckResult("/up", True, kind="health"))

    written, problems = write_screenshots(checks, directory)

    [problem] = problems
    assert problem.startswith(f"cannot write {directory / '01-full.png'}: ")
    assert "No space left on device" in problem
    assert list(written) == [2] and png_size(written[2].read_bytes()) == (4, 3)
    assert not (directory / "01-full.png").exists()  # nothing half-written left behind


def test_a_directory_that_cannot_be_made_is_one_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    written, problems = write_screenshots([_failed("/", png())], blocker / "shots")
    assert written == {}
    assert problems == [f"cannot create {blocker / 'shots'}: Not a directory"]


def test_nothing_to_write_makes_no_directory(tmp_path: Path) -> None:
    green = SmokeResult.from_checks((CheckResult("/", True),), 1)
    assert write_screenshots(green.checks, tmp_path / "shots") == ({}, [])
    assert os.listdir(tmp_path) == []


def test_the_stored_form_names_the_file_and_never_carries_the_bytes() -> None:
    kept = CheckResult(
        "/x", False, reason="status 500", screenshot=png(), screenshot_file="a/01-x.png"
    )
    data = kept.to_dict()
    assert data["screenshot_file"] == "a/01-x.png" and "screenshot" not in data
    back = CheckResult.from_dict(data)
    assert back == kept and back.screenshot is None and back.screenshot_file == "a/01-x.png"
    # a check without a file stores exactly what it stored before screenshots existed
    assert "screenshot_file" not in _failed("/x", png()).to_dict()

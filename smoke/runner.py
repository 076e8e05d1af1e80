"""The smoke seal's runner: the health check with httpx, then every page in real Chromium.

One browser and one context per run (service workers blocked), the page checks three at a
time (``max_parallel``), each in a page of its own for its duration (pages are reused from
check to check: :class:`smoke.readonly.PagePool`), each under its own timeout. (A context per
check isolated cookies too, but Chromium builds each new context serially, and that cost most
of the parallel speed-up; a read-only suite of GETs has little to isolate.) Read-only by construction: the context routes
every request of every page, popup and frame, and anything that is not GET or HEAD is aborted
before it leaves the browser and reported on its check (a form post, a ``fetch`` POST, a
beacon).

:class:`PlaywrightRunner` implements :class:`smoke.protocol.SmokeRunner`: ``run`` never raises
(cancellation aside); a runner that cannot run returns verdict ``error`` with the reason.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import (
    Locator,
    Page,
    Playwright,
)
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from smoke.config import AppConfig, SmokeCheck
from smoke.driver import spawned, start_driver, stop_driver, take_early
from smoke.health import ask_health, offsite_reason, status_reason
from smoke.protocol import OnCheck
from smoke.readonly import LaunchError, ReadOnlyGuard, ReadOnlySession, read_only_browser
from smoke.result import NOT_RUN_UNREACHABLE, BlockedRequest, CheckResult, SmokeResult

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

#: Chromium's command line, besides what Playwright adds; always headless
LAUNCH_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
#: the only methods a page may use; anything else is aborted and reported
READ_METHODS = frozenset({"GET", "HEAD"})
#: how the health check introduces itself (the pages keep Chromium's own user agent)
USER_AGENT = "ConductorSmoke/1 (health check)"
#: checks at once by default, and so the pages a run makes (:class:`smoke.readonly.PagePool`):
#: measured on two cores, three pages reused beat a page per check (up to 8 at once)
MAX_PARALLEL = 3

#: seconds past a check's own timeout before the runner stops waiting for Playwright itself
_GRACE = 2.0
#: seconds past the health timeout before the whole health request is abandoned
_HEALTH_SLACK = 0.25
#: seconds to wait for Chromium to start
_LAUNCH_TIMEOUT = 30.0
#: seconds to wait when closing a context or the browser
_CLOSE_TIMEOUT = 5.0
#: seconds a failed page's screenshot may take (on top of the check; it never costs a verdict)
_SCREENSHOT_TIMEOUT = 2.0

_NET_ERROR = re.compile(r"net::(ERR_[A-Z0-9_]+)")
_NET_REASONS = {
    "ERR_CONNECTION_REFUSED": "connection refused",
    "ERR_NAME_NOT_RESOLVED": "DNS lookup failed",
    "ERR_NAME_RESOLUTION_FAILED": "DNS lookup failed",
    "ERR_CONNECTION_TIMED_OUT": "connection timed out",
    "ERR_TIMED_OUT": "connection timed out",
    "ERR_CONNECTION_RESET": "connection reset",
    "ERR_CONNECTION_CLOSED": "connection closed without a response",
    "ERR_EMPTY_RESPONSE": "connection closed without a response",
    "ERR_ADDRESS_UNREACHABLE": "address unreachable",
    "ERR_INTERNET_DISCONNECTED": "no network",
    "ERR_TOO_MANY_REDIRECTS": "too many redirects",
    "ERR_ABORTED": "navigation aborted",
}


# -- small helpers ---------------------------------------------------------------------------


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _elapsed_ms(started: float) -> int:
    return _ms(time.perf_counter() - started)


def _one_line(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(error: BaseException, limit: int = 200) -> str:
    """Playwright errors carry a call log after the first line; keep the first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _timed_out(seconds: float) -> str:
    return f"timed out after {seconds:.1f} s"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything behind it: causes, contexts and exception-group members."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)


def _notify(on_check: OnCheck | None, result: CheckResult) -> None:
    if on_check is None:
        return
    try:
        on_check(result)
    except Exception:
        # A broken progress display must not cost the verdict.
        log.exception("the on_check callback raised")


def chromium_problem(path: str) -> str | None:
    """Why ``path`` cannot be Chromium (missing, a directory, not executable), or None."""
    resolved = path if os.sep in path else shutil.which(path)
    if resolved is None:
        return f"Chromium not found: {path!r} is not on PATH (set app.chromium_path)"
    file = Path(resolved)
    if not file.exists():
        return f"Chromium not found at {resolved} (set app.chromium_path)"
    if not file.is_file():
        return f"Chromium path {resolved} is not a file (set app.chromium_path)"
    if not os.access(file, os.X_OK):
        return f"Chromium at {resolved} is not executable"
    return None


def _resolve(path: str) -> str:
    return path if os.sep in path else (shutil.which(path) or path)


# -- the health check ------------------------------------------------------------------------


def _connect_reason(error: httpx.HTTPError) -> str:
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {getattr(cause, 'reason', None) or _one_line(cause)}"
        if isinstance(cause, socket.gaierror):
            return "DNS lookup failed"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "address unreachable"
    return f"cannot connect: {_one_line(error)}"


async def check_health(app: AppConfig) -> tuple[CheckResult, bool]:
    """GET the health URL (expects 200; :func:`smoke.health.ask_health`: redirects only to
    production or an allowed host, at most 64 KiB of body read), the whole request within the
    health timeout. Returns the result and whether production is unreachable (nothing answered
    at all: refused, DNS, connect timeout), in which case the pages are not worth a browser."""
    import httpx  # noqa: PLC0415 - ~50 ms, loaded here while Playwright's driver starts

    started = time.perf_counter()
    status: int | None = None
    reason: str | None = None
    unreachable = False
    headers = {"user-agent": USER_AGENT}
    try:
        # httpx times each phase (connect, each read); the outer bound caps the whole request
        # (a header trickled a byte at a time never trips a read timeout), a little later so
        # that a connect that hangs is told apart (unreachable) by httpx.
        async with (
            asyncio.timeout(app.health_timeout + _HEALTH_SLACK),
            httpx.AsyncClient(
                timeout=app.health_timeout, follow_redirects=False, headers=headers
            ) as client,
        ):
            answer = await ask_health(client, app.health_url, offsite=app.offsite)
        status, reason = answer.status, answer.reason
    except httpx.ConnectTimeout:
        reason, unreachable = f"connect {_timed_out(app.health_timeout)}", True
    except (TimeoutError, httpx.TimeoutException):
        reason = _timed_out(app.health_timeout)
    except httpx.ConnectError as error:
        reason = _connect_reason(error)
        # A TLS failure means something answered: the pages get their own (specific) verdicts.
        unreachable = not reason.startswith("TLS error")
    except httpx.HTTPError as error:
        reason = f"request failed: {_one_line(error)}"
    result = CheckResult(
        path=app.health_path,
        ok=reason is None,
        kind="health",
        status=status,
        reason=reason,
        duration_ms=_elapsed_ms(started),
    )
    return result, unreachable


# -- the browser -----------------------------------------------------------------------------


async def start_playwright() -> Playwright:
    """Playwright's driver (a node process; not the browser): the one the console script
    started early on this loop (:func:`smoke.driver.start_early`), else a new one. Raises
    :class:`~smoke.readonly.LaunchError` when it fails, or has not answered within
    :data:`_LAUNCH_TIMEOUT`: a driver that never answers is given up on, not waited for (and
    one it spawned itself is killed: :func:`smoke.driver.start_driver`)."""
    timeout = _LAUNCH_TIMEOUT
    try:
        early = take_early(asyncio.get_running_loop())
        async with asyncio.timeout(timeout):
            if early is not None:
                return await early
            return await start_driver()
    except TimeoutError:
        raise LaunchError(
            f"Playwright could not start: its driver did not answer within {timeout:g} s"
        ) from None
    except Exception as error:
        raise LaunchError(f"Playwright could not start: {_first_line(error)}") from error


async def stop_playwright(playwright: Playwright) -> None:
    with suppress(Exception):
        await asyncio.wait_for(playwright.stop(), _CLOSE_TIMEOUT)


@asynccontextmanager
async def launched(
    playwright: Playwright,
    chromium_path: str,
    app: AppConfig | None = None,
    *,
    headless: bool = True,
) -> AsyncIterator[ReadOnlySession]:
    """One Chromium with :data:`LAUNCH_ARGS`, read-only by construction
    (:mod:`smoke.readonly`), closed on the way out, whatever happens."""
    async with read_only_browser(
        playwright,
        _resolve(chromium_path),
        app=app,
        headless=headless,
        args=LAUNCH_ARGS,
        launch_timeout=_LAUNCH_TIMEOUT,
    ) as session:
        yield session


@asynccontextmanager
async def chromium(
    chromium_path: str, app: AppConfig | None = None, *, headless: bool = True
) -> AsyncIterator[ReadOnlySession]:
    """Playwright and one read-only headless Chromium, both closed on the way out, whatever
    happens."""
    playwright = await start_playwright()
    try:
        async with launched(playwright, chromium_path, app, headless=headless) as session:
            yield session
    finally:
        await stop_playwright(playwright)


async def _settle(driver: asyncio.Task[Playwright]) -> None:
    """Stop the driver started in the background, once it has started (or failed to)."""
    await stop_driver(driver, start_timeout=_LAUNCH_TIMEOUT, stop_timeout=_CLOSE_TIMEOUT)


def _navigation_reason(error: PlaywrightError) -> str:
    message = str(error)
    match = _NET_ERROR.search(message)
    if match:
        code = match.group(1)
        if code in _NET_REASONS:
            return _NET_REASONS[code]
        if code.startswith(("ERR_CERT_", "ERR_SSL_")):
            return f"TLS error ({code})"
        return f"navigation failed ({code})"
    if "closed" in message.lower():
        return "the browser closed during the check"
    return f"navigation failed: {_first_line(error)}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A check still waiting: on what (``selector #signin``, ``the page to load``), for how
    long so far, of its budget (seconds)."""

    path: str
    what: str
    waited: float
    budget: float


#: told while a check waits: first after :data:`WAIT_FIRST` s, then every :data:`WAIT_EVERY`
OnWait = Callable[[Waiting], None]
WAIT_FIRST = 2.0
WAIT_EVERY = 3.0


class _Budget:
    """What is left of one check's timeout, for each Playwright call in turn, and what the
    check is waiting on meanwhile."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.perf_counter()
        self.deadline = self.started + seconds
        self.waiting_for = "a page to load in"

    @property
    def waited(self) -> float:
        return time.perf_counter() - self.started

    @property
    def left_ms(self) -> float:
        # Playwright treats 0 as "no timeout": never hand it a zero.
        return max((self.deadline - time.perf_counter()) * 1000, 1.0)

    @property
    def spent(self) -> bool:
        return time.perf_counter() >= self.deadline


async def _visit(
    page: Page, app: AppConfig, check: SmokeCheck, budget: _Budget, guard: ReadOnlyGuard
) -> tuple[int | None, str | None]:
    """Load the page (to its ``load`` event) and look for what the check expects: the status
    of the navigation's response, then a *visible* element for the selector and a *visible*
    element holding the text (Playwright's ``get_by_text``: a substring, case and whitespace
    ignored), each waited for within what is left of the check's timeout. Returns (the status
    seen, why it failed)."""
    budget.waiting_for = "the page to load"
    try:
        response = await page.goto(app.url(check.path), timeout=budget.left_ms, wait_until="load")
    except PlaywrightTimeoutError:
        return None, _timed_out(budget.seconds)
    except PlaywrightError as error:
        return None, _navigation_reason(error)
    if response is None:
        return None, "no response"
    status = response.status
    if page in guard.redirected:
        # The guard followed the redirects and sent the page on to where they led: the check
        # is about that page.
        budget.waiting_for = "the redirected page to load"
        try:
            await page.wait_for_url(
                lambda url: url == guard.redirected.get(page),
                wait_until="load",
                timeout=budget.left_ms,
            )
        except PlaywrightTimeoutError:
            return None, _timed_out(budget.seconds)
        status = guard.landed.get(page, status)
    if status != check.expect_status:
        return status, status_reason(status, check.expect_status)

    if check.selector is not None:
        budget.waiting_for = f"selector {check.selector}"
        matches = page.locator(check.selector)
        try:
            await matches.filter(visible=True).first.wait_for(
                state="visible", timeout=budget.left_ms
            )
        except PlaywrightTimeoutError:
            hidden = await _count(matches) > 0
            return status, f"selector {check.selector} {'not visible' if hidden else 'not found'}"
        except PlaywrightError as error:
            # "Locator.wait_for: Unexpected token ..." -> "Unexpected token ..."
            why = _first_line(error).removeprefix("Locator.wait_for: ")
            return status, f"selector {check.selector} is invalid: {why}"

    if check.expect_text is not None:
        budget.waiting_for = f'text "{check.expect_text}"'
        texts = page.get_by_text(check.expect_text)
        try:
            await texts.filter(visible=True).first.wait_for(state="visible", timeout=budget.left_ms)
        except PlaywrightTimeoutError:
            hidden = await _count(texts) > 0
            return status, f'text "{check.expect_text}" {"not visible" if hidden else "not found"}'
    return status, None


async def _count(locator: Locator) -> int:
    """How many elements match, visible or not (for a reason's wording only: 0 when that
    cannot be told in a second)."""
    try:
        return await asyncio.wait_for(locator.count(), 1.0)
    except Exception:
        return 0


async def check_page(
    session: ReadOnlySession,
    app: AppConfig,
    check: SmokeCheck,
    *,
    blocked: list[BlockedRequest] | None = None,
    on_wait: OnWait | None = None,
) -> CheckResult:
    """One page check under the check's timeout, in a page of the session's one context, its
    own for the check: a pooled page, led out since its last check
    (:class:`smoke.readonly.PagePool`). (A context per check would isolate cookies, but
    Chromium builds contexts serially, ~0.15 CPU-s each.) The writes the page and its popups
    attempt go into ``blocked`` (which goes on filling with what they send late, until the
    browser closes). ``on_wait`` hears what a slow check waits for while it waits
    (:class:`Waiting`). Never raises (cancellation aside)."""
    started = time.perf_counter()
    budget = _Budget(check.timeout)
    status: int | None = None
    reason: str | None = None  # stays None when cancelled: no screenshot on the way out
    shot: bytes | None = None
    page: Page | None = None
    guard = session.guard
    blocked = [] if blocked is None else blocked
    telling = None if on_wait is None else asyncio.create_task(_tell(check, budget, on_wait))
    try:
        async with asyncio.timeout(check.timeout + _GRACE):
            page = await session.take_page(blocked, until=budget.deadline)
            status, reason = await _visit(page, app, check, budget, guard)
            if page in guard.offsite:
                status, reason = None, offsite_reason(guard.offsite[page])
            elif status is None and page in guard.failures and not budget.spent:
                reason = guard.failures[page]
    except TimeoutError:
        reason = _timed_out(check.timeout)
    except PlaywrightError as error:
        reason = _navigation_reason(error) if not budget.spent else _timed_out(check.timeout)
    finally:
        took = _elapsed_ms(started)  # the check's time, not its screenshot's or its closing's
        if telling is not None:
            telling.cancel()
        if page is not None:
            if reason is not None:  # failed: the page as it is, before it is led out
                shot = await screenshot(page)
            # The page and its popups are led out before they close (or the page goes back to
            # the pool, when its check passed), still watched: what they send on the way out
            # is reported on this check.
            await session.release(page, reuse=reason is None and status is not None)
    return CheckResult(
        path=check.path,
        ok=reason is None,
        kind="page",
        status=status,
        reason=reason,
        duration_ms=took,
        blocked=tuple(blocked),
        screenshot=shot,
    )


async def _tell(check: SmokeCheck, budget: _Budget, on_wait: OnWait) -> None:
    """Say what the check waits for, and since when, until it is cancelled (its check done)."""
    await asyncio.sleep(WAIT_FIRST)
    while True:
        waiting = Waiting(check.path, budget.waiting_for, budget.waited, budget.seconds)
        try:
            on_wait(waiting)
        except Exception:
            log.exception("the on_wait callback raised")  # never the check's verdict
        await asyncio.sleep(WAIT_EVERY)


async def screenshot(page: Page) -> bytes | None:
    """The page's viewport as a PNG, or None when that cannot be had within
    :data:`_SCREENSHOT_TIMEOUT` (a hung page, a closed browser): evidence, never a verdict.
    None at once for a page that never got past ``about:blank`` (its navigation still
    pending): a screenshot would wait the whole timeout for a blank page."""
    if page.url == "about:blank":
        return None
    try:
        return await asyncio.wait_for(
            page.screenshot(type="png", timeout=_ms(_SCREENSHOT_TIMEOUT)),
            _SCREENSHOT_TIMEOUT + 0.5,
        )
    except Exception as error:
        log.info("no screenshot of %s: %s", page.url, _first_line(error))
        return None


def _not_run(check: SmokeCheck) -> CheckResult:
    return CheckResult(path=check.path, ok=False, kind="page", reason=NOT_RUN_UNREACHABLE)


# -- the runner ------------------------------------------------------------------------------


class PlaywrightRunner:
    """The real runner: httpx for the health check, one headless Chromium for the pages.

    ``max_parallel`` caps how many checks run at once, and so how many pages the run makes
    (each check's timeout starts when it gets a slot; a page freed goes to the next check:
    :class:`smoke.readonly.PagePool`).
    """

    def __init__(
        self,
        *,
        max_parallel: int = MAX_PARALLEL,
        headless: bool = True,
        on_wait: OnWait | None = None,
    ) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.max_parallel = max_parallel
        self.headless = headless
        #: told what a slow check waits for, while it waits (the CLI's progress)
        self.on_wait = on_wait

    async def run(self, app: AppConfig, *, on_check: OnCheck | None = None) -> SmokeResult:
        started = time.perf_counter()
        try:
            return await self._run(app, on_check, started)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("the smoke run failed unexpectedly")
            return SmokeResult.failure(
                f"unexpected {type(error).__name__}: {_one_line(error)}", _elapsed_ms(started)
            )

    async def _run(self, app: AppConfig, on_check: OnCheck | None, started: float) -> SmokeResult:
        if not app.smoke:
            health, _ = await check_health(app)
            _notify(on_check, health)
            return SmokeResult.from_checks((health,), _elapsed_ms(started))
        if problem := chromium_problem(app.chromium_path):
            return SmokeResult.failure(problem, _elapsed_ms(started))

        # Playwright's driver starts while the health check runs (the browser waits for its
        # verdict: nothing is launched against a production that does not answer).
        driver = asyncio.create_task(start_playwright())
        await spawned(driver)
        try:
            health, unreachable = await check_health(app)
            _notify(on_check, health)
            if unreachable:
                skipped = tuple(_not_run(check) for check in app.smoke)
                for result in skipped:
                    _notify(on_check, result)
                return SmokeResult.from_checks((health, *skipped), _elapsed_ms(started))

            playwright = await asyncio.shield(driver)
            slots = asyncio.Semaphore(self.max_parallel)
            lists: list[list[BlockedRequest]] = [[] for _ in app.smoke]
            async with launched(
                playwright, app.chromium_path, app, headless=self.headless
            ) as session:

                async def one(check: SmokeCheck, blocked: list[BlockedRequest]) -> CheckResult:
                    async with slots:
                        result = await check_page(
                            session, app, check, blocked=blocked, on_wait=self.on_wait
                        )
                    _notify(on_check, result)
                    return result

                pages = await asyncio.gather(*map(one, app.smoke, lists))
            if session.crashed:
                return SmokeResult.failure("Chromium exited during the run", _elapsed_ms(started))
            # The final word on writes: what each check's pages sent until the browser closed
            # (a beacon on unload comes after its check reported), and what nobody's page sent.
            stray = tuple(session.guard.stray)
            pages = [
                replace(page, blocked=(*blocked, *stray))
                for page, blocked in zip(pages, lists, strict=True)
            ]
        except LaunchError as error:
            return SmokeResult.failure(str(error), _elapsed_ms(started))
        finally:
            await _settle(driver)
        return SmokeResult.from_checks((health, *pages), _elapsed_ms(started))

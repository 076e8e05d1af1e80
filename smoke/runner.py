"""The smoke seal's runner: the health check with httpx, then every page in real Chromium.

One browser and one context per run (service workers blocked), every page check in its own
page, all in parallel, each under its own timeout. (A context per check isolated cookies too,
but Chromium builds each new context serially, and that cost most of the parallel speed-up; a
read-only suite of GETs has little to isolate.) Read-only by construction: the context routes
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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from urllib.parse import urljoin

import httpx
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from smoke.config import AppConfig, SmokeCheck
from smoke.protocol import OnCheck
from smoke.result import NOT_RUN_UNREACHABLE, BlockedRequest, CheckResult, SmokeResult

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
#: the health check expects this status
HEALTH_STATUS = 200

#: seconds past a check's own timeout before the runner stops waiting for Playwright itself
_GRACE = 2.0
#: seconds past the health timeout before the whole health request is abandoned
_HEALTH_SLACK = 0.25
#: seconds to wait for Chromium to start
_LAUNCH_TIMEOUT = 30.0
#: seconds to wait when closing a context or the browser
_CLOSE_TIMEOUT = 5.0
#: redirects followed before a check gives up
_MAX_REDIRECTS = 10
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


def _status_reason(status: int, expected: int) -> str:
    """Why a status is wrong: ``status 500`` when 200 was expected (nearly always), else
    ``status 200, expected 404``."""
    if expected == 200:
        return f"status {status}"
    return f"status {status}, expected {expected}"


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
    """GET the health URL (expects 200). Returns the result and whether production is
    unreachable (nothing answered at all: refused, DNS, connect timeout), in which case the
    pages are not worth a browser."""
    started = time.perf_counter()
    status: int | None = None
    reason: str | None = None
    unreachable = False
    headers = {"user-agent": USER_AGENT}
    try:
        # httpx times each phase (connect, each read); the outer bound caps the whole request,
        # a little later so that a connect that hangs is told apart (unreachable) by httpx.
        async with (
            asyncio.timeout(app.health_timeout + _HEALTH_SLACK),
            httpx.AsyncClient(
                timeout=app.health_timeout, follow_redirects=False, headers=headers
            ) as client,
        ):
            # Redirects are followed by hand: never to another host (production stays
            # production), unless ``allowed_hosts`` lists it.
            url = app.health_url
            for _ in range(_MAX_REDIRECTS + 1):
                response = await client.get(url)
                location = response.headers.get("location")
                if not response.is_redirect or not location:
                    break
                url = urljoin(url, location)
                if (host := app.offsite(url)) is not None:
                    reason = offsite_reason(host)
                    break
            else:
                raise httpx.TooManyRedirects("too many redirects")
        status = response.status_code
        if reason is None and status != HEALTH_STATUS:
            reason = _status_reason(status, HEALTH_STATUS)
    except httpx.ConnectTimeout:
        reason, unreachable = f"connect {_timed_out(app.health_timeout)}", True
    except (TimeoutError, httpx.TimeoutException):
        reason = _timed_out(app.health_timeout)
    except httpx.ConnectError as error:
        reason = _connect_reason(error)
        # A TLS failure means something answered: the pages get their own (specific) verdicts.
        unreachable = not reason.startswith("TLS error")
    except httpx.TooManyRedirects:
        reason = "too many redirects"
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


class LaunchError(Exception):
    """Chromium (or Playwright's driver) would not start; the message says why."""


async def start_playwright() -> Playwright:
    """Playwright's driver (a node process; not the browser)."""
    try:
        return await async_playwright().start()
    except Exception as error:
        raise LaunchError(f"Playwright could not start: {_first_line(error)}") from error


async def stop_playwright(playwright: Playwright) -> None:
    with suppress(Exception):
        await asyncio.wait_for(playwright.stop(), _CLOSE_TIMEOUT)


@asynccontextmanager
async def launched(
    playwright: Playwright, chromium_path: str, *, headless: bool = True
) -> AsyncIterator[Browser]:
    """One Chromium with :data:`LAUNCH_ARGS`, closed on the way out, whatever happens."""
    path = _resolve(chromium_path)
    try:
        browser = await playwright.chromium.launch(
            executable_path=path,
            headless=headless,
            args=list(LAUNCH_ARGS),
            timeout=_ms(_LAUNCH_TIMEOUT),
        )
    except Exception as error:
        raise LaunchError(f"Chromium at {path} failed to launch: {_first_line(error)}") from error
    try:
        yield browser
    finally:
        with suppress(Exception):
            await asyncio.wait_for(browser.close(), _CLOSE_TIMEOUT)


@asynccontextmanager
async def chromium(chromium_path: str, *, headless: bool = True) -> AsyncIterator[Browser]:
    """Playwright and one headless Chromium, both closed on the way out, whatever happens."""
    playwright = await start_playwright()
    try:
        async with launched(playwright, chromium_path, headless=headless) as browser:
            yield browser
    finally:
        await stop_playwright(playwright)


async def _settle(driver: asyncio.Task[Playwright]) -> None:
    """Stop the driver started in the background, once it has started (or failed to)."""
    try:
        playwright = await asyncio.wait_for(asyncio.shield(driver), _LAUNCH_TIMEOUT)
    except asyncio.CancelledError:
        driver.cancel()
        raise
    except Exception:
        driver.cancel()  # it failed (already reported) or hangs: nothing to stop
        return
    await stop_playwright(playwright)


def offsite_reason(host: str) -> str:
    return f"redirected to another host: {host} (not production, not in allowed_hosts)"


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


class _Budget:
    """What is left of one check's timeout, for each Playwright call in turn."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds

    @property
    def left_ms(self) -> float:
        # Playwright treats 0 as "no timeout": never hand it a zero.
        return max((self.deadline - time.perf_counter()) * 1000, 1.0)

    @property
    def spent(self) -> bool:
        return time.perf_counter() >= self.deadline


async def _visit(
    page: Page, app: AppConfig, check: SmokeCheck, budget: _Budget
) -> tuple[int | None, str | None]:
    """Load the page (to its ``load`` event) and look for what the check expects: the status
    of the navigation's response, then a *visible* element for the selector and a *visible*
    element holding the text (Playwright's ``get_by_text``: a substring, case and whitespace
    ignored), each waited for within what is left of the check's timeout. Returns (the status
    seen, why it failed)."""
    try:
        response = await page.goto(app.url(check.path), timeout=budget.left_ms, wait_until="load")
    except PlaywrightTimeoutError:
        return None, _timed_out(budget.seconds)
    except PlaywrightError as error:
        return None, _navigation_reason(error)
    if response is None:
        return None, "no response"
    status = response.status
    if status != check.expect_status:
        return status, _status_reason(status, check.expect_status)

    if check.selector is not None:
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


class ReadOnlyGuard:
    """The route every request of a context goes through: GET and HEAD continue, anything
    else is aborted before it leaves the browser and recorded against the check whose page
    (or whose page's popup) made it. A navigation is fetched here without following its
    redirects (Chromium follows them inside one routed request): one to another host than
    production's (or an allowed one) is not followed, and the page's check names the host."""

    def __init__(self, app: AppConfig | None = None) -> None:
        self.app = app
        self.owners: dict[Page, list[BlockedRequest]] = {}
        #: the other host a page was sent to, by page
        self.offsite: dict[Page, str] = {}

    def watch(self, page: Page) -> list[BlockedRequest]:
        blocked: list[BlockedRequest] = []
        self.owners[page] = blocked
        return blocked

    def forget(self, page: Page) -> None:
        self.owners.pop(page, None)
        self.offsite.pop(page, None)

    async def _owner(self, route: Route) -> list[list[BlockedRequest]]:
        try:
            page: Page | None = route.request.frame.page
        except PlaywrightError:  # a service worker's request: no frame
            page = None
        for _ in range(5):  # a popup's popup's … opener
            if page is None:
                break
            if page in self.owners:
                return [self.owners[page]]
            page = await page.opener()
        # Not attributable: every check open now hears of it (over-reporting a write attempt
        # beats losing it).
        return list(self.owners.values())

    async def __call__(self, route: Route) -> None:
        request = route.request
        try:
            if request.method.upper() in READ_METHODS:
                if self.app is not None and request.is_navigation_request():
                    await self._navigate(route, self.app)
                else:
                    await route.continue_()
                return
            blocked = BlockedRequest(request.method.upper(), request.url)
            # "aborted" (net::ERR_ABORTED): a blocked form post leaves the page as it was
            # instead of committing Chromium's error page over it.
            await route.abort("aborted")
            for owner in await self._owner(route):
                owner.append(blocked)
        except PlaywrightError:
            pass  # the context is closing; the request dies with it

    async def _navigate(self, route: Route, app: AppConfig) -> None:
        """Fetch a navigation without following its redirects; a redirect to another host is
        aborted and recorded, any other answer is handed to the page as it came."""
        try:
            response = await route.fetch(max_redirects=0)
        except PlaywrightError:
            # The network said no (refused, DNS, TLS): let the browser meet it itself, so the
            # check reports it as a browser does.
            await route.continue_()
            return
        location = response.headers.get("location")
        if 300 <= response.status < 400 and location:
            host = app.offsite(urljoin(route.request.url, location))
            if host is not None:
                await route.abort("blockedbyclient")
                try:
                    page: Page | None = route.request.frame.page
                except PlaywrightError:
                    page = None
                if page is not None:
                    self.offsite.setdefault(page, host)
                return
        await route.fulfill(response=response)


async def read_only_context(
    browser: Browser, app: AppConfig | None = None
) -> tuple[BrowserContext, ReadOnlyGuard]:
    """A context whose every request (any page, popup or frame in it) is routed read-only;
    service workers are blocked so none can answer around the route. With ``app``, pages are
    never sent to another host."""
    context = await browser.new_context(service_workers="block")
    guard = ReadOnlyGuard(app)
    await context.route("**/*", guard)
    return context, guard


async def check_page(
    browser: Browser,
    app: AppConfig,
    check: SmokeCheck,
    *,
    shared: tuple[BrowserContext, ReadOnlyGuard] | None = None,
) -> CheckResult:
    """One page check under the check's timeout, read-only. In ``shared`` (the runner's one
    context for all its pages: a new context costs Chromium a serial ~0.15 CPU-s) or, without
    it, in a fresh context of its own. Never raises (cancellation aside)."""
    started = time.perf_counter()
    budget = _Budget(check.timeout)
    status: int | None = None
    reason: str | None = None  # stays None when cancelled: no screenshot on the way out
    shot: bytes | None = None
    own: BrowserContext | None = None
    page: Page | None = None
    blocked: list[BlockedRequest] = []
    guard: ReadOnlyGuard | None = None
    try:
        async with asyncio.timeout(check.timeout + _GRACE):
            if shared is None:
                own, guard = await read_only_context(browser, app)
                context = own
            else:
                context, guard = shared
            page = await context.new_page()
            blocked = guard.watch(page)
            status, reason = await _visit(page, app, check, budget)
            if page in guard.offsite:
                status, reason = None, offsite_reason(guard.offsite[page])
    except TimeoutError:
        reason = _timed_out(check.timeout)
    except PlaywrightError as error:
        reason = _navigation_reason(error) if not budget.spent else _timed_out(check.timeout)
    finally:
        took = _elapsed_ms(started)  # the check's time, not its screenshot's or its closing's
        if page is not None:
            if reason is not None:  # failed: the page as it is, before it closes
                shot = await screenshot(page)
            with suppress(Exception):
                await asyncio.wait_for(page.close(), _CLOSE_TIMEOUT)
            if guard is not None:
                guard.forget(page)
        if own is not None:
            with suppress(Exception):
                await asyncio.wait_for(own.close(), _CLOSE_TIMEOUT)
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

    ``max_parallel`` caps how many pages are open at once (each check's timeout starts when
    its page gets a slot).
    """

    def __init__(self, *, max_parallel: int = 8, headless: bool = True) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.max_parallel = max_parallel
        self.headless = headless

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
        try:
            health, unreachable = await check_health(app)
            _notify(on_check, health)
            if unreachable:
                skipped = tuple(_not_run(check) for check in app.smoke)
                for result in skipped:
                    _notify(on_check, result)
                return SmokeResult.from_checks((health, *skipped), _elapsed_ms(started))

            playwright = await asyncio.shield(driver)
            async with launched(playwright, app.chromium_path, headless=self.headless) as browser:
                slots = asyncio.Semaphore(self.max_parallel)
                shared = await read_only_context(browser, app)

                async def one(check: SmokeCheck) -> CheckResult:
                    async with slots:
                        result = await check_page(browser, app, check, shared=shared)
                    _notify(on_check, result)
                    return result

                pages = await asyncio.gather(*(one(check) for check in app.smoke))
                if not browser.is_connected():
                    return SmokeResult.failure(
                        "Chromium exited during the run", _elapsed_ms(started)
                    )
        except LaunchError as error:
            return SmokeResult.failure(str(error), _elapsed_ms(started))
        finally:
            await _settle(driver)
        return SmokeResult.from_checks((health, *pages), _elapsed_ms(started))

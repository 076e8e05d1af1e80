"""Read-only by construction: how the smoke seal keeps a production page from writing.

Four layers, each at the depth where a page cannot get around it:

1. **The browser has no network of its own.** Chromium is launched with a proxy for every
   host, loopback included, that is a :class:`DeadEnd`: a socket on 127.0.0.1 that answers
   403 and forwards nothing. Whatever Chromium would send by itself (a shared worker's fetch,
   a worker's WebSocket, a beacon or keepalive request sent as its page unloads, a report the
   browser queues, its own updater) ends there, and the writes among them are reported.
2. **Every request a page, popup, frame or dedicated worker makes is routed** (Playwright's
   ``context.route``, CDP's Fetch domain). GET and HEAD are fetched by the
   :class:`ReadOnlyGuard` itself, through Playwright's driver (which has the network the
   browser lacks), and handed to the page; anything else is refused and reported on the check
   whose page made it. WebSockets are refused before they connect (``route_web_socket``),
   service workers are never registered (``service_workers="block"``).
3. **WebRTC cannot reach anything.** The browser's profile is written before launch with
   WebRTC's IP handling policy at ``disable_non_proxied_udp``: no UDP at all (no STUN, no
   TURN, no peer), and TCP only through the proxy, which is the dead end. ``RTCPeerConnection``
   is refused in every frame as it is constructed, and the attempt reported; a page that digs
   the original constructor out anyway still has no network for it.
4. **Pages close in order.** A check's page and every popup it opened are led out (navigated
   to ``about:blank``, so ``pagehide``, ``visibilitychange`` and ``unload`` run while their
   requests are still routed) and closed, deepest popup first, before the check is reported;
   the context closes only after every page in it has been led out.

A write is reported against the check whose page made it: the page Playwright names, else the
page its referrer names, else every check open at the time (over-reporting an attempt beats
losing one). Attempts heard after a check reported (a late beacon) are added to the run's
final result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from playwright.async_api import (
    APIRequestContext,
    APIResponse,
    BrowserContext,
    Page,
    Playwright,
    Request,
    Route,
    WebSocketRoute,
)
from playwright.async_api import Error as PlaywrightError

from smoke.config import AppConfig
from smoke.result import BlockedRequest

log = logging.getLogger(__name__)

#: the only methods a page may use; anything else is refused and reported
READ_METHODS = frozenset({"GET", "HEAD"})
#: redirects a navigation follows before it fails
_MAX_REDIRECTS = 10
#: seconds to wait when leading out or closing a page, the context, the dead end
_CLOSE_TIMEOUT = 5.0
#: seconds the dead end may take to listen (a thread and a socket on 127.0.0.1)
_START_TIMEOUT = 10.0
#: seconds past Playwright's own launch timeout before the launch is abandoned: its driver does
#: not answer
_DRIVER_SLACK = 5.0
#: seconds Chromium may take to take the read-only routes, binding and script, once launched
_SETUP_TIMEOUT = 30.0

#: the browser profile's preferences: WebRTC never over UDP, and over TCP only by the proxy
PREFERENCES: dict[str, Any] = {
    "webrtc": {
        "ip_handling_policy": "disable_non_proxied_udp",
        "multiple_routes_enabled": False,
        "nonproxied_udp_enabled": False,
    },
}

#: the binding a frame reports a refused API through
_BINDING = "__conductorSmokeRefused"
#: run in every frame before its own scripts: the APIs with no request to route, refused
_REFUSE_APIS = """(() => {
  const report = globalThis.BINDING;
  const refuse = (name) => function () {
    try { report(name, location.href); } catch (e) {}
    throw new DOMException(name + ' is refused: the smoke seal is read-only', 'NotAllowedError');
  };
  for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'WebTransport']) {
    if (name in globalThis) {
      Object.defineProperty(globalThis, name, {value: refuse(name), writable: false, configurable: false});
    }
  }
  // A WebSocket is reported here, where its frame is known; the context's route refuses it
  // (and a socket made around this wrapper meets the dead end).
  const Socket = globalThis.WebSocket;
  if (Socket) {
    const reported = function WebSocket(url, protocols) {
      try { report('WEBSOCKET', new URL(url, location.href).href); } catch (e) {}
      return protocols === undefined ? new Socket(url) : new Socket(url, protocols);
    };
    reported.prototype = Socket.prototype;
    for (const key of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) reported[key] = Socket[key];
    globalThis.WebSocket = reported;
  }
})();""".replace("BINDING", _BINDING)


def _first_line(error: BaseException, limit: int = 200) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LaunchError(Exception):
    """Chromium (or Playwright's driver) would not start; the message says why."""


class DeadEnd:
    """Where Chromium's own network traffic goes: a proxy on 127.0.0.1 that answers every
    request 403 and forwards nothing (each read-only browser gets its own).

    Every request the guard lets through, it fetches itself (:meth:`ReadOnlyGuard.__call__`),
    outside Chromium's network stack, so the browser itself is given no network at all: what
    escapes the routes (a shared worker's request, a worker's WebSocket, a report the browser
    queues, a keepalive request outliving its page) comes here and ends. Writes among them
    (anything but GET and HEAD; a ``CONNECT``, which is how Chromium opens a WebSocket or any
    HTTPS request through a proxy, counts as one) are told to the :attr:`listeners`, on the
    event loop that started it.

    It serves on a thread of its own, with its own event loop: the connections Chromium opens
    and keeps idle belong to the dead end, not to the task that launched the browser.
    """

    def __init__(self) -> None:
        #: who hears of a write (and the page it names as its referrer, if any)
        self.listeners: list[Callable[[BlockedRequest, str | None], None]] = []
        self.port = 0
        self._owner: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def args(self) -> list[str]:
        """Chromium's flags that send all of its traffic here, for every host, loopback
        included (Chromium bypasses a proxy for loopback unless told ``<-loopback>``)."""
        return [f"--proxy-server={self.url}", "--proxy-bypass-list=<-loopback>"]

    async def start(self) -> None:
        """Serve, on a thread of its own; raises :class:`LaunchError` when it is not listening
        within :data:`_START_TIMEOUT`, or cannot listen."""
        timeout = _START_TIMEOUT
        self._owner = asyncio.get_running_loop()
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="smoke-dead-end", daemon=True
        )
        self._thread.start()
        try:
            # Bounded: a thread that never says whether it listens (it died, or its loop never
            # ran) costs a clear error, not a seal that waits forever.
            self.port = await asyncio.wait_for(asyncio.wrap_future(started), timeout)
        except TimeoutError:
            raise LaunchError(
                f"the browser's dead-end proxy did not start within {timeout:g} s"
            ) from None
        except Exception as error:
            raise LaunchError(
                f"the browser's dead-end proxy could not start: {_first_line(error)}"
            ) from error

    def _serve(self, started: concurrent.futures.Future[int]) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = await asyncio.start_server(self._refuse, "127.0.0.1", 0)
            if not _settle_future(started, server.sockets[0].getsockname()[1]):
                server.close()  # its starter stopped waiting: nobody will use it
                return
            async with server:
                await self._stop.wait()
                server.close()
                idle = asyncio.all_tasks() - {asyncio.current_task()}
                for task in idle:
                    task.cancel()
                await asyncio.gather(*idle, return_exceptions=True)

        try:
            asyncio.run(serve())
        except BaseException as error:
            # Whatever ends the thread before it listens is its starter's answer: the future
            # is always settled, never left for :meth:`start` to wait on.
            _settle_future(started, error)
            if not isinstance(error, Exception):
                raise
        finally:
            _settle_future(started, RuntimeError("its thread ended before it listened"))

    async def close(self) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None:
            with suppress(RuntimeError):  # its loop already ended
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            await asyncio.to_thread(thread.join, _CLOSE_TIMEOUT)

    def _heard(self, blocked: BlockedRequest, referrer: str | None) -> None:
        for listener in list(self.listeners):
            listener(blocked, referrer)

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            head = b""
        try:
            line, *fields = head.decode("latin-1").split("\r\n")
            method, _, rest = line.strip().partition(" ")
            target = rest.rpartition(" ")[0] or rest
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (f.partition(":") for f in fields if ":" in f)
            }
            if method and method.upper() not in READ_METHODS and self._owner is not None:
                referrer = headers.get("referer") or headers.get("origin")
                blocked = BlockedRequest(method.upper(), target)
                with suppress(RuntimeError):  # the run is over
                    self._owner.call_soon_threadsafe(self._heard, blocked, referrer)
            writer.write(_REFUSED)
            await writer.drain()
        except (OSError, UnicodeError):
            pass
        finally:
            writer.close()


_REFUSED = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _settle_future(future: concurrent.futures.Future[int], outcome: int | BaseException) -> bool:
    """Give ``future`` its result (or exception) unless it is settled already (by an earlier
    outcome, or cancelled by a starter that stopped waiting); whether it took this one."""
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except concurrent.futures.InvalidStateError:
        return False
    return True


class ReadOnlyGuard:
    """The route every request of a context goes through. GET and HEAD are fetched by the guard
    (Playwright's driver, not Chromium) and handed to the page; anything else is recorded
    against the check whose page (or whose page's popup, frame or worker) made it, then
    refused before it leaves. WebSockets are refused the same way.

    A navigation is fetched without following its redirects (Chromium follows them inside one
    routed request): one to another host than production's (or an allowed one) is not
    followed, and the page's check names the host.

    Which check a write belongs to: its page's, when Playwright knows the page (a check's page
    and every popup it opens, adopted as they open); else the page its referrer names (a
    popup's first navigation, a beacon sent while its page unloads, a request that escaped to
    the :class:`DeadEnd`); else every check open at the time (over-reporting a write attempt
    beats losing it), or, when none is, every page check of the run.
    """

    def __init__(self, api: APIRequestContext, app: AppConfig | None = None) -> None:
        self.app = app
        #: the driver's HTTP client, with the context's cookies
        self.api = api
        #: the blocked list each watched page reports into (a check's page and its popups)
        self.owners: dict[Page, list[BlockedRequest]] = {}
        #: the popups each watched page opened
        self.children: dict[Page, list[Page]] = {}
        #: the other host a page was sent to, by page
        self.offsite: dict[Page, str] = {}
        #: where each page's redirects led (its check waits for it to land there)
        self.redirected: dict[Page, str] = {}
        self._prefetched: dict[str, APIResponse] = {}
        #: the status of the document each page last landed on
        self.landed: dict[Page, int] = {}
        #: why a page's navigation failed, when the guard knows better than Chromium
        self.failures: dict[Page, str] = {}
        #: the checks' own pages and their lists, to hear of writes nobody can be named for
        self.checks: dict[Page, list[BlockedRequest]] = {}
        #: the blocked list of each URL a watched page or frame was navigated to
        self.documents: dict[str, list[BlockedRequest]] = {}
        #: how many times the guard heard from a watched page (or of a write)
        self.noises = 0
        #: writes made while no check was open (a popup nobody owned, closing the context)
        self.stray: list[BlockedRequest] = []
        #: how many checks each page has served (a pooled page serves several, one at a time)
        self.tenures: dict[Page, int] = {}
        #: when the check of each watched page (and of its popups) ends, on ``perf_counter``:
        #: nothing the page loads is fetched past it (a page that streams forever is let go)
        self.deadlines: dict[Page, float] = {}
        #: the popup listener each watched page has for its present check
        self._listeners: dict[Page, Callable[[Page], None]] = {}
        self._ambiguous: set[str] = set()

    async def install(self, context: BrowserContext) -> None:
        """Route everything ``context`` sends through this guard."""
        # Playwright refuses sockets through a script of its own that replaces WebSocket in
        # every frame; ours goes in after it, so it wraps that one and reports each socket.
        await asyncio.gather(
            context.route("**/*", self),
            context.route_web_socket(re.compile(".*"), self.refuse_socket),
        )
        await asyncio.gather(
            context.expose_binding(_BINDING, self._refused_api),
            context.add_init_script(_REFUSE_APIS),
        )

    # -- which check a page belongs to -------------------------------------------------------

    async def watch(
        self,
        page: Page,
        blocked: list[BlockedRequest] | None = None,
        *,
        until: float | None = None,
    ) -> list[BlockedRequest]:
        """Start reporting ``page``'s writes (and its popups') into ``blocked`` (a new list by
        default). The list goes on filling after the check reported, until the browser closed:
        what a page sends late is not lost. With ``until`` (on ``time.perf_counter``), every
        fetch the page and its popups make ends by then (:attr:`deadlines`).

        A pooled page (:class:`PagePool`) is watched again for each check it serves, after the
        previous check released it (led out to ``about:blank``, no popup): from here on its
        writes are this check's, and what the guard knew of its last navigation (where it
        landed, was redirected, failed) is forgotten, and is not written any more by a route
        of the previous check's that finishes late (:attr:`tenures`)."""
        blocked = [] if blocked is None else blocked
        self.tenures[page] = self.tenures.get(page, 0) + 1
        for known in (self.offsite, self.redirected, self.landed, self.failures):
            known.pop(page, None)
        self.checks[page] = blocked
        if until is None:
            self.deadlines.pop(page, None)
        else:
            self.deadlines[page] = until
        await self._adopt(page, blocked)
        return blocked

    async def _adopt(self, page: Page, blocked: list[BlockedRequest]) -> None:
        self.owners[page] = blocked
        self.children[page] = []

        def popup(child: Page) -> None:
            if child in self.children:
                return
            self.children[page].append(child)
            self.owners[child] = blocked
            if (until := self.deadlines.get(page)) is not None:
                self.deadlines[child] = until
            self.children[child] = []
            asyncio.get_running_loop().create_task(self._watch_popup(child, blocked))

        if (previous := self._listeners.pop(page, None)) is not None:
            page.remove_listener("popup", previous)
        self._listeners[page] = popup
        page.on("popup", popup)

    async def _watch_popup(self, page: Page, blocked: list[BlockedRequest]) -> None:
        with suppress(PlaywrightError):
            await self._adopt(page, blocked)

    def family(self, page: Page) -> list[Page]:
        """``page``'s popups (and theirs), deepest first, then ``page``."""
        out: list[Page] = []
        for child in self.children.get(page, ()):
            out.extend(self.family(child))
        out.append(page)
        return out

    def forget(self, page: Page) -> None:
        """``page``'s check has reported: it no longer hears of writes nobody can be named for.
        What its pages are still heard sending (late beacons) goes on into its list."""
        self.checks.pop(page, None)

    def _document(self, url: str, owner: list[BlockedRequest]) -> None:
        """Remember which check loaded ``url``, to name it from a referrer; a URL two checks
        loaded names neither."""
        if url in self._ambiguous:
            return
        known = self.documents.setdefault(url, owner)
        if known is not owner:
            del self.documents[url]
            self._ambiguous.add(url)

    def _touch(self, blocked: list[BlockedRequest]) -> list[BlockedRequest]:
        self.noises += 1
        return blocked

    async def _owner(self, route: Route) -> list[BlockedRequest] | None:
        request = route.request
        # The document that sent it, where it says: a pooled page may already serve the next
        # check when what its last document sent on its way out (a beacon on pagehide) is
        # routed, and that document's check is the one to tell.
        referrer = request.headers.get("referer")
        if referrer is not None and referrer in self.documents:
            return self._touch(self.documents[referrer])
        try:
            page: Page | None = request.frame.page
        except PlaywrightError:  # a popup's first navigation, a service worker: no frame yet
            page = None
        for _ in range(5):  # a popup's popup's … opener
            if page is None:
                break
            if page in self.owners:
                owner = self.owners[page]
                # the page's own URL names it too, to whatever it sends unrouted
                self._document(page.url, owner)
                return self._touch(owner)
            page = await page.opener()
        return None

    def unattributed(self, blocked: BlockedRequest) -> None:
        owners = list({id(b): b for b in self.checks.values()}.values())
        for owner in owners:
            owner.append(blocked)
        self._touch(self.stray)
        if not owners:
            self.stray.append(blocked)

    def heard(self, blocked: BlockedRequest, referrer: str | None) -> None:
        """A write that reached the :class:`DeadEnd`. One that names no page and goes to
        another host than production's is Chromium's own (its updater, its sign-in probe):
        refused like the rest, not reported."""
        if referrer is not None and referrer in self.documents:
            self._touch(self.documents[referrer]).append(blocked)
            return
        target = blocked.url if "://" in blocked.url else f"https://{blocked.url}"
        if referrer is None and self.app is not None and self.app.offsite(target) is not None:
            log.debug("refused the browser's own %s %s", blocked.method, blocked.url)
            return
        self.unattributed(blocked)

    # -- the routes --------------------------------------------------------------------------

    def _refused_api(self, source: dict[str, Any], name: object, where: object) -> None:
        """A frame constructed an API with no request to route (``RTCPeerConnection``): it
        was refused in the frame; report it on the frame's check."""
        blocked = BlockedRequest(str(name).upper()[:40], str(where)[:2000])
        page = source.get("page")
        owner = self.owners.get(page) if isinstance(page, Page) else None
        if owner is None:
            self.unattributed(blocked)
        else:
            self._touch(owner).append(blocked)

    async def refuse_socket(self, ws: WebSocketRoute) -> None:
        """Never connected to the server: the page sees the socket close at once. (The attempt
        was reported by the frame's own init script, which knows the page.)"""
        with suppress(PlaywrightError):
            await ws.close(code=1008, reason=_SOCKET_REFUSED)

    async def __call__(self, route: Route) -> None:
        request = route.request
        try:
            if request.method.upper() in READ_METHODS:
                await self._read(route)
                return
            blocked = BlockedRequest(request.method.upper(), request.url)
            owner = await self._owner(route)
            if owner is None:
                self.unattributed(blocked)
            else:
                owner.append(blocked)
            if request.is_navigation_request():
                # A blocked form post answered "204 No Content": the page (or frame) stays as
                # it was (an aborted navigation shows Chromium's error page, or holds the load
                # event of the page around the frame).
                await route.fulfill(status=204)
            else:
                await route.abort("aborted")
        except PlaywrightError:
            pass  # the context is closing; the request dies with it (the browser has no network)
        except Exception as error:
            # Never a request left unanswered: Chromium would hold it (and its page's
            # navigation) until the check times out, for a reason nobody is told. (And
            # Playwright's client would raise this error again at its next call, anywhere.)
            log.warning(
                "the read-only guard failed on %s %s",
                request.method,
                request.url,
                exc_info=error,
            )
            if request.is_navigation_request():
                self._note(
                    self.failures,
                    request,
                    self._tenure(request),
                    f"navigation failed: {_first_line(error)}",
                )
            with suppress(PlaywrightError):
                await route.abort("failed")

    async def _read(self, route: Route) -> None:
        """Fetch a GET or HEAD and hand the answer to the page.

        A navigation's redirects are followed here, hop by hop, never to another host (the
        navigation is refused and the host recorded). Chromium cannot follow them itself (it
        has no network; Playwright never routes a redirect's next hop), so a navigation that
        was redirected is answered with a page that moves on to where the redirects led
        (``location.replace``): that navigation is routed and fetched like the first, and the
        page ends up at the right URL.

        Each fetch of a check's page ends with the check (:attr:`deadlines`): Playwright's
        fetch reads a whole body before it hands it over, and a page that streams forever
        would otherwise be read by the driver past its check, until the run ends."""
        request = route.request
        navigation = request.is_navigation_request()
        # the page's check now (a route that finishes after its check released a pooled page
        # must not tell the next check's where it landed)
        tenure = self._tenure(request)
        if (navigation or request.resource_type == "script") and (
            owner := await self._owner(route)
        ) is not None:
            # what it loads may send later under this referrer (a worker's script too)
            self._document(request.url, owner)
        url = request.url
        try:
            if navigation and (early := self._prefetched.pop(url, None)) is not None:
                response = early  # where a redirect led, fetched once already
            else:
                response = await route.fetch(
                    max_redirects=0 if navigation else None, timeout=self._time_left(tenure)
                )
            hops = 0
            while navigation and 300 <= response.status < 400 and response.headers.get("location"):
                location = response.headers["location"]
                try:
                    url = urljoin(url, location)
                    host = self.app.offsite(url) if self.app is not None else None
                except ValueError as error:  # "http://[oops", a port past 65535
                    await route.abort("failed")
                    reason = f"redirected to an invalid URL ({error}): {location[:200]}"
                    self._note(self.failures, request, tenure, reason)
                    return
                if host is not None or hops == _MAX_REDIRECTS:
                    await route.abort("blockedbyclient" if host is not None else "failed")
                    if host is not None:
                        self._note(self.offsite, request, tenure, host)
                    else:
                        self._note(self.failures, request, tenure, "too many redirects")
                    return
                hops += 1
                response = await self.api.get(
                    url,
                    max_redirects=0,
                    fail_on_status_code=False,
                    timeout=self._time_left(tenure),
                )
        except PlaywrightError as error:
            code, reason = fetch_failure(error)
            if navigation:
                self._note(self.failures, request, tenure, reason)
            await route.abort(code)
            return
        if url == request.url:
            if navigation:
                self._note(self.landed, request, tenure, response.status, top=True)
            await route.fulfill(response=response)
            return
        self._note(self.redirected, request, tenure, url, top=True)
        # the page moves on to it at once: production is not asked for it twice
        self._prefetched[url] = response
        await route.fulfill(
            status=200,
            content_type="text/html",
            body=f"<!doctype html><script>location.replace({json.dumps(url)})</script>",
        )

    def _tenure(self, request: Request) -> tuple[Page, int] | None:
        try:
            page = request.frame.page
        except PlaywrightError:  # a worker's request, a popup's first navigation: no frame
            return None
        return page, self.tenures.get(page, 0)

    def _time_left(self, tenure: tuple[Page, int] | None) -> float | None:
        """Milliseconds left of the check of the page a request came from, and
        :data:`ROUTE_GRACE` more (never 0: that is Playwright's "no timeout"), or None when
        no check's deadline is known (a worker's request: the driver's own default). The
        grace lets the check's own timeout end a page that is too slow: a fetch given up at
        the very deadline would fail the navigation first as a network error
        (``net::ERR_TIMED_OUT``, "connection timed out"), racing the check's "timed out
        after 1.0 s" for the reason given."""
        until = self.deadlines.get(tenure[0]) if tenure is not None else None
        if until is None:
            return None
        return max((until + ROUTE_GRACE - time.perf_counter()) * 1000, 1.0)

    def _note(
        self,
        known: dict[Page, Any],
        request: Request,
        tenure: tuple[Page, int] | None,
        value: object,
        *,
        top: bool = False,
    ) -> None:
        """Record ``value`` for the request's page in ``known`` (the first value only, unless
        ``top``: then only a top-level navigation's, the last one), if the page still serves
        the check it served when the route began."""
        if tenure is None:
            return
        page, then = tenure
        if self.tenures.get(page, 0) != then:
            return  # the page has moved on to another check
        if top:
            with suppress(PlaywrightError):
                if request.frame.parent_frame is None:
                    known[page] = value
        else:
            known.setdefault(page, value)

    # -- leaving -----------------------------------------------------------------------------

    async def release(self, page: Page, *, keep: bool = False) -> bool:
        """Close ``page``'s popups, deepest first, then ``page``, each only after it has been
        led out (to ``about:blank``) while still watched: what a page sends on its way out (a
        beacon on ``pagehide``, ``unload`` or ``visibilitychange``, a keepalive fetch) is
        refused and reported on its check like any other write, not sent by a closing browser.

        With ``keep``, ``page`` itself is led out but left open for another check, if it opened
        no popup and its lead-out succeeded; returns whether it was kept (else it is closed).
        Its writes stay its check's until the next check watches it (:meth:`watch`)."""
        family = self.family(page)
        for member in family[:-1]:
            await lead_out(member)
        kept = await lead_away(page)
        if not (kept and keep and len(family) == 1):
            kept = False
            await close_page(page)
        self.forget(page)
        return kept

    async def settle(self) -> None:
        """Wait until nothing was heard for :data:`_QUIET` (at most :data:`_QUIET_MAX`): what
        the last pages sent on their way out is counted before the run reports."""
        for _ in range(round(_QUIET_MAX / _QUIET)):
            before = self.noises
            # The browser's own time, not the loop's: a loop that virtualises its clock (a
            # test's) must not skip the wait for what Chromium is still sending.
            await asyncio.to_thread(time.sleep, _QUIET)
            if self.noises == before:
                return


_SOCKET_REFUSED = "read-only: the smoke seal refuses WebSockets"
#: a page is done when it made no request for this long after being led out…
_QUIET = 0.05
#: …or this long has passed
_QUIET_MAX = 0.5


async def lead_away(page: Page) -> bool:
    """Navigate ``page`` to ``about:blank`` (its ``pagehide``, ``visibilitychange`` and
    ``unload`` run while its requests are still routed); whether it is there, open."""
    if page.is_closed():
        return False
    if page.url != "about:blank":  # a page that never loaded anything has nothing to send
        with suppress(Exception):
            await asyncio.wait_for(page.goto("about:blank"), _CLOSE_TIMEOUT)
    return not page.is_closed() and page.url == "about:blank"


async def lead_out(page: Page) -> None:
    """Lead ``page`` away (:func:`lead_away`), then close it."""
    if page.is_closed():
        return
    await lead_away(page)
    await close_page(page)


async def close_page(page: Page) -> None:
    with suppress(Exception):
        await asyncio.wait_for(page.close(), _CLOSE_TIMEOUT)


#: how long a routed fetch may outlast its check's deadline (:meth:`ReadOnlyGuard._time_left`)
ROUTE_GRACE = 0.5

_FETCH_FAILURES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("ECONNREFUSED",), "connectionrefused", "connection refused"),
    (("ENOTFOUND", "EAI_AGAIN", "getaddrinfo"), "namenotresolved", "DNS lookup failed"),
    (("ETIMEDOUT", "Timeout", "timed out"), "timedout", "connection timed out"),
    (("ECONNRESET", "socket hang up"), "connectionreset", "connection reset"),
    (("EHOSTUNREACH", "ENETUNREACH"), "addressunreachable", "address unreachable"),
    (
        ("certificate", "CERT_", "SSL", "TLS", "self-signed", "altnames"),
        "failed",
        "TLS error",
    ),
)


def fetch_failure(error: PlaywrightError) -> tuple[str, str]:
    """The abort code (so the page meets the failure as Chromium would) and the reason."""
    message = str(error)
    for needles, code, reason in _FETCH_FAILURES:
        if any(needle in message for needle in needles):
            if reason != "TLS error":
                return code, reason
            return code, f"TLS error: {_first_line(error).split(': ', 1)[-1]}"
    return "failed", f"navigation failed: {_first_line(error)}"


class PagePool:
    """The run's pages, reused from check to check: a check takes an idle page, else a new
    one (the first: the blank page Chromium opened with the context). The runner lets only so
    many checks run at once (``max_parallel``), so no more pages exist than that. A page made
    costs Chromium a renderer process and its setup (~0.1 CPU-s) while the other checks wait
    for the CPU; a page reused costs a navigation to ``about:blank``, which its check's
    lead-out makes anyway.

    The invariants that keep every write on the check that made it:

    - a page serves one check at a time: it is handed out before any ``await`` and comes back
      only once its check released it (:meth:`ReadOnlySession.release`);
    - it comes back led out to ``about:blank`` while still its check's (its ``pagehide``,
      ``visibilitychange`` and ``unload`` ran, and what they sent was reported on its check)
      and without popups (a page that opened one is closed instead, popups and all);
    - its writes stay the previous check's until the next check watches it
      (:meth:`ReadOnlyGuard.watch`); what its last document sent while it unloaded and escaped
      the routes (beacons, keepalive fetches) is named at the dead end by its referrer, as for
      any page;
    - what the guard knew of its last navigation (where it landed, was redirected, failed) is
      dropped when the next check watches it, and a route of the previous check's that
      finishes late cannot write it (:attr:`ReadOnlyGuard.tenures`).

    What carries over is the page's session history: a page that goes back in history loads
    the earlier check's URL afresh (Playwright turns the back-forward cache off), and that load
    and what it sends are the check's whose page went back.

    What rests on ordering: a routed write is attributed when it reaches the guard, a popup
    when Playwright reports it. Both left the page's last document before its lead-out
    navigation to ``about:blank`` began, a round trip through the driver before the next
    check can start. Nothing in Chromium or Playwright promises they arrive first; in every
    run of ``tests/smoke/test_read_only.py``, which hands pages over between checks writing
    every 5 ms, they did.
    """

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        #: pages led out and waiting for a check
        self.idle: list[Page] = []
        self._first_taken = False

    async def take(self) -> Page:
        """A page for a check: its own until it is given back (or closed)."""
        if not self._first_taken:
            self._first_taken = True
            for page in self.context.pages:
                if page.url == "about:blank" and not page.is_closed():
                    return page  # the context's own, never loaded
        while self.idle:
            page = self.idle.pop()
            if not page.is_closed():
                return page
        return await self.context.new_page()

    def give_back(self, page: Page) -> None:
        """``page`` is led out to ``about:blank``, without popups, its check over."""
        self.idle.append(page)


@dataclass
class ReadOnlySession:
    """One read-only Chromium: its only context (all the run's pages), its guard and its
    pages."""

    context: BrowserContext
    guard: ReadOnlyGuard
    #: whether the context closed before it was asked to (Chromium went away)
    crashed: bool = field(default=False)
    closing: bool = field(default=False)
    pool: PagePool = field(init=False)

    def __post_init__(self) -> None:
        self.pool = PagePool(self.context)

    async def take_page(self, blocked: list[BlockedRequest], *, until: float | None = None) -> Page:
        """A page for a check (a pooled one: :class:`PagePool`), watched into ``blocked``,
        its fetches ending by ``until`` (:meth:`ReadOnlyGuard.watch`)."""
        page = await self.pool.take()
        await self.guard.watch(page, blocked, until=until)
        return page

    async def release(self, page: Page, *, reuse: bool = True) -> None:
        """The check on ``page`` is over: its popups closed, the page led out and back in the
        pool, or closed when it cannot serve another check (:meth:`ReadOnlyGuard.release`).

        A check that failed passes ``reuse=False``: its page is closed, never handed on. Its
        navigation may still be pending (a page that never answered, or streams forever,
        never leaves ``about:blank``, so there is nothing to lead it away from), and the
        guard's late end of it (the fetch aborted at the check's deadline) would show
        Chromium's error page in the middle of the next check's navigation ("interrupted by
        another navigation to chrome-error://chromewebdata/", seen in CI). A new page costs
        ~0.1 CPU-s, on a failed check only."""
        if await self.guard.release(page, keep=reuse and not self.closing):
            self.pool.give_back(page)

    def _closed(self, _context: BrowserContext) -> None:
        if not self.closing:
            self.crashed = True


def write_profile(profile: Path) -> None:
    """The profile Chromium starts with: :data:`PREFERENCES` in its default profile."""
    default = profile / "Default"
    default.mkdir(parents=True, exist_ok=True)
    (default / "Preferences").write_text(json.dumps(PREFERENCES), encoding="utf-8")


@asynccontextmanager
async def read_only_browser(
    playwright: Playwright,
    executable: str,
    *,
    app: AppConfig | None = None,
    headless: bool = True,
    args: Sequence[str] = (),
    launch_timeout: float = 30.0,
) -> AsyncIterator[ReadOnlySession]:
    """Chromium read-only by construction (the four layers of this module), closed on the way
    out, whatever happens, in order: every page led out, then the browser, then its dead end.
    With ``app``, pages are never sent to another host than production's (or an allowed one).
    Raises :class:`LaunchError` when Chromium will not start."""
    dead_end = DeadEnd()
    profile: Path | None = None
    try:
        await dead_end.start()
        profile = Path(tempfile.mkdtemp(prefix="conductor-smoke-"))
        write_profile(profile)
        try:
            # Playwright's driver times the launch itself; the outer bound is for a driver that
            # stops answering (its reply never comes), a little later so that its own timeout,
            # which names what Chromium was doing, is the one seen.
            context = await asyncio.wait_for(
                playwright.chromium.launch_persistent_context(
                    profile,
                    executable_path=executable,
                    headless=headless,
                    args=[*args, *dead_end.args],
                    service_workers="block",
                    timeout=launch_timeout * 1000,
                ),
                launch_timeout + _DRIVER_SLACK,
            )
        except TimeoutError:
            raise LaunchError(
                f"Chromium at {executable} did not start within {launch_timeout:g} s"
                " (Playwright's driver did not answer)"
            ) from None
        except Exception as error:
            raise LaunchError(
                f"Chromium at {executable} failed to launch: {_first_line(error)}"
            ) from error
        guard = ReadOnlyGuard(context.request, app)
        dead_end.listeners.append(guard.heard)
        session = ReadOnlySession(context, guard)
        context.on("close", session._closed)
        try:
            try:
                async with asyncio.timeout(_SETUP_TIMEOUT):
                    await guard.install(context)
            except TimeoutError:
                raise LaunchError(
                    f"Chromium did not take the read-only routes within {_SETUP_TIMEOUT:g} s"
                ) from None
            except PlaywrightError as error:
                raise LaunchError(
                    f"Chromium did not take the read-only routes: {_first_line(error)}"
                ) from error
            yield session
        finally:
            session.closing = True
            await close_read_only(context, guard)
    except OSError as error:
        # the temporary profile could not be written (a full disk, a read-only /tmp)
        raise LaunchError(f"the browser profile could not be written: {error}") from error
    finally:
        await dead_end.close()
        if profile is not None:
            await asyncio.to_thread(shutil.rmtree, profile, True)


async def close_read_only(context: BrowserContext, guard: ReadOnlyGuard) -> None:
    """Lead out and close every page still open (popups nobody owned too), then the context:
    never a page closed while it can still send unwatched."""
    for page in list(context.pages):
        await lead_out(page)
    await guard.settle()
    with suppress(Exception):
        await asyncio.wait_for(context.close(), _CLOSE_TIMEOUT)

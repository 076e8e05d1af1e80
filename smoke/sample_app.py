"""A small local "production" web app for the smoke seal: tests, the benchmark and the demo.

It serves a handful of HTML pages on 127.0.0.1 (a random port) and can be broken on purpose,
so a seal can be shown green, then red with a specific reason, then green again::

    async with SampleApp() as app:
        table = sample_app_table(app.url)      # the [app] table for these pages
        app.set_status("/tasks", 500)          # /tasks now answers 500
        app.break_signin()                     # /signin renders without its form
        app.heal()                             # all back to normal

Every POST that reaches the server, on any path, is counted in :attr:`SampleApp.posts`: the
``/writes`` page fires a ``fetch`` POST and submits a POST form as soon as it loads, so a
read-only runner can be shown to stop them (``posts`` stays 0).

From synchronous code (a CLI test, a benchmark with its own event loop), run it on a thread of
its own with :func:`serve_in_thread`.
"""

from __future__ import annotations

import asyncio
import html
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

#: the rollback command of the sample app's ``[app]`` table
SAMPLE_ROLLBACK = "git revert -m 1 {merge_sha} && bin/deploy {release}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TASKS = (
    ("studio-42", "Sign-in with passkeys", "reviewed"),
    ("studio-43", "Faster task list", "building"),
    ("studio-44", "Dark mode for the editor", "designed"),
)

_STYLE = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:40rem}"


def _page(title: str, body: str, *, head: str = "") -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>{head}</head>"
        "<body><nav><a href=/>Studio</a> · <a href=/tasks>Tasks</a> · "
        f"<a href=/changelog>Changelog</a> · <a href=/signin>Sign in</a></nav>{body}</body></html>"
    )


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


def sample_checks() -> list[dict[str, Any]]:
    """The ``[[app.smoke]]`` checks for the sample app: five pages (with the health check, six
    checks in all)."""
    return [
        {"path": "/", "expect_text": "Studio"},
        {"path": "/signin", "selector": "form input[type=password]"},
        {"path": "/tasks", "selector": "ul.task-list li", "expect_text": "Faster task list"},
        {"path": "/changelog", "expect_text": "Changelog"},
        {"path": "/devops", "expect_status": 404},
    ]


def sample_app_table(url: str, **overrides: Any) -> dict[str, Any]:
    """The ``[app]`` table for the sample app at ``url``; ``overrides`` replace keys (for
    instance ``smoke=[...]``, ``health_timeout=2.0`` or ``chromium_path=...``)."""
    table: dict[str, Any] = {
        "name": "studio",
        "production_url": url,
        "health_path": "/up",
        "rollback_command": SAMPLE_ROLLBACK,
        "smoke": sample_checks(),
    }
    table.update(overrides)
    return table


def toml_value(value: Any) -> str:
    """A TOML value: a boolean, a number, a string (a JSON string is a TOML basic string) or a
    list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def config_toml(
    tables: Mapping[str, Mapping[str, Any]], top: Mapping[str, Any] | None = None
) -> str:
    """A Conductor config file: ``top``'s keys, then each table, its lists of tables (such as
    ``[[app.smoke]]``) after its own keys. Values that are None are left out (TOML has no null:
    the setting keeps its default)."""

    def keys(items: Mapping[str, Any]) -> list[str]:
        return [f"{k} = {toml_value(v)}" for k, v in items.items() if v is not None]

    lines = keys(top or {})
    for name, table in tables.items():
        nested = {
            k: v for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], dict)
        }
        lines += ["", f"[{name}]"] if lines else [f"[{name}]"]
        lines += keys({k: v for k, v in table.items() if k not in nested})
        for key, items in nested.items():
            for item in items:
                lines += ["", f"[[{name}.{key}]]", *keys(item)]
    return "\n".join(lines) + "\n"


class SampleApp:
    """The sample "production": an aiohttp server on 127.0.0.1 at a random port.

    ``async with SampleApp() as app:`` starts it and stops it; ``app.url`` is its base URL.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_seconds: float = 5.0,
        version_file: Path | None = None,
    ):
        self.host = host
        self.port = port
        #: what a deploy writes ("v3 <sha>"): the version the home page says it runs
        self.version_file = version_file
        #: how long ``/slow`` takes to answer
        self.slow_seconds = slow_seconds
        #: the most ``/slow`` requests that were being answered at once
        self.slow_peak = 0
        #: how many answers of ``/slow`` were sent (a runner that waits for one shows here)
        self.slow_answered = 0
        self._slow_now = 0
        #: every POST that reached the server, on any path
        self.posts = 0
        #: every request that reached the server, as (method, path)
        self.requests: list[tuple[str, str]] = []
        self._statuses: dict[str, int] = {}
        self._signin_broken = False
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        if self._runner is None:
            raise RuntimeError("the sample app is not running; await start() first")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            return
        application = web.Application(middlewares=[self._record, self._breakage])
        application.router.add_get("/", self._home)
        application.router.add_get("/signin", self._signin)
        application.router.add_post("/signin", self._echo)
        application.router.add_get("/tasks", self._tasks)
        application.router.add_get("/changelog", self._changelog)
        application.router.add_get("/up", self._up)
        # redirects: within production, and to another host (the same server as `localhost`)
        application.router.add_get("/hop", self._hop)
        application.router.add_get("/away", self._away)
        application.router.add_get("/up-away", self._up_away)
        application.router.add_get("/writes", self._writes)
        application.router.add_get("/slow", self._slow)
        application.router.add_route("*", "/api/echo", self._echo)
        runner = web.AppRunner(
            application, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- breakage controls -------------------------------------------------------------------

    def set_status(self, path: str, code: int) -> None:
        """``path`` answers ``code`` (an error page) until :meth:`heal`."""
        self._statuses[path] = code

    def break_signin(self) -> None:
        """``/signin`` renders, 200, but without its form (the password field is gone)."""
        self._signin_broken = True

    def heal(self) -> None:
        """Every page back to normal (the counters are kept)."""
        self._statuses.clear()
        self._signin_broken = False

    def reset_counters(self) -> None:
        self.slow_peak = 0
        self.slow_answered = 0
        self.posts = 0
        self.requests.clear()

    # -- middlewares -------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.method == "POST":
            self.posts += 1
        return await handler(request)

    @web.middleware
    async def _breakage(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        code = self._statuses.get(request.path)
        if code is not None:
            title = f"{code} · Studio is having a problem"
            return _html(_page(title, f"<h1>Error {code}</h1><p>Something went wrong.</p>"), code)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            body = "<h1>Not found</h1><p>There is no such page.</p>"
            return _html(_page("Not found · Studio", body), 404)

    # -- pages -------------------------------------------------------------------------------

    def running(self) -> str | None:
        """The version a deploy switched production to, or None before any."""
        if self.version_file is None or not self.version_file.is_file():
            return None
        return self.version_file.read_text(encoding="utf-8").strip() or None

    async def _home(self, request: web.Request) -> web.Response:
        version = self.running()
        running = f"<p class=version>Running {html.escape(version)}</p>" if version else ""
        body = (
            "<h1>Studio</h1><p>Plan, build and ship your team's work.</p>"
            f"<p><a href=/tasks>Open the task list</a></p>{running}"
        )
        return _html(_page("Studio", body))

    async def _signin(self, request: web.Request) -> web.Response:
        if self._signin_broken:
            body = "<h1>Sign in</h1><p>Sign-in is temporarily unavailable.</p>"
        else:
            body = (
                "<h1>Sign in</h1><form method=post action=/signin>"
                "<label>Email <input type=email name=email></label> "
                "<label>Password <input type=password name=password></label> "
                "<button>Sign in</button></form>"
            )
        return _html(_page("Sign in · Studio", body))

    async def _tasks(self, request: web.Request) -> web.Response:
        items = "".join(
            f"<li data-slug={slug}><strong>{html.escape(title)}</strong> · {state}</li>"
            for slug, title, state in TASKS
        )
        body = f"<h1>Tasks</h1><ul class=task-list>{items}</ul>"
        return _html(_page("Tasks · Studio", body))

    async def _changelog(self, request: web.Request) -> web.Response:
        body = "<h1>Changelog</h1><ul><li>Sign-in with passkeys</li><li>Faster task list</li></ul>"
        return _html(_page("Changelog · Studio", body))

    async def _up(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _hop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/changelog")

    def _elsewhere(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"

    async def _away(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self._elsewhere("/changelog"))

    async def _up_away(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self._elsewhere("/up"))

    async def _writes(self, request: web.Request) -> web.Response:
        # On load: a fetch POST, then (once it settled) a POST form submission. "writes
        # attempted" shows 500 ms after the submission started, so a check waiting for that
        # text has seen both requests leave the page.
        script = """
<script>
window.addEventListener('load', async () => {
  try { await fetch('/api/echo', {method: 'POST', body: 'beacon'}); } catch (e) {}
  document.forms.echo.submit();
  setTimeout(() => { document.getElementById('status').textContent = 'writes attempted'; }, 500);
});
</script>"""
        body = (
            "<h1>Writes</h1><p id=status>loading…</p>"
            "<form name=echo method=post action=/api/echo>"
            "<input type=hidden name=note value=hello></form>"
        )
        return _html(_page("Writes · Studio", body, head=script))

    async def _slow(self, request: web.Request) -> web.Response:
        self._slow_now += 1
        self.slow_peak = max(self.slow_peak, self._slow_now)
        try:
            await asyncio.sleep(self.slow_seconds)
        finally:
            self._slow_now -= 1
        self.slow_answered += 1
        return _html(_page("Slow · Studio", "<h1>Slow</h1><p>Finally.</p>"))

    async def _echo(self, request: web.Request) -> web.Response:
        await request.read()
        return _html(_page("Echo · Studio", f"<h1>Echo</h1><p>{request.method} received</p>"))


@contextmanager
def serve_in_thread(app: SampleApp | None = None) -> Iterator[SampleApp]:
    """Run a :class:`SampleApp` on an event loop of its own, in a daemon thread, for as long
    as the ``with`` block lasts. Its controls (``set_status``, ``heal``…) work from any thread."""
    sample = app or SampleApp()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sample.start())
        except BaseException as error:
            failure.append(error)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(sample.stop())
        loop.close()

    thread = threading.Thread(target=serve, name="sample-app", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        thread.join()
        loop.close()
        raise failure[0]
    try:
        yield sample
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

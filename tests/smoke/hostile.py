"""A hostile "production": pages that try every way a browser can write, and a server that
counts everything that reaches it.

Each page ``/h/<name>`` aims its writes at ``/w/<name>/<how>``, so an attempt can be traced to
the page (and so the check) that made it. What counts as a write that *reached* production:

- any HTTP request that is not GET or HEAD, on any path;
- any WebSocket handshake (a GET with ``Upgrade``), on any path;
- any UDP datagram on :attr:`HostileApp.udp_port` (the STUN/TURN server the WebRTC page names);
- any TCP connection on :attr:`HostileApp.tcp_port` (its TURN-over-TCP server).

The same server also answers as ``localhost`` (another site for Chromium than ``127.0.0.1``),
for the cross-origin frames, popups and fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

#: what each hostile page must be reported for: (method, the ``/w/<name>/<how>`` path)
EXPECTED: dict[str, set[tuple[str, str]]] = {}

_HEAD = "<!doctype html><html><head><meta charset=utf-8><title>{name}</title></head><body>"


def _page(name: str, body: str) -> str:
    return _HEAD.format(name=name) + body + "</body></html>"


def _expect(name: str, *attempts: tuple[str, str]) -> None:
    EXPECTED[name] = {(method, f"/w/{name}/{how}") for method, how in attempts}


# -- the pages ---------------------------------------------------------------------------------

_FORM = """
<iframe name=sink style="display:none"></iframe>
<form id=main method=post action="/w/form/submit"><input name=a value=1></form>
<form id=framed method=post action="/w/form/framed" target=sink><input name=b value=2></form>
<form id=tab method=post action="/w/form/tab" target=_blank><input name=c value=3></form>
<p id=status>working</p>
<script>
document.getElementById('framed').submit();
document.getElementById('tab').submit();
addEventListener('load', () => setTimeout(() => {
  document.getElementById('main').submit();
  document.getElementById('status').textContent = 'form page';
}, 30));
</script>"""
_expect("form", ("POST", "submit"), ("POST", "framed"), ("POST", "tab"))

_FETCH = """
<p id=status>working</p>
<script>
const methods = ['POST', 'PUT', 'PATCH', 'DELETE'];
const tries = [];
for (const m of methods) {
  tries.push(fetch('/w/fetch/fetch-' + m.toLowerCase(), {method: m, body: m === 'DELETE' ? null : 'x'}));
  tries.push(new Promise((done) => {
    const xhr = new XMLHttpRequest();
    xhr.open(m, '/w/fetch/xhr-' + m.toLowerCase());
    xhr.onloadend = done;
    xhr.send('x');
  }));
}
tries.push(fetch('/w/fetch/no-cors', {method: 'POST', mode: 'no-cors', body: 'x'}));
tries.push(fetch('/w/fetch/keepalive', {method: 'POST', keepalive: true, body: 'x'}));
tries.push(fetch(OTHER + '/w/fetch/other-host', {method: 'POST', mode: 'no-cors', body: 'x'}));
Promise.allSettled(tries).then(() => { document.getElementById('status').textContent = 'fetch page'; });
</script>"""
_expect(
    "fetch",
    *[(m, f"fetch-{m.lower()}") for m in ("POST", "PUT", "PATCH", "DELETE")],
    *[(m, f"xhr-{m.lower()}") for m in ("POST", "PUT", "PATCH", "DELETE")],
    ("POST", "no-cors"),
    ("POST", "keepalive"),
    ("POST", "other-host"),
)

# Beacons and keepalive fetches on load and on every way out of the page: these fire while the
# runner closes the page, after its check has passed.
_BEACON = """
<p>beacon page</p>
<script>
navigator.sendBeacon('/w/beacon/load', 'x');
const out = (why) => {
  navigator.sendBeacon('/w/beacon/' + why, 'x');
  fetch('/w/beacon/keepalive-' + why, {method: 'POST', keepalive: true, body: 'x'});
};
addEventListener('pagehide', () => out('pagehide'));
addEventListener('unload', () => out('unload'));
addEventListener('beforeunload', () => out('beforeunload'));
document.addEventListener('visibilitychange', () => { if (document.hidden) out('hidden'); });
</script>"""
_expect(
    "beacon",
    ("POST", "load"),
    ("POST", "pagehide"),
    ("POST", "keepalive-pagehide"),
    ("POST", "unload"),
    ("POST", "keepalive-unload"),
)

_PING = """
<iframe name=sink style="display:none"></iframe>
<a id=link ping="/w/ping/ping" href="/h/blank" target=sink>a link that pings</a>
<a id=tab ping="/w/ping/tab-ping" href="/h/blank" target=_blank>one that opens a tab</a>
<p id=status>working</p>
<script>
document.getElementById('link').click();
document.getElementById('tab').click();
setTimeout(() => { document.getElementById('status').textContent = 'ping page'; }, 200);
</script>"""
_expect("ping", ("POST", "ping"), ("POST", "tab-ping"))

# A CSP violation with a report-uri (sent at once) and a Reporting API endpoint (queued).
_CSP = """
<p id=status>working</p>
<img src="/h/pixel.png">
<script>setTimeout(() => { document.getElementById('status').textContent = 'csp page'; }, 200);</script>"""
_CSP_HEADERS = {
    "csp": {"Content-Security-Policy": "img-src 'none'; report-uri /w/csp/report"},
    # With report-to, Chromium queues the report in the browser (the Reporting API) and sends
    # it later, outside any page: only the dead end can stop it.
    "csp-queued": {
        "Content-Security-Policy": "img-src 'none'; report-to main",
        "Reporting-Endpoints": 'main="/w/csp-queued/report-to"',
    },
}
_expect("csp", ("POST", "report"))

_POPUP = """
<p id=status>working</p>
<script>
window.open('/h/popup-child?from=popup');
window.open(OTHER + '/h/popup-child?from=popup-other');
window.open('/h/popup-child?from=popup-noopener', '_blank', 'noopener');
setTimeout(() => { document.getElementById('status').textContent = 'popup page'; }, 200);
</script>"""
_POPUP_CHILD = """
<p>popup child</p>
<script>
const from = new URLSearchParams(location.search).get('from');
const base = location.origin.includes('localhost') ? OTHER : '';
fetch('/w/' + from + '/child-fetch', {method: 'POST', body: 'x'})
  .catch(() => {})
  .finally(() => { if (window.opener) window.opener.postMessage('sent', '*'); });
navigator.sendBeacon('/w/' + from + '/child-beacon', 'x');
addEventListener('pagehide', () => navigator.sendBeacon('/w/' + from + '/child-pagehide', 'x'));
setInterval(() => fetch('/w/' + from + '/child-tick', {method: 'POST', body: 'x'}).catch(() => {}), 100);
</script>"""
_expect("popup", ("POST", "child-fetch"), ("POST", "child-beacon"))

_IFRAME = """
<iframe src="/h/frame-child?from=iframe"></iframe>
<iframe src="OTHER_URL/h/frame-child?from=iframe"></iframe>
<iframe sandbox="allow-scripts allow-forms" src="/h/frame-child?from=iframe"></iframe>
<iframe srcdoc="<script>fetch('/w/iframe/srcdoc', {method: 'POST', body: 'x'})</script>"></iframe>
<p id=status>working</p>
<script>setTimeout(() => { document.getElementById('status').textContent = 'iframe page'; }, 300);</script>"""
_FRAME_CHILD = """
<form id=f method=post action="/w/iframe/frame-form"><input name=a value=1></form>
<script>
const from = new URLSearchParams(location.search).get('from');
fetch('/w/' + from + '/frame-fetch', {method: 'PUT', body: 'x'}).catch(() => {});
navigator.sendBeacon('/w/' + from + '/frame-beacon', 'x');
document.getElementById('f').submit();
</script>"""
_expect(
    "iframe",
    ("POST", "srcdoc"),
    ("PUT", "frame-fetch"),
    ("POST", "frame-beacon"),
    ("POST", "frame-form"),
)

_WORKER_JS = """
const from = 'worker-' + (self.name || 'dedicated');
// a dedicated worker tells its page once both writes were answered (refused, by the runner)
let writing = 2;
const answered = () => { if (!--writing && !self.name) postMessage('sent'); };
fetch('/w/workers/' + from + '-fetch', {method: 'POST', body: 'x'}).catch(() => {}).finally(answered);
const xhr = new XMLHttpRequest(); xhr.open('PUT', '/w/workers/' + from + '-xhr');
xhr.onloadend = answered; xhr.send('x');
try { new WebSocket(WS + '/w/workers/' + from + '-socket'); } catch (e) {}
onconnect = (e) => { e.ports[0].postMessage('hi'); };
"""
_SERVICE_WORKER_JS = """
self.addEventListener('install', () => {
  fetch('/w/workers/service-install', {method: 'POST', body: 'x'}).catch(() => {});
});
fetch('/w/workers/service-start', {method: 'POST', body: 'x'}).catch(() => {});
"""
_WORKERS = """
<p id=status>working</p>
<script>
// the check's text once both dedicated workers' writes were answered and 400 ms have passed
// (so the check waits for them however fast it is)
let writing = 2, waited = false;
const show = () => {
  if (!writing && waited) document.getElementById('status').textContent = 'workers page';
};
const wrote = () => { writing--; show(); };
new Worker('/h/worker.js').onmessage = wrote;
new Worker(URL.createObjectURL(new Blob(
  [("fetch('/w/workers/blob-fetch', {method: 'POST', body: 'x'}).catch(() => {})"
    + ".finally(() => postMessage(1));").replace('/w/', location.origin + '/w/')],
  {type: 'text/javascript'}))).onmessage = wrote;
try { new SharedWorker('/h/worker.js', 'shared'); } catch (e) {}
if (navigator.serviceWorker) {
  navigator.serviceWorker.register('/h/service-worker.js').catch(() => {});
}
setTimeout(() => { waited = true; show(); }, 400);
</script>"""
_expect(
    "workers",
    ("POST", "worker-dedicated-fetch"),
    ("PUT", "worker-dedicated-xhr"),
    ("POST", "blob-fetch"),
)

_SOCKET = """
<p id=status>working</p>
<script>
for (const where of [WS + '/w/socket/same', WS_OTHER + '/w/socket/other']) {
  try {
    const ws = new WebSocket(where);
    ws.onopen = () => { ws.send('a frame'); ws.send(new Uint8Array([1, 2, 3])); };
  } catch (e) {}
}
setTimeout(() => { document.getElementById('status').textContent = 'socket page'; }, 300);
</script>"""

_WEBRTC = """
<p id=status>working</p>
<script>
(async () => {
  try {
    const pc = new RTCPeerConnection({iceServers: [
      {urls: 'stun:127.0.0.1:UDP_PORT'},
      {urls: 'turn:127.0.0.1:UDP_PORT?transport=udp', username: 'u', credential: 'p'},
      {urls: 'turn:127.0.0.1:TCP_PORT?transport=tcp', username: 'u', credential: 'p'},
    ]});
    const channel = pc.createDataChannel('writes');
    channel.onopen = () => channel.send('a write');
    await pc.setLocalDescription(await pc.createOffer());
    // A peer at the UDP port: connectivity checks would go straight to it.
    const answer = pc.localDescription.sdp
      .replace(/a=setup:actpass/, 'a=setup:active')
      .replace(/a=ice-ufrag:.*/, 'a=ice-ufrag:abcd')
      .replace(/a=ice-pwd:.*/, 'a=ice-pwd:abcdefghijklmnopqrstuvwx');
    await pc.setRemoteDescription({type: 'answer', sdp: answer});
    await pc.addIceCandidate({candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 UDP_PORT typ host',
                              sdpMid: '0', sdpMLineIndex: 0});
  } catch (e) { console.log('webrtc: ' + e); }
  try {
    const transport = new WebTransport('https://127.0.0.1:UDP_PORT/w/webrtc/transport');
    await transport.ready;
  } catch (e) { console.log('webtransport: ' + e); }
  setTimeout(() => { document.getElementById('status').textContent = 'webrtc page'; }, 300);
})();
</script>"""

# The closing order: a page that opens a popup and closes itself; the popup writes on a timer
# and on its way out. And a page that leaves for another that writes on unload (the check's text
# is on the second page only, so the check waits for it however fast the first one loads).
_ORPHAN = """
<p id=status>opening</p>
<script>
window.open('/h/popup-child?from=orphan');
// the check's text once the popup's write was answered (so the check waits for it however fast
// it is)
addEventListener('message', () => {
  document.getElementById('status').textContent = 'orphan page';
  setTimeout(() => window.close(), 100);
});
</script>"""
_expect("orphan", ("POST", "child-fetch"))

_LEAVE = """
<p id=status>leaving</p>
<script>
addEventListener('pagehide', () => navigator.sendBeacon('/w/leave/first-pagehide', 'x'));
setTimeout(() => { location.href = '/h/beacon-again'; }, 50);
</script>"""
_BEACON_AGAIN = """
<p>leave page</p>
<script>
navigator.sendBeacon('/w/leave/second-load', 'x');
addEventListener('pagehide', () => navigator.sendBeacon('/w/leave/second-pagehide', 'x'));
</script>"""
_expect("leave", ("POST", "first-pagehide"), ("POST", "second-load"), ("POST", "second-pagehide"))

# A page for the page pool's handoff (``/h/leaver-<n>``): it writes every 5 ms without a referrer
# (routed: only the page that sent it tells whose it is), and on every way out (beacons and
# keepalive fetches sent while it unloads: these escape the routes and are named by their
# referrer at the dead end). The next check reusing the page must hear none of it.
_LEAVER = """
<p id=status>starting</p>
<script>
const me = location.pathname.split('/').pop();
const to = (how) => '/w/' + me + '/' + how;
const out = (why) => {
  navigator.sendBeacon(to(why), 'x');
  fetch(to('keepalive-' + why), {method: 'POST', keepalive: true, body: 'x'}).catch(() => {});
};
addEventListener('pagehide', () => out('pagehide'));
addEventListener('unload', () => out('unload'));
document.addEventListener('visibilitychange', () => { if (document.hidden) out('hidden'); });
const tick = {method: 'POST', body: 'x', referrerPolicy: 'no-referrer'};
// the check's text once a tick was answered (refused, by the runner: so the check waits for
// that however fast it is)
const shown = () => { document.getElementById('status').textContent = 'leaver page'; };
setInterval(() => fetch(to('tick'), tick).catch(shown), 5);
</script>"""
#: what each leaver page must be reported for (``/w/leaver-<n>/<how>``)
LEAVER_EXPECTED = ("tick", "pagehide", "keepalive-pagehide", "unload", "keepalive-unload")

#: seconds ``/h/late-redirect`` waits at most for ``/h/slow-text`` to have loaded before it
#: answers (an outer bound: it answers as soon as that page says so)
LATE_REDIRECT_S = 60.0
# A page that shows its text late, to be still checking when another check's late answer comes:
# it tells the server it has loaded (a GET, read-only; ``/h/late-redirect`` answers then), and
# shows its text 2.5 s later.
_SLOW_TEXT = """
<p id=status>working</p>
<script>
addEventListener('load', () => {
  fetch('/h/slow-text-loaded').catch(() => {});
  setTimeout(() => { document.getElementById('status').textContent = 'slow text'; }, 2500);
});
</script>"""

#: the checks, one per hostile page: (name, the text its page shows once it tried everything)
PAGES: dict[str, str] = {
    "form": "form page",
    "fetch": "fetch page",
    "beacon": "beacon page",
    "ping": "ping page",
    "csp": "csp page",
    "csp-queued": "csp page",
    "popup": "popup page",
    "iframe": "iframe page",
    "workers": "workers page",
    "socket": "socket page",
    "webrtc": "webrtc page",
    "orphan": "orphan page",
    "leave": "leave page",
}


#: each hostile check's timeout: an outer bound, its page shows its text once it tried
#: everything (a second or two; thirteen pages at once in a busy machine's Chromium take longer)
CHECK_TIMEOUT = 60.0


def hostile_checks(timeout: float = CHECK_TIMEOUT) -> list[dict[str, Any]]:
    return [
        {"path": f"/h/{name}", "expect_text": text, "timeout": timeout}
        for name, text in PAGES.items()
    ]


@dataclass
class Reached:
    """What reached the server that a read-only browser must never send."""

    writes: list[tuple[str, str]] = field(default_factory=list)
    udp: int = 0
    tcp: int = 0

    @property
    def total(self) -> int:
        return len(self.writes) + self.udp + self.tcp


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, reached: Reached) -> None:
        self.reached = reached

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.reached.udp += 1


class HostileApp:
    """``async with HostileApp() as app:`` serves the hostile pages on 127.0.0.1 (and as
    ``localhost``), with UDP and TCP counters for WebRTC."""

    def __init__(self) -> None:
        self.reached = Reached()
        #: every request that reached the HTTP server, as (method, path)
        self.requests: list[tuple[str, str]] = []
        self.port = 0
        self.udp_port = 0
        self.tcp_port = 0
        #: set when ``/h/slow-text`` has loaded (it says so)
        self.slow_text_loaded = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_url(self) -> str:
        return f"http://localhost:{self.port}"

    def _fill(self, text: str) -> str:
        return (
            text.replace("OTHER_URL", self.other_url)
            .replace("UDP_PORT", str(self.udp_port))
            .replace("TCP_PORT", str(self.tcp_port))
        )

    def _script_globals(self) -> str:
        return (
            f"const OTHER = {self.other_url!r}; const WS = 'ws://127.0.0.1:{self.port}';"
            f" const WS_OTHER = 'ws://localhost:{self.port}';"
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self.reached), local_addr=("127.0.0.1", 0)
        )
        self._udp = transport
        self.udp_port = transport.get_extra_info("sockname")[1]

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.reached.tcp += 1
            writer.close()

        self._tcp = await asyncio.start_server(on_tcp, "127.0.0.1", 0)
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]

        app = web.Application(middlewares=[self._count])
        app.router.add_get("/h/{name}", self._page)
        app.router.add_get("/up", self._up)
        app.router.add_route("*", "/w/{tail:.*}", self._sink)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        # Both names: 127.0.0.1 for production, localhost for "another site".
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()

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

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if request.method not in ("GET", "HEAD") or upgrade:
            self.reached.writes.append(
                (request.method if not upgrade else "WEBSOCKET", request.path)
            )
        response: web.StreamResponse = await handler(request)
        return response

    async def _up(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _sink(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for _ in ws:
                self.reached.writes.append(("FRAME", request.path))
            return ws
        return web.Response(text="written")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        scripts = {"worker.js": _WORKER_JS, "service-worker.js": _SERVICE_WORKER_JS}
        if name in scripts:
            return web.Response(
                text=self._script_globals() + scripts[name], content_type="text/javascript"
            )
        if name == "late-redirect":  # a redirect to another host, answered late
            # late: once the next check's page (/h/slow-text) has loaded, whatever the clock
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.slow_text_loaded.wait(), LATE_REDIRECT_S)
            raise web.HTTPFound(f"{self.other_url}/h/blank")
        if name == "slow-text-loaded":
            self.slow_text_loaded.set()
            return web.Response(text="noted")
        if name == "pixel.png":
            return web.Response(body=b"", content_type="image/png")
        bodies = {
            "form": _FORM,
            "fetch": _FETCH,
            "beacon": _BEACON,
            "ping": _PING,
            "csp": _CSP,
            "csp-queued": _CSP,
            "popup": _POPUP,
            "popup-child": _POPUP_CHILD,
            "iframe": _IFRAME,
            "frame-child": _FRAME_CHILD,
            "workers": _WORKERS,
            "socket": _SOCKET,
            "webrtc": _WEBRTC,
            "orphan": _ORPHAN,
            "leave": _LEAVE,
            "beacon-again": _BEACON_AGAIN,
            "blank": "<p>blank</p>",
            "slow-text": _SLOW_TEXT,
        }
        headers = _CSP_HEADERS.get(name, {})
        if name.startswith("leaver-"):
            bodies[name] = _LEAVER
        if name not in bodies:
            raise web.HTTPNotFound()
        body = f"<script>{self._script_globals()}</script>" + self._fill(bodies[name])
        return web.Response(text=_page(name, body), content_type="text/html", headers=headers)

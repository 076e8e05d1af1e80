"""A hostile production over raw HTTP/1.1, in a process of its own: the answers a health check
or a page load must survive on time and in little memory. The event loop under test never
serves (a busy loop there could not slow the server down, nor the server the loop), and the
server's buffers are not counted in the test's memory.

Each path is one behaviour:

- ``/up``: 200 ``ok``;
- ``/flaky/<n>``: 503 to the first ``n`` requests on that path, then 200;
- ``/loris``: the status line, then one byte of a header every 2 s, forever;
- ``/endless``: 200, then 1 MiB chunks of body as fast as the socket takes them, forever;
- ``/stream``: 200 ``text/html``, its head at once, then a small chunk every 100 ms, forever;
- ``/when-let-go``: 200 ``let go`` once no ``/stream`` answer is under way (its client let go
  of it), or 504 when one still is after a minute;
- ``/lasted/<path>``: how long the last answer on ``<path>`` lasted, in seconds (404: none
  ended yet): until its client let go, for an endless one;
- ``/away``: 302 to ``http://evil.example.com/up`` (never asked: nothing resolves it here);
- ``/other-host``: 302 to ``/up`` on this same server named ``localhost`` (another host for
  a check whose production is ``127.0.0.1``);
- ``/bad-redirect``: 302 to ``http://[oops/`` (no URL at all: an unclosed IPv6 bracket);
- ``/bad-port``: 302 to ``http://127.0.0.1:99999/`` (a port past 65535).

Run as a script it prints its port on a line and serves until its stdin closes; the tests
use :class:`HostileServer`.
"""

from __future__ import annotations

import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Self

#: the off-host redirect's target
EVIL_HOST = "evil.example.com"
#: seconds between two bytes of the slow loris's header
LORIS_PACE = 2.0
#: bytes in each chunk of the endless body
ENDLESS_CHUNK = 1024 * 1024
#: seconds between two chunks of the streaming page
STREAM_PACE = 0.1
#: seconds ``/when-let-go`` waits for the streaming page to be let go (an outer bound)
LET_GO_WAIT = 60.0


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                return
            head += data
        _method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        started = time.monotonic()
        with self.server.lock:
            self.server.open[path] += 1
        try:
            self.answer(sock, path)
        except OSError:  # the client went away: what every hostile answer ends with
            pass
        finally:
            with self.server.lock:
                self.server.open[path] -= 1
                self.server.lasted[path] = time.monotonic() - started

    def answer(self, sock: socket.socket, path: str) -> None:
        port = self.server.server_address[1]
        if path == "/up":
            sock.sendall(_plain(200, b"ok"))
        elif path.startswith("/flaky/"):
            with self.server.lock:
                self.server.seen[path] += 1
                nth = self.server.seen[path]
            sock.sendall(_plain(503 if nth <= int(path.rsplit("/", 1)[1]) else 200, b"ok"))
        elif path == "/loris":
            sock.sendall(b"HTTP/1.1 200 OK\r\nX-Loris: ")
            while True:
                time.sleep(LORIS_PACE)
                sock.sendall(b"a")
        elif path == "/endless":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
            sock.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % ENDLESS_CHUNK + b"x" * ENDLESS_CHUNK + b"\r\n"
            while True:
                sock.sendall(chunk)
        elif path == "/stream":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n")
            sock.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
            sock.sendall(_chunk(b"<!doctype html><html><head><title>Stream</title></head><body>"))
            while True:
                sock.sendall(_chunk(b"<p>more</p>\n"))
                time.sleep(STREAM_PACE)
        elif path.startswith("/lasted/"):
            with self.server.lock:
                lasted = self.server.lasted.get(path.removeprefix("/lasted"))
            sock.sendall(_plain(200, b"%.2f" % lasted) if lasted is not None else _plain(404, b""))
        elif path == "/when-let-go":
            sock.sendall(self.when_let_go())
        elif path == "/away":
            sock.sendall(_redirect(f"http://{EVIL_HOST}/up"))
        elif path == "/other-host":
            sock.sendall(_redirect(f"http://localhost:{port}/up"))
        elif path == "/bad-redirect":
            sock.sendall(_redirect("http://[oops/"))
        elif path == "/bad-port":
            sock.sendall(_redirect("http://127.0.0.1:99999/"))
        else:
            sock.sendall(_plain(404, b"not here"))

    def when_let_go(self) -> bytes:
        give_up = time.monotonic() + LET_GO_WAIT
        while time.monotonic() < give_up:
            with self.server.lock:
                if self.server.open["/stream"] == 0:
                    return _plain(200, b"let go")
            time.sleep(0.05)
        return _plain(504, b"/stream is still being read")


def _plain(status: int, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


def _redirect(location: str) -> bytes:
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        #: the answers under way, by path
        self.open: Counter[str] = Counter()
        #: how long the last answer on each path lasted, until its client let go (seconds)
        self.lasted: dict[str, float] = {}


def main() -> None:
    with _Server() as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sys.stdout.write(f"{server.server_address[1]}\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the test closes it (or dies)
        server.shutdown()


class HostileServer:
    """The script above in a child process, for a ``with`` block: :attr:`url` is
    ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, this file
            [sys.executable, str(Path(__file__))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # waits for the server to listen
        if not line.strip():
            self._process.kill()
            self._process.wait()
            raise RuntimeError("the hostile server did not start")
        self.port = int(line)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        # its threads are stuck in endless answers: ended, not waited for
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


if __name__ == "__main__":
    main()

"""The board under load, in the bot's own process: does it cost the bot's commands anything?

    .venv/bin/python -m bench.board_load [--backends sqlite,postgresql] [--releases 10000]
        [--requests 1000] [--sustain 10] [--pace 50]

For each backend (PostgreSQL: a throwaway cluster, ``tests.postgres.Cluster``): one database
seeded with ``--releases`` releases (``bench.bench_growth.seed``: 8 members each, every one
shipped and sealed green but the newest, with their tasks' timelines), the domain built once
(``bootstrap``) and the board served from the same process as the bot serves it
(``bot.web.server.board_source``: the board's own small pool; its own loop and thread) on
127.0.0.1, a client in a process of its own. Then:

- the burst: ``--requests`` concurrent ``GET /deployments.json`` (aiohttp over real HTTP, one
  connection each, no client-side limit), none of them having been asked before (a cold
  board);
- sustained: ``--requests`` kept-alive connections, each asking again as soon as answered,
  for ``--sustain`` seconds;
- all along, ``/release status`` (``Releases.status``, what the cog calls) as the bot runs a
  command (``BotFirst.command``), every ``--pace`` ms (0: one call after another).

Reports the answers by status code (and the requests that got none), the board's throughput
in each phase, ``/release status`` p50 and p99 in each, then a ``304`` (``If-None-Match`` with
the ETag just served): its time end to end (client, over a kept-alive connection) and in the
server (a middleware around the handler), p50 and p99 over 500.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bench.bench_growth import GUILD, databases, seed
from conductor.bootstrap import bootstrap
from store.db import Database

#: releases seeded (each with 8 members)
RELEASES = 10_000
REQUESTS = 1_000
#: /release status timed with the board idle
QUIET = 50
#: 304s timed, one after another
NOT_MODIFIED = 500
#: an outer bound on one request (the client's); the bot's own commands must not wait so long
CLIENT_TIMEOUT_S = 120.0
#: ms between two /release status calls (a busy team's commands); 0: one after another
PACE_MS = 50.0
#: seconds the sustained phase lasts: ``--requests`` tabs asking again as soon as answered
SUSTAIN_S = 10.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Figures:
    backend: str
    releases: int
    seeded_s: float = 0.0
    codes: Counter[str] = field(default_factory=Counter)
    burst_s: float = 0.0
    status_ms: list[float] = field(default_factory=list)
    #: /release status with no request in flight, for comparison
    quiet_ms: list[float] = field(default_factory=list)
    not_modified_client_ms: list[float] = field(default_factory=list)
    not_modified_server_ms: list[float] = field(default_factory=list)
    log_lines: int = 0
    #: the sustained phase: answers by status, its wall time, /release status meanwhile
    sustained: Counter[str] = field(default_factory=Counter)
    sustained_s: float = 0.0
    sustained_status_ms: list[float] = field(default_factory=list)

    def lines(self, requests: int) -> list[str]:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.codes.items()))
        s, t = self.status_ms, self.sustained_status_ms
        c, v = self.not_modified_client_ms, self.not_modified_server_ms
        return [
            f"[{self.backend}] {self.releases:,} releases (seeded in {self.seeded_s:.0f} s)",
            f"  {requests:,} concurrent GET /deployments.json: {codes}",
            f"  board throughput: {requests / self.burst_s:,.0f} req/s "
            f"(the burst took {self.burst_s:.2f} s)",
            f"  /release status during the burst: {len(s)} calls, p50 {percentile(s, 0.5):.1f} ms,"
            f" p99 {percentile(s, 0.99):.1f} ms, max {max(s, default=float('nan')):.1f} ms",
            f"  /release status with the board idle: p50 {percentile(self.quiet_ms, 0.5):.1f} ms,"
            f" p99 {percentile(self.quiet_ms, 0.99):.1f} ms",
            f"  304 (If-None-Match): end to end p50 {percentile(c, 0.5):.3f} ms, "
            f"p99 {percentile(c, 0.99):.3f} ms; in the server p50 "
            f"{percentile(v, 0.5) * 1000:.0f} µs, p99 {percentile(v, 0.99) * 1000:.0f} µs",
            f"  sustained, {requests:,} kept-alive connections asking again at once for "
            f"{self.sustained_s:.1f} s: "
            + ", ".join(f"{code}: {n:,}" for code, n in sorted(self.sustained.items()))
            + f"; {sum(self.sustained.values()) / max(self.sustained_s, 1e-9):,.0f} req/s",
            f"  /release status meanwhile: {len(t)} calls, p50 {percentile(t, 0.5):.1f} ms,"
            f" p99 {percentile(t, 0.99):.1f} ms, max {max(t, default=float('nan')):.1f} ms",
            f"  log lines written during the run: {self.log_lines:,}",
        ]


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def emit(self, record: Any) -> None:
        self.n += 1


def _timed(into: list[float]) -> Callable[..., Any]:
    @web.middleware
    async def timing(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        t0 = time.perf_counter()
        try:
            response: web.StreamResponse = await handler(request)
        finally:
            if request.headers.get("If-None-Match"):
                into.append((time.perf_counter() - t0) * 1000)
        return response

    return timing


async def _serve(domain: Any, server_ms: list[float]) -> tuple[str, Callable[[], Any], Any]:
    """The board as the bot serves it (its own loop and pool), a timing middleware outermost."""
    from bot.settings import WebSettings  # noqa: PLC0415
    from bot.web.server import BoardServer, board_source  # noqa: PLC0415

    source = board_source(
        domain, default_guild=GUILD, guild_name=lambda _g: "bench", gateway=lambda: None
    )

    class Timed(BoardServer):
        def build(self) -> web.Application:
            app = super().build()
            app.middlewares.insert(0, _timed(server_ms))
            return app

    server = Timed(source, WebSettings(host="127.0.0.1", port=0), threaded=True)
    assert await server.start()
    assert server.url is not None
    return server.url.removesuffix("/deployments"), server.stop, server.bot_first


async def not_modified(base: str, figures: Figures, server_ms: list[float]) -> None:
    """A 304 after another, each with the ETag just served."""
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"{base}/deployments.json") as response:
            tag = response.headers["ETag"]
            await response.read()
        server_ms.clear()
        for _ in range(NOT_MODIFIED):
            t0 = time.perf_counter()
            async with http.get(
                f"{base}/deployments.json", headers={"If-None-Match": tag}
            ) as response:
                await response.read()
                assert response.status == 304, response.status
            figures.not_modified_client_ms.append((time.perf_counter() - t0) * 1000)
        figures.not_modified_server_ms = list(server_ms)


async def run_one(url: str, figures: Figures, requests: int, sustain: float, pace: float) -> None:
    db = Database(url)
    await db.create_all()
    seeded = await seed(db, figures.releases * 10)
    figures.seeded_s = seeded.seconds
    print(f"  seeded in {seeded.seconds:.0f} s", file=sys.stderr, flush=True)
    domain = bootstrap(database=db)
    for _ in range(QUIET):
        t0 = time.perf_counter()
        await domain.releases.status(GUILD)
        figures.quiet_ms.append((time.perf_counter() - t0) * 1000)
    counter = _Count()
    logging.getLogger().addHandler(counter)
    server_ms: list[float] = []
    base, stop, first = await _serve(domain, server_ms)
    try:
        await _load(domain, first, base, figures, requests=requests, sustain=sustain, pace=pace)
        await not_modified(base, figures, server_ms)
    finally:
        logging.getLogger().removeHandler(counter)
        figures.log_lines = counter.n
        await stop()
        await db.dispose()


async def _load(
    domain: Any,
    first: Any,
    base: str,
    figures: Figures,
    *,
    requests: int,
    sustain: float,
    pace: float,
) -> None:
    """The burst, then the sustained phase, each with ``/release status`` called one call
    after another for as long as it lasts (as the bot runs a command: ``first``, the board
    held back meanwhile, as ``ConductorTree`` does)."""
    done = asyncio.Event()

    async def status_loop(into: list[float]) -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            with first.command():
                await domain.releases.status(GUILD)
            into.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(pace / 1000)

    # the client in a process of its own: its work is the browsers', not the bot's
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.board_load",
        "--fire",
        f"{base}/deployments.json",
        "--requests",
        str(requests),
        "--sustain",
        str(sustain),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdin is not None and client.stdout is not None
    assert (await client.stdout.readline()).strip() == b"ready"

    async def phase(into: list[float]) -> dict[str, Any]:
        assert client.stdin is not None and client.stdout is not None
        done.clear()
        statuses = asyncio.create_task(status_loop(into))
        client.stdin.write(b"go\n")
        await client.stdin.drain()
        result: dict[str, Any] = json.loads(await client.stdout.readline())
        done.set()
        await statuses
        return result

    result = await phase(figures.status_ms)
    figures.codes.update(result["codes"])
    figures.burst_s = result["seconds"]
    if sustain > 0:
        result = await phase(figures.sustained_status_ms)
        figures.sustained.update(result["codes"])
        figures.sustained_s = result["seconds"]
    client.stdin.close()
    await client.wait()


async def fire(url: str, requests: int, sustain: float) -> None:
    """The client: ``requests`` concurrent GETs of ``url`` when told "go" on stdin; prints
    the answers by status and the burst's wall time, as JSON. Then, told "go" again (with
    ``sustain`` > 0), ``requests`` tabs on kept-alive connections, each asking again as soon
    as answered, for ``sustain`` seconds: the same JSON."""
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def one() -> str:
            try:
                async with http.get(url) as response:
                    await response.read()
                    return str(response.status)
            except (aiohttp.ClientError, TimeoutError) as error:
                return type(error).__name__

        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        t0 = time.perf_counter()
        answers = await asyncio.gather(*(one() for _ in range(requests)))
        seconds = time.perf_counter() - t0
    print(json.dumps({"codes": Counter(answers), "seconds": seconds}), flush=True)
    if sustain <= 0:
        return
    connector = aiohttp.TCPConnector(limit=requests)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        codes: Counter[str] = Counter()
        await asyncio.to_thread(sys.stdin.readline)
        t0 = time.perf_counter()
        until = t0 + sustain

        async def tab() -> None:
            while time.perf_counter() < until:
                try:
                    async with http.get(url) as response:
                        await response.read()
                        codes[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as error:
                    codes[type(error).__name__] += 1

        await asyncio.gather(*(tab() for _ in range(requests)))
        seconds = time.perf_counter() - t0
    print(json.dumps({"codes": codes, "seconds": seconds}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--releases", type=int, default=RELEASES)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--sustain", type=float, default=SUSTAIN_S)
    parser.add_argument("--pace", type=float, default=PACE_MS, help="ms between status calls")
    parser.add_argument("--fire", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fire:
        asyncio.run(fire(args.fire, args.requests, args.sustain))
        return 0
    logging.basicConfig(level=logging.WARNING, stream=open("/dev/null", "w"))  # noqa: SIM115
    lines = []
    for backend in args.backends.split(","):
        figures = Figures(backend, args.releases)
        with databases(backend) as fresh, fresh() as url:
            print(f"[{backend}] seeding {args.releases:,} releases", file=sys.stderr, flush=True)
            asyncio.run(run_one(url, figures, args.requests, args.sustain, args.pace))
        lines += figures.lines(args.requests)
        print("\n".join(figures.lines(args.requests)), flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

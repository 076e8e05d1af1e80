"""Playwright's driver: the node process the Python client speaks to (not the browser).

Starting it costs about 0.3 s of node loading Playwright's JavaScript, and ``conductor smoke``
cannot launch Chromium before it is up. So the console script starts it first
(:func:`start_early`, from ``cli.main``'s entry before typer, pydantic or the suite's code
is imported): node then loads on the other core while Python imports the rest, and the run
(:func:`run`) goes on the same event loop and takes the driver already started
(:func:`take_early`). This module imports nothing of Conductor's and only Playwright's client
(``smoke/__init__`` is lazy), so the spawn comes as early as it can.

A driver started early that no run takes (a config error, a suite with no page checks, an
interrupt) is stopped before the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from playwright.async_api import Playwright, async_playwright

T = TypeVar("T")

log = logging.getLogger(__name__)

#: turns of the event loop Playwright's start takes to spawn its node process (its start runs
#: in a task of its own, which creates the subprocess on its second turn)
SPAWN_TURNS = 2
#: seconds an unused early driver may take to start and stop on the way out
_RELEASE_TIMEOUT = 10.0


def compile_cache_dir() -> Path | None:
    """Where Node keeps the compiled code of Playwright's driver between runs
    (``$XDG_CACHE_HOME/conductor/node-compile-cache``), or None without a home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry
            return None
    return Path(base) / "conductor" / "node-compile-cache"


@contextmanager
def node_compile_cache() -> Iterator[None]:
    """``NODE_COMPILE_CACHE`` while the driver starts (Playwright hands its node process a copy
    of ``os.environ``): the driver loads 7 MB of JavaScript, and Node compiles it once instead
    of at every run, about 0.1 s of each start. A value already set is left alone; Node skips
    the cache silently when the directory cannot be written."""
    where = None if "NODE_COMPILE_CACHE" in os.environ else compile_cache_dir()
    if where is None:
        yield
        return
    os.environ["NODE_COMPILE_CACHE"] = str(where)
    try:
        yield
    finally:
        os.environ.pop("NODE_COMPILE_CACHE", None)


#: the variable in the environment of each driver :func:`start_driver` spawns, naming its start
_MARK = "CONDUCTOR_SMOKE_DRIVER"


@contextmanager
def _marked(token: str) -> Iterator[None]:
    """``CONDUCTOR_SMOKE_DRIVER=token`` while the driver starts (node copies the environment
    as it is spawned): how :func:`kill_driver` tells it from this process's other children."""
    os.environ[_MARK] = token
    try:
        yield
    finally:
        os.environ.pop(_MARK, None)


def kill_driver(token: str) -> list[int]:
    """Kill (SIGKILL) the drivers this process spawned with ``token`` in their environment
    (:func:`_marked`); their pids. Linux's ``/proc``; elsewhere nothing is found."""
    killed: list[int] = []
    me, wanted = os.getpid(), f"{_MARK}={token}".encode()
    with suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) != me:
                    continue
                # the driver only (another child spawned meanwhile has the mark too)
                if b"run-driver" not in (entry / "cmdline").read_bytes().split(b"\0"):
                    continue
                if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile, or not ours to read
            killed.append(int(entry.name))
    return killed


async def start_driver() -> Playwright:
    """Start the driver (with the compile cache in node's environment) and wait for it. A start
    that fails, is cancelled or is given up on (a caller's timeout) leaves no driver behind:
    one that never answered would otherwise live as long as this process."""
    token = os.urandom(8).hex()
    try:
        with node_compile_cache(), _marked(token):
            return await async_playwright().start()
    except BaseException:
        if killed := kill_driver(token):
            log.warning("stopped Playwright's driver (pid %s): its start did not finish", killed)
        raise


async def spawned(task: asyncio.Task[Any]) -> None:
    """Give the loop to ``task`` until Playwright has spawned its node process."""
    for _ in range(SPAWN_TURNS):
        if task.done():
            return
        await asyncio.sleep(0)


async def stop_driver(
    task: asyncio.Task[Playwright], *, start_timeout: float, stop_timeout: float
) -> None:
    """Stop the driver ``task`` starts, once it has started (or failed to); never raises but
    for cancellation."""
    try:
        playwright = await asyncio.wait_for(asyncio.shield(task), start_timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    except Exception:
        task.cancel()  # it failed (its starter reports that) or hangs: nothing to stop
        return
    with suppress(Exception):
        await asyncio.wait_for(playwright.stop(), stop_timeout)


class _Early:
    """The driver started before the command's code was imported, on a loop of its own that
    :func:`run` goes on with."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.taken = False
        self.task: asyncio.Task[Playwright] | None = None

    def start(self) -> None:
        async def spawn() -> None:
            # Node copies the environment when it is spawned, within these turns: the compile
            # cache is set only for them, not while the loop waits for the rest of the start.
            with node_compile_cache():
                self.task = self.loop.create_task(async_playwright().start())
                await spawned(self.task)

        self.loop.run_until_complete(spawn())

    async def release(self) -> None:
        """Stop the driver if no run took it."""
        if not self.taken and self.task is not None:
            self.taken = True
            await stop_driver(
                self.task, start_timeout=_RELEASE_TIMEOUT, stop_timeout=_RELEASE_TIMEOUT
            )

    def close(self) -> None:
        """On the way out of the process: release the driver and close the loop."""
        if self.loop.is_closed():
            return
        with suppress(Exception):
            self.loop.run_until_complete(self.release())
        self.loop.close()


_early: _Early | None = None


def start_early() -> None:
    """Spawn Playwright's driver now, for the ``conductor smoke`` about to run (once)."""
    global _early  # noqa: PLW0603 - one driver per process, started before anything else
    if _early is not None:
        return
    _early = _Early()
    atexit.register(_early.close)
    _early.start()


def take_early(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Playwright] | None:
    """The driver :func:`start_early` started, if it was started on ``loop`` and no run took it
    yet; the caller owns it from now on."""
    early = _early
    if early is None or early.taken or early.task is None or early.loop is not loop:
        return None
    early.taken = True
    return early.task


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on the loop of the driver started early when there is one (the
    loop is closed afterwards, the driver stopped if ``main`` did not take it)."""
    early = _early
    if early is None or early.loop.is_closed():
        return asyncio.run(main)

    async def then_release() -> T:
        try:
            return await main
        finally:
            await early.release()

    with asyncio.Runner(loop_factory=lambda: early.loop) as runner:
        return runner.run(then_release())

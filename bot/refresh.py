"""Latest-wins refreshes: re-render a Discord message when its data changes, without a queue
of stale edits.

At most one refresh per key runs at a time. Touches that arrive while it runs collapse into
exactly one more run, which reads the data afresh; a burst of 200 changes therefore costs two
or three edits, and the last edit always shows the last state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Refresher(Generic[K]):
    def __init__(self, work: Callable[[K], Awaitable[None]], *, name: str) -> None:
        self._work = work
        self._name = name
        self._running: dict[K, asyncio.Task[None]] = {}
        self._dirty: set[K] = set()

    def touch(self, key: K) -> None:
        """Something behind ``key`` changed: refresh it (now, or once more after the current
        run)."""
        if key in self._running:
            self._dirty.add(key)
            return
        self._running[key] = asyncio.create_task(self._run(key), name=f"{self._name}:{key}")

    async def _run(self, key: K) -> None:
        try:
            while True:
                self._dirty.discard(key)
                try:
                    await self._work(key)
                except Exception:
                    log.exception("%s refresh of %s failed", self._name, key)
                if key not in self._dirty:
                    return
        finally:
            del self._running[key]

    async def wait(self) -> None:
        """Until every pending refresh has run (shutdown, tests)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

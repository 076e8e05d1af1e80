"""How long the event loop runs one piece of code without yielding: a bench-only patch of
``asyncio.Handle._run`` that times every callback the loop runs while ``on``, and a watch of
the full garbage collections (they run inside whichever callback allocates)."""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Any

#: the target (docs/PERFORMANCE.md): the loop never blocked longer while the work flows
STALL_MS = 50.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Stalls:
    """One phase's figures."""

    worst_ms: float
    where: str
    p99_ms: float
    p999_ms: float
    callbacks: int
    over: int
    full_collections: int
    longest_collection_ms: float
    #: the longest callback that no full collection ran inside
    worst_own_ms: float

    def line(self, label: str, heap: str = "the whole heap") -> str:
        return (
            f"event loop during the {label}: longest callback {self.worst_ms:.1f} ms "
            f"({self.where}), p99 {self.p99_ms:.2f} ms, p99.9 {self.p999_ms:.2f} ms over "
            f"{self.callbacks} callbacks, {self.over} over {STALL_MS:.0f} ms; "
            f"{self.full_collections} full garbage collections (of {heap}), the longest "
            f"{self.longest_collection_ms:.1f} ms; the longest callback with no full "
            f"collection in it {self.worst_own_ms:.1f} ms"
        )


class LoopStalls:
    """Times each callback the event loop runs, while ``on``. ``driver``: a benchmark's own
    task, whose callbacks (making the arrivals: a wave of messages at once, as a burst of
    posts in Discord) are not the bot's work and are not timed."""

    def __init__(self, driver: asyncio.Task[Any] | None = None) -> None:
        self.on = False
        self.driver = driver
        self.took: list[float] = []
        self.worst: tuple[float, str] = (0.0, "")
        self.collections: list[float] = []
        self.worst_own = 0.0
        original = asyncio.Handle._run

        def timed(handle: asyncio.Handle) -> None:
            callback = getattr(handle, "_callback", None)
            callback = getattr(callback, "__simcord_original_callback__", callback)
            if not self.on or (
                self.driver is not None and getattr(callback, "__self__", None) is self.driver
            ):
                original(handle)
                return
            # The wall clock only: the thread's CPU clock is a system call, and read around
            # every callback it cost the bot's loop 5-7 % of its throughput (bench_wire).
            begun, full = time.perf_counter(), len(self.collections)
            original(handle)
            took = (time.perf_counter() - begun) * 1000
            self.took.append(took)
            if len(self.collections) == full and took > self.worst_own:
                self.worst_own = took
            if took > self.worst[0]:
                self.worst = (took, _callback_name(handle))

        asyncio.Handle._run = timed  # type: ignore[method-assign,assignment]
        collecting: list[float] = []

        def collected(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                collecting[:] = [time.perf_counter()]
            elif self.on and collecting and info["generation"] == 2:
                self.collections.append((time.perf_counter() - collecting[0]) * 1000)

        gc.callbacks.append(collected)

    def _reset(self) -> None:
        self.took, self.worst, self.collections, self.worst_own = [], (0.0, ""), [], 0.0

    def take(self) -> Stalls:
        """The figures since the last take, and start again."""
        took, (worst, where) = self.took, self.worst
        found = Stalls(
            worst_ms=worst,
            where=where,
            p99_ms=pct(took, 99),
            p999_ms=pct(took, 99.9),
            callbacks=len(took),
            over=sum(1 for t in took if t > STALL_MS),
            full_collections=len(self.collections),
            longest_collection_ms=max(self.collections, default=0.0),
            worst_own_ms=self.worst_own,
        )
        self._reset()
        return found

    def report(self, label: str) -> float:
        found = self.take()
        print(found.line(label, "the whole heap, simcord's store of every message in it"))
        return found.worst_ms


def _callback_name(handle: asyncio.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    # simcord runs the bot's callbacks inside a wrapper of its own that names the original
    callback = getattr(callback, "__simcord_original_callback__", callback)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        name = getattr(coro, "__qualname__", repr(coro))
        frame = getattr(coro, "cr_frame", None)
        event = frame.f_locals.get("event_name") if frame is not None else None
        return f"{name} {event}" if event else f"{name} ({owner.get_name()})"
    return getattr(callback, "__qualname__", repr(callback))[:80]

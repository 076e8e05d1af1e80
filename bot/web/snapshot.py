"""The board served from memory: each guild's board built once, answered many times.

A :class:`Snapshot` is one guild's board as it was read: the data dict (``model.board_data``),
its JSON and its HTML fragment already encoded, each with its ETag. :class:`Snapshots` keeps
one per guild (and the list of guilds) and rebuilds it

- when the bot says something changed (:meth:`Snapshots.changed`, from the same signal that
  refreshes the pinned board);
- when it is older than ``every`` seconds (another process may have written: ``conductor
  board``, a second bot), at its next request.

Concurrent requests for a stale snapshot start ONE rebuild (single flight) and all wait for it.
A rebuild that fails (a busy or unreachable database) leaves the previous snapshot in place,
and those waiting get it; with none to fall back on, the error goes to the request (a 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: how old a snapshot may be before a request rebuilds it, in seconds
REBUILD_EVERY_S = 3.0
#: the key of the guilds' list among the guilds' boards
_GUILDS = "guilds"


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:24] + '"'


@dataclass(frozen=True, slots=True)
class Encoded:
    """One representation of a board, ready to send."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Encoded:
        return cls(body, etag(body))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One guild's board, as read at ``built_at`` (``time.monotonic``)."""

    guild_id: int
    data: dict[str, Any]
    json: Encoded
    fragment: Encoded
    built_at: float


@dataclass(slots=True)
class _Slot:
    value: Any = None
    built_at: float = float("-inf")
    #: the bot said it changed since it was built
    dirty: bool = True
    #: the rebuild in flight, if any
    flight: asyncio.Task[Any] | None = None
    #: what the last failed rebuild logged (once per outage)
    failing: str | None = None


class Snapshots:
    """Every guild's board in memory. ``read(guild_id)`` reads the board's data (the database),
    ``render(data)`` its HTML fragment; ``guilds()`` the guilds there are."""

    def __init__(
        self,
        read: Callable[[int], Awaitable[dict[str, Any]]],
        render: Callable[[dict[str, Any]], str],
        guilds: Callable[[], Awaitable[tuple[int, ...]]],
        *,
        every: float = REBUILD_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._render = render
        self._guilds = guilds
        self.every = every
        self._clock = clock
        self._slots: dict[object, _Slot] = {}
        #: how many rebuilds ran (tests, the benchmark)
        self.rebuilds = 0

    def changed(self, guild_id: int | None = None) -> None:
        """Something the board of ``guild_id`` shows changed (None: any guild's): its next
        request waits for a fresh read. The list of guilds is read again too (a first
        release makes a guild)."""
        for key, slot in self._slots.items():
            if guild_id is None or key in (guild_id, _GUILDS):
                slot.dirty = True

    async def guilds(self) -> tuple[int, ...]:
        value: tuple[int, ...] = await self._get(_GUILDS, self._guilds)
        return value

    async def board(self, guild_id: int) -> Snapshot:
        snapshot: Snapshot = await self._get(guild_id, lambda: self._build(guild_id))
        return snapshot

    def peek(self, guild_id: int) -> Snapshot | None:
        """The snapshot held now, fresh or not (None: none yet)."""
        slot = self._slots.get(guild_id)
        return slot.value if slot is not None else None

    async def _build(self, guild_id: int) -> Snapshot:
        data = await self._read(guild_id)
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        fragment = self._render(data).encode()
        return Snapshot(guild_id, data, Encoded.of(body), Encoded.of(fragment), self._clock())

    async def _get(self, key: object, build: Callable[[], Awaitable[Any]]) -> Any:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        aged = self._clock() - slot.built_at >= self.every
        if slot.value is not None and not slot.dirty and not aged:
            return slot.value
        flight = slot.flight
        if flight is None:
            flight = slot.flight = asyncio.create_task(self._rebuild(key, slot, build))
            flight.add_done_callback(_retrieved)
        # wait for the one rebuild (a request that goes away does not cancel it for the
        # others); when it fails, the previous snapshot is the answer
        try:
            return await asyncio.shield(flight)
        except Exception:
            if slot.value is not None:
                return slot.value
            raise

    async def _rebuild(self, key: object, slot: _Slot, build: Callable[[], Awaitable[Any]]) -> Any:
        dirty_at_start = slot.dirty
        slot.dirty = False
        try:
            value = await build()
        except Exception as error:
            slot.dirty = slot.dirty or dirty_at_start
            problem = f"{type(error).__name__}: {error}"[:300]
            if slot.failing != problem:
                slot.failing = problem
                log.warning(
                    "the board of %s could not be read (%s); it shows what it read last",
                    "the guilds" if key == _GUILDS else f"guild {key}",
                    problem,
                )
            raise
        else:
            if slot.failing is not None:
                log.info("the board of %s is read again", key)
                slot.failing = None
            slot.value, slot.built_at = value, self._clock()
            self.rebuilds += 1
            return value
        finally:
            slot.flight = None

    async def close(self) -> None:
        """Cancel the rebuilds in flight (the server stops)."""
        flights = [s.flight for s in self._slots.values() if s.flight is not None]
        for flight in flights:
            flight.cancel()
        for flight in flights:
            with contextlib.suppress(BaseException):
                await flight


def _retrieved(task: asyncio.Task[Any]) -> None:
    """A rebuild nobody waited for failed: logged by :meth:`Snapshots._rebuild` already."""
    if not task.cancelled():
        task.exception()

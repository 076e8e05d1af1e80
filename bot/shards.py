"""The gateway with several processes (``CONDUCTOR_SHARD_COUNT``, ``_SHARD_IDS``): the bot on
discord.py's ``AutoShardedBot``, connected only on the shards whose lease this process holds
(``conductor.shards``), IDENTIFYing only in a slot taken in the database.

At start the process takes the leases it can and waits (polling every third of the lease)
while another process holds them all; it connects each shard once held and renews the leases
every third of the lease. A shard whose renewal finds the token moved (another process took
it), or that could not be renewed for two thirds of the lease (the database away: the lease
may run out unseen), is disconnected at once and taken again when free. A clean stop lets go
of the leases, so the next process need not wait them out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import discord
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.shard import EventItem, Shard

from bot.client import ConductorBot
from bot.settings import Settings
from conductor.reminders import Clock
from conductor.shards import IDENTIFY_SPACING_S, ShardLeases
from smoke.protocol import SmokeRunner
from store.db import Database

log = logging.getLogger(__name__)


class _HeldOnly(asyncio.PriorityQueue[EventItem]):
    """discord.py's queue of shard events (reconnect, re-identify, resume, close), keeping
    only those of shards this process still holds: a shard let go is never reconnected by
    discord.py, and its closing never closes the whole client."""

    def __init__(self, keeps: Callable[[EventItem], bool]) -> None:
        super().__init__()
        self._keeps = keeps

    def put_nowait(self, item: EventItem) -> None:
        if self._keeps(item):
            super().put_nowait(item)


class ShardedConductorBot(ConductorBot, commands.AutoShardedBot):
    """Conductor's bot on a subset of the shards, one gateway owner per shard across
    processes (the leases in the database)."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        smoke_runner: SmokeRunner | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, database=database, smoke_runner=smoke_runner, clock=clock)
        if settings.shard_count is None or settings.shards is None:
            raise ValueError("ShardedConductorBot needs CONDUCTOR_SHARD_COUNT")
        self.shard_count = settings.shard_count
        self._connection.shard_count = settings.shard_count
        #: the shards this process runs on when it holds them
        self.wanted: tuple[int, ...] = settings.shards
        self.shard_leases = ShardLeases(
            self.database, settings.shard_count, lease_s=settings.shard_lease_seconds
        )
        #: the shards held now, each with its token (the fence)
        self.held: dict[int, int] = {}
        #: Discord's identify buckets (``session_start_limit.max_concurrency``)
        self.max_concurrency = 1
        self._every = settings.shard_lease_seconds / 3
        self._confirmed = 0.0  # loop time the held leases were last known renewed
        self._keeper: asyncio.Task[None] | None = None
        self._launches: set[asyncio.Task[None]] = set()
        self._connecting: set[int] = set()

    # -- discord.py's side ---------------------------------------------------------------------

    async def _async_setup_hook(self) -> None:
        await super()._async_setup_hook()
        # AutoShardedClient keeps its queue in a private attribute; each Shard takes its
        # put_nowait when made, so it is replaced before any shard exists.
        self._AutoShardedClient__queue = _HeldOnly(self._keeps)

    def _shard_objects(self) -> dict[int, Shard]:
        shards: dict[int, Shard] = getattr(self, "_AutoShardedClient__shards")  # noqa: B009
        return shards

    def _keeps(self, item: EventItem) -> bool:
        shard = item.shard
        if shard is None:
            return True  # the client's own clean close
        current = self._shard_objects().get(shard.id) is shard and shard.id in self.held
        if not current:
            log.info("shard %s: not reconnected (%s): this process let it go", shard.id, item.type)
        return current

    async def launch_shards(self) -> None:
        if self.is_closed():
            return
        limits = await self.fetch_session_start_limits()  # GET /gateway/bot
        self.max_concurrency = max(1, limits.max_concurrency)
        self._connection.shard_count = self.shard_count
        first = await self._first_shards()
        if not first:
            return  # closed while waiting
        # READY (on_ready) once the shards held now are ready; later ones add to the list.
        self._connection.shard_ids = sorted(first)
        self.shard_ids = self._connection.shard_ids
        # Renewed from now on: IDENTIFYing the shards one bucket slot after another can take
        # longer than a lease.
        self._keeper = asyncio.create_task(self._keep(), name="shard-leases")
        for shard_id in sorted(first):
            await self._launch(shard_id, initial=shard_id == min(first))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait for this bucket's identify slot, shared with every process (Discord's
        ``max_concurrency`` per 5 s); replaces discord.py's 5 s sleep between shards."""
        bucket = (shard_id or 0) % self.max_concurrency
        while not self.is_closed():
            try:
                wait = await self.shard_leases.identify_slot(bucket)
            except Exception:
                log.warning("shard %s: identify slot not readable; trying again", shard_id)
                wait = self._every
            if wait <= 0:
                log.info("shard %s identifies (bucket %d)", shard_id, bucket)
                return
            await asyncio.sleep(min(wait, IDENTIFY_SPACING_S))

    @property
    def guilds(self) -> Sequence[discord.Guild]:
        # Only the guilds of held shards: the loops over guilds (reminders, runs, board…)
        # leave a shard's guilds to its new owner once this process let it go.
        held = self.held
        return [guild for guild in super().guilds if guild.shard_id in held]

    def gateway_problem(self) -> str | None:
        if self.is_closed():
            return "the bot is closed"
        if not self.held:
            return f"waiting for shard(s) {list(self.wanted)}: another process holds them"
        if not self.is_ready():
            return "not connected yet (no READY from Discord)"
        shards = self._shard_objects()
        down = sorted(s for s in self.held if s not in shards or not shards[s].ws.open)
        if down:
            return f"shard(s) {down} disconnected; discord.py is reconnecting"
        return None

    async def _gateway_closed(self) -> None:
        for task in [self._keeper, *self._launches]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        held, self.held = self.held, {}
        try:
            await self.shard_leases.release(held)
        except Exception:
            log.warning("shard leases not let go; they run out in %.0f s", self._every * 3)
        else:
            if held:
                log.info("shard(s) %s let go", sorted(held))

    # -- the leases ----------------------------------------------------------------------------

    async def _claim(self, shard_ids: Sequence[int]) -> dict[int, int]:
        started = asyncio.get_running_loop().time()
        try:
            got = await self.shard_leases.claim(shard_ids)
        except Exception as error:
            log.warning("shard leases not claimed: %s", error)
            return {}
        if got and not self.held:
            self._confirmed = started
        self.held.update(got)
        for shard_id, token in sorted(got.items()):
            log.info("shard %d taken (token %d)", shard_id, token)
        return got

    async def _first_shards(self) -> dict[int, int]:
        """Wait until this process holds at least one of its shards."""
        told = False
        while not self.is_closed():
            got = await self._claim(self.wanted)
            if got:
                return got
            if not told:
                told = True
                try:
                    found = await self.shard_leases.holders()
                except Exception:
                    found = []  # the claim said why already
                holders = [
                    f"{h.shard_id}: {h.owner} until {h.expires_at:%H:%M:%S}"
                    for h in found
                    if h.shard_id in self.wanted
                ]
                log.info(
                    "waiting for shard(s) %s, held by another process (%s)",
                    list(self.wanted),
                    "; ".join(holders) or "another shard count",
                )
            await asyncio.sleep(self._every)
        return {}

    async def _launch(self, shard_id: int, *, initial: bool = False) -> None:
        ids = self._connection.shard_ids
        if shard_id not in ids:
            self._connection.shard_ids = sorted([*ids, shard_id])
            self.shard_ids = self._connection.shard_ids
        self._connecting.add(shard_id)
        try:
            await self.launch_shard(DiscordWebSocket.DEFAULT_GATEWAY, shard_id, initial=initial)
        finally:
            self._connecting.discard(shard_id)
        if shard_id not in self.held:  # lost while it connected
            await self._drop({shard_id}, "lease lost while connecting")

    async def _drop(self, shard_ids: set[int], why: str) -> None:
        for shard_id in sorted(shard_ids):
            self.held.pop(shard_id, None)
            shard = self._shard_objects().get(shard_id)
            log.warning("shard %d: %s; disconnected", shard_id, why)
            if shard is not None:
                await shard.disconnect()

    async def _keep(self) -> None:
        """Renew the held leases, drop the lost ones, take up the shards set free."""
        loop = asyncio.get_running_loop()
        while not self.is_closed():
            await asyncio.sleep(self._every)
            if self.held:
                started = loop.time()
                try:
                    lost = await self.shard_leases.renew(dict(self.held))
                except Exception as error:
                    unconfirmed = loop.time() - self._confirmed
                    if unconfirmed >= 2 * self._every:
                        await self._drop(set(self.held), f"lease not renewed ({error})")
                    else:
                        log.warning("shard leases not renewed (%s); trying again", error)
                    continue
                self._confirmed = started
                if lost:
                    await self._drop(lost, "lease taken by another process")
            # (a shard still connecting from an earlier take is not taken twice)
            missing = [s for s in self.wanted if s not in self.held and s not in self._connecting]
            if missing:
                for shard_id in sorted(await self._claim(missing)):
                    # its own task: the renewals go on while it waits for its identify slot
                    task = asyncio.create_task(self._launch(shard_id), name=f"shard-{shard_id}")
                    self._launches.add(task)
                    task.add_done_callback(self._launches.discard)

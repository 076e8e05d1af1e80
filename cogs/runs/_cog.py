"""The runs' reconcile, on ready and every few minutes: the guild's runs of every kind whose
process died, or that this process paused when the database went away, are taken up (a
running one goes on from its last finished step; an ended one
sends the notice it still owes), then the notes of shipped releases that never reached
Discord (a failed send, a crash between the flip and the notes) are posted, sealing first if
the seal never ran. A run this process paused is tried again every
:data:`PAUSED_WATCH_SECONDS`, so it goes on within that of the database coming back."""

from __future__ import annotations

import logging
from functools import partial

import discord
from discord.ext import commands, tasks

from bot.client import ConductorBot
from bot.rounds import Rounds

log = logging.getLogger(__name__)

#: how often a run this process paused (the database went away) is tried again: it goes on
#: within this of the database coming back, not at the next reconcile
PAUSED_WATCH_SECONDS = 15.0


class RunsCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        self.rounds = Rounds("the runs' reconcile", log)

    async def cog_load(self) -> None:
        self.reconcile.start()
        self.watch_paused.start()

    async def cog_unload(self) -> None:
        self.reconcile.cancel()
        self.watch_paused.cancel()

    @tasks.loop(minutes=3)
    async def reconcile(self) -> None:
        for guild in self.bot.guilds:
            await self.rounds.run(guild.id, partial(self.take_up, guild))

    @reconcile.before_loop
    async def _after_ready(self) -> None:
        await self.bot.wait_until_ready()

    @tasks.loop(seconds=PAUSED_WATCH_SECONDS)
    async def watch_paused(self) -> None:
        """Nothing to do unless a run paused here; then the guilds' runs are taken up (the
        round waits for the database quietly while it is still away)."""
        if not self.bot.runs.paused:
            return
        for guild in self.bot.guilds:
            await self.rounds.run(guild.id, partial(self.take_up, guild))

    @watch_paused.before_loop
    async def _watch_after_ready(self) -> None:
        await self.bot.wait_until_ready()

    async def take_up(self, guild: discord.Guild) -> int:
        """Take up the guild's runs whose process died, then post the notes still owed.
        Returns how many notes were posted."""
        taken = await self.bot.runs.resume(guild.id)
        if taken:
            log.info("took up %d run(s) in guild %s", taken, guild.id)
        return await self.bot.publisher.post_owed_notes(guild.id)

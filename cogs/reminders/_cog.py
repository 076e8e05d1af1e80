"""The reminders' timer: every ``check_every`` (``[reminders]``), each guild's conditions are
looked at and the reminders due are posted (the domain decides which, ``conductor.reminders``).

One guild failing never stops the others, and a fault that lasts is logged once, not at each
round (``bot.rounds``).
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands, tasks

from bot.client import ConductorBot
from bot.rounds import Rounds

log = logging.getLogger(__name__)


class RemindersCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        self.rounds = Rounds("the reminders", log)

    async def cog_load(self) -> None:
        every = self.bot.reminders.config.check_every
        self.remind.change_interval(seconds=every.total_seconds())
        self.remind.start()

    async def cog_unload(self) -> None:
        self.remind.cancel()

    @tasks.loop(minutes=1)
    async def remind(self) -> None:
        for guild in self.bot.guilds:
            await self.remind_in(guild)

    @remind.before_loop
    async def _after_ready(self) -> None:
        await self.bot.wait_until_ready()

    async def remind_in(self, guild: discord.Guild) -> int:
        """Post the guild's reminders due now; how many. Never raises."""
        return await self.rounds.run(guild.id, lambda: self.bot.reminders.tick(guild.id))

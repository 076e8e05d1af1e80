"""The reminders' timer: every ``check_every`` (``[reminders]``), each guild's conditions are
looked at and the reminders due are posted (the domain decides which, ``conductor.reminders``).

One guild failing never stops the others, and a fault that lasts is logged once, not at each
round: the database says its own outage once (``store.db``), anything else is logged with its
traceback the first time and again only when it changes.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands, tasks

from bot.client import ConductorBot
from conductor.text import one_line
from store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class RemindersCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        #: the guilds whose round failed, with how (logged once until it changes)
        self._failing: dict[int, str] = {}

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
        try:
            sent = await self.bot.reminders.tick(guild.id)
        except DatabaseUnavailable as down:
            # The database logged its outage once; the next round tries again.
            log.debug("reminders of guild %s wait for the database (%s)", guild.id, down.reason)
            return 0
        except Exception as error:
            how = f"{type(error).__name__}: {one_line(error, 200)}"
            if self._failing.get(guild.id) != how:
                log.exception("the reminders of guild %s failed", guild.id)
                self._failing[guild.id] = how
            return 0
        if self._failing.pop(guild.id, None) is not None:
            log.info("the reminders of guild %s work again", guild.id)
        return sent

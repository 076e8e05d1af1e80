"""The Discord side of the reminders: :class:`DiscordReminders`, the domain's
:class:`~conductor.reminders.ReminderSink`.

A reminder about a release goes where its notes go (``bot.publish.DiscordNotes``: its thread,
else the notes channel, a refusal saying why); one about the lock with no release open goes
to the notes channel. Nothing pings: the operators are named as text.
"""

from __future__ import annotations

import logging

import discord

from bot.bindings import Bindings
from bot.publish import DiscordNotes
from conductor.views import ReleaseView

log = logging.getLogger(__name__)

#: how far back a reminder is looked for after a crash (it was being sent a minute ago)
LOOK_BACK = 50


class DiscordReminders:
    def __init__(self, notes: DiscordNotes) -> None:
        self.notes = notes
        self.client = notes.client

    async def operators(self, guild_id: int) -> str:
        guild = self.client.get_guild(guild_id)
        if guild is None:
            return "an operator"
        return operators_in_words(await self.notes.bindings(guild))

    async def _places(
        self, guild: discord.Guild, release: ReleaseView | None
    ) -> list[discord.abc.Messageable]:
        if release is not None:
            return await self.notes.places(guild, release)
        channel = (await self.notes.bindings(guild)).notes_channel
        return [channel] if channel is not None else []

    async def remind(self, guild_id: int, release: ReleaseView | None, text: str) -> bool:
        if release is not None:
            return await self.notes.post(guild_id, release, [text]) is not None
        guild = self.client.get_guild(guild_id)
        if guild is None:
            log.warning("not in guild %s: its reminder waits", guild_id)
            return False
        places = await self._places(guild, None)
        if not places:
            log.warning("no notes channel in guild %s: its reminder waits", guild_id)
            return False
        try:
            await places[0].send(text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as error:
            log.warning("could not post a reminder in #%s (%s)", places[0], error.status)
            return False
        return True

    async def reminded(self, guild_id: int, release: ReleaseView | None, marker: str) -> bool:
        guild = self.client.get_guild(guild_id)
        me = self.client.user
        if guild is None or me is None:
            return False
        for where in await self._places(guild, release):
            try:
                async for message in where.history(limit=LOOK_BACK):
                    if message.author.id == me.id and marker in message.content:
                        return True
            except discord.HTTPException:
                log.warning("could not read #%s to look for a reminder", where)
        return False


def operators_in_words(bindings: Bindings) -> str:
    """Who the operators are, naming the role as text (a reminder pings nobody)."""
    wanted = bindings.wanted["operator role"].wanted
    role = bindings.operator_role
    if wanted is None:
        return "anyone with Manage Server"
    if role is None:
        return f"an operator (the `{_plain(wanted)}` role, missing in this server)"
    return f"anyone with the `{_plain(role.name)}` role"


def _plain(name: str) -> str:
    """A name that cannot close the code span around it."""
    return name.replace("`", "'")

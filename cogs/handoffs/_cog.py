"""Handoffs: every message in a handoff channel is stored raw, then parsed and applied.

✅ on success (and a review request when the task is now submitted), ⚠️ and a reply with the
exact reason on failure, nothing on chatter. Members, other bots and channel webhooks are all
heard; only Conductor's own messages are not. Messages posted while the bot was away are read
back from the channel's history when it starts, so none are lost.
"""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from bot.client import ConductorBot
from conductor.states import AuthorKind, HandoffOutcome
from conductor.views import HandoffResult, IncomingMessage

log = logging.getLogger(__name__)

OK, WARN = "✅", "⚠️"
#: message types that carry text someone wrote (not joins, pins, thread starts…)
_WRITTEN = (discord.MessageType.default, discord.MessageType.reply)
#: the most messages read back per channel on start
CATCH_UP_LIMIT = 1000


def incoming(guild: discord.Guild, message: discord.Message) -> IncomingMessage:
    """What the domain needs of a Discord message."""
    author = message.author
    kind: AuthorKind
    if message.webhook_id is not None:
        kind, author_id = "webhook", None
    else:
        kind, author_id = ("bot" if author.bot else "user"), author.id
    return IncomingMessage(
        guild_id=guild.id,
        channel_id=message.channel.id,
        message_id=message.id,
        author_id=author_id,
        author_name=author.display_name[:100],
        author_kind=kind,
        text=message.content,
    )


class HandoffsCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.type not in _WRITTEN:
            return
        if self.bot.user is not None and message.author.id == self.bot.user.id:
            return
        if not (await self.bot.bindings(message.guild)).is_handoff_channel(message.channel.id):
            return
        await self.handle(message.guild, message)

    async def handle(self, guild: discord.Guild, message: discord.Message) -> HandoffResult | None:
        """Store, apply and acknowledge one message. Safe to call again for the same message:
        the second time changes nothing and posts nothing."""
        try:
            result = await self.bot.handoffs.submit(incoming(guild, message))
        except Exception:
            log.exception("handoff %s in #%s could not be applied", message.id, message.channel)
            await self._react(message, WARN)
            return None
        if result.duplicate:
            return result
        if result.outcome in (HandoffOutcome.APPLIED, HandoffOutcome.NOTED):
            await self._react(message, OK)
            if result.outcome is HandoffOutcome.APPLIED:
                self.bot.release_changed(guild.id)
        elif result.outcome is HandoffOutcome.REJECTED:
            await self._react(message, WARN)
            await self._reply(message, f"{WARN} {result.error}")
        if result.review is not None:
            self.bot.dispatch("review_requested", guild, result.review)
        return result

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await asyncio.gather(*(self.catch_up(g) for g in self.bot.guilds))

    async def catch_up(self, guild: discord.Guild) -> int:
        """Apply what was posted in the handoff channels while the bot was away (after the
        newest stored message; a channel never seen before is not read back). Returns how
        many messages were read."""
        read = 0
        for channel_id in (await self.bot.bindings(guild)).handoff_channel_ids:
            channel = guild.get_channel(channel_id)
            last = await self.bot.handoffs.last_message_id(guild.id, channel_id)
            if not isinstance(channel, discord.TextChannel) or last is None:
                continue
            try:
                async for message in channel.history(
                    after=discord.Object(last), oldest_first=True, limit=CATCH_UP_LIMIT
                ):
                    if message.type in _WRITTEN and message.author != self.bot.user:
                        await self.handle(guild, message)
                        read += 1
            except discord.HTTPException:
                log.exception("could not read back #%s after downtime", channel.name)
        if read:
            log.info("caught up on %d handoff messages in guild %s", read, guild.id)
        return read

    @staticmethod
    async def _react(message: discord.Message, emoji: str) -> None:
        try:
            await message.add_reaction(emoji)
        except discord.HTTPException:
            # The handoff is stored and applied; only the acknowledgement is missing.
            log.warning("could not react %s to handoff %s", emoji, message.id, exc_info=True)

    @staticmethod
    async def _reply(message: discord.Message, text: str) -> None:
        try:
            await message.reply(
                text[:2000], mention_author=False, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException:
            log.warning("could not reply to handoff %s", message.id, exc_info=True)

"""The conversation on review requests: a member's reply to a request in the reviews channel,
or a message in a thread started from it, is kept as the task's conversation; an edit changes
its text, a deletion takes it out. Bots (Conductor too) and webhooks are not kept.

Heard live only: replies sent while the bot was away are not read back.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.client import ConductorBot
from conductor.views import IncomingReply, ReplyResult
from store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

#: message types that carry text someone wrote
_WRITTEN = (discord.MessageType.default, discord.MessageType.reply)


def targets(message: discord.Message) -> tuple[int, ...]:
    """The messages ``message`` may answer: the one it replies to, and the message a thread
    was started from (in Discord the thread has that message's id)."""
    found: list[int] = []
    if message.reference is not None and message.reference.message_id is not None:
        found.append(message.reference.message_id)
    if isinstance(message.channel, discord.Thread) and message.channel.id not in found:
        found.append(message.channel.id)
    return tuple(found)


class ConversationCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot

    async def _in_reviews(self, guild: discord.Guild, channel_id: int) -> bool:
        """The reviews channel, or a thread in it."""
        bindings = await self.bot.bindings(guild)
        reviews = bindings.reviews_channel
        if reviews is None:
            return False
        if channel_id == reviews.id:
            return True
        thread = guild.get_thread(channel_id)
        return thread is not None and thread.parent_id == reviews.id

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        await self.keep(message)

    async def keep(self, message: discord.Message) -> ReplyResult | None:
        """Keep ``message`` when it answers a review request. Safe to call again for the same
        message: it stays one entry. None when it could not be (not a member's reply, the
        database away)."""
        if message.guild is None or message.type not in _WRITTEN:
            return None
        if message.author.bot or message.webhook_id is not None:
            return None
        answers = targets(message)
        if not answers:
            return None
        try:
            if not await self._in_reviews(message.guild, message.channel.id):
                return None
            result = await self.bot.reviews.reply(
                IncomingReply(
                    guild_id=message.guild.id,
                    channel_id=message.channel.id,
                    message_id=message.id,
                    author_id=message.author.id,
                    author_name=message.author.display_name[:100],
                    text=message.content,
                    targets=answers,
                )
            )
        except DatabaseUnavailable as down:
            log.info("the reply %s is not kept: %s", message.id, down.reason)
            return None
        log.debug("reply %s: %s", message.id, result.reason)
        return result

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        content = payload.data.get("content")
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        if guild is None or content is None:
            return
        author = payload.data.get("author") or {}
        if author.get("bot") or payload.data.get("webhook_id"):
            return
        try:
            if await self._in_reviews(guild, payload.channel_id):
                await self.bot.reviews.reply_edited(payload.message_id, content)
        except DatabaseUnavailable as down:
            log.info("the edit of %s is not kept: %s", payload.message_id, down.reason)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._deleted(payload.guild_id, payload.channel_id, {payload.message_id})

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self._deleted(payload.guild_id, payload.channel_id, set(payload.message_ids))

    async def _deleted(self, guild_id: int | None, channel_id: int, ids: set[int]) -> None:
        guild = self.bot.get_guild(guild_id) if guild_id else None
        if guild is None:
            return
        try:
            if await self._in_reviews(guild, channel_id):
                await self.bot.reviews.replies_deleted(ids)
        except DatabaseUnavailable as down:
            log.info("the deletion of %s is not kept: %s", sorted(ids), down.reason)

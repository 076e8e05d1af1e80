"""Handoffs: every message in a handoff channel is stored raw, then parsed and applied.

✅ on success (and a review request when the task is now submitted), ⚠️ and a reply with the
exact reason on failure, nothing on chatter. Members, other bots and channel webhooks are all
heard; only Conductor's own messages are not.

Nothing is lost: each channel is read back from Discord's history after its cursor (the last
message handled), all of it, page by page: on start, when a guild becomes available, after the
gateway dropped, and every few seconds while the database could not take a message. A message
the database could not take (busy, full, read-only, its file gone) gets no ✅; the channel is
told once that the database is unavailable, and the catch-up answers it when the database is
back.
"""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands, tasks

from bot.client import ConductorBot
from conductor.states import AuthorKind, HandoffOutcome
from conductor.views import HandoffResult, IncomingMessage
from store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

OK, WARN = "✅", "⚠️"
#: message types that carry text someone wrote (not joins, pins, thread starts…)
_WRITTEN = (discord.MessageType.default, discord.MessageType.reply)
#: how often the database file is looked at and channels out of sync are read back
WATCH_SECONDS = 20.0
#: messages per history request (Discord's most), applied as one batch
PAGE = 100
#: no pings in the notices
NO_PINGS = discord.AllowedMentions.none()


def incoming(
    guild: discord.Guild, message: discord.Message, *, replay: bool = False
) -> IncomingMessage:
    """What the domain needs of a Discord message (``replay``: read back by the catch-up)."""
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
        replay=replay,
    )


def unavailable_notice(down: DatabaseUnavailable) -> str:
    return (
        f"⚠️ Conductor can't store handoffs right now: {down.problem}. Nothing posted here "
        "is lost: once the database is back, Conductor reads this channel back and answers "
        "each handoff."
    )


BACK_NOTICE = (
    "✅ Conductor's database is back: the handoffs posted while it was unavailable were read "
    "back and answered."
)


class HandoffsCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        #: the channels told the database is unavailable, with that notice (None: not posted)
        self._notices: dict[int, discord.Message | None] = {}
        #: one catch-up per guild at a time
        self._catching: dict[int, asyncio.Lock] = {}

    async def cog_load(self) -> None:
        self.watch.start()

    async def cog_unload(self) -> None:
        self.watch.cancel()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.type not in _WRITTEN:
            return
        if self.bot.user is not None and message.author.id == self.bot.user.id:
            return
        try:
            bindings = await self.bot.bindings(message.guild)
        except DatabaseUnavailable:
            # Only before the guild's first catch-up (then they are kept): no channel is in
            # sync yet, so that catch-up reads this message back from the cursor.
            return
        if bindings.is_handoff_channel(message.channel.id):
            await self.handle(message.guild, message)

    async def handle(
        self, guild: discord.Guild, message: discord.Message, *, replay: bool = False
    ) -> HandoffResult | None:
        """Store, apply and acknowledge one message. Safe to call again for the same message:
        the second time changes nothing and posts nothing. None when it was not applied."""
        try:
            return await self._handle(guild, message, replay=replay)
        except DatabaseUnavailable:
            return None

    async def _handle(
        self, guild: discord.Guild, message: discord.Message, *, replay: bool
    ) -> HandoffResult | None:
        try:
            result = await self.bot.handoffs.submit(incoming(guild, message, replay=replay))
        except DatabaseUnavailable as down:
            # Not stored, so not acknowledged: the catch-up reads it back and answers it.
            await self._tell_unavailable(message.channel, down)
            raise
        except Exception:
            log.exception("handoff %s in #%s could not be applied", message.id, message.channel)
            await self._react(message, WARN)
            return None
        if result.duplicate:
            return result
        if result.outcome in (HandoffOutcome.APPLIED, HandoffOutcome.NOTED):
            await self._react(message, OK)
            if result.outcome is HandoffOutcome.APPLIED and result.in_release:
                # the board shows a release's members only: a task outside one (most of an
                # agent's traffic) changes nothing on it, and is not worth a read of it
                self.bot.release_changed(guild.id)
        elif result.outcome is HandoffOutcome.REJECTED:
            await self._react(message, WARN)
            await self._reply(message, f"{WARN} {result.error}")
        if result.review is not None:
            self.bot.dispatch("review_requested", guild, result.review)
        return result

    # ------------------------------------------------------------------ the catch-up

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await asyncio.gather(*(self.catch_up(g) for g in self.bot.guilds))

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self.catch_up(guild)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.catch_up(guild)

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        # Events may be lost until the next session: read every channel back before its
        # live messages move its cursor again.
        self.bot.handoffs.resync()

    @tasks.loop(seconds=WATCH_SECONDS)
    async def watch(self) -> None:
        # A deleted or replaced database file is logged now, not at the next write.
        self.bot.database.check()
        for guild in self.bot.guilds:
            try:
                await self.catch_up(guild)
            except Exception:
                log.exception("the handoff catch-up of guild %s failed", guild.id)

    @watch.before_loop
    async def _after_ready(self) -> None:
        await self.bot.wait_until_ready()

    async def catch_up(self, guild: discord.Guild) -> int:
        """Read back, oldest first, everything posted in the guild's handoff channels after
        each channel's cursor, for the channels not in sync (all of them after a start; those
        the database failed since). Returns how many messages were read."""
        lock = self._catching.setdefault(guild.id, asyncio.Lock())
        read = 0
        async with lock:
            try:
                channel_ids = (await self.bot.bindings(guild)).handoff_channel_ids
            except DatabaseUnavailable:
                return 0  # the next round tries again
            for channel_id in channel_ids:
                channel = guild.get_channel(channel_id)
                if self.bot.handoffs.in_sync(guild.id, channel_id) or not isinstance(
                    channel, discord.TextChannel
                ):
                    continue
                try:
                    read += await self._catch_up_channel(guild, channel)
                except DatabaseUnavailable as down:
                    # said once by the database; every round would be a flood
                    log.debug("#%s waits for the database (%s)", channel.name, down.reason)
                except discord.HTTPException:
                    log.exception("could not read back #%s", channel.name)
        if read:
            log.info("read back %d messages of the handoff channels of guild %s", read, guild.id)
        return read

    async def _catch_up_channel(self, guild: discord.Guild, channel: discord.TextChannel) -> int:
        handoffs = self.bot.handoffs
        read = 0
        while True:
            after = await handoffs.catch_up_from(
                guild.id, channel.id, newest=channel.last_message_id or 0
            )
            through, page = after, []
            # All of it: discord.py pages through the history 100 messages a request.
            history = channel.history(limit=None, after=discord.Object(after), oldest_first=True)
            async for message in history:
                page.append(message)
                if len(page) < PAGE:
                    continue
                if not await self._replay(guild, page):
                    return read  # the database failed again: the next round goes on
                read += len(page)
                through, page = page[-1].id, []
            if page:
                if not await self._replay(guild, page):
                    return read
                read += len(page)
                through = page[-1].id
            if handoffs.caught_up(guild.id, channel.id, through=through):
                await self._tell_back(channel)
                return read

    async def _replay(self, guild: discord.Guild, page: list[discord.Message]) -> bool:
        """Handle a page of history in order, as one batch (the group commit). False when
        the database could not take it."""
        me = self.bot.user.id if self.bot.user is not None else None
        written = [m for m in page if m.type in _WRITTEN and m.author.id != me]
        handled = await asyncio.gather(
            *(self._handle(guild, m, replay=True) for m in written), return_exceptions=True
        )
        for outcome in handled:
            if isinstance(outcome, BaseException) and not isinstance(outcome, DatabaseUnavailable):
                raise outcome
        return not any(isinstance(outcome, DatabaseUnavailable) for outcome in handled)

    # ------------------------------------------------------------------ answers

    async def _tell_unavailable(
        self, channel: discord.abc.Messageable, down: DatabaseUnavailable
    ) -> None:
        """Say once per outage, in the channel, that its handoffs wait for the database."""
        key = getattr(channel, "id", 0)
        if key in self._notices:
            return
        self._notices[key] = None
        try:
            self._notices[key] = await channel.send(
                unavailable_notice(down), allowed_mentions=NO_PINGS
            )
        except discord.HTTPException:
            log.warning("could not tell #%s the database is unavailable", channel, exc_info=True)

    async def _tell_back(self, channel: discord.TextChannel) -> None:
        if channel.id not in self._notices:
            return
        notice = self._notices.pop(channel.id)
        if notice is None:
            return
        try:
            await notice.edit(content=BACK_NOTICE, allowed_mentions=NO_PINGS)
        except discord.HTTPException:
            log.warning("could not update the notice in #%s", channel.name, exc_info=True)

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

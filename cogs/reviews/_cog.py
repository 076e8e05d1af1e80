"""Reviews: post a request when a task is submitted, count ✅ and ❌ through raw reaction
events (they arrive for messages not in the cache), keep the request message current, and on
start reconcile what was reacted while the bot was away."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import discord
from discord.ext import commands, tasks
from discord.http import handle_message_parameters

from bot.client import ConductorBot
from bot.refresh import Refresher
from bot.rounds import Rounds
from cogs.reviews._render import APPROVE, REQUEST_CHANGES, review_message
from conductor.errors import ConductorError
from conductor.reviews.reactions import APPROVE as APPROVED
from conductor.reviews.reactions import REJECT, WITHDRAW, Reaction
from conductor.views import ReactionResult, Reactor, ReviewView
from store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class ReviewsCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        #: request messages to bring up to date, keyed by (guild id, request id)
        self.edits: Refresher[tuple[int, int]] = Refresher(self._edit, name="review")
        self._latest: dict[tuple[int, int], ReviewView] = {}
        self.rounds = Rounds("the review requests", log)
        #: guilds with reactions the database could not take: read back at the next round
        self._recount: set[int] = set()

    async def cog_load(self) -> None:
        self.post_missing.start()

    async def cog_unload(self) -> None:
        self.post_missing.cancel()
        await self.edits.wait()

    # ---------------------------------------------------------------- posting

    @commands.Cog.listener()
    async def on_review_requested(self, guild: discord.Guild, review: ReviewView) -> None:
        await self.post(guild, review)

    async def post(self, guild: discord.Guild, review: ReviewView) -> discord.Message | None:
        """Post the request in the reviews channel and remember its message. On failure the
        request stays open without a message; the next start (or reconcile) posts it."""
        channel = (await self.bot.bindings(guild)).reviews_channel
        if channel is None:
            log.warning(
                "no reviews channel in guild %s: review of %s not posted",
                guild.id,
                review.task_slug,
            )
            return None
        try:
            message = await channel.send(
                review_message(review), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException:
            log.exception("could not post the review request for %s", review.task_slug)
            return None
        await self.bot.reviews.attach_message(review.request_id, channel.id, message.id)
        for emoji in (APPROVE, REQUEST_CHANGES):  # one tap on a phone
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException:
                log.warning("could not add %s to review %s", emoji, message.id, exc_info=True)
        return message

    @tasks.loop(minutes=2)
    async def post_missing(self) -> None:
        """Post the open review requests that have no message yet (the send failed, no
        reviews channel was bound then, the database was down). Cheap: one query, no Discord
        reads. A guild that fails, or a database that is down, is tried again next round."""
        for guild in self.bot.guilds:
            await self.rounds.run(guild.id, partial(self.post_missing_in, guild))

    async def post_missing_in(self, guild: discord.Guild) -> int:
        if guild.id in self._recount:
            # Reactions came while the database could not take them: read them all back
            # from Discord now that it can (the reconcile posts the missing requests too).
            self._recount.discard(guild.id)
            try:
                await self.reconcile(guild)
            except BaseException:
                self._recount.add(guild.id)
                raise
            return 0
        posted = 0
        for review in await self.bot.reviews.still_open(guild.id):
            if review.message_id is None and await self.post(guild, review) is not None:
                posted += 1
        return posted

    @post_missing.before_loop
    async def _after_ready(self) -> None:
        await self.bot.wait_until_ready()

    # ---------------------------------------------------------------- reactions

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = str(payload.emoji)
        if payload.guild_id is None or emoji not in (APPROVE, REQUEST_CHANGES):
            return
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return
        await self.react(payload.guild_id, payload.message_id, payload.user_id, emoji, True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        # Only a ✅ can be taken back: a ❌ has already sent the task back.
        if payload.guild_id is None or str(payload.emoji) != APPROVE:
            return
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return
        await self.react(payload.guild_id, payload.message_id, payload.user_id, APPROVE, False)

    async def react(
        self, guild_id: int, message_id: int, user_id: int, emoji: str, added: bool
    ) -> ReactionResult | None:
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            return None
        kind = APPROVED if emoji == APPROVE else REJECT
        try:
            reactor = await self._reactor(guild, user_id)
            result = await self.bot.reviews.submit(
                Reaction(kind if added else WITHDRAW, guild_id, message_id, reactor)
            )
        except ConductorError as refused:  # the machine said no: nothing changed
            log.info("%s on %s changed nothing: %s", emoji, message_id, refused)
            return None
        except DatabaseUnavailable as down:
            # Not counted, and not lost: the reaction stays on the message, and the next
            # round after the database is back reads the guild's requests back from Discord.
            log.info("%s on %s waits for the database (%s)", emoji, message_id, down.reason)
            self._recount.add(guild_id)
            return None
        if result.review is not None and result.counted:
            # Results arrive here in commit order (no await since the submit returned), so
            # the last one kept is the newest; the edit shows it without reading it back.
            key = (guild_id, result.review.request_id)
            self._latest[key] = result.review
            self.edits.touch(key)
        elif result.review is not None:
            log.debug("%s by %s on %s: %s", emoji, reactor.name, message_id, result.reason)
        if (result.became_reviewed or result.sent_back) and result.in_release:
            # the board shows a release's members only: a task outside one changes nothing
            self.bot.release_changed(guild_id)
        return result

    async def _reactor(self, guild: discord.Guild, user_id: int) -> Reactor:
        member = guild.get_member(user_id)
        if member is None:
            try:
                member = await guild.fetch_member(user_id)
            except discord.HTTPException:
                # Left the server, or Discord would not say: not a reviewer we can vouch for.
                return Reactor(user_id, str(user_id), is_bot=False, has_reviewer_role=False)
        bindings = await self.bot.bindings(guild)
        wanted = bindings.wanted["reviewer role"].wanted
        if wanted is None:
            has_role: bool | None = None
        else:
            # A configured role that no longer exists lets nobody review, rather than everyone.
            has_role = bindings.reviewer_role is not None and bindings.reviewer_role in member.roles
        return Reactor(
            member.id, member.display_name, is_bot=member.bot, has_reviewer_role=has_role
        )

    async def _edit(self, key: tuple[int, int]) -> None:
        guild_id, request_id = key
        review = self._latest.pop(key, None) or await self.bot.reviews.get(request_id)
        guild = self.bot.get_guild(guild_id)
        if guild is None or review.channel_id is None or review.message_id is None:
            return
        channel = guild.get_channel(review.channel_id)
        if not isinstance(channel, discord.TextChannel):
            return
        try:
            # The request alone: discord.py's ``PartialMessage.edit`` would build a Message
            # from Discord's answer, which nothing here reads (a tenth of a reaction's CPU).
            with handle_message_parameters(
                content=review_message(review), allowed_mentions=discord.AllowedMentions.none()
            ) as params:
                await self.bot.http.edit_message(channel.id, review.message_id, params=params)
        except discord.NotFound:
            log.info("review message %s is gone; leaving it", review.message_id)

    # ---------------------------------------------------------------- reconcile

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await asyncio.gather(*(self.reconcile(g) for g in self.bot.guilds))

    async def reconcile(self, guild: discord.Guild) -> None:
        """Bring every open review in line with Discord: post the ones never posted, count ✅
        and ❌ made while the bot was away, take back ✅ removed meanwhile."""
        for review in await self.bot.reviews.still_open(guild.id):
            try:
                await self._reconcile_one(guild, review)
            except Exception:
                log.exception("could not reconcile the review of %s", review.task_slug)

    async def _reconcile_one(self, guild: discord.Guild, review: ReviewView) -> None:
        channel = guild.get_channel(review.channel_id) if review.channel_id else None
        if review.message_id is None or not isinstance(channel, discord.TextChannel):
            await self.post(guild, review)
            return
        try:
            message = await channel.fetch_message(review.message_id)
        except discord.NotFound:
            log.info("review message of %s was deleted; posting it again", review.task_slug)
            await self.post(guild, review)
            return
        me = self.bot.user.id if self.bot.user else None
        approving: set[int] = set()
        objecting: list[int] = []
        for reaction in message.reactions:
            if str(reaction.emoji) not in (APPROVE, REQUEST_CHANGES):
                continue
            async for user in reaction.users():
                if user.id == me:
                    continue
                if str(reaction.emoji) == APPROVE:
                    approving.add(user.id)
                else:
                    objecting.append(user.id)
        # Take-backs first: only the ✅ still on the message count toward the threshold.
        for approver in review.approvers:
            if approver.user_id not in approving:
                await self.react(guild.id, message.id, approver.user_id, APPROVE, False)
        for user_id in sorted(approving):
            await self.react(guild.id, message.id, user_id, APPROVE, True)
        for user_id in objecting:
            result = await self.react(guild.id, message.id, user_id, REQUEST_CHANGES, True)
            if result is not None and result.sent_back:
                break
        self.edits.touch((guild.id, review.request_id))

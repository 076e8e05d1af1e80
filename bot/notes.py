"""Release notes into the release's thread, the rollback ping on a red seal, exactly once.

Used by ``/release ship``, ``/seal`` and the reconcile of notes that never got posted.
Where the notes go: the release's thread; if it has none (no notes channel then, or the thread
could not be created), the notes channel; if there is none either, the channel the command
was given in. A release is never left without notes because a thread is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import discord

from conductor.notes import release_notes, reseal_note, rollback_alert
from conductor.seals import SealOutcome
from conductor.views import ReleaseView
from store.models import SealStatus

if TYPE_CHECKING:
    from bot.client import ConductorBot

log = logging.getLogger(__name__)

PINGS = discord.AllowedMentions(everyone=False, users=True, roles=True)


class ReleaseNotes:
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        #: releases whose notes are being posted in this process right now (the reconcile
        #: leaves them alone)
        self.in_flight: set[tuple[int, str]] = set()

    @contextmanager
    def claim(self, guild_id: int, slug: str) -> Iterator[bool]:
        """Hold a release's notes for this block (a ship from its flip to its notes); yields
        False when someone in this process already holds them."""
        key = (guild_id, slug)
        if key in self.in_flight:
            yield False
            return
        self.in_flight.add(key)
        try:
            yield True
        finally:
            self.in_flight.discard(key)

    async def destination(
        self, guild: discord.Guild, release: ReleaseView
    ) -> discord.abc.Messageable | None:
        if release.notes_thread_id is not None:
            channel = guild.get_thread(release.notes_thread_id) or guild.get_channel(
                release.notes_thread_id
            )
            if channel is None:
                try:
                    fetched = await self.bot.fetch_channel(release.notes_thread_id)
                except discord.HTTPException:
                    log.warning(
                        "the thread of %s is gone; notes go to the notes channel", release.slug
                    )
                else:
                    if isinstance(fetched, discord.abc.Messageable):
                        return fetched
            elif isinstance(channel, discord.abc.Messageable):
                if isinstance(channel, discord.Thread) and channel.archived:
                    try:
                        await channel.edit(archived=False)
                    except discord.HTTPException:
                        log.warning("could not unarchive the thread of %s", release.slug)
                return channel
        return (await self.bot.bindings(guild)).notes_channel

    async def mentions(self, guild: discord.Guild, user_id: int | None) -> list[str]:
        """The operator who acted and the operator role."""
        out = [f"<@{user_id}>"] if user_id is not None else []
        role = (await self.bot.bindings(guild)).operator_role
        if role is not None:
            out.append(role.mention)
        return out

    async def publish(
        self,
        guild: discord.Guild,
        release: ReleaseView,
        seal: SealOutcome | None,
        *,
        operator_id: int | None,
        fallback: discord.abc.Messageable | None = None,
    ) -> discord.Message | None:
        """Post the notes (seal line first) and, on red or error, the ping with the rollback
        command. Returns the first notes message, or None when nothing could be posted (the
        reconcile tries again). Never raises for Discord's failures."""
        where = await self.destination(guild, release) or fallback
        if where is None:
            log.warning("no thread and no notes channel: the notes of %s wait", release.slug)
            return None
        shown = seal.release if seal is not None else release
        messages = release_notes(shown, seal=seal.line if seal is not None else None)
        try:
            first = await where.send(messages[0], allowed_mentions=discord.AllowedMentions.none())
            for more in messages[1:]:
                await where.send(more, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException:
            log.exception("could not post the notes of %s; the reconcile retries", release.slug)
            return None
        try:
            await self.bot.service.seals.notes_posted(guild.id, release.slug, first.id)
        except Exception:
            log.exception("the notes of %s were posted but not recorded", release.slug)
        if seal is not None and seal.alarming:
            await self.alert(guild, shown, seal, operator_id=operator_id, where=where)
        self.bot.release_changed(guild.id)
        return first

    async def alert(
        self,
        guild: discord.Guild,
        release: ReleaseView,
        seal: SealOutcome,
        *,
        operator_id: int | None,
        where: discord.abc.Messageable,
    ) -> discord.Message | None:
        text = rollback_alert(
            release,
            status=seal.status,
            summary=seal.result.summary,
            mentions=await self.mentions(guild, operator_id),
            rollback=seal.rollback,
        )
        try:
            return await where.send(text, allowed_mentions=PINGS)
        except discord.HTTPException:
            log.exception("could not ping the operator about the seal of %s", release.slug)
            return None

    async def resealed(
        self,
        guild: discord.Guild,
        seal: SealOutcome,
        *,
        by: discord.abc.User,
        previous: SealStatus | None,
        fallback: discord.abc.Messageable | None = None,
    ) -> discord.Message | None:
        """``/seal``'s post in the thread: the new line, and the ping when it is red."""
        release = seal.release
        where = await self.destination(guild, release) or fallback
        if where is None:
            return None
        try:
            message = await where.send(
                reseal_note(release, seal=seal.line, by=by.display_name, previous=previous),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException:
            log.exception("could not post the re-seal of %s", release.slug)
            return None
        if seal.alarming:
            await self.alert(guild, release, seal, operator_id=by.id, where=where)
        return message

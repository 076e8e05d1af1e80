"""The Discord side of the notes: :class:`DiscordNotes`, the domain's
:class:`~conductor.releases.pipeline.NotesSink`.

The domain decides what is said and when (``conductor.releases.pipeline``); this module only
finds where and sends. Where: the release's thread; if it has none (no notes channel then, or
the thread could not be created), the notes channel; if there is none either, the channel the
command was given in. A release is never left without notes because a thread is missing.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Sequence

import discord

from bot.bindings import Bindings
from conductor.releases.pipeline import PostedNotes
from conductor.seals.evidence import Attachment
from conductor.views import ReleaseView

log = logging.getLogger(__name__)


class DiscordNotes:
    def __init__(
        self,
        client: discord.Client,
        bindings: Callable[[discord.Guild], Awaitable[Bindings]],
        changed: Callable[[int], None],
    ) -> None:
        self.client = client
        #: the guild's channels and roles now (the bot's ``bindings``)
        self.bindings = bindings
        self._changed = changed

    async def destination(
        self, guild: discord.Guild, release: ReleaseView
    ) -> discord.abc.Messageable | None:
        if release.notes_thread_id is not None:
            channel = guild.get_thread(release.notes_thread_id) or guild.get_channel(
                release.notes_thread_id
            )
            if channel is None:
                try:
                    fetched = await self.client.fetch_channel(release.notes_thread_id)
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
        return (await self.bindings(guild)).notes_channel

    async def post(
        self,
        guild_id: int,
        release: ReleaseView,
        messages: Sequence[str],
        *,
        reply_to: object | None = None,
    ) -> PostedNotes | None:
        guild = self.client.get_guild(guild_id)
        if guild is None:
            log.warning("not in guild %s: the notes of %s wait", guild_id, release.slug)
            return None
        fallback = reply_to if isinstance(reply_to, discord.abc.Messageable) else None
        where = await self.destination(guild, release) or fallback
        if where is None:
            log.warning("no thread and no notes channel: the notes of %s wait", release.slug)
            return None
        try:
            first = await where.send(messages[0], allowed_mentions=discord.AllowedMentions.none())
            for more in messages[1:]:
                await where.send(more, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException:
            log.exception("could not post in the thread of %s", release.slug)
            return None
        return PostedNotes(first.id, first.jump_url, where)

    async def find(self, guild_id: int, release: ReleaseView, marker: str) -> PostedNotes | None:
        """This bot's recent message (the last 50) in the release's thread, or its notes
        channel, that contains ``marker``."""
        guild = self.client.get_guild(guild_id)
        me = self.client.user
        if guild is None or me is None:
            return None
        where = await self.destination(guild, release)
        if where is None:
            return None
        try:
            async for message in where.history(limit=50):
                if message.author.id == me.id and marker in message.content:
                    return PostedNotes(message.id, message.jump_url, where)
        except discord.HTTPException:
            log.warning("could not read the thread of %s to look for %r", release.slug, marker)
        return None

    async def mentions(self, guild_id: int, user_id: int | None) -> list[str]:
        out = [f"<@{user_id}>"] if user_id is not None else []
        guild = self.client.get_guild(guild_id)
        role = (await self.bindings(guild)).operator_role if guild is not None else None
        if role is not None:
            out.append(role.mention)
        return out

    async def ping(
        self,
        guild_id: int,
        posted: PostedNotes,
        text: str,
        *,
        user_id: int | None,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        """The alert: it pings exactly the operator ``user_id`` and the operator role, and no
        one else, whatever else ``text`` mentions; ``attachments`` go with it as files. If
        Discord refuses the files, the alert goes without them: the ping matters more."""
        where = posted.channel
        if not isinstance(where, discord.abc.Messageable):
            log.error("cannot ping in %r: not a Discord channel", where)
            return
        guild = self.client.get_guild(guild_id)
        role = (await self.bindings(guild)).operator_role if guild is not None else None
        exactly = discord.AllowedMentions(
            everyone=False,
            users=[discord.Object(user_id)] if user_id is not None else False,
            roles=[role] if role is not None else False,
            replied_user=False,
        )
        files = [discord.File(io.BytesIO(a.data), filename=a.filename) for a in attachments]
        try:
            if files:
                try:
                    await where.send(text, allowed_mentions=exactly, files=files)
                    return
                except discord.HTTPException as refused:
                    log.warning(
                        "the alert's %d screenshot(s) were refused in %s (%s %s); sending it "
                        "without them", len(files), posted.link, refused.status, refused.text,
                    )  # fmt: skip
                    note = f"\n(Discord refused the screenshots: {refused.status}"
                    note += "; is *Attach Files* allowed here?)" if refused.status == 403 else ")"
                    if len(text) + len(note) <= 2000:
                        text += note
            await where.send(text, allowed_mentions=exactly)
        except discord.HTTPException:
            log.exception("could not ping the operator in %s", posted.link)

    def changed(self, guild_id: int) -> None:
        self._changed(guild_id)

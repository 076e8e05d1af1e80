"""The Discord side of the notes: :class:`DiscordNotes`, the domain's
:class:`~conductor.releases.runs.sink.NotesSink`.

The domain decides what is said and when (``conductor.releases.runs``, ``conductor.releases.publisher``); this module only
finds where and sends. Where: the release's thread; if it has none (no notes channel then, or
the thread could not be created) or Discord refuses the post there (403: a permission is
missing), the notes channel; if there is none either, or it refuses too, the channel the
command was given in. A post that lands in a fallback says why on its first line. A release
is never left without notes because a thread is missing or closed to the bot.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.actions import action_view
from bot.bindings import Bindings
from bot.permissions import refusal
from conductor.notes import MESSAGE_LIMIT
from conductor.releases.runs.sink import AlertAction, PostedNotes
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

    async def places(
        self, guild: discord.Guild, release: ReleaseView, reply_to: object | None = None
    ) -> list[discord.abc.Messageable]:
        """Where the release's words may go, in order: its thread, the notes channel, then
        ``reply_to`` (the channel a command came from), each once."""
        out: list[discord.abc.Messageable] = []
        thread = await self._thread(guild, release)
        for place in (thread, (await self.bindings(guild)).notes_channel, reply_to):
            if isinstance(place, discord.abc.Messageable) and not any(
                getattr(place, "id", None) == getattr(seen, "id", None) for seen in out
            ):
                out.append(place)
        return out

    async def _thread(
        self, guild: discord.Guild, release: ReleaseView
    ) -> discord.abc.Messageable | None:
        if release.notes_thread_id is None:
            return None
        channel = guild.get_thread(release.notes_thread_id) or guild.get_channel(
            release.notes_thread_id
        )
        if channel is None:
            try:
                fetched = await self.client.fetch_channel(release.notes_thread_id)
            except discord.HTTPException as error:
                log.warning(
                    "the thread of %s cannot be read (%s); notes go to the notes channel",
                    release.slug,
                    error.status,
                )
                return None
            return fetched if isinstance(fetched, discord.abc.Messageable) else None
        if isinstance(channel, discord.Thread) and channel.archived:
            try:
                await channel.edit(archived=False)
            except discord.HTTPException:
                log.warning("could not unarchive the thread of %s", release.slug)
        return channel if isinstance(channel, discord.abc.Messageable) else None

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
        places = await self.places(guild, release, reply_to)
        if not places:
            log.warning("no thread and no notes channel: the notes of %s wait", release.slug)
            return None
        refused: list[str] = []
        for where in places:
            said = _with_reason(list(messages), refused)
            sent: list[discord.Message] = []
            try:
                for text in said:
                    sent.append(
                        await where.send(text, allowed_mentions=discord.AllowedMentions.none())
                    )
            except discord.Forbidden as error:
                if sent:  # part of it is there: posting it elsewhere would say it twice
                    log.exception("the notes of %s were cut off in #%s", release.slug, where)
                    return None
                why = refusal(where, guild.me) or f"Discord said: {error.text or error.status}"
                log.warning("the notes of %s were refused in #%s: %s", release.slug, where, why)
                refused.append(f"{_mention(where)} ({why})")
                continue
            except discord.HTTPException:
                log.exception("could not post the notes of %s in #%s", release.slug, where)
                return None
            first = sent[len(said) - len(messages)]  # not the reason, when it went alone
            return PostedNotes(first.id, first.jump_url, where)
        log.warning("every place refused the notes of %s: %s", release.slug, "; ".join(refused))
        return None

    async def find(self, guild_id: int, release: ReleaseView, marker: str) -> PostedNotes | None:
        """This bot's recent message (the last 50 in each place) that contains ``marker``, in
        the release's thread or where the notes fall back to (the notes channel)."""
        guild = self.client.get_guild(guild_id)
        me = self.client.user
        if guild is None or me is None:
            return None
        for where in await self.places(guild, release):
            try:
                async for message in where.history(limit=50):
                    if message.author.id == me.id and marker in message.content:
                        return PostedNotes(message.id, message.jump_url, where)
            except discord.HTTPException:
                log.warning("could not read #%s to look for %r", where, marker)
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
        action: AlertAction | None = None,
    ) -> None:
        """The alert: it pings exactly the operator ``user_id`` and the operator role, and no
        one else, whatever else ``text`` mentions; ``attachments`` go with it as files, and
        ``action`` as a button (``bot.actions``). If Discord refuses the files, the alert goes
        without them: the ping matters more."""
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
        controls = action_view(action)
        extra: dict[str, Any] = {"view": controls} if controls is not None else {}
        try:
            if files:
                try:
                    await where.send(text, allowed_mentions=exactly, files=files, **extra)
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
            await where.send(text, allowed_mentions=exactly, **extra)
        except discord.HTTPException:
            log.exception("could not ping the operator in %s", posted.link)

    def changed(self, guild_id: int) -> None:
        self._changed(guild_id)


def _mention(place: object) -> str:
    channel_id = getattr(place, "id", None)
    return f"<#{channel_id}>" if channel_id is not None else "the release's channel"


def _with_reason(messages: list[str], refused: Sequence[str]) -> list[str]:
    """``messages``, told why they are not where they belong: a first line when it fits,
    else a message of its own before them."""
    if not refused:
        return messages
    reason = (
        f"⚠️ Posted here because I may not post in {', nor in '.join(refused)}. "
        "`/conductor config` shows what I lack."
    )
    if len(reason) + 1 + len(messages[0]) <= MESSAGE_LIMIT:
        return [f"{reason}\n{messages[0]}", *messages[1:]]
    return [reason[:MESSAGE_LIMIT], *messages]

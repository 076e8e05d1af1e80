"""``/release …``: translate interactions into ReleaseService calls and views into answers."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import operator_only
from bot.client import ConductorBot
from bot.render import member_line
from cogs.release._render import plural, ship_progress, status_embed
from cogs.release._views import ConfirmAbandon
from conductor.errors import ConductorError
from conductor.service import ReleaseService
from conductor.states import TaskState
from conductor.views import Actor, ReleaseView

log = logging.getLogger(__name__)

MAX_CHOICES = 25


def actor(interaction: discord.Interaction[ConductorBot]) -> Actor:
    return Actor(interaction.user.display_name, interaction.user.id)


def guild_id(interaction: discord.Interaction[ConductorBot]) -> int:
    if interaction.guild_id is None:
        raise ConductorError("Release commands work in a server, not in direct messages.")
    return interaction.guild_id


class ReleaseCog(commands.Cog):
    release = app_commands.Group(
        name="release", description="Drive the release train", guild_only=True
    )

    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot

    @property
    def service(self) -> ReleaseService:
        return self.bot.service

    # ---------------------------------------------------------------- commands

    @release.command(
        name="open", description="Open the assembling release (creates its notes thread)"
    )
    @app_commands.describe(name="A short name, e.g. deploy-foundation")
    @operator_only()
    async def open_(self, interaction: discord.Interaction[ConductorBot], name: str) -> None:
        view = await self.service.open_release(guild_id(interaction), name, actor(interaction))
        self.bot.release_changed(guild_id(interaction))
        opened = f"🧩 Opened `{view.slug}`. Add reviewed tasks with `/release add`."
        # Answer first: the thread is a second call that must not eat the 3-second window.
        await interaction.response.send_message(opened)
        thread_note = await self._open_thread(interaction, view)
        await interaction.edit_original_response(content=opened + thread_note)

    @release.command(name="add", description="Attach a reviewed task to the assembling release")
    @app_commands.describe(task="A reviewed task's slug")
    @operator_only()
    async def add(self, interaction: discord.Interaction[ConductorBot], task: str) -> None:
        view = await self.service.add_task(guild_id(interaction), task, actor(interaction))
        self.bot.release_changed(guild_id(interaction))
        await interaction.response.send_message(
            f"➕ `{task.strip().lower()}` joins `{view.slug}` ({len(view.members)} aboard)."
        )

    @release.command(name="remove", description="Detach a task from the assembling release")
    @app_commands.describe(task="A member's slug")
    @operator_only()
    async def remove(self, interaction: discord.Interaction[ConductorBot], task: str) -> None:
        view = await self.service.remove_task(guild_id(interaction), task, actor(interaction))
        self.bot.release_changed(guild_id(interaction))
        await interaction.response.send_message(
            f"➖ `{task.strip().lower()}` left `{view.slug}`; it is reviewed again ({len(view.members)} aboard)."
        )

    @release.command(name="status", description="The active release and the last shipped one")
    async def status(self, interaction: discord.Interaction[ConductorBot]) -> None:
        status = await self.service.status(guild_id(interaction))
        await interaction.response.send_message(embed=status_embed(status))

    @release.command(
        name="assemble", description="Complete the assembly (needs at least one member)"
    )
    @operator_only()
    async def assemble(self, interaction: discord.Interaction[ConductorBot]) -> None:
        view = await self.service.assemble(guild_id(interaction), actor(interaction))
        self.bot.release_changed(guild_id(interaction))
        members = "\n".join(member_line(m) for m in view.members)
        await interaction.response.send_message(
            f"📦 `{view.slug}` is assembled. Merge order:\n{members}"[:2000]
        )

    @release.command(name="ship", description="Ship the assembled release, then seal it")
    @operator_only()
    async def ship(self, interaction: discord.Interaction[ConductorBot]) -> None:
        gid = guild_id(interaction)
        ready = await self.service.ship_preflight(gid)  # refusals answer before the defer
        # The notes are this command's from the flip on: the reconcile keeps out of the way.
        with self.bot.notes.claim(gid, ready.slug):
            await self._ship(interaction, gid, ready)

    async def _ship(
        self, interaction: discord.Interaction[ConductorBot], gid: int, ready: ReleaseView
    ) -> None:
        await interaction.response.defer(thinking=True)
        progress = await interaction.followup.send(
            f"🚀 Shipping `{ready.slug}` ({plural(len(ready.members), 'member')})…\n⏳ state flip",
            wait=True,
        )

        async def sealing(step: str, view: ReleaseView) -> None:
            self.bot.release_changed(gid)
            await progress.edit(content=ship_progress(view, sealing=True))

        try:
            outcome = await self.bot.pipeline.ship(
                gid, actor(interaction), release_slug=ready.slug, progress=sealing
            )
        except Exception:
            await progress.edit(content=f"🚀 Shipping `{ready.slug}`…\n❌ state flip: not shipped")
            raise
        # Shipped: from here on nothing may undo it or leave it without notes.
        self.bot.release_changed(gid)
        posted = None
        if interaction.guild is not None:
            posted = await self.bot.notes.publish(
                interaction.guild,
                outcome.release,
                outcome.seal,
                operator_id=interaction.user.id,
                fallback=_messageable(interaction.channel),
            )
        try:
            await progress.edit(
                content=ship_progress(outcome.shipped, seal=outcome.seal, notes=posted)
            )
        except discord.HTTPException:
            log.warning("could not update the ship progress of %s", ready.slug, exc_info=True)

    @release.command(
        name="abandon", description="Abandon the active release (asks for confirmation)"
    )
    @app_commands.describe(reason="Why: kept on the release and shown in its thread")
    @operator_only()
    async def abandon(self, interaction: discord.Interaction[ConductorBot], reason: str) -> None:
        gid = guild_id(interaction)
        if not reason.strip():
            raise ConductorError("Abandoning needs a reason.")
        status = await self.service.status(gid)
        if status.active is None:
            raise ConductorError("No release is active, so there is nothing to abandon.")
        slug = status.active.slug
        confirm = ConfirmAbandon(interaction.user.id, slug)
        # Public on purpose: the team sees an abandon being asked for; only the asker can press.
        await interaction.response.send_message(
            f"{interaction.user.mention} asks to abandon `{slug}`: its {len(status.active.members)} "
            f"members go back to reviewed.\nReason: {reason}",
            view=confirm,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        timed_out = await confirm.wait()
        if timed_out or not confirm.confirmed:
            text = "⌛ Not abandoned: the confirmation expired." if timed_out else f"Kept `{slug}`."
            await interaction.edit_original_response(content=text, view=None)
            return
        view = await self.service.abandon(gid, reason, actor(interaction), release_slug=slug)
        self.bot.release_changed(gid)
        await interaction.edit_original_response(content=f"🗑️ Abandoned `{view.slug}`.", view=None)

    # ---------------------------------------------------------------- autocomplete

    @add.autocomplete("task")
    async def _reviewed_tasks(
        self, interaction: discord.Interaction[ConductorBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        tasks = await self.service.list_tasks(interaction.guild_id, TaskState.REVIEWED)
        return _choices(((t.slug, t.title) for t in tasks), current)

    @remove.autocomplete("task")
    async def _members(
        self, interaction: discord.Interaction[ConductorBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        status = await self.service.status(interaction.guild_id)
        members = status.active.members if status.active else ()
        return _choices(((t.slug, t.title) for t in members), current)

    # ---------------------------------------------------------------- helpers

    async def _open_thread(
        self, interaction: discord.Interaction[ConductorBot], view: ReleaseView
    ) -> str:
        """The release's notes thread; a failure here never undoes the open."""
        guild = interaction.guild
        channel = (await self.bot.bindings(guild)).notes_channel if guild else None
        if channel is None:
            return "\n(No notes channel is configured, so no release thread was created.)"
        try:
            thread = await channel.create_thread(
                name=view.slug, type=discord.ChannelType.public_thread
            )
            await self.service.set_notes_thread(guild_id(interaction), view.slug, thread.id)
        except discord.HTTPException:
            log.exception("could not create the notes thread for %s", view.slug)
            return "\n⚠️ The notes thread could not be created; see the log."
        return f"\nNotes: {thread.mention}"


def _messageable(channel: object) -> discord.abc.Messageable | None:
    return channel if isinstance(channel, discord.abc.Messageable) else None


def _choices(items: Iterable[tuple[str, str]], current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 choices whose slug or title contains what was typed so far."""
    needle = current.strip().lower()
    out: list[app_commands.Choice[str]] = []
    for slug, title in items:
        if needle in slug or needle in title.lower():
            out.append(app_commands.Choice(name=f"{slug} — {title}"[:100], value=slug))
        if len(out) == MAX_CHOICES:
            break
    return out

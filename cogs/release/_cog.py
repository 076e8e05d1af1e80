"""``/release …``: translate interactions into calls of the release service and the ship
pipeline, and views into answers."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.actions import RollbackButton
from bot.autocomplete import choices
from bot.checks import operator_only
from bot.client import ConductorBot
from bot.tree import answered_elsewhere, leave
from cogs.release._render import (
    assembly_progress,
    assembly_text,
    held_prompt,
    history_text,
    lock_text,
    opened_text,
    plural,
    redeploy_progress,
    redeploy_prompt,
    ship_progress,
    status_embed,
    takeover_prompt,
    unlock_text,
)
from cogs.release._rollback import FROM_COMMAND, ask_reason, confirm_and_roll_back
from cogs.release._runs import drive_run
from cogs.release._stats import answer_stats
from cogs.release._views import Confirm
from conductor.errors import ConductorError, HeldTrain, LockHeld
from conductor.releases.assembly import AssemblyStep
from conductor.releases.git import GitFailed
from conductor.releases.runs.driver import RunRequest
from conductor.releases.service import HISTORY_DEFAULT, HISTORY_MAX, Releases
from conductor.states import ReleaseState, RunKind, TaskState
from conductor.stats import DAYS_DEFAULT, DAYS_MAX
from conductor.text import NAME_LIMIT, clip, version
from conductor.views import Actor, Hold, LockView, ReleaseView

log = logging.getLogger(__name__)

#: the answers carry text from agents (titles, branch and file names, test output): no pings
NO_PINGS = discord.AllowedMentions.none()
NOTHING_DONE = "⌛ Nothing done: the confirmation expired."


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
    def releases(self) -> Releases:
        return self.bot.releases

    # ---------------------------------------------------------------- commands

    @release.command(
        name="open", description="Open the assembling release (creates its notes thread)"
    )
    @app_commands.describe(name="A short name, e.g. deploy-foundation")
    @operator_only()
    async def open_(self, interaction: discord.Interaction[ConductorBot], name: str) -> None:
        try:
            view = await self.releases.open(guild_id(interaction), name, actor(interaction))
        except HeldTrain as held:  # production's last ship is red, or half rolled back: ask
            await self._open_over_held(interaction, name, held.held)
            return
        self.bot.release_changed(guild_id(interaction))
        opened = f"🧩 Opened `{view.slug}`. Add reviewed tasks with `/release add`."
        # Answer first: the thread is a second call that must not eat the 3-second window.
        try:
            await interaction.response.send_message(opened)
        except discord.HTTPException as error:
            # Another process of the bot answered first (its refusal: this process opened
            # the release): the release still gets its thread, and the answer says so below.
            if not answered_elsewhere(error):
                raise
            leave(interaction)
        thread_note = await self._open_thread(interaction, view)
        await interaction.edit_original_response(content=opened + thread_note)

    @release.command(name="add", description="Attach a reviewed task to the assembling release")
    @app_commands.describe(task="A reviewed task's slug")
    @operator_only()
    async def add(self, interaction: discord.Interaction[ConductorBot], task: str) -> None:
        view = await self.releases.add_task(guild_id(interaction), task, actor(interaction))
        self.bot.release_changed(guild_id(interaction))
        await interaction.response.send_message(
            f"➕ `{task.strip().lower()}` joins `{view.slug}` ({len(view.members)} aboard)."
        )

    @release.command(name="remove", description="Detach a task from the assembling release")
    @app_commands.describe(task="A member's slug")
    @operator_only()
    async def remove(self, interaction: discord.Interaction[ConductorBot], task: str) -> None:
        view = await self.releases.remove_task(guild_id(interaction), task, actor(interaction))
        self.bot.release_changed(guild_id(interaction))
        await interaction.response.send_message(
            f"➖ `{task.strip().lower()}` left `{view.slug}`; it is reviewed again ({len(view.members)} aboard)."
        )

    @release.command(
        name="status", description="The lock, the active release and what production runs"
    )
    async def status(self, interaction: discord.Interaction[ConductorBot]) -> None:
        status = await self.releases.status(guild_id(interaction))
        await interaction.response.send_message(embed=status_embed(status))

    @release.command(
        name="assemble", description="Complete the assembly (needs at least one member)"
    )
    @operator_only()
    async def assemble(self, interaction: discord.Interaction[ConductorBot]) -> None:
        gid = guild_id(interaction)
        assembly = self.bot.assembly
        if not assembly.slow:  # no git: the state change alone, answered at once
            outcome = await assembly.assemble(gid, actor(interaction))
            self.bot.release_changed(gid)
            await interaction.response.send_message(
                assembly_text(outcome), allowed_mentions=NO_PINGS
            )
            return
        ready = await self.releases.assembly_preflight(gid)  # refusals answer before the defer
        await interaction.response.defer(thinking=True)

        async def step(name: AssemblyStep, view: ReleaseView) -> None:
            await interaction.edit_original_response(
                content=assembly_progress(view, name), allowed_mentions=NO_PINGS
            )

        try:
            outcome = await assembly.assemble(
                gid, actor(interaction), release_slug=ready.slug, progress=step
            )
        except GitFailed as failed:
            # The team sees why (a conflict, a missing branch); nothing changed.
            await interaction.edit_original_response(
                content=f"❌ `{ready.slug}` was not assembled: {failed}"[:2000],
                allowed_mentions=NO_PINGS,
            )
            return
        except Exception:
            await interaction.edit_original_response(
                content=f"❌ `{ready.slug}` was not assembled."
            )
            raise
        self.bot.release_changed(gid)
        await interaction.edit_original_response(
            content=assembly_text(outcome), allowed_mentions=NO_PINGS
        )

    @release.command(name="ship", description="Ship the assembled release, then seal it")
    @operator_only()
    async def ship(self, interaction: discord.Interaction[ConductorBot]) -> None:
        gid, who = guild_id(interaction), actor(interaction)
        # refusals (a lock too) answer before the defer: the start's own rule, read-only
        ready = await self.bot.runs.plan(RunKind.SHIP, gid, who)
        release = ready.release
        await interaction.response.defer(thinking=True)
        await drive_run(
            self.bot,
            interaction,
            RunKind.SHIP,
            slug=release.slug,
            request=RunRequest(release.slug),
            starting=f"🚀 Shipping `{release.slug}` ({plural(len(release.members), 'member')})…",
            render=lambda run, now: ship_progress(run, now or release),
        )

    @release.command(
        name="redeploy",
        description="Deploy again exactly what production runs, then the health gate and a seal",
    )
    @app_commands.describe(reason="Why: kept on the run and shown in the release's thread")
    @operator_only()
    async def redeploy(
        self, interaction: discord.Interaction[ConductorBot], reason: str | None = None
    ) -> None:
        gid, who = guild_id(interaction), actor(interaction)
        plan = await self.bot.runs.plan(RunKind.REDEPLOY, gid, who, RunRequest(reason=reason))
        release = plan.release
        if not await Confirm.ask(
            interaction,
            redeploy_prompt(interaction.user.mention, plan),
            asked="redeploy",
            yes="Redeploy",
            no="Cancel",
            declined=f"Not redeployed: production runs `{release.slug}` as it is.",
            expired="⌛ Not redeployed: the confirmation expired.",
        ):
            return
        await drive_run(
            self.bot,
            interaction,
            RunKind.REDEPLOY,
            slug=release.slug,
            request=RunRequest(release.slug, plan.reason),
            starting=f"🔁 Redeploying `{release.slug}`{version(release)}…",
            render=lambda run, now: redeploy_progress(run, now or release),
        )

    @release.command(
        name="abandon", description="Abandon the active release (asks for confirmation)"
    )
    @app_commands.describe(reason="Why: kept on the release and shown in its thread")
    @operator_only()
    async def abandon(self, interaction: discord.Interaction[ConductorBot], reason: str) -> None:
        gid = guild_id(interaction)
        if not reason.strip():
            raise ConductorError("Abandoning needs a reason.")
        status = await self.releases.status(gid)
        if status.active is None:
            raise ConductorError("No release is active, so there is nothing to abandon.")
        slug = status.active.slug
        if not await Confirm.ask(
            interaction,
            f"{interaction.user.mention} asks to abandon `{slug}`: its {len(status.active.members)} "
            f"members go back to reviewed.\nReason: {reason}",
            asked="abandon",
            yes="Abandon",
            no="Keep it",
            declined=f"Kept `{slug}`.",
            expired="⌛ Not abandoned: the confirmation expired.",
        ):
            return
        view = await self.releases.abandon(gid, reason, actor(interaction), release_slug=slug)
        self.bot.release_changed(gid)
        await interaction.edit_original_response(content=f"🗑️ Abandoned `{view.slug}`.", view=None)

    @release.command(
        name="lock", description="Lock the train: no open or ship until /release unlock"
    )
    @app_commands.describe(reason="Why: shown with the lock on the board and in /release status")
    @operator_only()
    async def lock_(self, interaction: discord.Interaction[ConductorBot], reason: str) -> None:
        gid = guild_id(interaction)
        try:
            outcome = await self.bot.locks.lock(gid, reason, actor(interaction))
        except LockHeld as held:  # another operator holds it: a takeover, confirmed
            await self._take_over(interaction, reason, held.lock)
            return
        if outcome.changed:
            self.bot.release_changed(gid)
        await interaction.response.send_message(lock_text(outcome), allowed_mentions=NO_PINGS)

    @release.command(name="unlock", description="Lift your lock: open and ship run again")
    @operator_only()
    async def unlock(self, interaction: discord.Interaction[ConductorBot]) -> None:
        gid = guild_id(interaction)
        released = await self.bot.locks.unlock(gid, actor(interaction))
        self.bot.release_changed(gid)
        await interaction.response.send_message(
            unlock_text(released, interaction.user.display_name), allowed_mentions=NO_PINGS
        )

    @release.command(
        name="history", description="The last shipped releases with their seals and rollbacks"
    )
    @app_commands.describe(count=f"How many (1 to {HISTORY_MAX}, default {HISTORY_DEFAULT})")
    async def history(
        self, interaction: discord.Interaction[ConductorBot], count: int = HISTORY_DEFAULT
    ) -> None:
        entries = await self.releases.history(guild_id(interaction), count)
        await interaction.response.send_message(
            history_text(entries, count), allowed_mentions=NO_PINGS
        )

    @release.command(
        name="stats",
        description="Delivery metrics: deploy frequency, lead time, failures, restores, "
        "forecasts, cost",
    )
    @app_commands.describe(days=f"How far back (1 to {DAYS_MAX} days, default {DAYS_DEFAULT})")
    async def stats(
        self, interaction: discord.Interaction[ConductorBot], days: int = DAYS_DEFAULT
    ) -> None:
        await answer_stats(interaction, days)

    # ---------------------------------------------------------------- autocomplete

    @add.autocomplete("task")
    async def _reviewed_tasks(
        self, interaction: discord.Interaction[ConductorBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        tasks = await self.bot.tasks.suggest(interaction.guild_id, current, TaskState.REVIEWED)
        return choices(
            ((t.slug, f"{t.slug} — {t.title}", f"{t.slug}\n{t.title}") for t in tasks), current
        )

    @remove.autocomplete("task")
    async def _members(
        self, interaction: discord.Interaction[ConductorBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        status = await self.releases.status(interaction.guild_id)
        members = status.active.members if status.active else ()
        return choices(
            ((t.slug, f"{t.slug} — {t.title}", f"{t.slug}\n{t.title}") for t in members), current
        )

    # ---------------------------------------------------------------- helpers

    async def _open_over_held(
        self, interaction: discord.Interaction[ConductorBot], name: str, held: Hold
    ) -> None:
        """Ask the operator to confirm opening over what holds the train (public: the team
        sees it asked; only the asker can press), then open, recording who confirmed."""
        gid = guild_id(interaction)
        if not await Confirm.ask(
            interaction,
            held_prompt(interaction.user.mention, name, held),
            asked="open over a held train",
            yes="Open anyway",
            no="Don't open",
            declined=f"Nothing done: `{held.slug}` still holds the train.",
            expired=NOTHING_DONE,
        ):
            return
        try:
            view = await self.releases.open(gid, name, actor(interaction), over_held=held.slug)
        except ConductorError as refused:  # locked, or another release opened, meanwhile
            await interaction.edit_original_response(
                content=f"❌ Not opened: {refused}"[:2000], view=None, allowed_mentions=NO_PINGS
            )
            return
        self.bot.release_changed(gid)
        opened = opened_text(view)
        await interaction.edit_original_response(content=opened, view=None)
        thread_note = await self._open_thread(interaction, view)
        await interaction.edit_original_response(content=opened + thread_note)

    async def _take_over(
        self, interaction: discord.Interaction[ConductorBot], reason: str, lock: LockView
    ) -> None:
        """Ask the operator to confirm taking the lock over from its holder (public), then
        take it over, recorded."""
        gid = guild_id(interaction)
        if not await Confirm.ask(
            interaction,
            takeover_prompt(interaction.user.mention, lock, reason),
            asked="take the lock over",
            yes="Take over",
            no="Leave it",
            declined=f"Nothing done: {clip(lock.holder, NAME_LIMIT)} still holds the lock.",
            expired=NOTHING_DONE,
        ):
            return
        try:
            outcome = await self.bot.locks.take_over(gid, reason, actor(interaction), expected=lock)
        except ConductorError as refused:  # the lock changed meanwhile
            await interaction.edit_original_response(
                content=f"❌ Not taken over: {refused}"[:2000], view=None, allowed_mentions=NO_PINGS
            )
            return
        self.bot.release_changed(gid)
        await interaction.edit_original_response(
            content=lock_text(outcome), view=None, allowed_mentions=NO_PINGS
        )

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
            await self.releases.set_notes_thread(guild_id(interaction), view.slug, thread.id)
        except discord.HTTPException:
            log.exception("could not create the notes thread for %s", view.slug)
            return "\n⚠️ The notes thread could not be created; see the log."
        return f"\nNotes: {thread.mention}"

    # ---------------------------------------------------------------- rollback

    async def cog_load(self) -> None:
        # The alert's Roll back buttons, heard whenever they were posted (before a restart too)
        self.bot.add_dynamic_items(RollbackButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RollbackButton)

    @release.command(
        name="rollback",
        description="Roll production back from the last shipped release (asks for confirmation)",
    )
    @app_commands.describe(
        release="The last shipped release (the default)",
        reason="Why: kept on the release and shown in its thread",
    )
    @operator_only()
    async def rollback(
        self,
        interaction: discord.Interaction[ConductorBot],
        release: str | None = None,
        reason: str | None = None,
    ) -> None:
        why = (reason or "").strip() or FROM_COMMAND
        plan = await self.bot.runs.plan(
            RunKind.ROLLBACK, guild_id(interaction), actor(interaction), RunRequest(release, why)
        )
        await confirm_and_roll_back(self.bot, interaction, plan, why)

    @rollback.autocomplete("release")
    async def _shipped(
        self, interaction: discord.Interaction[ConductorBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        recent = await self.releases.recent(interaction.guild_id, limit=50)
        return choices(
            (
                (r.slug, f"{r.slug} v{r.version}", r.slug)
                for r in recent
                if r.state is ReleaseState.SHIPPED
            ),
            current,
        )

    async def rollback_pressed(
        self, interaction: discord.Interaction[ConductorBot], release_slug: str
    ) -> None:
        """The Roll back button of a red alert (``bot.actions``)."""
        await ask_reason(self.bot, interaction, release_slug)

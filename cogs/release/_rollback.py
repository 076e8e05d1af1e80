"""The rollback at the edge: the reason asked for after the alert's Roll back (a modal), the
confirmation (it names the release, what production runs now and after, and the exact
commands; only the operator who asked can press it, an operator still, and it expires), and
the run's one progress message."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.actions import answered
from bot.checks import require_operator
from cogs.release._render import step_line
from cogs.release._views import CONFIRM_TIMEOUT, Confirm
from conductor.errors import ConductorError
from conductor.releases.rollback import RollbackPaused, RollbackPlan
from conductor.releases.runs import RunView, StepView
from conductor.states import ReleaseState
from conductor.text import clip, fenced, release_line, short_sha, version
from conductor.views import Actor, ReleaseView
from store.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.client import ConductorBot

log = logging.getLogger(__name__)

#: the reasons kept when the operator gives none
FROM_ALERT = "rolled back from the red alert"
FROM_COMMAND = "rolled back with /release rollback"
NO_PINGS = discord.AllowedMentions.none()


class RollbackReason(discord.ui.Modal):
    """Asked after the alert's Roll back: why (optional). Its submit posts the confirmation."""

    reason: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Why roll back? (kept on the release)",
        custom_id="reason",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=500,
        placeholder=FROM_ALERT,
    )

    def __init__(
        self, plan: RollbackPlan, then: Callable[[discord.Interaction[Any], str], Awaitable[None]]
    ) -> None:
        super().__init__(title=clip(f"Roll back {plan.release.slug}?", 45), timeout=600)
        self.then = then

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await answered(interaction, self.then(interaction, self.reason.value or FROM_ALERT))


# ---------------------------------------------------------------- the words


def _release(release: ReleaseView) -> str:
    merge = f", merge `{short_sha(release.merge_sha)}`" if release.merge_sha else ""
    shipped = f", shipped by {release.shipped_by}" if release.shipped_by else ""
    when = f" <t:{int(release.shipped_at.timestamp())}:R>" if release.shipped_at else ""
    return f"`{release.slug}`{version(release)}{merge}{shipped}{when}"


def confirmation_text(plan: RollbackPlan, reason: str, asker: str) -> str:
    """What the operator confirms: the release, production now and after, the exact
    commands, the other steps, the reason."""
    release, previous = plan.release, plan.previous
    after = (
        _release(previous)
        if previous is not None
        else "what ran before it (no release shipped before it)"
    )
    head = (
        f"⏪ {asker} asks to roll back `{release.slug}`{version(release)}.\n"
        f"Production now: {_release(release)}\n"
        f"Production after: {after}\n"
        f"Why: {clip(' '.join(reason.split()), 300)}"
    )
    tail = f"\nOnly {asker} can confirm, within {CONFIRM_TIMEOUT:g} s."
    steps = "\n".join(f"• {step}" for step in plan.steps)
    room = 2000 - len(head) - len(tail) - len(steps) - 40
    commands = (
        f"\nConductor runs:\n{fenced(clip(chr(10).join(plan.commands), max(room, 100)))}"
        if plan.commands
        else "\nConductor runs no command (no `[git]`, no deploy command)."
    )
    return clip(f"{head}{commands}\nThen:\n{steps}{tail}", 2000)


STEP_LABELS = {
    "revert": "revert",
    "deploy": "deploy",
    "health": "health gate",
    "flip": "state flip",
    "seal": "smoke seal",
    "notes": "notes",
}
RUNNING_TEXT = {
    "revert": "reverting the release on main…",
    "deploy": "deploying the previous version…",
    "health": "waiting for production to answer 200…",
    "flip": "rolling the release back, its members to reviewed…",
    "seal": "checking production…",
    "notes": "posting…",
}


def _step_line(step: StepView) -> str:
    return step_line(step, STEP_LABELS, RUNNING_TEXT)


def rollback_progress(run: RunView, plan: RollbackPlan, release: ReleaseView | None = None) -> str:
    """The rollback's one progress message: the release, then one line per step."""
    if release is not None and release.state is ReleaseState.ROLLED_BACK:
        head = f"{release_line(release)} · {plan.production}"
    else:
        head = f"⏪ Rolling back `{plan.release.slug}`{version(plan.release)} · {plan.production}"
    return "\n".join([head, *(_step_line(step) for step in run.steps)])[:2000]


# ---------------------------------------------------------------- the flow


async def confirm_and_roll_back(
    bot: ConductorBot, interaction: discord.Interaction[Any], plan: RollbackPlan, reason: str
) -> None:
    """Answer ``interaction`` with the confirmation; on the asker's confirm, run the rollback,
    editing that message into its progress."""
    guild_id = interaction.guild_id
    if guild_id is None:
        raise ConductorError("Release commands work in a server, not in direct messages.")
    slug = plan.release.slug
    confirm = Confirm(interaction.user.id, asked="roll back", yes="Roll back", no="Cancel")
    # Public on purpose: the team sees a rollback being asked for; only the asker can press.
    await interaction.response.send_message(
        confirmation_text(plan, reason, interaction.user.mention),
        view=confirm,
        allowed_mentions=NO_PINGS,
    )
    timed_out = await confirm.wait()
    if timed_out or not confirm.confirmed:
        text = (
            f"⌛ Not rolled back: the confirmation expired. `{slug}` stays."
            if timed_out
            else f"Not rolled back: `{slug}` stays."
        )
        await interaction.edit_original_response(content=text, view=None)
        return
    await interaction.edit_original_response(
        content=f"⏪ Rolling back `{slug}`{version(plan.release)}…", view=None
    )

    async def progress(run: RunView) -> None:
        await interaction.edit_original_response(
            content=rollback_progress(run, plan), allowed_mentions=NO_PINGS
        )

    who = Actor(interaction.user.display_name, interaction.user.id)
    try:
        outcome = await bot.rollbacks.roll_back(
            guild_id,
            who,
            release_slug=slug,
            reason=reason,
            progress=progress,
            reply_to=interaction.channel,
        )
    except (ConductorError, DatabaseUnavailable) as refused:
        said = str(refused)
        if not isinstance(refused, RollbackPaused):
            said = f"❌ `{slug}` was not rolled back: {said}"
        await interaction.edit_original_response(content=said[:2000], allowed_mentions=NO_PINGS)
        return
    except Exception:
        await interaction.edit_original_response(content=f"❌ `{slug}` was not rolled back.")
        raise
    bot.release_changed(guild_id)
    if outcome.run is None:
        return
    try:
        await interaction.edit_original_response(
            content=rollback_progress(outcome.run, plan, outcome.release),
            allowed_mentions=NO_PINGS,
        )
    except discord.HTTPException:
        log.warning("could not update the rollback progress of %s", slug, exc_info=True)


async def ask_reason(
    bot: ConductorBot, interaction: discord.Interaction[Any], release_slug: str
) -> None:
    """The alert's Roll back was pressed: an operator (checked now) is asked why, then to
    confirm. A refusal (not an operator, not the last shipped, rolled back already, a run in
    progress) is answered at once, before the modal."""
    await require_operator(interaction)
    if interaction.guild_id is None:
        raise ConductorError("Release commands work in a server, not in direct messages.")
    plan = await bot.rollbacks.plan(interaction.guild_id, release_slug)

    async def then(submitted: discord.Interaction[Any], reason: str) -> None:
        await confirm_and_roll_back(bot, submitted, plan, reason)

    await interaction.response.send_modal(RollbackReason(plan, then))

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
from cogs.release._render import run_progress
from cogs.release._runs import drive_run
from cogs.release._views import CONFIRM_TIMEOUT, Confirm
from conductor.errors import ConductorError
from conductor.releases.runs.driver import Plan, RunRequest
from conductor.releases.runs.store import RunView
from conductor.states import ReleaseState, RunKind
from conductor.text import clip, fenced, release_line, short_sha, version
from conductor.views import Actor, ReleaseView

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
        self, plan: Plan, then: Callable[[discord.Interaction[Any], str], Awaitable[None]]
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


def confirmation_text(plan: Plan, reason: str, asker: str) -> str:
    """What the operator confirms: the release, production now and after (by commit when
    main moved since the release shipped), the exact commands, the other steps, the
    reason."""
    release, previous = plan.release, plan.previous
    if plan.after is not None:  # main moved since the release shipped: by commit
        after = plan.after
    elif previous is not None:
        after = _release(previous)
    else:
        after = "what ran before it (no release shipped before it)"
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


def rollback_progress(run: RunView, plan: Plan, release: ReleaseView | None = None) -> str:
    """The rollback's one progress message: the release, then one line per step."""
    if release is not None and release.state is ReleaseState.ROLLED_BACK:
        head = f"{release_line(release)} · {plan.production}"
    else:
        head = f"⏪ Rolling back `{plan.release.slug}`{version(plan.release)} · {plan.production}"
    return run_progress(head, run)


# ---------------------------------------------------------------- the flow


async def confirm_and_roll_back(
    bot: ConductorBot, interaction: discord.Interaction[Any], plan: Plan, reason: str
) -> None:
    """Answer ``interaction`` with the confirmation; on the asker's confirm, run the rollback,
    editing that message into its progress."""
    slug = plan.release.slug
    if not await Confirm.ask(
        interaction,
        confirmation_text(plan, reason, interaction.user.mention),
        asked="roll back",
        yes="Roll back",
        no="Cancel",
        declined=f"Not rolled back: `{slug}` stays.",
        expired=f"⌛ Not rolled back: the confirmation expired. `{slug}` stays.",
    ):
        return
    await drive_run(
        bot,
        interaction,
        RunKind.ROLLBACK,
        slug=slug,
        request=RunRequest(slug, reason),
        starting=f"⏪ Rolling back `{slug}`{version(plan.release)}…",
        render=lambda run, release: rollback_progress(run, plan, release),
    )


async def ask_reason(
    bot: ConductorBot, interaction: discord.Interaction[Any], release_slug: str
) -> None:
    """The alert's Roll back was pressed: an operator (checked now) is asked why, then to
    confirm. A refusal (not an operator, not the last shipped, rolled back already, a run in
    progress) is answered at once, before the modal."""
    await require_operator(interaction)
    if interaction.guild_id is None:
        raise ConductorError("Release commands work in a server, not in direct messages.")
    who = Actor(interaction.user.display_name, interaction.user.id)
    plan = await bot.runs.plan(
        RunKind.ROLLBACK, interaction.guild_id, who, RunRequest(release_slug, FROM_ALERT)
    )

    async def then(submitted: discord.Interaction[Any], reason: str) -> None:
        await confirm_and_roll_back(bot, submitted, plan, reason)

    await interaction.response.send_modal(RollbackReason(plan, then))

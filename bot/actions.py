"""The controls the domain's alerts offer (:class:`~conductor.releases.runs.sink.AlertAction`),
as Discord buttons that still work after a restart.

A button's ``custom_id`` carries what it acts on (``conductor:rollback:<release slug>``); the
bot knows the template from start-up (discord.py's ``DynamicItem``, registered by the release
cog), so a press on an alert posted before a restart, or by another process, is still heard.
The press is handed to the cog that owns the action; what it raises is answered here, since a
component's errors never reach the command tree.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any, Protocol, runtime_checkable

import discord

from bot.tree import answer, answered_elsewhere, leave, user_text
from conductor.releases.runs.sink import AlertAction

log = logging.getLogger(__name__)

#: Discord's limit on a component's custom_id
CUSTOM_ID_LIMIT = 100
ROLLBACK_PREFIX = "conductor:rollback:"


@runtime_checkable
class RollbackHandler(Protocol):
    """The cog that answers a press of Roll back (the release cog)."""

    async def rollback_pressed(
        self, interaction: discord.Interaction[Any], release_slug: str
    ) -> None: ...


class RollbackButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"conductor:rollback:(?P<slug>[a-z0-9][a-z0-9._-]{0,80})",
):
    """**Roll back** on a red alert: asks the presser (an operator, checked when pressed) to
    confirm the rollback of the release in its ``custom_id``."""

    def __init__(self, release_slug: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Roll back",
                style=discord.ButtonStyle.danger,
                emoji="⏪",
                custom_id=f"{ROLLBACK_PREFIX}{release_slug}",
            )
        )
        self.release_slug = release_slug

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> RollbackButton:
        return cls(match["slug"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog("ReleaseCog")
        if not isinstance(cog, RollbackHandler):
            await answer(interaction, "Rolling back is not available right now; try again soon.")
            return
        await answered(interaction, cog.rollback_pressed(interaction, self.release_slug))


def action_view(action: AlertAction | None) -> discord.ui.View | None:
    """The alert's controls for ``action`` (None: none, or a release whose name makes too long
    an id: ``/release rollback`` does the same)."""
    if action is None or action.kind != "rollback":
        return None
    if len(ROLLBACK_PREFIX + action.release_slug) > CUSTOM_ID_LIMIT:
        return None
    try:
        button = RollbackButton(action.release_slug)
    except ValueError:  # a slug the template does not take
        log.warning("no Roll back button for %r: not a release slug", action.release_slug)
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(button)
    return view


async def answered(interaction: discord.Interaction[Any], work: Any) -> None:
    """Await ``work`` (a press, a modal's submit); a refusal is answered ephemerally as written,
    anything else as "something went wrong (ref …)" with the traceback logged under the ref,
    as the command tree does for commands."""
    try:
        await work
    except Exception as error:
        if answered_elsewhere(error):  # another process of the bot answered it first
            leave(interaction)
            return
        text = user_text(error)
        if text is None:
            ref = secrets.token_hex(3).upper()
            log.error("a component's action failed (ref %s)", ref, exc_info=error)
            text = f"Something went wrong (ref {ref}). The operators can find it in the log."
        try:
            await answer(interaction, text)
        except discord.HTTPException:
            log.exception("could not answer interaction %s", interaction.id)

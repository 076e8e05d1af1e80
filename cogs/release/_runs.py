"""Any kind of run at the edge, once: its one progress message (the interaction's answer,
edited in place through each step; past the interaction token's 15 minutes, a message in the
channel edited instead), the refusal or pause in words, and its final state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord

from conductor.errors import ConductorError
from conductor.releases.runs.driver import RunOutcome, RunPaused, RunRequest
from conductor.releases.runs.store import RunView
from conductor.states import RunKind
from conductor.views import Actor, ReleaseView
from store.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.client import ConductorBot

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
#: an interaction's token lasts 15 minutes; past this the progress moves to the channel
TOKEN_MARGIN = timedelta(minutes=14)

#: the progress message's text: the run as it stands, and the release (as it stands at the
#: end, else as it was when the run began)
Render = Callable[[RunView, ReleaseView | None], str]


class ProgressMessage:
    """Where a run's progress shows: the interaction's answer while its token lasts, then a
    message of its own in the channel (a long deploy and a long health gate outlive the
    token), kept current the same way."""

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction
        self.moved: discord.Message | None = None

    def _token_left(self) -> bool:
        return discord.utils.utcnow() < self.interaction.created_at + TOKEN_MARGIN

    async def show(self, text: str) -> None:
        text = text[:2000]
        if self.moved is None and self._token_left():
            try:
                await self.interaction.edit_original_response(
                    content=text, view=None, allowed_mentions=NO_PINGS
                )
                return
            except (discord.NotFound, discord.Forbidden) as error:  # the token gave out early
                log.info("the progress moves to the channel: %s", error)
        if self.moved is not None:
            await self.moved.edit(content=text, allowed_mentions=NO_PINGS)
            return
        channel = self.interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("a run's progress has nowhere to go: %s", text.splitlines()[0])
            return
        self.moved = await channel.send(text, allowed_mentions=NO_PINGS)


async def drive_run(
    bot: ConductorBot,
    interaction: discord.Interaction[Any],
    kind: RunKind,
    *,
    slug: str,
    request: RunRequest,
    starting: str,
    render: Render,
) -> RunOutcome | None:
    """Run ``kind`` for the operator of ``interaction`` (answered already: deferred, or a
    confirmation), showing ``starting`` and then ``render`` of each step in its one progress
    message. A refusal or a pause is said there, never "…ing" forever. The outcome, or None
    when it did not start."""
    guild_id = interaction.guild_id
    if guild_id is None:
        raise ConductorError("Release commands work in a server, not in direct messages.")
    done = bot.runs.kind(kind).words.done
    message = ProgressMessage(interaction)
    # if even this cannot be shown, nothing is started
    await message.show(starting)

    async def progress(run: RunView) -> None:
        await message.show(render(run, None))

    who = Actor(interaction.user.display_name, interaction.user.id)
    try:
        outcome = await bot.runs.start(
            kind, guild_id, who, request=request, progress=progress, reply_to=interaction.channel
        )
    except (ConductorError, DatabaseUnavailable) as refused:
        # a run the database stopped midway says where it stopped and that it goes on
        said = str(refused)
        if not isinstance(refused, RunPaused):
            said = f"❌ `{slug}` was not {done}: {said}"
        await message.show(said)
        return None
    except Exception:
        await message.show(f"❌ `{slug}` was not {done}.")
        raise
    bot.release_changed(guild_id)
    if outcome.run is not None:
        try:
            await message.show(render(outcome.run, outcome.release))
        except discord.HTTPException:
            log.warning("could not show the end of the %s of %s", kind, slug, exc_info=True)
    return outcome

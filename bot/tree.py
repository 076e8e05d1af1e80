"""The single place where exceptions from app commands become answers.

A :class:`~conductor.errors.ConductorError` (or a :class:`Refusal` from a check) carries text
meant for the user and is answered ephemerally as it is. So does a database that could not
take the command (:class:`~store.errors.DatabaseUnavailable`: busy, full, read-only, its file
gone): the answer says which, and that nothing was changed. Anything else is a bug: the user
gets "something went wrong (ref XXXX)" and the traceback is logged under the same ref.

Several processes of the bot on one shard each get every interaction; Discord takes the first
answer and refuses the others (40060, "already acknowledged"). The first answer is the claim:
a process whose answer is refused so has lost the interaction to another one and leaves it,
saying so in its log (:func:`answered_elsewhere`), never as an error.
"""

from __future__ import annotations

import contextlib
import logging
import secrets

import discord
from discord import app_commands

from conductor.errors import ConductorError
from store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

#: Discord's code for an interaction whose first answer came too late (after 3 seconds)
UNKNOWN_INTERACTION = 10062
#: Discord's code for a second first answer: another process of this bot answered first
ALREADY_ACKNOWLEDGED = 40060


class Refusal(app_commands.CheckFailure):
    """A check said no (a missing role, the wrong channel); the text is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _original(error: BaseException) -> BaseException:
    return error.original if isinstance(error, app_commands.CommandInvokeError) else error


def answered_elsewhere(error: BaseException) -> bool:
    """Whether Discord refused this process's first answer to an interaction because another
    process of the bot gave one first (the interaction is that one's)."""
    error = _original(error)
    return isinstance(error, discord.HTTPException) and error.code == ALREADY_ACKNOWLEDGED


def leave(interaction: discord.Interaction[discord.Client]) -> None:
    """Log that another process of the bot answered ``interaction`` first: this one leaves it."""
    what = interaction.command.qualified_name if interaction.command else "a component"
    log.info(
        "interaction %s (%s) was answered by another process of this bot; leaving it to that one",
        interaction.id,
        f"/{what}" if interaction.command else what,
    )


def user_text(error: BaseException) -> str | None:
    """The user-facing text of a refusal, or None when the error is a bug."""
    error = _original(error)
    if isinstance(error, ConductorError | Refusal | DatabaseUnavailable):
        return str(error.message)
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.TransformerError | app_commands.CommandNotFound):
        return str(error)
    return None


async def answer(interaction: discord.Interaction[discord.Client], text: str) -> None:
    """Answer ephemerally, whatever the interaction's state (Red's ``_send_from_interaction``):
    not answered yet → respond; answered or deferred → followup; expired (its token lasts
    15 minutes), or too late for a first answer (3 seconds: a command that waited on a busy
    database) → the channel, naming the user without pinging; answered first by another
    process of the bot → nothing (that process's answer stands)."""
    if interaction.is_expired():
        await _in_channel(interaction, text)
    elif interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        try:
            await interaction.response.send_message(text, ephemeral=True)
        except discord.NotFound as error:
            if error.code != UNKNOWN_INTERACTION:
                raise
            await _in_channel(interaction, text)
        except discord.HTTPException as error:
            if not answered_elsewhere(error):
                raise
            leave(interaction)


async def _in_channel(interaction: discord.Interaction[discord.Client], text: str) -> None:
    channel = interaction.channel
    if isinstance(channel, discord.abc.Messageable):
        await channel.send(
            f"{interaction.user.mention} {text}", allowed_mentions=discord.AllowedMentions.none()
        )
    else:
        log.warning("interaction %s expired with nowhere to answer: %s", interaction.id, text)


class ConductorTree(app_commands.CommandTree[discord.Client]):
    async def _call(self, interaction: discord.Interaction[discord.Client]) -> None:
        """Each slash command and autocomplete, with the board held back meanwhile: the
        board's thread shares this process's GIL (``bot.web.server.BotFirst``). discord.py's
        one method through which every application command is run (pinned version)."""
        board = getattr(self.client, "board_server", None)
        first = board.bot_first.command() if board is not None else contextlib.nullcontext()
        with first:
            await super()._call(interaction)

    async def on_error(
        self,
        interaction: discord.Interaction[discord.Client],
        error: app_commands.AppCommandError,
        /,
    ) -> None:
        if answered_elsewhere(error):  # the command's own first answer: another process's
            leave(interaction)
            return
        text = user_text(error)
        command = interaction.command.qualified_name if interaction.command else "?"
        original = _original(error)
        if text is None:
            ref = secrets.token_hex(3).upper()
            log.error("command /%s failed (ref %s)", command, ref, exc_info=original)
            text = f"Something went wrong (ref {ref}). The operators can find it in the log."
        elif isinstance(original, DatabaseUnavailable):
            log.warning(
                "command /%s: the database is %s (%s)", command, original.reason, original.detail
            )
        try:
            await answer(interaction, text)
        except discord.HTTPException:
            log.exception("could not answer interaction %s", interaction.id)

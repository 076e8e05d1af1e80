"""``/seal [release]``: re-run the suite on the last shipped release (or the one named),
record the new verdict (the old one stays in the history), post it in the release's thread,
ping on red and update the board."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import choices
from bot.checks import operator_only
from bot.client import ConductorBot
from conductor.errors import ConductorError, NotConfigured
from conductor.states import ReleaseState
from conductor.views import Actor

log = logging.getLogger(__name__)


class SealCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="seal", description="Re-run the production smoke seal on the last shipped release"
    )
    @app_commands.describe(release="A shipped release's slug (default: the last shipped one)")
    @app_commands.guild_only()
    @operator_only()
    async def seal(
        self, interaction: discord.Interaction[ConductorBot], release: str | None = None
    ) -> None:
        guild = interaction.guild
        if guild is None:
            raise ConductorError("`/seal` works in a server, not in direct messages.")
        sealer = self.bot.sealer
        if not sealer.configured:
            raise NotConfigured(
                "No `[app]` is configured, so there is no production to seal against: add "
                "`production_url` and `[[app.smoke]]` checks to the config file."
            )
        target = await self.bot.seals.target(guild.id, release)
        if sealer.running(guild.id, target.slug):
            raise ConductorError(
                f"A seal of `{target.slug}` is already running; its verdict will be posted in "
                "the release thread."
            )
        await interaction.response.defer(thinking=True)
        who = Actor(interaction.user.display_name, interaction.user.id)
        resealed = await self.bot.publisher.reseal(
            guild.id, target, who, reply_to=interaction.channel
        )
        outcome, posted = resealed.seal, resealed.posted
        answer = f"{outcome.line}\nRe-sealed `{target.slug}`"
        answer += f"; posted in {posted.link}" if posted is not None else "."
        if not outcome.recorded:
            answer += "\n⚠️ The verdict could not be stored; see the log."
        # The deferred answer itself, edited in place (a followup after a defer is Discord's
        # deprecated path).
        await interaction.edit_original_response(
            content=answer[:2000], allowed_mentions=discord.AllowedMentions.none()
        )

    @seal.autocomplete("release")
    async def _shipped(
        self, interaction: discord.Interaction[ConductorBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        recent = await self.bot.releases.recent(interaction.guild_id, limit=50)
        return choices(
            (
                (r.slug, f"{r.slug} v{r.version}", r.slug)
                for r in recent
                if r.state is ReleaseState.SHIPPED
            ),
            current,
        )

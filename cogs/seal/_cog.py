"""``/seal [release]`` and the notes reconcile.

``/seal`` re-runs the suite on the last shipped release (or the one named), records the new
verdict (the old one stays in the history), posts it in the release's thread, pings on red and
updates the board. The reconcile resumes ship and rollback runs whose process died, then posts
the notes of shipped releases whose notes never reached Discord (a failed send, a crash between
the flip and the notes), sealing them first if the seal never ran: on ready and every few
minutes.
"""

from __future__ import annotations

import logging
from functools import partial

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.autocomplete import choices
from bot.checks import operator_only
from bot.client import ConductorBot
from bot.rounds import Rounds
from conductor.errors import ConductorError, NotConfigured
from conductor.states import ReleaseState
from conductor.views import Actor

log = logging.getLogger(__name__)


class SealCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        self.rounds = Rounds("the notes reconcile", log)

    async def cog_load(self) -> None:
        self.post_missing_notes.start()

    async def cog_unload(self) -> None:
        self.post_missing_notes.cancel()

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
        resealed = await self.bot.pipeline.reseal(
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

    @tasks.loop(minutes=3)
    async def post_missing_notes(self) -> None:
        for guild in self.bot.guilds:
            await self.rounds.run(guild.id, partial(self.notes_for, guild))

    @post_missing_notes.before_loop
    async def _after_ready(self) -> None:
        await self.bot.wait_until_ready()

    async def notes_for(self, guild: discord.Guild) -> int:
        """Resume the guild's ship and rollback runs whose process died, then post the notes
        every shipped release of ``guild`` is still owed (the pipeline decides which). Returns
        how many notes were posted."""
        resumed = await self.bot.pipeline.resume(guild.id)
        if resumed:
            log.info("resumed %d ship run(s) in guild %s", resumed, guild.id)
        rolled = await self.bot.rollbacks.resume(guild.id)
        if rolled:
            log.info("resumed %d rollback run(s) in guild %s", rolled, guild.id)
        return await self.bot.pipeline.post_owed_notes(guild.id)

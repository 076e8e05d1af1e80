"""``/conductor setup`` and ``/conductor config``: the guild's channels and roles, stored in the
database over the config file, and the bot's permissions in them (also logged at start)."""

from __future__ import annotations

import logging
from typing import TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import manage_guild_only
from bot.client import ConductorBot
from bot.permissions import check_guild, log_checks
from bot.tree import Refusal
from cogs.setup._render import config_embed
from conductor.views import Actor

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_OPTIONS = (
    "Nothing to change: give at least one option. `handoffs`, `handoffs_2`, `handoffs_3` "
    "(the handoff channels; the ones given replace the list), `reviews`, `notes`, "
    "`deployments` (channels), `operator_role`, `reviewer_role`, `pm_role`, `po_role` "
    "(roles), or "
    "`anyone_reviews: True` (drop the stored reviewer role). `/conductor config` shows what is "
    "in force now."
)
#: how "Saved: …" names a binding whose field name does not read as words
SAID = {"pm_role_id": "PM role", "po_role_id": "PO role"}
BOTH_REVIEWER_OPTIONS = (
    "Give either `reviewer_role` or `anyone_reviews: True`, not both: one sets a reviewer role, "
    "the other drops it."
)


def _guild(interaction: discord.Interaction[ConductorBot]) -> discord.Guild:
    if interaction.guild is None:
        raise Refusal("Conductor's setup is per server: run this in the server.")
    return interaction.guild


class SetupCog(commands.Cog):
    conductor = app_commands.Group(
        name="conductor",
        description="Conductor's channels and roles in this server",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        #: the guilds whose permissions this process has logged (once each, at start)
        self._checked: set[int] = set()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        for guild in self.bot.guilds:
            await self.log_permissions(guild)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.log_permissions(guild)

    async def log_permissions(self, guild: discord.Guild) -> None:
        """Log what the bot lacks in the guild's bound channels, once per guild and process
        (``on_ready`` comes again after a reconnect)."""
        if guild.id in self._checked:
            return
        self._checked.add(guild.id)
        try:
            log_checks(guild, check_guild(guild, await self.bot.bindings(guild)))
        except Exception:
            log.exception("could not check the permissions in guild %s", guild.id)

    @conductor.command(
        name="setup", description="Bind channels and roles here (stored, overriding the config)"
    )
    @app_commands.describe(
        handoffs="A channel where agents post handoffs (replaces the handoff channel list)",
        handoffs_2="A second handoff channel",
        handoffs_3="A third handoff channel",
        reviews="Where review requests are posted",
        notes="Where each release gets its notes thread",
        deployments="Where the pinned deployments board lives",
        operator_role="Who may drive releases",
        reviewer_role="Whose ✅ counts as an approval",
        pm_role="Who bids as the PM with /task size",
        po_role="Who bids as the PO with /task size",
        anyone_reviews="True: drop the stored reviewer role",
    )
    @manage_guild_only()
    async def setup_(
        self,
        interaction: discord.Interaction[ConductorBot],
        *,
        handoffs: discord.TextChannel | None = None,
        handoffs_2: discord.TextChannel | None = None,
        handoffs_3: discord.TextChannel | None = None,
        reviews: discord.TextChannel | None = None,
        notes: discord.TextChannel | None = None,
        deployments: discord.TextChannel | None = None,
        operator_role: discord.Role | None = None,
        reviewer_role: discord.Role | None = None,
        pm_role: discord.Role | None = None,
        po_role: discord.Role | None = None,
        anyone_reviews: bool | None = None,
    ) -> None:
        guild = _guild(interaction)
        handoff_ids = tuple(c.id for c in (handoffs, handoffs_2, handoffs_3) if c is not None)
        ids = {
            "reviews_channel_id": reviews,
            "notes_channel_id": notes,
            "deployments_channel_id": deployments,
            "operator_role_id": operator_role,
            "reviewer_role_id": reviewer_role,
            "pm_role_id": pm_role,
            "po_role_id": po_role,
        }
        given = {name: target.id for name, target in ids.items() if target is not None}
        clear = frozenset({"reviewer_role_id"}) if anyone_reviews else frozenset[str]()
        if reviewer_role is not None and anyone_reviews:
            raise Refusal(BOTH_REVIEWER_OPTIONS)
        if not handoff_ids and not given and not clear:
            raise Refusal(NO_OPTIONS)
        view = await self.bot.guild_configs.bind(
            guild.id,
            Actor(interaction.user.display_name, interaction.user.id),
            handoff_channel_ids=handoff_ids or None,
            clear=clear,
            **given,
        )
        self.bot.remember_config(view)
        self.bot.release_changed(guild.id)  # the board may move to a new deployments channel
        bindings = await self.bot.bindings(guild)
        changed = ["handoff channels"] if handoff_ids else []
        changed += [SAID.get(name, name.removesuffix("_id").replace("_", " ")) for name in given]
        saved = f"✅ Saved: {', '.join(changed)}." if changed else "✅ Saved."
        if clear:
            saved += " The stored reviewer role is dropped"
            still = bindings.wanted["reviewer role"]
            if still.source == "config":
                saved += (
                    f", but the config file still names `{still.wanted}`, so that role still "
                    "decides who may review."
                )
            else:
                saved += ": anyone may review."
        embed = config_embed(
            guild,
            bindings,
            self.bot.settings.required_approvals,
            title="Conductor in this server",
            checks=check_guild(guild, bindings),
        )
        await interaction.response.send_message(saved, embed=embed, ephemeral=True)

    @conductor.command(
        name="config", description="What Conductor uses here and where it comes from"
    )
    @manage_guild_only()
    async def config(self, interaction: discord.Interaction[ConductorBot]) -> None:
        guild = _guild(interaction)
        bindings = await self.bot.bindings(guild)
        embed = config_embed(
            guild,
            bindings,
            self.bot.settings.required_approvals,
            title="Conductor in this server",
            checks=check_guild(guild, bindings),
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)

"""The abandon confirmation: only the invoking operator can press it, only while still an
operator (checked again when pressed), and it expires."""

from __future__ import annotations

from typing import Any

import discord

from bot.checks import require_operator
from bot.tree import Refusal

CONFIRM_TIMEOUT = 60.0


class ConfirmAbandon(discord.ui.View):
    def __init__(
        self, operator_id: int, release_slug: str, *, timeout: float = CONFIRM_TIMEOUT
    ) -> None:
        super().__init__(timeout=timeout)
        self.operator_id = operator_id
        self.release_slug = release_slug
        self.confirmed: bool | None = None
        self.message: discord.InteractionMessage | None = None

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.operator_id:
            await interaction.response.send_message(
                "Only the operator who asked to abandon can confirm it.", ephemeral=True
            )
            return False
        try:
            await require_operator(interaction)  # the role may have gone since the ask
        except Refusal as refused:
            await interaction.response.send_message(refused.message, ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Abandon", style=discord.ButtonStyle.danger)
    async def abandon(
        self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]
    ) -> None:
        self.confirmed = True
        await interaction.response.defer()
        self.stop()

    @discord.ui.button(label="Keep it", style=discord.ButtonStyle.secondary)
    async def keep(self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]) -> None:
        self.confirmed = False
        await interaction.response.defer()
        self.stop()

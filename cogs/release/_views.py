"""The confirmations (abandon, roll back, open over a held train, take a lock over): only the
invoking operator can press, only while still an operator (checked again when pressed), and
they expire."""

from __future__ import annotations

from typing import Any

import discord

from bot.checks import require_operator
from bot.tree import Refusal

CONFIRM_TIMEOUT = 60.0


class Confirm(discord.ui.View):
    """A yes or no asked of one operator (abandon, roll back, open over a held train, take a
    lock over): only
    they can press, only while still an operator (checked again when pressed), and it
    expires. ``confirmed`` is True, False, or None when it expired."""

    def __init__(
        self,
        operator_id: int,
        *,
        asked: str,
        yes: str,
        no: str,
        timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        super().__init__(timeout=timeout)
        self.operator_id = operator_id
        #: what was asked, for the refusal of someone else's press ("open over a held train")
        self.asked = asked
        self.confirmed: bool | None = None
        for label, style, answer in (
            (yes, discord.ButtonStyle.danger, True),
            (no, discord.ButtonStyle.secondary, False),
        ):
            button: discord.ui.Button[Confirm] = discord.ui.Button(label=label, style=style)
            button.callback = self._answer(answer)  # type: ignore[method-assign]
            self.add_item(button)

    @classmethod
    async def ask(
        cls,
        interaction: discord.Interaction[Any],
        text: str,
        *,
        asked: str,
        yes: str,
        no: str,
        declined: str,
        expired: str,
    ) -> bool:
        """Ask ``text`` in answer to ``interaction`` (public on purpose: the team sees what is
        being asked; only the asker can press) and wait. A no or an expiry is said in place of
        the question (``declined``, ``expired``) and answers False."""
        confirm = cls(interaction.user.id, asked=asked, yes=yes, no=no)
        await interaction.response.send_message(
            text, view=confirm, allowed_mentions=discord.AllowedMentions.none()
        )
        timed_out = await confirm.wait()
        if timed_out or not confirm.confirmed:
            await interaction.edit_original_response(
                content=(expired if timed_out else declined)[:2000],
                view=None,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return False
        return True

    def _answer(self, answer: bool) -> Any:
        async def pressed(interaction: discord.Interaction[Any]) -> None:
            self.confirmed = answer
            await interaction.response.defer()
            self.stop()

        return pressed

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.operator_id:
            await interaction.response.send_message(
                f"Only the operator who asked to {self.asked} can confirm it.", ephemeral=True
            )
            return False
        try:
            await require_operator(interaction)  # the role may have gone since the ask
        except Refusal as refused:
            await interaction.response.send_message(refused.message, ephemeral=True)
            return False
        return True

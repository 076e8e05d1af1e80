"""``/task size``: a PM's or PO's sealed bid, chosen in an ephemeral select (S, M, L, XL)."""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.checks import bid_roles
from bot.tree import Refusal
from conductor.errors import ConductorError
from conductor.sizing import ROLE_LABEL, Ballot, BidResult, Sizing
from conductor.states import SIZES, BidRole, Size
from conductor.views import Actor

log = logging.getLogger(__name__)

#: how long the select answers
BALLOT_TIMEOUT = 120.0

SIZE_NAMES = {Size.S: "S — small", Size.M: "M — medium", Size.L: "L — large", Size.XL: "XL"}


def pick_role(held: tuple[BidRole, ...], asked: str | None) -> BidRole:
    """The role to bid as: the one asked for (which must be held), else the one held; a
    member with both roles says which."""
    if asked is not None:
        role = BidRole(asked)
        if role not in held:
            raise Refusal(
                f"You can't bid as {ROLE_LABEL[role]}: you don't hold the {ROLE_LABEL[role]} "
                f"role. Bid as {' or '.join(ROLE_LABEL[r] for r in held)}."
            )
        return role
    if len(held) > 1:
        raise Refusal(
            "You hold both the PM and the PO role: say which one this bid is for "
            "(`/task size slug role: PM` or `role: PO`). Each role bids once."
        )
    return held[0]


def ballot_text(ballot: Ballot) -> str:
    mine = (
        f" Your {ROLE_LABEL[ballot.role]} bid so far: **{ballot.current}**; choose again to change it."
        if ballot.current is not None
        else ""
    )
    return (
        f"📏 Your sealed {ROLE_LABEL[ballot.role]} bid on `{ballot.slug}`: how big is it?{mine}\n"
        "Nobody sees it (nor anyone else's) until the task ships; it can change until the "
        "task is submitted."
    )


def bid_text(result: BidResult) -> str:
    role = ROLE_LABEL[result.role]
    if result.changed:
        what = f"changed from {result.previous} to **{result.size}**"
    elif result.previous is not None:
        what = f"stays **{result.size}**"
    else:
        what = f"is **{result.size}**"
    who = ", ".join(ROLE_LABEL[r] for r in result.bidders)
    return (
        f"🔒 Your {role} bid on `{result.slug}` {what}: sealed until the task ships "
        f"(sized by {who} so far). You can change it until the task is first submitted."
    )


class SizeBallot(discord.ui.View):
    """The ephemeral select of one bidder; the role is checked again when they choose."""

    def __init__(
        self,
        sizing: Sizing,
        guild_id: int,
        ballot: Ballot,
        *,
        timeout: float = BALLOT_TIMEOUT,
    ) -> None:
        super().__init__(timeout=timeout)
        self.sizing = sizing
        self.guild_id = guild_id
        self.ballot = ballot
        self.select: discord.ui.Select[SizeBallot] = discord.ui.Select(
            placeholder="Choose a size",
            options=[
                discord.SelectOption(
                    label=SIZE_NAMES[size], value=size.value, default=size is ballot.current
                )
                for size in SIZES
            ],
        )
        self.select.callback = self._chosen  # type: ignore[method-assign]
        self.add_item(self.select)

    async def _chosen(self, interaction: discord.Interaction[Any]) -> None:
        size = Size(self.select.values[0])
        user = interaction.user
        try:
            if self.ballot.role not in await bid_roles(interaction):
                raise Refusal(
                    f"You no longer hold the {ROLE_LABEL[self.ballot.role]} role: nothing was bid."
                )
            result = await self.sizing.bid(
                self.guild_id,
                self.ballot.slug,
                self.ballot.role,
                size,
                Actor(user.display_name, user.id),
            )
        except (ConductorError, Refusal) as refused:
            self.stop()
            await interaction.response.edit_message(content=str(refused), view=None)
            return
        self.stop()
        await interaction.response.edit_message(content=bid_text(result), view=None)

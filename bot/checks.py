"""Permission checks for app commands: refusals name the role and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands

from bot.tree import Refusal
from conductor.states import BidRole

if TYPE_CHECKING:
    from bot.client import ConductorBot

T = TypeVar("T")


def holds(member: discord.Member | discord.User, role: discord.Role | None) -> bool:
    return isinstance(member, discord.Member) and role is not None and role in member.roles


async def require_operator(interaction: discord.Interaction[Any]) -> None:
    """Raise a :class:`Refusal` naming the role unless the user is an operator now (the
    operator role, or Manage Server when none is configured)."""
    bot: ConductorBot = interaction.client
    guild = interaction.guild
    if guild is None:
        raise Refusal("Release commands work in a server, not in direct messages.")
    bindings = await bot.bindings(guild)
    wanted = bindings.wanted["operator role"].wanted
    role = bindings.operator_role
    user = interaction.user
    if wanted is None:
        if isinstance(user, discord.Member) and user.guild_permissions.manage_guild:
            return
        raise Refusal(
            "Only operators can do this: no operator role is configured, so it needs Manage Server."
        )
    if role is None:
        raise Refusal(
            f"Only operators can do this, and the operator role `{wanted}` does not exist in this server."
        )
    if not holds(user, role):
        raise Refusal(f"Only operators can do this: it needs the `{role.name}` role.")


def operator_only() -> Callable[[T], T]:
    """Only members with the operator role (or Manage Server, when no role is configured)."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        await require_operator(interaction)
        return True

    return app_commands.check(predicate)


def manage_guild_only() -> Callable[[T], T]:
    """Members with Manage Server only. ``default_permissions`` hides the command from others,
    but a server admin can override that, so the check runs at every use too."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        user = interaction.user
        if isinstance(user, discord.Member) and user.guild_permissions.manage_guild:
            return True
        raise Refusal(
            "Only members with the Manage Server permission can see or change Conductor's setup."
        )

    return app_commands.check(predicate)


async def bid_roles(interaction: discord.Interaction[Any]) -> tuple[BidRole, ...]:
    """The sealed-bid roles (PM, PO) the user holds now; a :class:`Refusal` naming the roles
    when they hold neither (or none is configured)."""
    bot: ConductorBot = interaction.client
    guild = interaction.guild
    if guild is None:
        raise Refusal("Task commands work in a server, not in direct messages.")
    bindings = await bot.bindings(guild)
    roles = {BidRole.PM: bindings.pm_role, BidRole.PO: bindings.po_role}
    wanted = {
        role: bindings.wanted[key].wanted
        for role, key in ((BidRole.PM, "PM role"), (BidRole.PO, "PO role"))
    }
    if not any(wanted.values()):
        raise Refusal(
            "Nobody can bid on a task's size here: no PM or PO role is configured. A server "
            "manager binds them with `/conductor setup pm_role: po_role:` (or the config's "
            "`CONDUCTOR_PM_ROLE`, `CONDUCTOR_PO_ROLE`)."
        )
    held = tuple(role for role, found in roles.items() if holds(interaction.user, found))
    if held:
        return held
    named = " or ".join(
        f"`{found.name}`" if found is not None else f"`{wanted[role]}` (missing in this server)"
        for role, found in roles.items()
        if wanted[role]
    )
    raise Refusal(
        f"Only the PM or the PO can bid on a task's size (sealed-bid sizing): it needs the "
        f"{named} role. A developer's bid comes from the handoff's `size:` header."
    )

"""``/task …``: read-only views of the tasks the handoffs created."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import bid_roles
from bot.client import ConductorBot
from cogs.task._render import (
    card_conversation,
    no_tasks_text,
    task_choices,
    task_embed,
    task_list_embed,
)
from cogs.task._sizing import SizeBallot, ballot_text, pick_role
from cogs.task._views import EarlierConversation, OlderPages
from conductor.errors import ConductorError
from conductor.states import TaskState


def guild_id(interaction: discord.Interaction[ConductorBot]) -> int:
    if interaction.guild_id is None:
        raise ConductorError("Task commands work in a server, not in direct messages.")
    return interaction.guild_id


class TaskCog(commands.Cog):
    task = app_commands.Group(name="task", description="Tasks and their cards", guild_only=True)

    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot

    @task.command(
        name="show", description="A task's card: state, dependencies, approvals, timeline, notes"
    )
    @app_commands.describe(slug="The task's slug")
    async def show(self, interaction: discord.Interaction[ConductorBot], slug: str) -> None:
        gid = guild_id(interaction)
        card = await self.bot.tasks.card(gid, slug)
        embed = task_embed(card, now=discord.utils.utcnow())
        _, shown = card_conversation(card)
        before = card.conversation.before(shown)
        if before is None:
            await interaction.response.send_message(embed=embed)
            return
        pages = EarlierConversation(self.bot.tasks, gid, card.task.slug, before)
        await interaction.response.send_message(embed=embed, view=pages)
        pages.interaction = interaction

    @task.command(name="list", description="Tasks, newest first, optionally in one state")
    @app_commands.describe(state="Only tasks in this state")
    @app_commands.choices(
        state=[app_commands.Choice(name=s.value, value=s.value) for s in TaskState]
    )
    async def list_(
        self, interaction: discord.Interaction[ConductorBot], state: str | None = None
    ) -> None:
        wanted = TaskState(state) if state is not None else None
        gid = guild_id(interaction)
        page = await self.bot.tasks.page(gid, wanted)
        if not page.tasks:
            await interaction.response.send_message(no_tasks_text(wanted), ephemeral=True)
            return
        embed, shown = task_list_embed(page, wanted)
        after = page.after(shown)
        if after is None:
            await interaction.response.send_message(embed=embed)
            return
        pages = OlderPages(self.bot.tasks, gid, wanted, after)
        await interaction.response.send_message(embed=embed, view=pages)
        pages.interaction = interaction

    @task.command(
        name="size", description="A sealed bid on a task's size (PM or PO): hidden until it ships"
    )
    @app_commands.describe(
        slug="The task's slug", role="Bid as PM or as PO (only needed when you hold both roles)"
    )
    @app_commands.choices(
        role=[
            app_commands.Choice(name="PM", value="pm"),
            app_commands.Choice(name="PO", value="po"),
        ]
    )
    async def size(
        self, interaction: discord.Interaction[ConductorBot], slug: str, role: str | None = None
    ) -> None:
        gid = guild_id(interaction)
        chosen = pick_role(await bid_roles(interaction), role)
        ballot = await self.bot.sizing.ballot(gid, slug, chosen)
        await interaction.response.send_message(
            ballot_text(ballot), view=SizeBallot(self.bot.sizing, gid, ballot), ephemeral=True
        )

    @size.autocomplete("slug")
    @show.autocomplete("slug")
    async def _all_tasks(
        self, interaction: discord.Interaction[ConductorBot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        return task_choices(await self.bot.tasks.suggest(interaction.guild_id, current), current)

"""``/task list``'s pages: an Older button that reads the next page after the last task
shown (a keyset: the same cost on the first page and the thousandth); and the card's
conversation, paged back the same way from its oldest entry shown."""

from __future__ import annotations

import logging
from typing import Any

import discord

from cogs.task._render import EARLIER, conversation_embed, task_list_embed
from conductor.states import TaskState
from conductor.tasks import Tasks
from conductor.views import EntryCursor, TaskCursor

log = logging.getLogger(__name__)

#: how long the Older button answers after the last press
PAGES_TIMEOUT = 600.0


class OlderPages(discord.ui.View):
    """Anyone who sees the list may page it (it is public, and read-only)."""

    def __init__(
        self,
        tasks: Tasks,
        guild_id: int,
        state: TaskState | None,
        after: TaskCursor,
        *,
        timeout: float = PAGES_TIMEOUT,
    ) -> None:
        super().__init__(timeout=timeout)
        self.tasks = tasks
        self.guild_id = guild_id
        self.state = state
        self.after: TaskCursor | None = after
        self.number = 1
        #: the list's first answer, to take the button off when it expires
        self.interaction: discord.Interaction[Any] | None = None
        button: discord.ui.Button[OlderPages] = discord.ui.Button(
            label="Older ▸", style=discord.ButtonStyle.secondary
        )
        button.callback = self._older  # type: ignore[method-assign]
        self.add_item(button)

    async def _older(self, interaction: discord.Interaction[Any]) -> None:
        page = await self.tasks.page(self.guild_id, self.state, after=self.after)
        self.number += 1
        embed, shown = task_list_embed(page, self.state, number=self.number)
        self.after = page.after(shown)
        if self.after is None or not page.tasks:
            self.stop()
            await interaction.response.edit_message(embed=embed, view=None)
            return
        await interaction.response.edit_message(embed=embed, view=self)

    async def on_timeout(self) -> None:
        if self.interaction is None:
            return
        try:
            await self.interaction.edit_original_response(view=None)
        except discord.HTTPException as error:  # the message deleted, the token expired
            log.debug("the task list's button stays: %s", error)


class EarlierConversation(discord.ui.View):
    """The card's Earlier conversation button: each press shows the page before the oldest
    entry shown, in place of the card (``/task show`` brings the card back). Anyone who sees
    the card may page it."""

    def __init__(
        self,
        tasks: Tasks,
        guild_id: int,
        slug: str,
        before: EntryCursor,
        *,
        timeout: float = PAGES_TIMEOUT,
    ) -> None:
        super().__init__(timeout=timeout)
        self.tasks = tasks
        self.guild_id = guild_id
        self.slug = slug
        self.before: EntryCursor | None = before
        self.number = 1
        self.interaction: discord.Interaction[Any] | None = None
        button: discord.ui.Button[EarlierConversation] = discord.ui.Button(
            label=EARLIER, style=discord.ButtonStyle.secondary
        )
        button.callback = self._earlier  # type: ignore[method-assign]
        self.add_item(button)

    async def _earlier(self, interaction: discord.Interaction[Any]) -> None:
        page = await self.tasks.conversation(self.guild_id, self.slug, before=self.before)
        self.number += 1
        embed, shown = conversation_embed(self.slug, page, number=self.number)
        self.before = page.before(shown)
        if self.before is None:
            self.stop()
            await interaction.response.edit_message(embed=embed, view=None)
            return
        await interaction.response.edit_message(embed=embed, view=self)

    async def on_timeout(self) -> None:
        if self.interaction is None:
            return
        try:
            await self.interaction.edit_original_response(view=None)
        except discord.HTTPException as error:  # the message deleted, the token expired
            log.debug("the card's button stays: %s", error)

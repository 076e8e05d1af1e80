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


class _Pager(discord.ui.View):
    """One button that replaces the message with the next page (:meth:`next_page`), until
    there is none; the button is taken off when it expires. Anyone who sees the message may
    page it (it is public, and read-only)."""

    def __init__(self, tasks: Tasks, guild_id: int, *, label: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.tasks = tasks
        self.guild_id = guild_id
        self.number = 1
        #: the first answer, to take the button off when it expires
        self.interaction: discord.Interaction[Any] | None = None
        button: discord.ui.Button[_Pager] = discord.ui.Button(
            label=label, style=discord.ButtonStyle.secondary
        )
        button.callback = self._press  # type: ignore[method-assign]
        self.add_item(button)

    async def next_page(self) -> tuple[discord.Embed, bool]:
        """The next page's embed, and whether another page follows it."""
        raise NotImplementedError

    async def _press(self, interaction: discord.Interaction[Any]) -> None:
        self.number += 1
        embed, more = await self.next_page()
        if not more:
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
            log.debug("the pages' button stays: %s", error)


class OlderPages(_Pager):
    """``/task list``'s Older button: the page after the last task shown."""

    def __init__(
        self,
        tasks: Tasks,
        guild_id: int,
        state: TaskState | None,
        after: TaskCursor,
        *,
        timeout: float = PAGES_TIMEOUT,
    ) -> None:
        super().__init__(tasks, guild_id, label="Older ▸", timeout=timeout)
        self.state = state
        self.after: TaskCursor | None = after

    async def next_page(self) -> tuple[discord.Embed, bool]:
        page = await self.tasks.page(self.guild_id, self.state, after=self.after)
        embed, shown = task_list_embed(page, self.state, number=self.number)
        self.after = page.after(shown)
        return embed, self.after is not None and bool(page.tasks)


class EarlierConversation(_Pager):
    """The card's Earlier conversation button: each press shows the page before the oldest
    entry shown, in place of the card (``/task show`` brings the card back)."""

    def __init__(
        self,
        tasks: Tasks,
        guild_id: int,
        slug: str,
        before: EntryCursor,
        *,
        timeout: float = PAGES_TIMEOUT,
    ) -> None:
        super().__init__(tasks, guild_id, label=EARLIER, timeout=timeout)
        self.slug = slug
        self.before: EntryCursor | None = before

    async def next_page(self) -> tuple[discord.Embed, bool]:
        page = await self.tasks.conversation(self.guild_id, self.slug, before=self.before)
        embed, shown = conversation_embed(self.slug, page, number=self.number)
        self.before = page.before(shown)
        return embed, self.before is not None

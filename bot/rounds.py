"""A timer's round over the guilds, the same for every cog that has one (reminders, review
requests, the notes reconcile): one guild failing never stops the others, nor the timer
(``discord.ext.tasks`` ends a loop at its first unhandled exception, so a round must never
raise). The database says its own outage once (``store.db``); anything else is logged with its
traceback the first time and again only when it changes, and its end is logged once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from conductor.text import one_line
from store.errors import DatabaseUnavailable


class Rounds:
    def __init__(self, what: str, logger: logging.Logger) -> None:
        #: what the round does, as the log says it ("the reminders")
        self.what = what
        self.log = logger
        #: the guilds whose round failed, with how (logged once until it changes)
        self._failing: dict[int, str] = {}

    async def run(self, guild_id: int, work: Callable[[], Awaitable[int]]) -> int:
        """``work()`` for one guild (a count of what it did); 0 when it failed. Never raises
        (cancellation aside)."""
        try:
            done = await work()
        except DatabaseUnavailable as down:
            # The database logged its outage once; the next round tries again.
            self.log.debug(
                "%s of guild %s wait for the database (%s)", self.what, guild_id, down.reason
            )
            return 0
        except Exception as error:
            how = f"{type(error).__name__}: {one_line(error, 200)}"
            if self._failing.get(guild_id) != how:
                self.log.exception("%s of guild %s failed", self.what, guild_id)
                self._failing[guild_id] = how
            return 0
        if self._failing.pop(guild_id, None) is not None:
            self.log.info("%s of guild %s work again", self.what, guild_id)
        return done

"""The Discord edge: the typed bot, its command tree, checks, bindings and settings.

``bot.create_bot`` is loaded on first use, so ``bot.settings`` can be read (by the CLI) without
importing discord.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.client import ConductorBot, create_bot

__all__ = ["ConductorBot", "create_bot"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from bot import client  # noqa: PLC0415 - discord.py loads on first use

        return getattr(client, name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")

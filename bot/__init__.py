"""The Discord bot: settings, the typed Bot, the command tree's error handling."""

from bot.client import ConductorBot, create_bot

__all__ = ["ConductorBot", "create_bot"]

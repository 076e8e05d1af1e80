"""Autocomplete answers within Discord's limits (25 choices, names of 100 characters)."""

from __future__ import annotations

from collections.abc import Iterable

from discord import app_commands

from conductor.text import clip

MAX_CHOICES = 25
NAME_LIMIT = 100


def choices(items: Iterable[tuple[str, str, str]], current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 choices from ``(value, shown name, searched text)`` whose searched text
    contains what was typed so far (any case)."""
    needle = current.strip().lower()
    out: list[app_commands.Choice[str]] = []
    for value, name, searched in items:
        if needle in searched.lower():
            out.append(app_commands.Choice(name=clip(name, NAME_LIMIT), value=value))
            if len(out) == MAX_CHOICES:
                break
    return out

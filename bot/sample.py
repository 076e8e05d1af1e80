"""The sample guild's settings: the channel and role names that ``conductor demo``, the
benchmarks and the Discord-level tests all build (``handoffs``, ``reviews``, ``release-notes``,
``deployments``, the ``Operators`` role), in one place.

Built from the arguments alone: no ``CONDUCTOR_*`` variable (the token included) and no
``conductor.toml`` can change them.
"""

from __future__ import annotations

from typing import Any

from bot.settings import Settings

#: the sample guild's id (simcord lets a test pick it)
GUILD_ID = 424_242
CHANNELS = {
    "handoff_channels": ["handoffs"],
    "reviews_channel": "reviews",
    "notes_channel": "release-notes",
    "deployments_channel": "deployments",
}
OPERATOR_ROLE = "Operators"


class SampleSettings(Settings):
    """Settings that read nothing but their arguments."""

    reads_outside = False


def sample_settings(
    database_url: str, *, app: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    """The sample guild bound to the database at ``database_url``, sealing against ``app``
    (the raw ``[app]`` table; None: unsealed)."""
    values: dict[str, Any] = {
        "discord_token": None,
        "guild_id": GUILD_ID,
        "database_url": database_url,
        **CHANNELS,
        "operator_role": OPERATOR_ROLE,
        "reviewer_role": None,
        "required_approvals": 2,
        "app": app,
        # no board unless asked: tests, the demo and the benchmarks run side by side
        "web": {"enabled": False},
    }
    values.update(overrides)
    return SampleSettings(**values)

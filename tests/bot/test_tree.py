"""The tree's one answer helper, in each state an interaction can be in (Red's
``_send_from_interaction``): not answered → respond; answered or deferred → followup; expired
→ the channel, naming the user without pinging anyone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.tree import answer


class Channel(discord.abc.Messageable):
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def _get_channel(self) -> Any:  # discord.abc.Messageable's one abstract hook
        return self

    async def send(self, content: str | None = None, **kwargs: Any) -> Any:
        self.sent.append((content or "", kwargs.get("allowed_mentions")))


class Interaction:
    def __init__(self, *, expired: bool, done: bool, channel: Any) -> None:
        self.id = 1
        self._expired = expired
        self.channel = channel
        self.user = SimpleNamespace(mention="<@42>")
        self.responded: list[tuple[str, bool]] = []
        self.followed: list[tuple[str, bool]] = []

        async def send_message(text: str, *, ephemeral: bool = False) -> None:
            self.responded.append((text, ephemeral))

        async def followup(text: str, *, ephemeral: bool = False) -> None:
            self.followed.append((text, ephemeral))

        self.response = SimpleNamespace(is_done=lambda: done, send_message=send_message)
        self.followup = SimpleNamespace(send=followup)

    def is_expired(self) -> bool:
        return self._expired


@pytest.mark.parametrize(
    ("done", "where"), [(False, "responded"), (True, "followed")], ids=["fresh", "deferred"]
)
async def test_a_live_interaction_is_answered_ephemerally(done: bool, where: str) -> None:
    channel = Channel()
    interaction = Interaction(expired=False, done=done, channel=channel)
    await answer(interaction, "No task `x`.")  # type: ignore[arg-type]
    assert getattr(interaction, where) == [("No task `x`.", True)]
    assert channel.sent == []


async def test_an_expired_interaction_is_answered_in_its_channel_pinging_nobody() -> None:
    channel = Channel()
    interaction = Interaction(expired=True, done=True, channel=channel)
    await answer(interaction, "Something went wrong (ref ABC123).")  # type: ignore[arg-type]
    assert interaction.responded == interaction.followed == []
    [(text, mentions)] = channel.sent
    assert text == "<@42> Something went wrong (ref ABC123)."
    assert mentions is not None and mentions.to_dict()["parse"] == []


async def test_an_expired_interaction_without_a_channel_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interaction = Interaction(expired=True, done=False, channel=None)
    await answer(interaction, "late")  # type: ignore[arg-type]
    assert interaction.responded == interaction.followed == []
    assert "expired with nowhere to answer: late" in caplog.text

"""The tree's one answer helper, in each state an interaction can be in (Red's
``_send_from_interaction``): not answered → respond; answered or deferred → followup; expired,
or too late for a first answer → the channel, naming the user without pinging anyone. And
which errors are answered as they are: refusals, and a database that could not take it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.tree import UNKNOWN_INTERACTION, answer, user_text
from conductor.errors import NotFound
from store.errors import DatabaseBusy, DatabaseFull, DatabaseGone


class Channel(discord.abc.Messageable):
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def _get_channel(self) -> Any:  # discord.abc.Messageable's one abstract hook
        return self

    async def send(self, content: str | None = None, **kwargs: Any) -> Any:
        self.sent.append((content or "", kwargs.get("allowed_mentions")))


def discord_error(kind: type[discord.HTTPException], status: int, code: int) -> Any:
    response = SimpleNamespace(status=status, reason="Not Found")
    return kind(response, {"code": code, "message": "Unknown interaction"})


class Interaction:
    def __init__(
        self, *, expired: bool, done: bool, channel: Any, refuse: Exception | None = None
    ) -> None:
        self.id = 1
        self._expired = expired
        self.channel = channel
        self.user = SimpleNamespace(mention="<@42>")
        self.responded: list[tuple[str, bool]] = []
        self.followed: list[tuple[str, bool]] = []

        async def send_message(text: str, *, ephemeral: bool = False) -> None:
            if refuse is not None:
                raise refuse
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


async def test_a_first_answer_too_late_for_discord_goes_to_the_channel() -> None:
    """A command that waited on a busy database past Discord's 3 seconds: its interaction is
    unknown by then, so the answer is said in the channel instead of lost."""
    channel = Channel()
    late = discord_error(discord.NotFound, 404, UNKNOWN_INTERACTION)
    interaction = Interaction(expired=False, done=False, channel=channel, refuse=late)
    await answer(interaction, str(DatabaseBusy("database is locked")))  # type: ignore[arg-type]
    [(text, mentions)] = channel.sent
    assert text.startswith("<@42> ⛔ Conductor's database is busy")
    assert mentions is not None and mentions.to_dict()["parse"] == []


async def test_another_refused_first_answer_is_not_hidden() -> None:
    other = discord_error(discord.NotFound, 404, 10008)  # unknown message
    interaction = Interaction(expired=False, done=False, channel=Channel(), refuse=other)
    with pytest.raises(discord.NotFound):
        await answer(interaction, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (DatabaseBusy("database is locked"), "busy: another process holds its write lock"),
        (DatabaseFull("database or disk is full"), "full: there is no space left to write"),
        (DatabaseGone("/x.db was deleted"), "file was deleted or replaced"),
        (NotFound("No task `x`."), "No task `x`."),
    ],
)
def test_refusals_and_an_unavailable_database_are_answered_as_they_are(
    error: Exception, text: str
) -> None:
    invoked = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    invoked.original = error
    for raised in (error, invoked):
        said = user_text(raised)
        assert said is not None and text in said
    if not isinstance(error, NotFound):
        assert "Nothing was changed" in (user_text(error) or "")


def test_a_bug_is_not_answered_as_it_is() -> None:
    assert user_text(RuntimeError("boom")) is None

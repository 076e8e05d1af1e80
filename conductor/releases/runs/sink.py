"""How the runs speak outward: the :class:`NotesSink` the edge gives (``bot.publish``), where
the words of a run go, and what the domain hands it (:class:`PostedNotes`, :class:`AlertAction`).
The domain decides what is said and when; the sink only delivers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from conductor.seals.evidence import Attachment
from conductor.views import ReleaseView


@dataclass(frozen=True, slots=True)
class PostedNotes:
    """Where a release's notes (or a re-seal's line) landed."""

    message_id: int
    #: a link a person can follow to the message
    link: str
    #: the edge's own handle on the channel it went to (an alert follows it there); the
    #: domain never looks inside
    channel: object


@dataclass(frozen=True, slots=True)
class AlertAction:
    """What an alert offers to do, as the domain names it; the edge turns it into a control
    (a button) that still works after a restart. ``rollback``: roll ``release_slug`` back."""

    kind: Literal["rollback"]
    release_slug: str


class NotesSink(Protocol):
    """Where the words of a ship go: a release's thread, or its fallbacks. The domain decides
    what is said and when; the sink only delivers. Its methods never raise for a failed
    delivery: they log it and answer None."""

    async def post(
        self,
        guild_id: int,
        release: ReleaseView,
        messages: Sequence[str],
        *,
        reply_to: object | None = None,
    ) -> PostedNotes | None:
        """Post ``messages`` in order, mentioning nobody, in the release's thread (else the
        notes channel, else ``reply_to``, the channel a command came from). The first
        message, or None when nothing could be posted."""
        ...

    async def find(self, guild_id: int, release: ReleaseView, marker: str) -> PostedNotes | None:
        """This bot's recent message in the release's thread (or its fallback) containing
        ``marker``: a post that reached Discord before its record did."""
        ...

    async def mentions(self, guild_id: int, user_id: int | None) -> list[str]:
        """The mentions of an alert: the operator who acted and the operator role."""
        ...

    async def ping(
        self,
        guild_id: int,
        posted: PostedNotes,
        text: str,
        *,
        user_id: int | None,
        attachments: Sequence[Attachment] = (),
        action: AlertAction | None = None,
    ) -> None:
        """Post ``text`` where ``posted`` went, pinging exactly the operator ``user_id`` and
        the operator role (nobody else ``text`` may mention), with ``attachments`` as files
        (already within Discord's limits: the domain chose them) and ``action`` as a control
        on the message."""
        ...

    def changed(self, guild_id: int) -> None:
        """Something the board shows changed."""
        ...

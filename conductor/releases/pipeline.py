"""``/release ship`` as steps: the state flip, the seal, the notes; and the notes' other paths
(``/seal``'s re-seal, the notes still owed after a failed send or a crash).

The flip is the ship: its refusals raise as usual. After it, nothing can undo or block the
ship: the seal's failures of any kind end up as an ``error`` seal in the outcome, and the notes
always follow, through the :class:`NotesSink` the edge gives (Discord: ``bot.publish``). Which
notes are owed, and who posts them, is decided here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from conductor.notes import release_notes, reseal_note, rollback_alert
from conductor.releases.service import Releases
from conductor.seals.sealer import Sealer, SealOutcome
from conductor.states import RESEAL, SHIP
from conductor.views import Actor, ReleaseView
from smoke import SmokeResult

log = logging.getLogger(__name__)

#: called as each step starts: ("seal", the shipped release)
Progress = Callable[[str, ReleaseView], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PostedNotes:
    """Where a release's notes (or a re-seal's line) landed."""

    message_id: int
    #: a link a person can follow to the message
    link: str
    #: the edge's own handle on the channel it went to (an alert follows it there); the
    #: domain never looks inside
    channel: object


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

    async def mentions(self, guild_id: int, user_id: int | None) -> list[str]:
        """The mentions of an alert: the operator who acted and the operator role."""
        ...

    async def ping(self, posted: PostedNotes, text: str) -> None:
        """Post ``text`` where ``posted`` went, letting its mentions ping."""
        ...

    def changed(self, guild_id: int) -> None:
        """Something the board shows changed."""
        ...


@dataclass(frozen=True, slots=True)
class ShipOutcome:
    release: ReleaseView
    #: None when no ``[app]`` is configured (nothing to seal against)
    seal: SealOutcome | None
    #: None when the notes could not be posted (yet): the reconcile posts them later
    notes: PostedNotes | None = None

    @property
    def shipped(self) -> ReleaseView:
        """The release as it stands now, with its seal when one was recorded."""
        return self.seal.release if self.seal is not None else self.release


@dataclass(frozen=True, slots=True)
class ResealOutcome:
    seal: SealOutcome
    posted: PostedNotes | None


class ShipPipeline:
    def __init__(self, releases: Releases, sealer: Sealer, notes: NotesSink | None = None) -> None:
        self.releases = releases
        self.sealer = sealer
        #: None: nowhere to post (the CLI, some tests); the notes stay owed
        self.notes = notes
        #: releases whose notes this process is posting right now (a ship from its flip to
        #: its notes, or the reconcile): nobody else here posts them meanwhile
        self._claimed: set[tuple[int, str]] = set()

    @contextmanager
    def _claim(self, guild_id: int, slug: str) -> Iterator[bool]:
        """Hold a release's notes for this block; yields False when this process already
        holds them."""
        key = (guild_id, slug)
        if key in self._claimed:
            yield False
            return
        self._claimed.add(key)
        try:
            yield True
        finally:
            self._claimed.discard(key)

    # ------------------------------------------------------------------ the ship

    async def ship(
        self,
        guild_id: int,
        actor: Actor,
        *,
        release_slug: str | None = None,
        progress: Progress | None = None,
        reply_to: object | None = None,
    ) -> ShipOutcome:
        """Flip, seal, post the notes. Only the flip raises (a refusal: nothing shipped)."""
        if release_slug is None:
            release_slug = (await self.releases.ship_preflight(guild_id)).slug
        with self._claim(guild_id, release_slug):
            view = await self.releases.ship(guild_id, actor, release_slug=release_slug)
            self._changed(guild_id)
            seal = None
            if not self.sealer.configured:
                log.info("release %s shipped without a seal: no [app] is configured", view.slug)
            else:
                if progress is not None:
                    try:
                        await progress("seal", view)
                    except Exception:
                        log.warning(
                            "the ship progress report failed; sealing anyway", exc_info=True
                        )
                seal = await self.seal_shipped(guild_id, view, actor)
            notes = await self.publish(
                guild_id, view, seal, operator_id=actor.id, reply_to=reply_to
            )
            return ShipOutcome(view, seal, notes)

    async def seal_shipped(
        self, guild_id: int, view: ReleaseView, actor: Actor | None
    ) -> SealOutcome:
        """The seal after a ship; whatever fails, an outcome comes back."""
        try:
            return await self.sealer.seal(guild_id, view, trigger=SHIP, actor=actor)
        except Exception as error:
            log.exception("the seal of %s failed outside the runner", view.slug)
            result = SmokeResult.failure(f"the seal step failed: {error}"[:300])
            return SealOutcome(result, view, None, recorded=False)

    # ------------------------------------------------------------------ the notes

    async def publish(
        self,
        guild_id: int,
        release: ReleaseView,
        seal: SealOutcome | None,
        *,
        operator_id: int | None,
        reply_to: object | None = None,
    ) -> PostedNotes | None:
        """Post the notes (seal line first), record that they were posted, then on red or
        error ping the operator with the rollback command. None when nothing could be posted
        (the reconcile tries again). Never raises for the sink's failures."""
        if self.notes is None:
            return None
        shown = seal.release if seal is not None else release
        messages = release_notes(shown, seal=seal.line if seal is not None else None)
        posted = await self.notes.post(guild_id, shown, messages, reply_to=reply_to)
        if posted is None:
            log.warning("the notes of %s were not posted; the reconcile retries", release.slug)
            return None
        try:
            await self.sealer.records.notes_posted(guild_id, release.slug, posted.message_id)
        except Exception:
            log.exception("the notes of %s were posted but not recorded", release.slug)
        if seal is not None and seal.alarming:
            await self._alert(
                self.notes, guild_id, shown, seal, operator_id=operator_id, posted=posted
            )
        self._changed(guild_id)
        return posted

    async def post_owed_notes(self, guild_id: int) -> int:
        """Post the notes every shipped release of the guild is still owed (a failed send, a
        crash between the flip and the notes), sealing first where the seal never ran.
        Returns how many were posted."""
        if self.notes is None:
            return 0
        posted = 0
        for release in await self.sealer.records.notes_owed(guild_id):
            with self._claim(guild_id, release.slug) as mine:
                if not mine:
                    continue  # its ship is still running here
                seal = await self.owed_seal(guild_id, release)
                if await self.publish(guild_id, release, seal, operator_id=release.shipped_by_id):
                    posted += 1
        return posted

    async def owed_seal(self, guild_id: int, release: ReleaseView) -> SealOutcome | None:
        """The seal for notes posted late: the stored one, or (the process stopped between
        the flip and the seal) a seal run now; None when there is nothing to seal against."""
        if release.seal_status is not None:
            return self.sealer.stored(release)
        if not self.sealer.configured:
            return None
        return await self.seal_shipped(guild_id, release, None)

    # ------------------------------------------------------------------ /seal

    async def reseal(
        self, guild_id: int, release: ReleaseView, actor: Actor, *, reply_to: object | None = None
    ) -> ResealOutcome:
        """Seal a shipped release again, post the new line in its thread (what it replaced
        too), and ping on red or error. Raises only :class:`~conductor.errors.SealRunning`."""
        seal = await self.sealer.seal(guild_id, release, trigger=RESEAL, actor=actor)
        self._changed(guild_id)
        if self.notes is None:
            return ResealOutcome(seal, None)
        text = reseal_note(
            seal.release, seal=seal.line, by=actor.name, previous=release.seal_status
        )
        posted = await self.notes.post(guild_id, seal.release, [text], reply_to=reply_to)
        if posted is not None and seal.alarming:
            await self._alert(
                self.notes, guild_id, seal.release, seal, operator_id=actor.id, posted=posted
            )
        return ResealOutcome(seal, posted)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _alert(
        notes: NotesSink,
        guild_id: int,
        release: ReleaseView,
        seal: SealOutcome,
        *,
        operator_id: int | None,
        posted: PostedNotes,
    ) -> None:
        text = rollback_alert(
            release,
            status=seal.status,
            summary=seal.result.summary,
            mentions=await notes.mentions(guild_id, operator_id),
            rollback=seal.rollback,
        )
        await notes.ping(posted, text)

    def _changed(self, guild_id: int) -> None:
        if self.notes is not None:
            self.notes.changed(guild_id)

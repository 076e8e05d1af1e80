"""What the domain owes the release threads outside a run's own steps: the release notes of a
ship (posted once, even across a crash between Discord taking them and their record), the red
alert with its ping and Roll back action, the notes still owed after a failed send, and
``/seal``'s re-seal. The words are the domain's (``conductor.notes``); the
:class:`~conductor.releases.runs.sink.NotesSink` the edge gives only delivers them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

from conductor.notes import release_notes, reseal_note, rollback_alert, screenshots_line
from conductor.releases.runs.sink import AlertAction, NotesSink, PostedNotes
from conductor.releases.runs.store import process_identity
from conductor.releases.service import Releases
from conductor.seals.records import NOTES_IN_FLIGHT
from conductor.seals.sealer import Sealer, SealOutcome
from conductor.states import RESEAL, SHIP, ReleaseState
from conductor.views import Actor, ReleaseView
from smoke import SmokeResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResealOutcome:
    seal: SealOutcome
    posted: PostedNotes | None


class Publisher:
    def __init__(
        self,
        releases: Releases,
        sealer: Sealer,
        notes: NotesSink | None,
        *,
        owner: str | None = None,
    ) -> None:
        self.releases = releases
        #: this process, as the one posting a release's notes (the runs' owner)
        self.owner = owner or process_identity()
        self.sealer = sealer
        #: None: nowhere to post (the CLI, some tests); the notes stay owed
        self.notes = notes
        #: releases whose notes this process is posting right now (the reconcile's notes)
        self._claimed: set[tuple[int, str]] = set()

    @contextmanager
    def claim(self, guild_id: int, slug: str) -> Iterator[bool]:
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

    def changed(self, guild_id: int) -> None:
        if self.notes is not None:
            self.notes.changed(guild_id)

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

    async def publish(
        self,
        guild_id: int,
        release: ReleaseView,
        seal: SealOutcome | None,
        *,
        operator_id: int | None,
        reply_to: object | None = None,
        sent: Callable[[str], None] | None = None,
        in_flight: timedelta | None = None,
    ) -> PostedNotes | None:
        """Post the notes (seal line first) and on red or error the ping with the rollback
        command, then record them as posted: exactly once. The intent is recorded before the
        first post, so an attempt after a crash (Discord took the notes, or the alert, and
        the record never came) finds what was posted and sends only what is missing. None
        when nothing could be posted (the reconcile tries again). Never raises for the
        sink's failures. ``sent`` hears ``notes:sent`` and ``alert:sent`` (the crash tests
        stop there). Two processes never both post: the intent is claimed in the database
        first; ``in_flight`` (the reconcile's) leaves a younger intent to the process that
        wrote it, None (a run's step, under the run's lease) takes any intent over."""
        if self.notes is None:
            return None
        current = await self.releases.get(guild_id, release.slug, notes=True)
        if current.notes_posted_at is not None:
            log.info("the notes of %s were posted already", release.slug)
            return None
        shown = seal.release if seal is not None else release
        # the cost and the members' last notes, read now: the views a run carries leave them out
        shown = replace(shown, members=current.members, cost=current.cost)
        shown = await self.releases.with_sizing(guild_id, shown)
        messages = release_notes(shown, seal=seal.line if seal is not None else None)
        notes_marker = f"Release notes — `{release.slug}`"
        alert_marker = f"the smoke seal of `{release.slug}`"
        retried = current.notes_intent_at is not None
        claimed = await self.sealer.records.claim_notes(
            guild_id, release.slug, current.notes_intent_at, owner=self.owner, in_flight=in_flight
        )
        if claimed is None:
            log.info("the notes of %s are being posted by another process", release.slug)
            return None
        posted = await self.notes.find(guild_id, shown, notes_marker) if retried else None
        if posted is None:
            posted = await self.notes.post(guild_id, shown, messages, reply_to=reply_to)
            if posted is None:
                log.warning("the notes of %s were not posted; the reconcile retries", release.slug)
                await self.sealer.records.notes_not_posted(guild_id, release.slug, claimed)
                return None
            if sent is not None:
                sent("notes:sent")
        else:
            log.info("the notes of %s were found posted before a crash", release.slug)
        if seal is not None and seal.alarming:
            pinged = await self.notes.find(guild_id, shown, alert_marker) if retried else None
            if pinged is None:
                await self.alert(guild_id, shown, seal, operator_id=operator_id, posted=posted)
                if sent is not None:
                    sent("alert:sent")
        try:
            await self.sealer.records.notes_posted(guild_id, release.slug, posted.message_id)
        except Exception:
            log.exception("the notes of %s were posted but not recorded", release.slug)
        self.changed(guild_id)
        return posted

    async def post_owed_notes(self, guild_id: int) -> int:
        """Post the notes every shipped release of the guild is still owed (a failed send, a
        crash before the notes), sealing first where the seal never ran. Releases whose run
        still runs post their own. Returns how many were posted."""
        if self.notes is None:
            return 0
        posted = 0
        for release in await self.sealer.records.notes_owed(guild_id):
            with self.claim(guild_id, release.slug) as mine:
                if not mine:
                    continue  # its ship is still running here
                seal = await self.owed_seal(guild_id, release)
                if await self.publish(
                    guild_id,
                    release,
                    seal,
                    operator_id=release.shipped_by_id,
                    in_flight=NOTES_IN_FLIGHT,
                ):
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

    async def reseal(
        self, guild_id: int, release: ReleaseView, actor: Actor, *, reply_to: object | None = None
    ) -> ResealOutcome:
        """Seal a shipped release again, post the new line in its thread (what it replaced
        too), and ping on red or error. Raises only :class:`~conductor.errors.SealRunning`."""
        seal = await self.sealer.seal(guild_id, release, trigger=RESEAL, actor=actor)
        self.changed(guild_id)
        if self.notes is None:
            return ResealOutcome(seal, None)
        text = reseal_note(
            seal.release, seal=seal.line, by=actor.name, previous=release.seal_status
        )
        posted = await self.notes.post(guild_id, seal.release, [text], reply_to=reply_to)
        if posted is not None and seal.alarming:
            await self.alert(guild_id, seal.release, seal, operator_id=actor.id, posted=posted)
        return ResealOutcome(seal, posted)

    async def alert(
        self,
        guild_id: int,
        release: ReleaseView,
        seal: SealOutcome,
        *,
        operator_id: int | None,
        posted: PostedNotes,
        after: str | None = None,
    ) -> None:
        """The ping of a red or error seal, with the screenshot of each failed page (as many
        as one message takes; the alert says where the others are) and, while the release is
        shipped, the Roll back action (the press checks everything again). ``after``: what
        the seal followed (a rollback, a redeploy), said in its first line."""
        if self.notes is None:
            return
        evidence = await self.sealer.evidence.for_alert(seal.result)
        action = (
            AlertAction("rollback", release.slug) if release.state is ReleaseState.SHIPPED else None
        )
        text = rollback_alert(
            release,
            status=seal.status,
            summary=seal.result.summary,
            mentions=await self.notes.mentions(guild_id, operator_id),
            rollback=seal.rollback,
            evidence=screenshots_line(evidence),
            after=after,
            button=action is not None,
        )
        await self.notes.ping(
            guild_id,
            posted,
            text,
            user_id=operator_id,
            attachments=evidence.attached,
            action=action,
        )

"""``/release ship``: deploy, health, ship, seal, notes.

- **deploy**: with ``[git]``, main fast-forwards to the RC head and is pushed; then the
  ``[deploy]`` command runs with the release, version and SHA in its environment. A failure
  stops the run: the release stays assembled.
- **health**: the app's health URL, polled until 200; a hard gate (the ping carries the
  rollback command: the deploy went out).
- **ship**: the release and its members flip to shipped in one transaction.
- **seal**: the smoke suite; a seal, not a gate: its failures are recorded, never undo.
- **notes**: the release notes and, on red, the alert, each posted once
  (:meth:`~conductor.releases.publisher.Publisher.publish`).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from conductor.releases.deploy import deploy_environment
from conductor.releases.git import GitFailed
from conductor.releases.runs.driver import (
    Admission,
    Drive,
    Kind,
    RunRequest,
    Step,
    StepFailed,
    Words,
)
from conductor.releases.runs.steps import deploy_command, health
from conductor.releases.runs.store import RunView
from conductor.seals.sealer import SealOutcome
from conductor.states import ReleaseState, RunKind, StepName, StepStatus
from conductor.text import fenced
from conductor.views import Actor, ReleaseView
from smoke import SmokeConfigError
from store.db import Session

log = logging.getLogger(__name__)


class Ship(Kind):
    kind = RunKind.SHIP
    steps: ClassVar[tuple[StepName, ...]] = ("deploy", "health", "ship", "seal", "notes")
    words = Words(
        noun="ship",
        done="shipped",
        failed="The release stays assembled: fix it and `/release ship` again, or "
        "`/release abandon`.",
        interrupted="The release stays assembled. Check production, then `/release ship` "
        "again (the deploy runs again), `/release redeploy` to deploy again what production "
        "ran before, or `/release abandon` it.",
    )

    async def admit(
        self, session: Session, guild_id: int, actor: Actor, request: RunRequest
    ) -> Admission:
        release, version = await self.parts.releases.shippable(
            session, guild_id, actor, request.release_slug
        )
        return Admission(release, version)

    def step(self, name: StepName) -> Step:
        return {
            "deploy": self._deploy,
            "health": self._health,
            "ship": self._flip,
            "seal": self._seal,
            "notes": self._notes,
        }[name]

    def ping_extra(self, run: RunView, release: ReleaseView) -> str:
        """The rollback command, when production may run what failed (the health gate)."""
        try:
            app = self.parts.sealer.app()
        except SmokeConfigError:
            return ""
        command = app.rollback(
            release=release.slug,
            version=run.version,
            merge_sha=release.merge_sha or release.rc_head,
        )
        return f"\nTo roll back:\n{fenced(command)}" if command else ""

    async def _deploy(self, drive: Drive) -> None:
        parts = self.parts
        if parts.repo is None and parts.deploy.command is None:
            await drive.mark(
                StepStatus.SKIPPED,
                {"summary": "nothing to deploy: no [git] and no [deploy] command"},
            )
            return
        release = await drive.current()
        await drive.mark(StepStatus.RUNNING)
        sha = release.rc_head
        done: dict[str, Any] = {}
        if parts.repo is not None:
            if release.rc_head is None or release.rc_base is None:
                raise StepFailed(
                    "the release has no RC branch (it was assembled before [git] was set up); "
                    "abandon it and assemble a new one"
                )
            try:
                sha = await parts.repo.publish_main(release.rc_base, release.rc_head)
            except GitFailed as failed:
                raise StepFailed(str(failed)) from None
            done["sha"] = sha
            done["summary"] = f"`{parts.repo.config.main}` fast-forwarded to `{(sha or '')[:10]}`"
        if parts.deploy.command is not None:
            version = drive.run.version
            try:
                done |= await deploy_command(
                    drive, env=deploy_environment(release.slug, version, sha), what="deploy"
                )
            except StepFailed as failed:
                failed.outcome = {**done, **failed.outcome}
                raise
            done["summary"] = "; ".join(
                filter(None, [done.get("summary"), f"deployed as v{version}"])
            )
        await drive.mark(StepStatus.DONE, done)

    async def _health(self, drive: Drive) -> None:
        await health(drive, failing="the deploy went out but production is not healthy")

    async def _flip(self, drive: Drive) -> None:
        run = drive.run
        release = await drive.current()
        if release.state is not ReleaseState.SHIPPED:  # else: flipped before a crash
            await drive.mark(StepStatus.RUNNING)
            release = await self.parts.releases.ship(
                run.guild_id,
                drive.actor,
                release_slug=run.release_slug,
                version=run.version,
                merge_sha=run.step("deploy").outcome.get("sha"),
            )
            drive.release = release
        count = len(release.members)
        await drive.mark(
            StepStatus.DONE, {"summary": f"{count} member{'s' if count != 1 else ''} shipped"}
        )
        self.parts.publisher.changed(run.guild_id)

    async def _seal(self, drive: Drive) -> None:
        release = drive.release or await drive.current()
        sealer = self.parts.sealer
        if not sealer.configured:
            log.info("release %s shipped without a seal: no [app] is configured", release.slug)
            await drive.mark(StepStatus.SKIPPED, {"summary": "no [app]"})
            return
        seal = self._sealed_after_ship(release)  # recorded before a crash: reused
        if seal is None:
            await drive.mark(StepStatus.RUNNING)
            seal = await self.parts.publisher.seal_shipped(drive.run.guild_id, release, drive.actor)
        drive.seal = seal
        drive.release = seal.release
        await drive.mark(StepStatus.DONE, {"summary": seal.line})

    def _sealed_after_ship(self, release: ReleaseView) -> SealOutcome | None:
        if (
            release.seal_checked_at is not None
            and release.shipped_at is not None
            and release.seal_checked_at >= release.shipped_at
        ):
            return self.parts.sealer.stored(release)
        return None

    async def _notes(self, drive: Drive) -> None:
        release = await drive.current()
        # after a crash the seal step is done and not run again: its verdict is the stored one,
        # and the alert it owes goes with the notes all the same
        seal = drive.seal or (
            self._sealed_after_ship(release)
            if drive.run.step("seal").status is StepStatus.DONE
            else None
        )
        await drive.mark(StepStatus.RUNNING)
        publisher = self.parts.publisher
        drive.notes = await publisher.publish(
            drive.run.guild_id,
            release,
            seal,
            operator_id=drive.actor.id,
            reply_to=drive.reply_to,
            sent=drive.at,
        )
        drive.seal = seal
        outcome = (
            {"summary": "posted", "link": drive.notes.link, "message_id": drive.notes.message_id}
            if drive.notes is not None
            else {"summary": "not posted yet: the reconcile posts them"}
        )
        await drive.mark(StepStatus.DONE, outcome)

"""Rolling production back from the last shipped release: an operator's decision, never
automatic, run as a recorded run of its own (a ``rollback`` run in ``conductor.releases.runs``,
with the ship's lease, fence and resume).

- **revert**: with ``[git]``, ``git revert -m 1 <merge sha>`` on main, pushed. The commit
  carries a ``Conductor-Reverts: <merge sha>`` trailer, so an attempt after a crash finds it on
  main and never reverts twice. Without ``[git]``: skipped, and said so.
- **deploy**: the ``[deploy]`` command with the release production goes back to in its
  environment (``CONDUCTOR_RELEASE``, ``CONDUCTOR_VERSION``, ``CONDUCTOR_SHA``: main after the
  revert, ``CONDUCTOR_ROLLBACK_OF``). Found in flight after a crash: interrupted, not repeated.
- **health**: the app's health URL until 200, after a deploy; a hard gate.
- **flip**: the release becomes rolled_back (who, when, why), its members go back to reviewed
  with the move on their timelines.
- **seal**: the smoke suite against the production the rollback left, recorded (trigger
  ``rollback``) on the release production runs again, whose verdict it becomes; the rolled-back
  release keeps its own. With none before it, only in the rolled-back release's history.
- **notes**: the outcome in the release's thread, once, even across a crash.

Only the last shipped release can be rolled back, once; not while a ship or another rollback
runs. A failure at any step is told in the thread with what was done and what was not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from conductor.errors import ConductorError, InvalidInput, InvalidMove, NotFound
from conductor.notes import production_line, rollback_note
from conductor.queries import (
    last_shipped,
    load_release_view,
    release_members,
    require_release,
    running_run,
)
from conductor.releases.deploy import log_path, rollback_environment
from conductor.releases.git import GitFailed, GitRepository, run_logged
from conductor.releases.pipeline import (
    Checkpoint,
    PostedNotes,
    Progress,
    RunSteps,
    ShipPipeline,
    health_step,
)
from conductor.releases.runs import LeaseLost, RunView, ShipRunning
from conductor.releases.service import MAX_REASON
from conductor.seals.sealer import SealOutcome
from conductor.states import (
    ROLLBACK,
    ReleaseState,
    RollbackStepName,
    RunKind,
    ShipRunStatus,
    ShipStepStatus,
)
from conductor.text import clip, fenced, mask_credentials, short_sha, version
from conductor.views import Actor, ReleaseView
from smoke import SmokeConfigError, SmokeResult
from store.db import Session
from store.errors import DatabaseUnavailable
from store.models import Release

log = logging.getLogger(__name__)

#: how an empty value of the deploy's environment is shown
_EMPTY = "''"
#: the reason kept when the operator gives none
DEFAULT_REASON = "rolled back from the red alert"

STEP_WORDS: dict[str, str] = {
    "revert": "the revert",
    "deploy": "the deploy",
    "health": "the health gate",
    "flip": "the state change",
    "seal": "the seal",
    "notes": "the notes",
}


class RollbackPaused(ConductorError):
    """The database could not take a step of a running rollback: the run stays as it was last
    recorded, and the reconcile takes it up again once its lease runs out."""


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback of ``release`` would do, for the operator to confirm."""

    release: ReleaseView
    #: the release production runs again afterwards (None: none shipped before it)
    previous: ReleaseView | None
    #: the members that go back to reviewed, in merge order
    members: tuple[str, ...]
    #: the exact commands Conductor will run, in order
    commands: tuple[str, ...]
    #: the other steps, in words
    steps: tuple[str, ...]

    @property
    def production(self) -> str:
        return production_line(self.previous)


@dataclass(frozen=True, slots=True)
class RollbackOutcome:
    #: the release as it stands now
    release: ReleaseView
    run: RunView | None
    #: the seal of the production the rollback left (None: not sealed)
    seal: SealOutcome | None = None
    notes: PostedNotes | None = None
    #: why the run stopped before its end
    stopped: str | None = None

    @property
    def rolled_back(self) -> bool:
        return self.release.state is ReleaseState.ROLLED_BACK


class _Stop(Exception):
    """A step ended the run; the text says why."""


@dataclass
class _Drive:
    run: RunView
    actor: Actor
    reply_to: object | None
    progress: Progress | None
    step: RollbackStepName = "revert"
    seal: SealOutcome | None = None
    notes: PostedNotes | None = None


class RollbackPipeline:
    """The rollback run, built on the ship pipeline's parts: its release service, sealer,
    notes sink, run store (lease and fence), git clone and deploy settings."""

    def __init__(self, ship: ShipPipeline, *, checkpoint: Checkpoint | None = None) -> None:
        self.ship = ship
        self.releases = ship.releases
        self.sealer = ship.sealer
        self.runs = ship.runs
        self.checkpoint = checkpoint if checkpoint is not None else ship.checkpoint
        self.steps = RunSteps(self.runs, self.checkpoint, kind=RunKind.ROLLBACK)

    @property
    def repo(self) -> GitRepository | None:
        return self.ship.repo

    def _changed(self, guild_id: int) -> None:
        if self.ship.notes is not None:
            self.ship.notes.changed(guild_id)

    # ------------------------------------------------------------------ the rules

    async def _target(
        self, session: Session, guild_id: int, slug: str | None
    ) -> tuple[Release, Release | None]:
        """The release a rollback means (the named one, or the last shipped) and the one
        production goes back to; or the refusal, naming why."""
        last = await last_shipped(session, guild_id)
        if slug is None or not slug.strip():
            if last is None:
                raise NotFound("Nothing has shipped yet, so there is nothing to roll back.")
            release = last
        else:
            release = await require_release(session, guild_id, slug.strip().lower())
        label = f"`{release.slug}`{f' v{release.version}' if release.version else ''}"
        if release.state is ReleaseState.ROLLED_BACK:
            when = (
                f" at {release.rolled_back_at:%Y-%m-%d %H:%M UTC}" if release.rolled_back_at else ""
            )
            now = (
                f"production runs `{last.slug}` v{last.version} now"
                if last is not None
                else "no release of ours runs in production now"
            )
            raise InvalidMove(
                f"Release {label} was rolled back already, by {release.rolled_back_by or '?'}"
                f"{when} (why: {clip(release.rollback_reason or 'not given', 200)}). A release "
                f"is rolled back once; {now}."
            )
        if release.state is not ReleaseState.SHIPPED:
            raise InvalidMove(
                f"Release {label} is {release.state.value}; only a shipped release can be "
                "rolled back."
            )
        if last is not None and last.id != release.id:
            raise InvalidMove(
                f"Release {label} is not what production runs: `{last.slug}` v{last.version} "
                f"shipped after it. Only the last shipped release can be rolled back."
            )
        running = await running_run(session, guild_id)
        if running is not None:
            what = await session.get(Release, running.release_id)
            name = what.slug if what is not None else "?"
            if running.kind is RunKind.ROLLBACK:
                raise ShipRunning(
                    f"A rollback of `{name}` is already running (started by "
                    f"{running.started_by} at {running.started_at:%H:%M UTC}); its progress is "
                    "in the release thread."
                )
            raise ShipRunning(
                f"A ship of `{name}` is running (started by {running.started_by} at "
                f"{running.started_at:%H:%M UTC}); roll back once it has ended. Nothing was "
                "rolled back."
            )
        previous = await session.scalar(
            select(Release)
            .where(
                Release.guild_id == guild_id,
                Release.state == ReleaseState.SHIPPED,
                Release.version < (release.version or 0),
            )
            .order_by(Release.version.desc())
            .limit(1)
        )
        if self.repo is not None and not release.merge_sha:
            raise InvalidMove(
                f"Release {label} has no merge commit recorded (it shipped before `[git]` was "
                "set up), so Conductor cannot revert it. Roll it back by hand."
            )
        if previous is None and self.repo is None and self.ship.deploy.command is not None:
            raise InvalidMove(
                f"Nothing to roll back to: no release shipped before {label}, and without "
                "`[git]` there is no commit to deploy instead, so the deploy command would "
                "have nothing to go on. Roll it back by hand."
            )
        return release, previous

    async def plan(self, guild_id: int, release_slug: str | None = None) -> RollbackPlan:
        """Read-only: what a rollback would do (for the confirmation), or the refusal it
        would give."""
        async with self.releases.db.read() as session:
            row, previous_row = await self._target(session, guild_id, release_slug)
            release = await load_release_view(session, row)
            previous = await load_release_view(session, previous_row) if previous_row else None
            members = tuple(t.slug for t in await release_members(session, row))
        return RollbackPlan(
            release,
            previous,
            members,
            self._commands(release, previous),
            self._words(release, previous, members),
        )

    def _commands(self, release: ReleaseView, previous: ReleaseView | None) -> tuple[str, ...]:
        out: list[str] = []
        repo, command = self.repo, self.ship.deploy.command
        if repo is not None:
            main, remote = repo.config.main, repo.config.remote
            where = f"refs/remotes/{remote}/{main}" if remote else main
            out.append(f"git revert -m 1 {release.merge_sha}   # on {where}, in {repo.path}")
            out.append(
                f"git push {remote} HEAD:refs/heads/{main}"
                if remote
                else f"git update-ref refs/heads/{main} HEAD   # no remote"
            )
        if command is not None:
            sha = (
                "<main after the revert>"
                if repo is not None
                else (previous.merge_sha if previous is not None and previous.merge_sha else "")
            )
            env = rollback_environment(
                release.slug,
                previous.slug if previous else None,
                previous.version if previous else None,
                sha,
            )
            shown = " ".join(f"{k}={v or _EMPTY}" for k, v in env.items())
            # shown in the channel: a password in a URL of the command is not
            out.append(mask_credentials(f"{shown} {command}"))
        return tuple(out)

    def _words(
        self, release: ReleaseView, previous: ReleaseView | None, members: tuple[str, ...]
    ) -> tuple[str, ...]:
        repo, command = self.repo, self.ship.deploy.command
        out: list[str] = []
        if repo is None:
            out.append("revert: skipped, no `[git]` is configured (main is not changed)")
        if command is None:
            out.append("deploy: skipped, no deploy command is configured")
        try:
            app = self.sealer.app() if self.sealer.configured else None
        except SmokeConfigError:
            app = None
        if command is not None and app is not None:
            out.append(
                f"health gate: GET {app.health_url} until 200 "
                f"(at most {self.ship.deploy.health_timeout:g} s)"
            )
        back = ", ".join(f"`{m}`" for m in members) or "none"
        out.append(f"`{release.slug}` becomes rolled_back; its members go back to reviewed: {back}")
        if app is not None:
            on = (
                f"on `{previous.slug}`{version(previous)}"
                if previous
                else f"in `{release.slug}`'s history only"
            )
            out.append(f"seal: the smoke suite against {app.production_url} (recorded {on})")
        else:
            out.append("seal: skipped, no `[app]` is configured")
        return tuple(out)

    # ------------------------------------------------------------------ the run

    async def roll_back(
        self,
        guild_id: int,
        actor: Actor,
        *,
        release_slug: str | None = None,
        reason: str | None = None,
        progress: Progress | None = None,
        reply_to: object | None = None,
    ) -> RollbackOutcome:
        """Start a rollback run of the last shipped release (checked again here, in the
        transaction that starts it) and drive it to its end. Only the start raises (a
        refusal: nothing happened); what happens after is in the outcome."""
        why = " ".join((reason or "").split()) or DEFAULT_REASON
        if len(why) > MAX_REASON:
            raise InvalidInput(
                f"That reason is too long ({len(why)} characters; at most {MAX_REASON})."
            )
        try:
            async with self.releases.db.write() as session:
                release, previous = await self._target(session, guild_id, release_slug)
                run = await self.runs.open_run(
                    session,
                    release,
                    RunKind.ROLLBACK,
                    version=release.version or 0,
                    actor=actor,
                    restores_version=previous.version if previous is not None else None,
                    reason=why,
                )
        except IntegrityError:
            # another process started one between our read and our write
            raise ShipRunning(
                f"A rollback of `{release_slug or 'the last shipped release'}` is already "
                "running; its progress is in the release thread."
            ) from None
        log.info("rollback run %s started release=%s by=%s", run.id, run.release_slug, actor.label)
        return await self._drive(run, actor=actor, reply_to=reply_to, progress=progress)

    async def resume(self, guild_id: int) -> int:
        """Take up the guild's rollback runs whose process died and drive each from its last
        finished step. Returns how many this process took."""
        return await self.steps.take_up(
            guild_id, resumed=self._resumed, drive=lambda run: self._drive(run, actor=run.actor)
        )

    async def _drive(
        self,
        run: RunView,
        *,
        actor: Actor,
        reply_to: object | None = None,
        progress: Progress | None = None,
    ) -> RollbackOutcome:
        state = _Drive(run, actor, reply_to, progress)
        steps: dict[RollbackStepName, Callable[[_Drive], Awaitable[None]]] = {
            "revert": self._step_revert,
            "deploy": self._step_deploy,
            "health": self._step_health,
            "flip": self._step_flip,
            "seal": self._step_seal,
            "notes": self._step_notes,
        }
        self.steps.driving.add(run.id)
        stopped: str | None = None
        try:
            async with self.runs.holding(run.id):
                for name, step_of in steps.items():
                    state.step = name
                    step = state.run.step(name)
                    if step.status in (ShipStepStatus.DONE, ShipStepStatus.SKIPPED):
                        continue
                    if step.status is ShipStepStatus.RUNNING and name == "deploy":
                        stopped = await self._interrupted(state)
                        break
                    await step_of(state)
                else:
                    state.run = await self.runs.finish(run.id, ShipRunStatus.DONE)
                    await self.steps.report(state)
        except _Stop as stop:
            stopped = str(stop)
        except LeaseLost:
            log.warning("rollback run %s was taken over by another process; stopping", run.id)
            stopped = "another process took the run over"
        except ConductorError as refused:
            # A step was refused (the release changed under the run): end it, say why.
            log.warning("rollback run %s refused: %s", run.id, refused)
            stopped = str(refused)
            await self._refused(state, stopped)
        except DatabaseUnavailable as down:
            log.warning(
                "rollback run %s stopped at the %s step: the database is %s",
                run.id, state.step, down.reason,
            )  # fmt: skip
            raise RollbackPaused(
                f"⛔ {down.problem}, so the rollback of `{run.release_slug}` stopped at its "
                f"{state.step} step. What was done stays done: Conductor takes the rollback up "
                "again from there once the database is back."
            ) from down
        finally:
            self.steps.driving.discard(run.id)
        release = await self.releases.get(run.guild_id, run.release_slug)
        return RollbackOutcome(release, state.run, state.seal, state.notes, stopped)

    async def _previous(self, run: RunView) -> ReleaseView | None:
        """The release production goes back to (by the version recorded at the start)."""
        if run.restores_version is None:
            return None
        async with self.releases.db.read() as session:
            row = await session.scalar(
                select(Release).where(
                    Release.guild_id == run.guild_id, Release.version == run.restores_version
                )
            )
            return await load_release_view(session, row) if row is not None else None

    # ------------------------------------------------------------------ the steps

    async def _step_revert(self, state: _Drive) -> None:
        repo = self.repo
        if repo is None:
            await self.steps.mark(
                state, "revert", ShipStepStatus.SKIPPED,
                {"summary": "no [git] is configured: main was not changed"},
            )  # fmt: skip
            return
        release = await self.releases.get(state.run.guild_id, state.run.release_slug)
        await self.steps.mark(state, "revert", ShipStepStatus.RUNNING)
        self.steps.at("revert:running")
        if not release.merge_sha:
            await self._fail(state, "revert", "the release has no merge commit recorded")
        merge = release.merge_sha or ""
        title = f"Revert release {release.slug}{version(release)}"
        body = (
            f"This reverts the release merge {merge}, back to its first parent.\n\n"
            f"Rolled back by {state.actor.label}: {state.run.reason or DEFAULT_REASON}"
        )
        try:
            reverted = await repo.revert_main(merge, title=title, body=body)
        except GitFailed as failed:
            await self._fail(state, "revert", str(failed))
            return
        await self.steps.mark(
            state, "revert", ShipStepStatus.DONE,
            {"summary": reverted.summary, "sha": reverted.sha, "created": reverted.created},
        )  # fmt: skip

    async def _step_deploy(self, state: _Drive) -> None:
        command = self.ship.deploy.command
        if command is None:
            await self.steps.mark(
                state, "deploy", ShipStepStatus.SKIPPED,
                {"summary": "no deploy command is configured: deploy the previous version by hand"},
            )  # fmt: skip
            return
        run = state.run
        previous = await self._previous(run)
        revert = run.step("revert")
        sha = (
            revert.outcome.get("sha")
            if revert.status is ShipStepStatus.DONE
            else (previous.merge_sha if previous is not None else None)
        )
        await self.steps.mark(state, "deploy", ShipStepStatus.RUNNING)
        self.steps.at("deploy:running")
        repo = self.repo
        ran = await run_logged(
            command,
            cwd=repo.path if repo is not None else Path.cwd(),
            log_path=log_path(self.ship.deploy, run.release_slug, run.version, what="rollback"),
            limit_s=self.ship.deploy.timeout,
            env=rollback_environment(
                run.release_slug,
                previous.slug if previous else None,
                previous.version if previous else None,
                sha,
            ),
        )
        outcome = {"tail": ran.tail, "log": ran.log, "duration_ms": ran.duration_ms, "sha": sha}
        if not ran.passed:
            why = (
                f"the deploy command was killed after {self.ship.deploy.timeout:g} s"
                if ran.timed_out
                else f"the deploy command failed (exit {ran.returncode})"
            )
            await self._fail(state, "deploy", why, extra=outcome, alert=True)
        target = f"`{previous.slug}`{version(previous)}" if previous else "the commit before it"
        outcome["summary"] = f"deployed {target} again"
        await self.steps.mark(state, "deploy", ShipStepStatus.DONE, outcome)

    async def _step_health(self, state: _Drive) -> None:
        await health_step(
            deployed=state.run.step("deploy").status is ShipStepStatus.DONE,
            sealer=self.sealer,
            deploy=self.ship.deploy,
            mark=lambda status, outcome: self.steps.mark(state, "health", status, outcome),
            fail=lambda summary, extra: self._fail(
                state, "health",
                f"the rollback's deploy went out but production is not healthy: {summary}",
                extra=extra, alert=True,
            ),
        )  # fmt: skip

    async def _step_flip(self, state: _Drive) -> None:
        run = state.run
        release = await self.releases.get(run.guild_id, run.release_slug)
        if release.state is ReleaseState.ROLLED_BACK:  # flipped before a crash
            members = list(run.step("flip").outcome.get("members") or [])
        else:
            members = [m.slug for m in release.members]
            # the members are known before the flip detaches them (a crash between keeps them)
            await self.steps.mark(state, "flip", ShipStepStatus.RUNNING, {"members": members})
            _, sent_back = await self.releases.roll_back(
                run.guild_id, run.release_slug, state.actor, reason=run.reason or DEFAULT_REASON
            )
            self.steps.at("flip:flipped")  # committed, not yet marked
            members = list(sent_back)
        count = len(members)
        summary = f"rolled back; {count} member{'s' if count != 1 else ''} back to reviewed"
        await self.steps.mark(
            state, "flip", ShipStepStatus.DONE, {"summary": summary, "members": members}
        )
        self._changed(run.guild_id)

    async def _step_seal(self, state: _Drive) -> None:
        run = state.run
        if not self.sealer.configured:
            await self.steps.mark(state, "seal", ShipStepStatus.SKIPPED, {"summary": "no [app]"})
            return
        previous = await self._previous(run)
        target = previous or await self.releases.get(run.guild_id, run.release_slug)
        found = await self.sealer.records.since(
            run.guild_id, target.slug, trigger=ROLLBACK, at=run.started_at
        )
        if found is not None:  # recorded before a crash: reused
            seal = self.sealer.outcome_of(target, found)
        else:
            await self.steps.mark(state, "seal", ShipStepStatus.RUNNING)
            try:
                seal = await self.sealer.seal(
                    run.guild_id, target, trigger=ROLLBACK, actor=state.actor,
                    verdict=previous is not None,
                )  # fmt: skip
            except Exception as error:
                log.exception("the seal after the rollback of %s failed", run.release_slug)
                result = SmokeResult.failure(f"the seal step failed: {error}"[:300])
                seal = SealOutcome(result, target, None, recorded=False)
            self.steps.at("seal:recorded")  # recorded, not yet marked
        state.seal = seal
        await self.steps.mark(
            state, "seal", ShipStepStatus.DONE, {"summary": seal.line, "release": target.slug}
        )
        self._changed(run.guild_id)

    async def _step_notes(self, state: _Drive) -> None:
        run = state.run
        sink = self.ship.notes
        if sink is None:
            await self.steps.mark(
                state, "notes", ShipStepStatus.SKIPPED, {"summary": "nowhere to post"}
            )
            return
        retried = run.step("notes").status is ShipStepStatus.RUNNING
        release = await self.releases.get(run.guild_id, run.release_slug)
        previous = await self._previous(run)
        seal = state.seal or await self._stored_seal(run, previous, release)
        marker = f"⏪ **Rolled back `{release.slug}`"
        after = f"after the rollback of `{release.slug}`{version(release)}"
        posted = await sink.find(run.guild_id, release, marker) if retried else None
        await self.steps.mark(state, "notes", ShipStepStatus.RUNNING)
        if posted is None:
            text = rollback_note(
                release,
                previous=previous,
                steps=_step_lines(state.run),
                seal=seal.line if seal is not None else None,
                members=list(run.step("flip").outcome.get("members") or []),
            )
            posted = await sink.post(run.guild_id, release, [text], reply_to=state.reply_to)
            if posted is not None:
                self.steps.at("notes:sent")
        if posted is not None and seal is not None and seal.alarming:
            pinged = await sink.find(run.guild_id, release, after) if retried else None
            if pinged is None:
                await self.ship.alert(
                    run.guild_id,
                    seal.release,
                    seal,
                    operator_id=state.actor.id,
                    posted=posted,
                    after=after,
                )
        state.notes = posted
        outcome = (
            {"summary": "posted", "link": posted.link, "message_id": posted.message_id}
            if posted is not None
            else {"summary": "not posted: Discord refused it (the log says why)"}
        )
        await self.steps.mark(state, "notes", ShipStepStatus.DONE, outcome)

    async def _stored_seal(
        self, run: RunView, previous: ReleaseView | None, release: ReleaseView
    ) -> SealOutcome | None:
        """The seal this run recorded before a crash (the notes are posted after one)."""
        if run.step("seal").status is not ShipStepStatus.DONE:
            return None
        target = previous or release
        found = await self.sealer.records.since(
            run.guild_id, target.slug, trigger=ROLLBACK, at=run.started_at
        )
        return self.sealer.outcome_of(target, found) if found is not None else None

    # ------------------------------------------------------------------ when it stops

    async def _fail(
        self,
        state: _Drive,
        name: RollbackStepName,
        summary: str,
        *,
        extra: dict[str, Any] | None = None,
        alert: bool = False,
    ) -> NoReturn:
        """The step failed: record it, end the run, tell the thread what was done and what
        was not (pinging the operator when production may be left broken), and stop."""
        await self.steps.mark(
            state, name, ShipStepStatus.FAILED, {**(extra or {}), "summary": summary}
        )
        await self._stopped(state, name, summary, tail=(extra or {}).get("tail"), alert=alert)
        raise _Stop(summary)

    async def _refused(self, state: _Drive, summary: str) -> None:
        """A step was refused by the domain (the release changed under the run)."""
        if state.run.step(state.step).status is ShipStepStatus.RUNNING:
            await self.steps.mark(state, state.step, ShipStepStatus.FAILED, {"summary": summary})
        await self._stopped(state, state.step, summary)

    async def _stopped(
        self,
        state: _Drive,
        name: RollbackStepName,
        summary: str,
        *,
        tail: str | None = None,
        alert: bool = False,
    ) -> None:
        """End the run as failed and tell the thread what was done and what was not."""
        state.run = await self.runs.finish(state.run.id, ShipRunStatus.FAILED, error=summary)
        await self.steps.report(state)
        release = await self.releases.get(state.run.guild_id, state.run.release_slug)
        text = f"❌ The rollback of `{release.slug}`{version(release)} stopped at the {name} step: {summary}"
        if tail:
            text += "\n" + fenced(clip(tail, 700))
        text += "\n" + self._account(state.run, release)
        text += (
            "\nFix it and `/release rollback` again (what was done is not done again), or keep "
            "production as it is."
        )
        await self._tell(state, release, clip(text, 2000), alert=alert)

    async def _interrupted(self, state: _Drive) -> str:
        summary = (
            "Conductor stopped while the rollback's deploy was running, so it may or may not "
            "have gone out"
        )
        await self.steps.mark(state, "deploy", ShipStepStatus.INTERRUPTED, {"summary": summary})
        state.run = await self.runs.finish(state.run.id, ShipRunStatus.INTERRUPTED, error=summary)
        await self.steps.report(state)
        release = await self.releases.get(state.run.guild_id, state.run.release_slug)
        text = (
            f"⚠️ The rollback of `{release.slug}`{version(release)} was interrupted: {summary}.\n"
            f"{self._account(state.run, release)}\nCheck production, then `/release rollback` "
            "again (the revert is not repeated; the deploy runs again)."
        )
        await self._tell(state, release, clip(text, 2000), alert=True)
        return summary

    def _account(self, run: RunView, release: ReleaseView) -> str:
        """What a stopped rollback did and did not do, in words."""
        done: list[str] = []
        for step in run.steps:
            if step.status is ShipStepStatus.DONE:
                done.append(str(step.outcome.get("summary") or STEP_WORDS[step.name]))
        left = [
            STEP_WORDS[step.name]
            for step in run.steps
            if step.status not in (ShipStepStatus.DONE, ShipStepStatus.SKIPPED)
        ]
        lines = [
            f"Done: {'; '.join(done) if done else 'nothing'}.",
            f"Not done: {', '.join(left) if left else 'nothing'}.",
        ]
        if release.state is ReleaseState.SHIPPED:
            lines.append(f"`{release.slug}` is still shipped: production may still run it.")
        revert = run.step("revert")
        if revert.status is ShipStepStatus.DONE and revert.outcome.get("created"):
            sha = short_sha(str(revert.outcome.get("sha") or ""))
            lines.append(
                f"Main has the revert `{sha}`: to keep `{release.slug}` after all, revert that "
                "commit on main by hand."
            )
        return "\n".join(lines)

    async def _tell(
        self, state: _Drive, release: ReleaseView, text: str, *, alert: bool = False
    ) -> None:
        sink = self.ship.notes
        if sink is None:
            return
        where = await sink.post(state.run.guild_id, release, [text], reply_to=state.reply_to)
        if alert and where is not None:
            mentions = await sink.mentions(state.run.guild_id, state.actor.id)
            first = text.splitlines()[0]
            await sink.ping(
                state.run.guild_id,
                where,
                clip(f"🚨 {' '.join(mentions)} {first}", 2000),
                user_id=state.actor.id,
            )

    async def _resumed(self, run: RunView) -> None:
        """Say in the thread that a rollback is taken up again after its process died."""
        sink = self.ship.notes
        if sink is None:
            return
        finished = (ShipStepStatus.DONE, ShipStepStatus.SKIPPED)
        left = [s.name for s in run.steps if s.status not in finished]
        if not left:
            return
        release = await self.releases.get(run.guild_id, run.release_slug)
        where = (
            "the deploy was in flight, so it is not repeated"
            if run.step("deploy").status is ShipStepStatus.RUNNING
            else f"from the {left[0]} step; what was done is not done again"
        )
        await sink.post(
            run.guild_id,
            release,
            [f"♻️ Conductor stopped during the rollback of `{release.slug}`{version(release)} "
             f"and took it up again: {where}."],
        )  # fmt: skip


def _step_lines(run: RunView) -> list[str]:
    """The note's line for each step before the flip that did something or said why not."""
    icons: dict[RollbackStepName, str] = {"revert": "↩️", "deploy": "🚚", "health": "💚"}
    out = []
    for name, icon in icons.items():
        step = run.step(name)
        summary = str(step.outcome.get("summary") or "")
        if step.status is ShipStepStatus.DONE:
            out.append(f"{icon} {summary}")
        elif step.status is ShipStepStatus.SKIPPED:
            out.append(f"⏭️ {STEP_WORDS[name]}: {summary}")
    return out

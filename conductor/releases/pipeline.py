"""``/release ship`` as a persisted run of steps: deploy, health, ship, seal, notes; and the
notes' other paths (``/seal``'s re-seal, the notes still owed).

Each step is recorded on the ship run (``conductor.releases.runs``) before and after it runs,
by the one process that holds the run's lease. A crash at any point leaves a run the next
start resumes from its last finished step (:meth:`ShipPipeline.resume`). The deploy is the
step that cannot safely be repeated: found in flight after a crash, it is marked interrupted
and the operator is told in the thread, with the choices.

- **deploy**: with ``[git]``, main fast-forwards to the RC head and is pushed; then the
  ``[deploy]`` command runs with the release, version and SHA in its environment. A failure
  stops the run: the release stays assembled, the operator is told why.
- **health**: the app's health URL, polled until 200. A hard gate: on failure the release
  stays assembled and the operator is pinged (the deploy went out, production is not
  healthy) with the rollback command.
- **ship**: the release and its members flip to shipped in one transaction.
- **seal**: the smoke suite. A seal, not a gate: its failures are recorded, never undo.
- **notes**: posted once, even across a crash between Discord taking them and the record.

The words are written here; the :class:`NotesSink` the edge gives (``bot.publish``) only
delivers them. Which notes are owed is decided here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

from conductor.errors import ConductorError
from conductor.notes import release_notes, reseal_note, rollback_alert, screenshots_line
from conductor.releases.deploy import (
    DeployConfig,
    deploy_environment,
    health_gate,
    log_path,
)
from conductor.releases.git import GitFailed, GitRepository, run_logged
from conductor.releases.runs import LeaseLost, RunView, ShipRuns
from conductor.releases.service import Releases
from conductor.seals.evidence import Attachment
from conductor.seals.sealer import Sealer, SealOutcome
from conductor.states import (
    RESEAL,
    SHIP,
    SHIP_STEPS,
    ReleaseState,
    RunKind,
    ShipRunStatus,
    ShipStepName,
    ShipStepStatus,
    StepName,
)
from conductor.text import clip, fenced
from conductor.views import Actor, ReleaseView
from smoke import SmokeConfigError, SmokeResult
from store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

#: called after each step of a run changes, with the run as it stands
Progress = Callable[[RunView], Awaitable[None]]
#: called at each step boundary ("deploy:done", "notes:sent", …): tracing, and the tests that
#: kill the process there
Checkpoint = Callable[[str], None]


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


@dataclass(frozen=True, slots=True)
class ShipOutcome:
    release: ReleaseView
    #: None when no ``[app]`` is configured (nothing to seal against), or it did not ship
    seal: SealOutcome | None
    #: None when the notes could not be posted (yet): the reconcile posts them later
    notes: PostedNotes | None = None
    #: the persisted run, step by step
    run: RunView | None = None
    #: why the run stopped before the flip (the deploy, the health gate, an interruption)
    stopped: str | None = None

    @property
    def shipped(self) -> ReleaseView:
        """The release as it stands now, with its seal when one was recorded."""
        return self.seal.release if self.seal is not None else self.release


@dataclass(frozen=True, slots=True)
class ResealOutcome:
    seal: SealOutcome
    posted: PostedNotes | None


class _Stop(Exception):
    """A step ended the run before the flip; the text says why."""


class ShipPaused(ConductorError):
    """The database could not take a step of a running ship: the run stays as it was last
    recorded, and the reconcile takes it up again once its lease runs out."""


@dataclass
class _Drive:
    """What one drive of a run carries from step to step."""

    run: RunView
    actor: Actor
    reply_to: object | None
    progress: Progress | None
    step: ShipStepName = "deploy"
    release: ReleaseView | None = None
    seal: SealOutcome | None = None
    notes: PostedNotes | None = None


class _Driving(Protocol):
    run: RunView
    progress: Progress | None


class RunSteps:
    """How a run (a ship or a rollback) records its steps: each mark is written on the
    persisted run, then reported to whoever watches the run (a failing report is logged, the
    run goes on), then, once a step has an outcome, told to the checkpoint as
    ``{prefix}{step}:{status}`` (the crash tests stop the process there). It also knows which
    runs of its kind this process is driving, and takes up those whose process died."""

    def __init__(self, runs: ShipRuns, checkpoint: Checkpoint | None, *, kind: RunKind) -> None:
        self.runs = runs
        self.checkpoint = checkpoint
        self.kind = kind
        #: runs this process is driving right now (a resume leaves them alone)
        self.driving: set[int] = set()
        self._prefix = "" if kind is RunKind.SHIP else f"{kind.value}:"

    def at(self, point: str) -> None:
        if self.checkpoint is not None:
            self.checkpoint(f"{self._prefix}{point}")

    async def mark(
        self,
        state: _Driving,
        name: StepName,
        status: ShipStepStatus,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        state.run = await self.runs.mark(state.run.id, name, status, outcome)
        await self.report(state)
        if status is not ShipStepStatus.RUNNING:
            self.at(f"{name}:{status.value}")

    async def take_up(
        self,
        guild_id: int,
        *,
        resumed: Callable[[RunView], Awaitable[None]],
        drive: Callable[[RunView], Awaitable[object]],
    ) -> int:
        """Take up the guild's runs of this kind whose process died (their lease ran out, or
        their owner is gone): ``resumed`` says so in the thread, ``drive`` goes on from the
        last finished step. Returns how many this process took."""
        taken = 0
        for run in await self.runs.unfinished(guild_id, self.kind):
            if run.id in self.driving or not await self.runs.claim(run.id):
                continue  # driven here already, or alive in another process
            taken += 1
            log.info("resuming %s run %s of %s", self.kind, run.id, run.release_slug)
            current = await self.runs.get(run.id)
            await resumed(current)
            await drive(current)
        return taken

    async def report(self, state: _Driving) -> None:
        if state.progress is None:
            return
        try:
            await state.progress(state.run)
        except Exception:
            log.warning("the %s progress report failed; going on", self.kind, exc_info=True)


MarkStep = Callable[[ShipStepStatus, "dict[str, Any] | None"], Awaitable[None]]
FailStep = Callable[[str, "dict[str, Any]"], Awaitable[NoReturn]]


async def health_step(
    *, deployed: bool, sealer: Sealer, deploy: DeployConfig, mark: MarkStep, fail: FailStep
) -> None:
    """The health gate as a run's step, the same for a ship and a rollback: skipped when
    nothing was deployed (the seal then checks production) or there is no ``[app]`` to ask;
    else production's health URL is polled until healthy or the gate's time is up. ``fail``
    gets the gate's summary and the attempts and ends the run."""
    if not deployed:
        await mark(
            ShipStepStatus.SKIPPED, {"summary": "nothing was deployed; the seal checks production"}
        )
        return
    try:
        app = sealer.app() if sealer.configured else None
    except SmokeConfigError:
        app = None
    if app is None:
        await mark(ShipStepStatus.SKIPPED, {"summary": "no [app]: no health URL"})
        return
    await mark(ShipStepStatus.RUNNING, None)
    result = await health_gate(
        app.health_url, limit_s=deploy.health_timeout, interval=deploy.health_interval
    )
    if not result.healthy:
        await fail(result.summary, {"attempts": result.attempts})
    await mark(ShipStepStatus.DONE, {"summary": result.summary, "attempts": result.attempts})


class ShipPipeline:
    def __init__(
        self,
        releases: Releases,
        sealer: Sealer,
        notes: NotesSink | None = None,
        *,
        runs: ShipRuns | None = None,
        repo: GitRepository | None = None,
        deploy: DeployConfig | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.releases = releases
        self.sealer = sealer
        #: None: nowhere to post (the CLI, some tests); the notes stay owed
        self.notes = notes
        self.runs = runs or ShipRuns(releases.db)
        self.repo = repo
        self.deploy = deploy or DeployConfig()
        self.checkpoint = checkpoint
        self.steps = RunSteps(self.runs, checkpoint, kind=RunKind.SHIP)
        #: releases whose notes this process is posting right now (the reconcile's notes)
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
        """Start a ship run of the assembled release and drive it to its end. Only the start
        raises (a refusal: nothing happened); what happens after is in the outcome."""
        if release_slug is None:
            release_slug = (await self.releases.ship_preflight(guild_id, actor)).slug
        run = await self.runs.start(guild_id, release_slug, actor)
        return await self._drive(run, actor=actor, reply_to=reply_to, progress=progress)

    async def resume(self, guild_id: int) -> int:
        """Take up the guild's ship runs whose process died and drive each from its last
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
    ) -> ShipOutcome:
        state = _Drive(run, actor, reply_to, progress)
        self.steps.driving.add(run.id)
        try:
            async with self.runs.holding(run.id):
                for name in SHIP_STEPS:
                    state.step = name
                    step = state.run.step(name)
                    if step.status in (ShipStepStatus.DONE, ShipStepStatus.SKIPPED):
                        continue
                    if step.status is ShipStepStatus.RUNNING and name == "deploy":
                        return await self._interrupted(state)
                    await self._step(name)(state)
                state.run = await self.runs.finish(run.id, ShipRunStatus.DONE)
                await self.steps.report(state)
        except _Stop as stop:
            release = await self.releases.get(run.guild_id, run.release_slug)
            return ShipOutcome(release, None, None, state.run, str(stop))
        except LeaseLost:
            # (before ConductorError, which it is: a lost run is not a refusal to record)
            log.warning("ship run %s was taken over by another process; stopping", run.id)
            release = await self.releases.get(run.guild_id, run.release_slug)
            return ShipOutcome(
                release, state.seal, state.notes, state.run, "another process took the run over"
            )
        except ConductorError as refused:
            # A step was refused (the release changed under the run): end the run, say why.
            log.warning("ship run %s refused: %s", run.id, refused)
            state.run = await self.runs.finish(run.id, ShipRunStatus.FAILED, error=str(refused))
            release = await self.releases.get(run.guild_id, run.release_slug)
            return ShipOutcome(release, None, None, state.run, str(refused))
        except DatabaseUnavailable as down:
            # Nothing more can be recorded now. The run stays as the database last took it;
            # once its lease runs out, the reconcile takes it up again from there.
            log.warning(
                "ship run %s stopped at the %s step: the database is %s",
                run.id, state.step, down.reason,
            )  # fmt: skip
            raise ShipPaused(
                f"⛔ {down.problem}, so the ship of `{run.release_slug}` v{run.version} stopped "
                f"at its {state.step} step. What was done stays done: Conductor takes the ship "
                "up again from there once the database is back."
            ) from down
        finally:
            self.steps.driving.discard(run.id)
        release = state.release or await self.releases.get(run.guild_id, run.release_slug)
        return ShipOutcome(release, state.seal, state.notes, state.run)

    async def _fail(
        self,
        state: _Drive,
        name: ShipStepName,
        summary: str,
        *,
        extra: dict[str, Any] | None = None,
        alert: bool = False,
    ) -> NoReturn:
        """The step failed: record it, end the run, tell the operator in the thread (with a
        ping and the rollback command when production may be broken), and stop."""
        await self.steps.mark(
            state, name, ShipStepStatus.FAILED, {**(extra or {}), "summary": summary}
        )
        state.run = await self.runs.finish(state.run.id, ShipRunStatus.FAILED, error=summary)
        await self.steps.report(state)
        release = await self.releases.get(state.run.guild_id, state.run.release_slug)
        tail = (extra or {}).get("tail")
        text = f"❌ The ship of `{release.slug}` v{state.run.version} stopped at the {name} step: {summary}"
        if tail:
            text += "\n" + fenced(clip(tail, 900))
        text += "\nThe release stays assembled: fix it and `/release ship` again, or `/release abandon`."
        await self._tell(state, release, clip(text, 2000), alert=alert)
        raise _Stop(summary)

    async def _tell(
        self, state: _Drive, release: ReleaseView, text: str, *, alert: bool = False
    ) -> None:
        if self.notes is None:
            return
        if not alert:
            await self.notes.post(state.run.guild_id, release, [text], reply_to=state.reply_to)
            return
        mentions = await self.notes.mentions(state.run.guild_id, state.actor.id)
        rollback = self._rollback(release, state.run.version)
        how = f"\nTo roll back:\n{fenced(rollback)}" if rollback else ""
        where = await self.notes.post(
            state.run.guild_id, release, [clip(text, 2000)], reply_to=state.reply_to
        )
        if where is not None:
            ping = clip(f"🚨 {' '.join(mentions)} {text.splitlines()[0]}{how}", 2000)
            await self.notes.ping(state.run.guild_id, where, ping, user_id=state.actor.id)

    def _rollback(self, release: ReleaseView, version: int) -> str | None:
        try:
            app = self.sealer.app()
        except SmokeConfigError:
            return None
        return app.rollback(
            release=release.slug, version=version, merge_sha=release.merge_sha or release.rc_head
        )

    async def _resumed(self, run: RunView) -> None:
        """Say in the thread that a ship is taken up again after its process died, and where."""
        if self.notes is None:
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
        await self.notes.post(
            run.guild_id,
            release,
            [f"♻️ Conductor stopped during the ship of `{release.slug}` v{run.version} and took "
             f"it up again: {where}."],
        )  # fmt: skip

    async def _interrupted(self, state: _Drive) -> ShipOutcome:
        summary = (
            "Conductor stopped while the deploy was running, so it may or may not have gone out"
        )
        await self.steps.mark(state, "deploy", ShipStepStatus.INTERRUPTED, {"summary": summary})
        state.run = await self.runs.finish(state.run.id, ShipRunStatus.INTERRUPTED, error=summary)
        release = await self.releases.get(state.run.guild_id, state.run.release_slug)
        text = (
            f"⚠️ The ship of `{release.slug}` v{state.run.version} was interrupted: {summary}. "
            "The release stays assembled. Check production, then `/release ship` again (the "
            "deploy runs again), or `/release abandon` it."
        )
        await self._tell(state, release, text, alert=True)
        return ShipOutcome(release, None, None, state.run, summary)

    # ------------------------------------------------------------------ the steps

    def _step(self, name: ShipStepName) -> Callable[[_Drive], Awaitable[None]]:
        steps = {
            "deploy": self._step_deploy,
            "health": self._step_health,
            "ship": self._step_ship,
            "seal": self._step_seal,
            "notes": self._step_notes,
        }
        return steps[name]

    async def _step_deploy(self, state: _Drive) -> None:
        command = self.deploy.command
        if self.repo is None and command is None:
            await self.steps.mark(
                state, "deploy", ShipStepStatus.SKIPPED,
                {"summary": "nothing to deploy: no [git] and no [deploy] command"},
            )  # fmt: skip
            return
        release = await self.releases.get(state.run.guild_id, state.run.release_slug)
        await self.steps.mark(state, "deploy", ShipStepStatus.RUNNING)
        self.steps.at("deploy:running")
        sha = release.rc_head
        done: dict[str, Any] = {}
        if self.repo is not None:
            if release.rc_head is None or release.rc_base is None:
                await self._fail(
                    state, "deploy",
                    "the release has no RC branch (it was assembled before [git] was set up); "
                    "abandon it and assemble a new one",
                )  # fmt: skip
            try:
                sha = await self.repo.publish_main(release.rc_base or "", release.rc_head or "")
            except GitFailed as failed:
                await self._fail(state, "deploy", str(failed))
            done["sha"] = sha
            done["summary"] = f"`{self.repo.config.main}` fast-forwarded to `{(sha or '')[:10]}`"
        if command is not None:
            ran = await run_logged(
                command,
                cwd=self.repo.path if self.repo is not None else Path.cwd(),
                log_path=log_path(self.deploy, release.slug, state.run.version),
                limit_s=self.deploy.timeout,
                env=deploy_environment(release.slug, state.run.version, sha),
            )
            outcome = {"tail": ran.tail, "log": ran.log, "duration_ms": ran.duration_ms}
            if not ran.passed:
                why = (
                    f"the deploy command was killed after {self.deploy.timeout:g} s"
                    if ran.timed_out
                    else f"the deploy command failed (exit {ran.returncode})"
                )
                await self._fail(state, "deploy", why, extra={**done, **outcome})
            done |= outcome
            done["summary"] = "; ".join(
                filter(None, [done.get("summary"), f"deployed as v{state.run.version}"])
            )
        await self.steps.mark(state, "deploy", ShipStepStatus.DONE, done)

    async def _step_health(self, state: _Drive) -> None:
        await health_step(
            deployed=state.run.step("deploy").status is ShipStepStatus.DONE,
            sealer=self.sealer,
            deploy=self.deploy,
            mark=lambda status, outcome: self.steps.mark(state, "health", status, outcome),
            fail=lambda summary, extra: self._fail(
                state, "health", f"the deploy went out but production is not healthy: {summary}",
                extra=extra, alert=True,
            ),
        )  # fmt: skip

    async def _step_ship(self, state: _Drive) -> None:
        guild, slug = state.run.guild_id, state.run.release_slug
        release = await self.releases.get(guild, slug)
        if release.state is not ReleaseState.SHIPPED:  # else: flipped before a crash
            await self.steps.mark(state, "ship", ShipStepStatus.RUNNING)
            deployed = state.run.step("deploy").outcome.get("sha")
            release = await self.releases.ship(
                guild, state.actor, release_slug=slug, version=state.run.version,
                merge_sha=deployed,
            )  # fmt: skip
        state.release = release
        await self.steps.mark(
            state, "ship", ShipStepStatus.DONE,
            {"summary": f"{len(release.members)} member{'s' if len(release.members) != 1 else ''} shipped"},
        )  # fmt: skip
        if self.notes is not None:
            self.notes.changed(guild)

    async def _step_seal(self, state: _Drive) -> None:
        release = state.release or await self.releases.get(
            state.run.guild_id, state.run.release_slug
        )
        if not self.sealer.configured:
            log.info("release %s shipped without a seal: no [app] is configured", release.slug)
            await self.steps.mark(state, "seal", ShipStepStatus.SKIPPED, {"summary": "no [app]"})
            return
        sealed_after_ship = (
            release.seal_checked_at is not None
            and release.shipped_at is not None
            and release.seal_checked_at >= release.shipped_at
        )
        # recorded before a crash: reused; else sealed now
        seal = self.sealer.stored(release) if sealed_after_ship else None
        if seal is None:
            await self.steps.mark(state, "seal", ShipStepStatus.RUNNING)
            seal = await self.seal_shipped(state.run.guild_id, release, state.actor)
        state.seal = seal
        state.release = seal.release
        await self.steps.mark(state, "seal", ShipStepStatus.DONE, {"summary": seal.line})

    async def _step_notes(self, state: _Drive) -> None:
        release = state.release or await self.releases.get(
            state.run.guild_id, state.run.release_slug
        )
        await self.steps.mark(state, "notes", ShipStepStatus.RUNNING)
        state.notes = await self.publish(
            state.run.guild_id, release, state.seal,
            operator_id=state.actor.id, reply_to=state.reply_to,
        )  # fmt: skip
        outcome = (
            {"summary": "posted", "link": state.notes.link, "message_id": state.notes.message_id}
            if state.notes is not None
            else {"summary": "not posted yet: the reconcile posts them"}
        )
        await self.steps.mark(state, "notes", ShipStepStatus.DONE, outcome)

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
        """Post the notes (seal line first) and on red or error the ping with the rollback
        command, then record them as posted: exactly once. The intent is recorded before the
        first post, so an attempt after a crash (Discord took the notes, the record never
        came) finds what was posted and sends only what is missing. None when nothing could
        be posted (the reconcile tries again). Never raises for the sink's failures."""
        if self.notes is None:
            return None
        current = await self.releases.get(guild_id, release.slug)
        if current.notes_posted_at is not None:
            log.info("the notes of %s were posted already", release.slug)
            return None
        shown = seal.release if seal is not None else release
        messages = release_notes(shown, seal=seal.line if seal is not None else None)
        notes_marker = f"Release notes — `{release.slug}`"
        alert_marker = f"the smoke seal of `{release.slug}`"
        retried = current.notes_intent_at is not None
        posted = await self.notes.find(guild_id, shown, notes_marker) if retried else None
        if posted is None:
            await self.sealer.records.notes_intent(guild_id, release.slug)
            posted = await self.notes.post(guild_id, shown, messages, reply_to=reply_to)
            if posted is None:
                log.warning("the notes of %s were not posted; the reconcile retries", release.slug)
                return None
            self.steps.at("notes:sent")
        else:
            log.info("the notes of %s were found posted before a crash", release.slug)
        if seal is not None and seal.alarming:
            pinged = await self.notes.find(guild_id, shown, alert_marker) if retried else None
            if pinged is None:
                await self.alert(guild_id, shown, seal, operator_id=operator_id, posted=posted)
        try:
            await self.sealer.records.notes_posted(guild_id, release.slug, posted.message_id)
        except Exception:
            log.exception("the notes of %s were posted but not recorded", release.slug)
        self._changed(guild_id)
        return posted

    async def post_owed_notes(self, guild_id: int) -> int:
        """Post the notes every shipped release of the guild is still owed (a failed send, a
        crash before the notes), sealing first where the seal never ran. Releases whose ship
        run still runs post their own. Returns how many were posted."""
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
            await self.alert(guild_id, seal.release, seal, operator_id=actor.id, posted=posted)
        return ResealOutcome(seal, posted)

    # ------------------------------------------------------------------ helpers

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
        shipped, the Roll back action (the press checks everything again). ``after``: a last
        line saying what the seal followed (a rollback)."""
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

    def _changed(self, guild_id: int) -> None:
        if self.notes is not None:
            self.notes.changed(guild_id)

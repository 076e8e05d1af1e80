"""One driver for every kind of run: a ship, a rollback, a redeploy.

A kind (:class:`Kind`) is a declaration: its steps in order, the steps that must never run
twice (``once``: the deploy), its words and its ``admit`` rule, and a coroutine per step. The
driver owns the rest, the same for every kind:

- **admission**: ``admit`` runs inside the transaction that opens the run, after the one rule
  every kind shares (one running run per guild, also held by a partial unique index);
  :meth:`Driver.plan` runs the same rule read-only, so the refusal an operator sees
  before a confirmation has the same words;
- **the loop**: each step recorded before and after it runs, by the one process holding the
  run's lease (renewed while it runs, fenced on every write); a resume goes on from the last
  finished step;
- **the end is one transaction with the last step**: done with the last step's mark; failed
  or interrupted with the step that failed or was in flight (a ``once`` step found running
  after a crash). No resume ever sees a failed or interrupted step of a running run, so
  nothing that failed is retried without the operator, and the deploy never runs twice;
- **the database going away mid-run**: the run pauses (:class:`RunPaused`) as last recorded,
  and the end of a ``once`` step the database could not take (a deploy that went out) is kept
  in this process, owed, and written first when the same process takes the run up again once the
  database is back: the run goes on from the next step, its deploy not run again;
- **what the operator is owed, exactly once across crashes**: the notice of a failed or
  interrupted run and its ping. Their intent is recorded (``notice_at``) before they are
  sent; after a crash each is looked for in the thread and sent only if missing; then the
  run owes nothing (``told_at``). The same rule as the notes.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.exc import IntegrityError

from conductor.errors import ConductorError, InvalidInput
from conductor.notes import production_line
from conductor.queries import load_release_view, running_run
from conductor.releases.deploy import DeployConfig
from conductor.releases.git import GitRepository
from conductor.releases.publisher import Publisher
from conductor.releases.runs.sink import NotesSink, PostedNotes
from conductor.releases.runs.store import LeaseLost, RunRunning, Runs, RunView
from conductor.releases.sandbox import Sandbox
from conductor.releases.service import MAX_REASON, Releases
from conductor.seals.sealer import Sealer, SealOutcome
from conductor.states import (
    ENDING_STEPS,
    FINISHED_STEPS,
    RunKind,
    RunStatus,
    StepName,
    StepStatus,
)
from conductor.text import clip, fenced
from conductor.views import Actor, ReleaseView
from store.errors import DatabaseUnavailable
from store.models import Release

if TYPE_CHECKING:
    from store.db import Session

log = logging.getLogger(__name__)

#: called after each step of a run changes, with the run as it stands
Progress = Callable[[RunView], Awaitable[None]]
#: called at each step boundary, named by the kind ("ship:deploy:done", "rollback:notes:sent",
#: …): tracing, and the tests that kill the process there
Checkpoint = Callable[[str], None]

#: each step in words, for "Done: …; Not done: …"
STEP_WORDS: dict[StepName, str] = {
    "revert": "the revert",
    "deploy": "the deploy",
    "health": "the health gate",
    "ship": "the state change",
    "flip": "the state change",
    "seal": "the seal",
    "notes": "the notes",
}


@dataclass(frozen=True, slots=True)
class RunParts:
    """What the kinds' steps work with: the release service, the sealer, the publisher (and
    through it the notes sink), the git clone and the deploy settings."""

    releases: Releases
    sealer: Sealer
    publisher: Publisher
    repo: GitRepository | None = None
    deploy: DeployConfig = field(default_factory=DeployConfig)
    #: where the deploy command runs (bubblewrap unless the operator wrote "off")
    sandbox: Sandbox = field(default_factory=Sandbox)

    @property
    def notes(self) -> NotesSink | None:
        return self.publisher.notes


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the operator asked for: the release (None: the kind's default) and why."""

    release_slug: str | None = None
    reason: str | None = None

    def why(self, default: str) -> str:
        """The reason as it is kept (one line; ``default`` when none was given), or the
        refusal of one too long."""
        why = " ".join((self.reason or "").split()) or default
        if len(why) > MAX_REASON:
            raise InvalidInput(
                f"That reason is too long ({len(why)} characters; at most {MAX_REASON})."
            )
        return why


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``admit`` admitted: the release the run acts on, the version it deploys as, the
    version production runs again after it (a rollback's), and the reason kept."""

    release: Release
    version: int
    restores_version: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run would do, for the operator to confirm: the release it acts on, the one
    production runs afterwards (``after``: by commit, when not that release again), the
    members it moves, the exact commands it runs, and the other steps in words."""

    release: ReleaseView
    previous: ReleaseView | None = None
    members: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    #: why, as it will be kept
    reason: str | None = None
    #: what production runs afterwards, by commit, when it is not simply ``previous`` again
    #: (a rollback over a main that moved since the release shipped)
    after: str | None = None

    @property
    def production(self) -> str:
        return f"Production runs {self.after}" if self.after else production_line(self.previous)


@dataclass(frozen=True, slots=True)
class Words:
    """How a kind is said. ``noun``: "ship"; ``done``: "shipped" (nothing was …);
    ``failed``: what to do after a failure; ``interrupted``: after an interruption."""

    noun: str
    done: str
    failed: str
    interrupted: str


class StepFailed(Exception):
    """A step failed: the run ends with it. ``outcome`` is kept on the step; ``alert``: the
    operator is pinged (production may be left broken)."""

    def __init__(
        self, summary: str, outcome: dict[str, Any] | None = None, *, alert: bool = False
    ) -> None:
        super().__init__(summary)
        self.summary = summary
        self.outcome = outcome or {}
        self.alert = alert


class RunPaused(ConductorError):
    """The database could not take a step of a running run: the run stays as it was last
    recorded (with the end of a step it could not take kept by this process, owed), and the
    reconcile takes it up again once the database is back (at once in this process, else
    once its lease runs out)."""


@dataclass(frozen=True, slots=True)
class OwedMark:
    """How a step ended when the database could not record it: written before the run goes
    on, so a step that finished (a deploy that went out) is not found in flight."""

    step: StepName
    status: StepStatus
    outcome: dict[str, Any] | None
    end: RunStatus | None
    error: str | None


Step = Callable[["Drive"], Awaitable[None]]


class Kind(ABC):
    """A kind of run, declared: its steps, which of them never run twice, its words, its
    admission, and what each step does (a coroutine per step name)."""

    kind: ClassVar[RunKind]
    steps: ClassVar[tuple[StepName, ...]]
    #: found running after a crash, these are interrupted, never run again
    once: ClassVar[frozenset[StepName]] = frozenset({"deploy"})
    words: ClassVar[Words]

    def __init__(self, parts: RunParts) -> None:
        self.parts = parts

    @abstractmethod
    async def admit(
        self, session: Session, guild_id: int, actor: Actor, request: RunRequest
    ) -> Admission:
        """The refusal (a :class:`ConductorError`), or what the run acts on. Read-only: it
        runs inside the transaction that opens the run, and alone (read-only) for a plan."""

    @abstractmethod
    def step(self, name: StepName) -> Step:
        """What the step ``name`` does."""

    async def describe(self, session: Session, admission: Admission) -> Plan:
        """What the run would do (for a confirmation): by default its release and members."""
        release = await load_release_view(session, admission.release)
        return Plan(release, members=tuple(m.slug for m in release.members))

    def account(self, run: RunView, release: ReleaseView) -> list[str]:
        """What a stopped run of this kind leaves, beyond its steps (none by default)."""
        return []

    def ping_extra(self, run: RunView, release: ReleaseView) -> str:
        """What the ping of a stopped run adds (a rollback command), "" for nothing."""
        return ""


@dataclass
class Drive:
    """One drive of a run: what it carries from step to step, and how a step records
    itself (:meth:`mark`) and tells the checkpoint (:meth:`at`)."""

    driver: Driver
    kind: Kind
    run: RunView
    actor: Actor
    reply_to: object | None = None
    progress: Progress | None = None
    step: StepName = "deploy"
    #: the release as the steps last saw it, and what the seal and the notes gave
    release: ReleaseView | None = None
    seal: SealOutcome | None = None
    notes: PostedNotes | None = None

    @property
    def parts(self) -> RunParts:
        return self.kind.parts

    async def current(self) -> ReleaseView:
        """The release as it stands now."""
        self.release = await self.parts.releases.get(self.run.guild_id, self.run.release_slug)
        return self.release

    async def mark(self, status: StepStatus, outcome: dict[str, Any] | None = None) -> None:
        """Record the current step; the kind's last step finished ends the run with it."""
        last = self.step == self.kind.steps[-1] and status in FINISHED_STEPS
        await self.driver.record(self, status, outcome, end=RunStatus.DONE if last else None)
        await self.driver.report(self)
        self.at(f"{self.step}:{status.value}")

    def at(self, point: str) -> None:
        self.driver.at(self.kind, point)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    #: the release as it stands after the run (its seal included)
    release: ReleaseView
    run: RunView | None
    #: the seal the run made (None: none, or not in this drive)
    seal: SealOutcome | None = None
    notes: PostedNotes | None = None
    #: why the run stopped before its end (a failed or interrupted step, a takeover)
    stopped: str | None = None


class Driver:
    """Starts, drives and resumes runs of every kind it was given, and sends what they owe."""

    def __init__(
        self,
        parts: RunParts,
        runs: Runs,
        kinds: Iterable[Callable[[RunParts], Kind]],
        *,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.parts = parts
        self.runs = runs
        self.checkpoint = checkpoint
        self.kinds: dict[RunKind, Kind] = {}
        for make in kinds:
            kind = make(parts)
            self.kinds[kind.kind] = kind
        #: runs this process is driving right now (a resume leaves them alone)
        self.driving: set[int] = set()
        #: runs paused here (the database went away), with the end of a step it could not take
        self.paused: dict[int, OwedMark | None] = {}

    def kind(self, kind: RunKind) -> Kind:
        return self.kinds[kind]

    def at(self, kind: Kind, point: str) -> None:
        if self.checkpoint is not None:
            self.checkpoint(f"{kind.kind.value}:{point}")

    # ------------------------------------------------------------------ admission

    async def plan(
        self, kind: RunKind, guild_id: int, actor: Actor, request: RunRequest | None = None
    ) -> Plan:
        """Read-only: what a run of ``kind`` would do (for the operator to confirm), or the
        refusal its start would give."""
        spec = self.kinds[kind]
        async with self.parts.releases.db.read() as session:
            admission = await self._admit(session, spec, guild_id, actor, request)
            return await spec.describe(session, admission)

    async def _admit(
        self,
        session: Session,
        kind: Kind,
        guild_id: int,
        actor: Actor,
        request: RunRequest | None,
    ) -> Admission:
        admission = await kind.admit(session, guild_id, actor, request or RunRequest())
        running = await running_run(session, guild_id)
        if running is not None:
            other = self.kinds.get(running.kind)
            what = await session.get(Release, running.release_id)
            raise RunRunning(
                f"A {other.words.noun if other else running.kind.value} of "
                f"`{what.slug if what else '?'}` is already running (started by "
                f"{running.started_by} at {running.started_at:%H:%M UTC}); its progress is in "
                f"the release thread. One run at a time: nothing was {kind.words.done}."
            )
        return admission

    async def start(
        self,
        kind: RunKind,
        guild_id: int,
        actor: Actor,
        *,
        request: RunRequest | None = None,
        progress: Progress | None = None,
        reply_to: object | None = None,
    ) -> RunOutcome:
        """Admit and open a run of ``kind`` in one transaction, then drive it to its end.
        Only the start raises (a refusal: nothing happened); what happens after is in the
        outcome."""
        spec = self.kinds[kind]
        try:
            async with self.parts.releases.db.write() as session:
                admission = await self._admit(session, spec, guild_id, actor, request)
                run = await self.runs.open(
                    session,
                    admission.release,
                    kind,
                    spec.steps,
                    version=admission.version,
                    actor=actor,
                    restores_version=admission.restores_version,
                    reason=admission.reason,
                )
        except IntegrityError:
            # another process opened a run of the guild between our read and our write
            raise RunRunning(
                "Another run of this server started at the same moment; its progress is in "
                f"the release thread. One run at a time: nothing was {spec.words.done}."
            ) from None
        log.info(
            "%s run %s started release=%s by=%s", kind.value, run.id, run.release_slug, actor.label
        )
        return await self._drive(run, actor=actor, reply_to=reply_to, progress=progress)

    # ------------------------------------------------------------------ the loop

    async def resume(self, guild_id: int) -> int:
        """Take up the guild's runs, of every kind, whose process died: a running one goes on
        from its last finished step (the thread is told so); an ended one sends the notice
        it still owes. Returns how many this process took."""
        taken = 0
        for run in await self.runs.unfinished(guild_id):
            if run.id in self.driving:
                continue  # driven here already
            if not await self.runs.claim(run.id):
                log.info(
                    "%s run %s of %s is held by another process (or it ended); leaving it",
                    run.kind.value, run.id, run.release_slug,
                )  # fmt: skip
                continue
            taken += 1
            paused = run.id in self.paused
            await self._write_owed(run.id)
            current = await self.runs.get(run.id)
            log.info("taking up %s run %s of %s", current.kind, run.id, run.release_slug)
            if current.status is RunStatus.RUNNING:
                await self._resumed(current, paused=paused)
            await self._drive(current, actor=current.actor)
        return taken

    async def record(
        self,
        drive: Drive,
        status: StepStatus,
        outcome: dict[str, Any] | None = None,
        *,
        end: RunStatus | None = None,
        error: str | None = None,
    ) -> None:
        """Record the drive's step (``end``: the run ends with it). The end of a ``once`` step
        (the deploy) the database cannot take is kept, owed (:meth:`_write_owed`): found
        running, it could not be run again. Other steps run again (and are built to: their
        own writes may have failed with the mark), and a step's start means it has not begun."""
        try:
            drive.run = await self.runs.mark(
                drive.run.id, drive.step, status, outcome, end=end, error=error
            )
        except DatabaseUnavailable:
            if status is not StepStatus.RUNNING and drive.step in drive.kind.once:
                self.paused[drive.run.id] = OwedMark(drive.step, status, outcome, end, error)
            raise

    async def _write_owed(self, run_id: int) -> None:
        """Write the end of the step the database could not take when the run paused here,
        if the run still stands as this process left it (taken up just now by this process,
        the step neither finished nor ended since)."""
        owed = self.paused.get(run_id)
        if owed is not None:
            run = await self.runs.get(run_id)
            status = run.step(owed.step).status
            if (
                run.status is RunStatus.RUNNING
                and status not in FINISHED_STEPS
                and status not in ENDING_STEPS
            ):
                await self.runs.mark(
                    run_id, owed.step, owed.status, owed.outcome, end=owed.end, error=owed.error
                )
                log.info("run %s: its %s step recorded %s now", run_id, owed.step, owed.status)
        self.paused.pop(run_id, None)

    async def _drive(
        self,
        run: RunView,
        *,
        actor: Actor,
        reply_to: object | None = None,
        progress: Progress | None = None,
    ) -> RunOutcome:
        kind = self.kinds[run.kind]
        ended = run.ended_by  # a run taken up only for its notice is where it stopped
        step = ended.name if ended is not None else kind.steps[0]
        drive = Drive(self, kind, run, actor, reply_to, progress, step=step)
        self.driving.add(run.id)
        stopped: str | None = None
        try:
            async with self.runs.holding(run.id):
                if run.status is RunStatus.RUNNING:
                    await self._steps(drive)
                await self._tell(drive)
        except LeaseLost:
            log.warning("%s run %s was taken over by another process; stopping", kind.kind, run.id)
            stopped = "another process took the run over"
        except DatabaseUnavailable as down:
            # Nothing more can be recorded now. The run stays as the database last took it;
            # once its lease runs out, the reconcile takes it up again from there.
            log.warning(
                "%s run %s stopped at the %s step: the database is %s",
                kind.kind, run.id, drive.step, down.reason,
            )  # fmt: skip
            self.paused.setdefault(run.id, None)
            noun = kind.words.noun
            raise RunPaused(
                f"⛔ {down.problem}, so the {noun} of `{run.release_slug}`{_v(run)} stopped at "
                f"its {drive.step} step. What was done stays done: Conductor takes the {noun} "
                "up again from there once the database is back."
            ) from down
        finally:
            self.driving.discard(run.id)
        if stopped is None and drive.run.status is not RunStatus.DONE:
            stopped = drive.run.error or drive.run.status.value
        release = await self.parts.releases.get(run.guild_id, run.release_slug)
        return RunOutcome(release, drive.run, drive.seal, drive.notes, stopped)

    async def _steps(self, drive: Drive) -> None:
        kind = drive.kind
        for name in kind.steps:
            drive.step = name
            step = drive.run.step(name)
            if step.status in FINISHED_STEPS:
                continue
            if step.status in ENDING_STEPS:
                # recorded apart from its run's end (before the run's end was one write):
                # reported as it is, never run again
                summary = str(step.outcome.get("summary") or step.status.value)
                await self._end(drive, step.status, summary, dict(step.outcome))
                return
            if step.status is StepStatus.RUNNING and name in kind.once:
                summary = (
                    f"Conductor stopped while {_of(kind, name)} was running, so it may or may "
                    "not have gone out"
                )
                await self._end(drive, StepStatus.INTERRUPTED, summary, {}, alert=True)
                return
            try:
                await kind.step(name)(drive)
            except StepFailed as failed:
                await self._end(
                    drive, StepStatus.FAILED, failed.summary, failed.outcome, alert=failed.alert
                )
                return
            except LeaseLost:
                raise
            except ConductorError as refused:
                # the domain refused the step (the release changed under the run)
                log.warning("%s run %s refused: %s", kind.kind, drive.run.id, refused)
                await self._end(drive, StepStatus.FAILED, str(refused), {})
                return

    async def _end(
        self,
        drive: Drive,
        status: StepStatus,
        summary: str,
        outcome: dict[str, Any],
        *,
        alert: bool = False,
    ) -> None:
        """The step failed or was interrupted: it and the run's end are one write; the run
        owes its notice from then on."""
        kept = {**outcome, "summary": summary}
        if alert:
            kept["alert"] = True
        await self.record(
            drive,
            status,
            kept,
            end=RunStatus.INTERRUPTED if status is StepStatus.INTERRUPTED else RunStatus.FAILED,
            error=summary,
        )
        await self.report(drive)
        drive.at(f"{drive.step}:{status.value}")

    async def report(self, drive: Drive) -> None:
        if drive.progress is None:
            return
        try:
            await drive.progress(drive.run)
        except Exception:
            log.warning("the %s progress report failed; going on", drive.kind.kind, exc_info=True)

    # ------------------------------------------------------------------ what is owed

    async def _tell(self, drive: Drive) -> None:
        """The notice of a failed or interrupted run and (when production may be left
        broken) its ping, each sent once: the intent is recorded first; a retry looks for
        each in the thread and sends only what is missing."""
        run, notes = drive.run, self.parts.notes
        if not run.owes_notice or notes is None:
            return  # (no sink: it stays owed until a process with one takes it up)
        release = await drive.current()
        text = self._notice(drive.kind, run, release)
        head = text.splitlines()[0]
        retried = run.notice_at is not None
        marker = _marker(drive.kind, run, release)
        posted = await notes.find(run.guild_id, release, marker) if retried else None
        if posted is None:
            drive.run = await self.runs.noticing(run.id)
            posted = await notes.post(run.guild_id, release, [text], reply_to=drive.reply_to)
            if posted is None:
                log.warning("the notice of run %s was not posted; the reconcile retries", run.id)
                return
            drive.at("notice:sent")
        ended = run.ended_by
        if ended is not None and ended.outcome.get("alert"):
            mentions = await notes.mentions(run.guild_id, run.started_by_id)
            ping = clip(
                f"🚨 {' '.join(mentions)} {head}{drive.kind.ping_extra(run, release)}", 2000
            )
            cut = ping.find(f"({run.tag})")
            said = ping[: cut + len(run.tag) + 2] if cut >= 0 else ping[:150]
            found = await notes.find(run.guild_id, release, said) if retried else None
            if found is None:
                await notes.ping(run.guild_id, posted, ping, user_id=run.started_by_id)
                drive.at("ping:sent")
        drive.run = await self.runs.told(run.id)
        await self.report(drive)

    def _notice(self, kind: Kind, run: RunView, release: ReleaseView) -> str:
        """The thread's notice of a stopped run, from the run as recorded: what stopped it,
        the command's last lines, what was done and what was not, what to do now."""
        ended = run.ended_by
        name = ended.name if ended is not None else run.steps[-1].name
        summary = run.error or (str(ended.outcome.get("summary")) if ended else "stopped")
        if run.status is RunStatus.INTERRUPTED:
            lines = [
                f"⚠️ The {kind.words.noun} of `{release.slug}`{_v(run)} ({run.tag}) was "
                f"interrupted: {summary}. {kind.words.interrupted}"
            ]
        else:
            lines = [
                f"❌ The {kind.words.noun} of `{release.slug}`{_v(run)} ({run.tag}) stopped at "
                f"the {name} step: {summary}"
            ]
            tail = ended.outcome.get("tail") if ended is not None else None
            if tail:
                lines.append(fenced(clip(str(tail), 700)))
        lines += _account(run)
        lines += kind.account(run, release)
        if run.status is not RunStatus.INTERRUPTED:
            lines.append(kind.words.failed)
        return clip("\n".join(lines), 2000)

    async def _resumed(self, run: RunView, *, paused: bool = False) -> None:
        """Say in the thread that a run is taken up again after its process died (or, when
        ``paused`` here, the database came back), and where."""
        notes = self.parts.notes
        left = run.left
        if notes is None or not left:
            return
        kind = self.kinds[run.kind]
        release = await self.parts.releases.get(run.guild_id, run.release_slug)
        first = left[0]
        where = (
            f"{_of(kind, first.name)} was in flight, so it is not repeated"
            if first.status is StepStatus.RUNNING and first.name in kind.once
            else f"from the {first.name} step; what was done is not done again"
        )
        what = f"the {kind.words.noun} of `{release.slug}`{_v(run)}"
        said = (
            f"♻️ Conductor's database is back, so {what} goes on: {where}."
            if paused
            else f"♻️ Conductor stopped during {what} and took it up again: {where}."
        )
        await notes.post(run.guild_id, release, [said])


def _v(run: RunView) -> str:
    return f" v{run.version}" if run.version else ""


def _of(kind: Kind, name: StepName) -> str:
    """``the ship's deploy``, ``the rollback's deploy``: a step as the notices name it."""
    return f"the {kind.words.noun}'s {STEP_WORDS[name].removeprefix('the ')}"


def _marker(kind: Kind, run: RunView, release: ReleaseView) -> str:
    """What the notice of ``run`` (and its ping) contains and no other message does."""
    return f"{kind.words.noun} of `{release.slug}`{_v(run)} ({run.tag})"


def _account(run: RunView) -> list[str]:
    """What a stopped run did and did not do, in words."""
    done = [
        str(s.outcome.get("summary") or STEP_WORDS[s.name])
        for s in run.steps
        if s.status is StepStatus.DONE
    ]
    left = [STEP_WORDS[s.name] for s in run.left]
    return [
        f"Done: {'; '.join(done) if done else 'nothing'}.",
        f"Not done: {', '.join(left) if left else 'nothing'}.",
    ]

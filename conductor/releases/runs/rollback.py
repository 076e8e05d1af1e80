"""Rolling production back from the last shipped release: an operator's decision, never
automatic. How it differs from a ship:

- **revert** (first): with ``[git]``, ``git revert -m 1 <merge sha>`` on main, pushed. The
  commit carries a ``Conductor-Reverts: <merge sha>`` trailer, so an attempt after a crash
  finds it on main and never reverts twice. Without ``[git]``: skipped, and said so.
- **deploy**: the release production goes back to in the command's environment
  (``CONDUCTOR_RELEASE``, ``CONDUCTOR_VERSION``; ``CONDUCTOR_SHA``: main after the revert;
  ``CONDUCTOR_ROLLBACK_OF``). A failure pings: production may be left half way.
- **flip**: the release becomes rolled_back (who, when, why), its members go back to
  reviewed with the move on their timelines.
- **seal**: recorded (trigger ``rollback``) on the release production runs again, whose
  verdict it becomes; with none before it, only in the rolled-back release's history.
- **notes**: the outcome in the release's thread, once, and its alert on red, once.

Only the last shipped release can be rolled back, once; the lock does not stop it.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from sqlalchemy import select

from conductor.errors import InvalidMove, NotFound
from conductor.notes import after_revert, after_revert_unknown, rollback_note, since_shipped
from conductor.queries import (
    half_rollback_of,
    last_shipped,
    load_release_view,
    release_members,
    require_release,
)
from conductor.releases.deploy import rollback_environment
from conductor.releases.git import GitFailed
from conductor.releases.runs.driver import (
    STEP_WORDS,
    Admission,
    Drive,
    Kind,
    Plan,
    RunRequest,
    Step,
    StepFailed,
    Words,
)
from conductor.releases.runs.steps import (
    deploy_command,
    health,
    post_outcome,
    seal_once,
    stored_seal,
)
from conductor.releases.runs.store import RunView
from conductor.states import ROLLBACK, ReleaseState, RunKind, RunStatus, StepName, StepStatus
from conductor.text import clip, half_rollback_text, mask_credentials, short_sha, version
from conductor.views import Actor, ReleaseView
from smoke import SmokeConfigError
from store.db import Session
from store.models import Release

log = logging.getLogger(__name__)

#: how an empty value of the deploy's environment is shown
_EMPTY = "''"
#: the reason kept when the operator gives none
DEFAULT_REASON = "rolled back from the red alert"


class Rollback(Kind):
    kind = RunKind.ROLLBACK
    steps: ClassVar[tuple[StepName, ...]] = ("revert", "deploy", "health", "flip", "seal", "notes")
    words = Words(
        noun="rollback",
        done="rolled back",
        failed="Fix it and `/release rollback` again (what was done is not done again), or keep "
        "production as it is.",
        interrupted="Check production, then `/release rollback` again (the revert is not "
        "repeated; the deploy runs again).",
    )

    # ------------------------------------------------------------------ the rule

    async def admit(
        self, session: Session, guild_id: int, actor: Actor, request: RunRequest
    ) -> Admission:
        """The release a rollback means (the named one, or the last shipped) and the one
        production goes back to; or the refusal, naming why."""
        why = request.why(DEFAULT_REASON)
        slug = request.release_slug
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
        repo, command = self.parts.repo, self.parts.deploy.command
        if repo is not None and not release.merge_sha:
            raise InvalidMove(
                f"Release {label} has no merge commit recorded (it shipped before `[git]` was "
                "set up), so Conductor cannot revert it. Roll it back by hand."
            )
        if previous is None and repo is None and command is not None:
            raise InvalidMove(
                f"Nothing to roll back to: no release shipped before {label}, and without "
                "`[git]` there is no commit to deploy instead, so the deploy command would "
                "have nothing to go on. Roll it back by hand."
            )
        return Admission(
            release,
            release.version or 0,
            restores_version=previous.version if previous is not None else None,
            reason=why,
        )

    async def describe(self, session: Session, admission: Admission) -> Plan:
        release = await load_release_view(session, admission.release)
        previous_row = (
            await session.scalar(
                select(Release).where(
                    Release.guild_id == admission.release.guild_id,
                    Release.version == admission.restores_version,
                )
            )
            if admission.restores_version is not None
            else None
        )
        previous = await load_release_view(session, previous_row) if previous_row else None
        members = tuple(t.slug for t in await release_members(session, admission.release))
        return Plan(
            release,
            previous,
            members,
            self._commands(release, previous),
            self._words(release, previous, members),
            admission.reason,
            await self._after(release, previous),
        )

    async def _after(self, release: ReleaseView, previous: ReleaseView | None) -> str | None:
        """What production will run after the revert, by commit, when main moved since the
        release shipped (or cannot be read); None: ``previous`` again. Read-only: a fetch and
        a log, main untouched."""
        repo = self.parts.repo
        if repo is None or not release.merge_sha:
            return None  # nothing is reverted: the previous release's own commit is deployed
        main = repo.config.main
        try:
            since = await repo.commits_since(release.merge_sha)
        except GitFailed as failed:
            return after_revert_unknown(release, main=main, why=str(failed))
        return after_revert(
            release,
            previous,
            kept=[(c.sha, c.subject) for c in since.commits],
            count=since.count,
            main=main,
            stale=since.stale,
        )

    def _commands(self, release: ReleaseView, previous: ReleaseView | None) -> tuple[str, ...]:
        out: list[str] = []
        repo, command = self.parts.repo, self.parts.deploy.command
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
        repo, command, sealer = self.parts.repo, self.parts.deploy.command, self.parts.sealer
        out: list[str] = []
        if repo is None:
            out.append("revert: skipped, no `[git]` is configured (main is not changed)")
        if command is None:
            out.append("deploy: skipped, no deploy command is configured")
        try:
            app = sealer.app() if sealer.configured else None
        except SmokeConfigError:
            app = None
        if command is not None and app is not None:
            out.append(
                f"health gate: GET {app.health_url} until 200 "
                f"(at most {self.parts.deploy.health_timeout:g} s)"
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

    def account(self, run: RunView, release: ReleaseView) -> list[str]:
        half = (
            half_rollback_of(
                run.release_slug,
                run.version,
                run_id=run.id,
                interrupted=run.status is RunStatus.INTERRUPTED,
                started_by=run.started_by,
                error=run.error,
                steps=[(s.name, s.status, s.outcome) for s in run.steps],
            )
            if release.state is ReleaseState.SHIPPED
            else None
        )
        if half is None:
            lines = []
            if release.state is ReleaseState.SHIPPED:
                lines.append(f"`{release.slug}` is still shipped: production may still run it.")
            return lines
        return [
            f"⚠️ {half_rollback_text(half)} The train is held until the rollback is finished "
            "(`/release rollback` again) or an operator opens a release over it (`/release "
            "open` asks to confirm).",
            f"Main has the revert `{short_sha(half.revert)}`: to keep `{release.slug}` after "
            "all, revert that commit on main by hand.",
        ]

    # ------------------------------------------------------------------ the steps

    def step(self, name: StepName) -> Step:
        return {
            "revert": self._revert,
            "deploy": self._deploy,
            "health": self._health,
            "flip": self._flip,
            "seal": self._seal,
            "notes": self._notes,
        }[name]

    async def _previous(self, run: RunView) -> ReleaseView | None:
        """The release production goes back to (by the version recorded at the start)."""
        if run.restores_version is None:
            return None
        async with self.parts.releases.db.read() as session:
            row = await session.scalar(
                select(Release).where(
                    Release.guild_id == run.guild_id, Release.version == run.restores_version
                )
            )
            return await load_release_view(session, row) if row is not None else None

    async def _revert(self, drive: Drive) -> None:
        repo = self.parts.repo
        if repo is None:
            await drive.mark(
                StepStatus.SKIPPED, {"summary": "no [git] is configured: main was not changed"}
            )
            return
        release = await drive.current()
        await drive.mark(StepStatus.RUNNING)
        if not release.merge_sha:
            raise StepFailed("the release has no merge commit recorded")
        title = f"Revert release {release.slug}{version(release)}"
        body = (
            f"This reverts the release merge {release.merge_sha}, back to its first parent.\n\n"
            f"Rolled back by {drive.actor.label}: {drive.run.reason or DEFAULT_REASON}"
        )
        try:
            reverted = await repo.revert_main(release.merge_sha, title=title, body=body)
        except GitFailed as failed:
            raise StepFailed(str(failed)) from None
        await drive.mark(
            StepStatus.DONE,
            {
                "summary": reverted.summary,
                "sha": reverted.sha,
                "created": reverted.created,
                # main carries it (made now or found): until the rollback ends done, main
                # and production's release disagree
                "revert": reverted.revert,
                # pushed onto main since the release shipped: they stay, and are named
                "kept": [[c.sha, c.subject] for c in reverted.kept],
                "kept_count": reverted.kept_count,
            },
        )

    async def _deploy(self, drive: Drive) -> None:
        if self.parts.deploy.command is None:
            await drive.mark(
                StepStatus.SKIPPED,
                {"summary": "no deploy command is configured: deploy the previous version by hand"},
            )
            return
        run = drive.run
        previous = await self._previous(run)
        revert = run.step("revert")
        sha = (
            revert.outcome.get("sha")
            if revert.status is StepStatus.DONE
            else (previous.merge_sha if previous is not None else None)
        )
        await drive.mark(StepStatus.RUNNING)
        env = rollback_environment(
            run.release_slug,
            previous.slug if previous else None,
            previous.version if previous else None,
            sha,
        )
        try:
            outcome = await deploy_command(drive, env=env, what="rollback", alert=True)
        except StepFailed as failed:
            failed.outcome["sha"] = sha
            raise
        kept = int(revert.outcome.get("kept_count") or 0) if revert.status is StepStatus.DONE else 0
        if kept and self.parts.repo is not None:
            release = await drive.current()
            main = self.parts.repo.config.main
            said = (
                f"deployed `{main}` at `{short_sha(str(sha))}`: "
                f"{since_shipped(release, previous, kept)}"
            )
        else:
            target = f"`{previous.slug}`{version(previous)}" if previous else "the commit before it"
            said = f"deployed {target} again"
        await drive.mark(StepStatus.DONE, {**outcome, "sha": sha, "summary": said})

    async def _health(self, drive: Drive) -> None:
        await health(drive, failing="the rollback's deploy went out but production is not healthy")

    async def _flip(self, drive: Drive) -> None:
        run = drive.run
        release = await drive.current()
        if release.state is ReleaseState.ROLLED_BACK:  # flipped before a crash
            members = list(run.step("flip").outcome.get("members") or [])
        else:
            members = [m.slug for m in release.members]
            # the members are known before the flip detaches them (a crash between keeps them)
            await drive.mark(StepStatus.RUNNING, {"members": members})
            _, sent_back = await self.parts.releases.roll_back(
                run.guild_id, run.release_slug, drive.actor, reason=run.reason or DEFAULT_REASON
            )
            drive.at("flip:flipped")  # committed, not yet marked
            members = list(sent_back)
        count = len(members)
        summary = f"rolled back; {count} member{'s' if count != 1 else ''} back to reviewed"
        await drive.mark(StepStatus.DONE, {"summary": summary, "members": members})
        self.parts.publisher.changed(run.guild_id)

    async def _seal(self, drive: Drive) -> None:
        run = drive.run
        if not self.parts.sealer.configured:
            await drive.mark(StepStatus.SKIPPED, {"summary": "no [app]"})
            return
        previous = await self._previous(run)
        target = previous or await drive.current()
        drive.seal = await seal_once(drive, target, trigger=ROLLBACK, verdict=previous is not None)
        await drive.mark(StepStatus.DONE, {"summary": drive.seal.line, "release": target.slug})
        self.parts.publisher.changed(run.guild_id)

    async def _notes(self, drive: Drive) -> None:
        run = drive.run
        release = await drive.current()
        previous = await self._previous(run)
        seal = drive.seal or await stored_seal(drive, previous or release, trigger=ROLLBACK)
        text = rollback_note(
            release,
            previous=previous,
            steps=_step_lines(run),
            seal=seal.line if seal is not None else None,
            members=list(run.step("flip").outcome.get("members") or []),
            after=self._after_run(run, release, previous),
        )
        await post_outcome(
            drive,
            release,
            text,
            marker=f"⏪ **Rolled back `{release.slug}`",
            seal=seal,
            after=f"after the rollback of `{release.slug}`{version(release)}",
        )

    def _after_run(
        self, run: RunView, release: ReleaseView, previous: ReleaseView | None
    ) -> str | None:
        """What production runs after this run's revert, by commit, when commits pushed
        onto main since the release shipped stayed (None: ``previous`` again)."""
        revert, repo = run.step("revert"), self.parts.repo
        if revert.status is not StepStatus.DONE or repo is None:
            return None
        kept = revert.outcome.get("kept") or []
        return after_revert(
            release,
            previous,
            kept=[(str(sha), str(subject)) for sha, subject in kept],
            count=int(revert.outcome.get("kept_count") or 0),
            main=repo.config.main,
            at=str(revert.outcome.get("sha") or "") or None,
        )


def _step_lines(run: RunView) -> list[str]:
    """The note's line for each step before the flip that did something or said why not."""
    icons: dict[StepName, str] = {"revert": "↩️", "deploy": "🚚", "health": "💚"}
    out = []
    for name, icon in icons.items():
        step = run.step(name)
        summary = str(step.outcome.get("summary") or "")
        if step.status is StepStatus.DONE:
            out.append(f"{icon} {summary}")
        elif step.status is StepStatus.SKIPPED:
            out.append(f"⏭️ {STEP_WORDS[name]}: {summary}")
    return out

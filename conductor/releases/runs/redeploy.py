"""``/release redeploy``: deploy again exactly what production runs (the last shipped release:
its version and SHA; nothing merged, nothing reverted), then the health gate and a seal,
recorded as a run with who, when and why. For a replaced host, an interrupted deploy, a
production that drifted. Refused while the train is locked by someone else."""

from __future__ import annotations

from typing import ClassVar

from conductor.errors import Locked, NotConfigured, NotFound
from conductor.notes import seal_line
from conductor.queries import current_lock, last_shipped, lock_view
from conductor.releases.deploy import deploy_environment
from conductor.releases.runs.driver import Admission, Drive, Kind, Plan, RunRequest, Step, Words
from conductor.releases.runs.steps import (
    deploy_command,
    health,
    post_outcome,
    seal_once,
    stored_seal,
)
from conductor.states import REDEPLOY, RunKind, StepName, StepStatus
from conductor.text import clip, locked_refusal, mask_credentials, version
from conductor.views import Actor
from store.db import Session
from store.types import utcnow

DEFAULT_REASON = "no reason given"
EMPTY = "''"
_ICONS: tuple[tuple[StepName, str], ...] = (("deploy", "🚚"), ("health", "💚"))


class Redeploy(Kind):
    kind = RunKind.REDEPLOY
    steps: ClassVar[tuple[StepName, ...]] = ("deploy", "health", "seal", "notes")
    words = Words(
        noun="redeploy",
        done="redeployed",
        failed="Fix it and `/release redeploy` again, or `/release rollback`.",
        interrupted="Check production, then `/release redeploy` again (the deploy runs again).",
    )

    async def admit(
        self, session: Session, guild_id: int, actor: Actor, request: RunRequest
    ) -> Admission:
        why = request.why(DEFAULT_REASON)
        lock = await current_lock(session, guild_id)
        if lock is not None and not lock_view(lock).is_holder(actor):
            held = lock_view(lock)
            raise Locked(locked_refusal(held, "redeploy", yours=False, now=utcnow()), held)
        release = await last_shipped(session, guild_id)
        if release is None:
            raise NotFound("Nothing has shipped yet, so nothing runs in production to redeploy.")
        if self.parts.deploy.command is None:
            raise NotConfigured(
                "No deploy command is configured (`[deploy] command`), so there is nothing to "
                "redeploy with. `/seal` checks production again."
            )
        return Admission(release, release.version or 0, reason=why)

    async def describe(self, session: Session, admission: Admission) -> Plan:
        plan = await super().describe(session, admission)
        release = plan.release
        env = deploy_environment(
            release.slug, release.version or 0, release.merge_sha or release.rc_head
        )
        shown = " ".join(f"{k}={v or EMPTY}" for k, v in {**env, "CONDUCTOR_REDEPLOY": "1"}.items())
        then = [
            "health gate: the `[app]` health URL until 200",
            "seal: the smoke suite, recorded on it",
        ]
        return Plan(
            release,
            release,
            (),
            (mask_credentials(f"{shown} {self.parts.deploy.command}"),),
            tuple(then),
            admission.reason,
        )

    def step(self, name: StepName) -> Step:
        return {
            "deploy": self._deploy,
            "health": self._health,
            "seal": self._seal,
            "notes": self._notes,
        }[name]

    async def _deploy(self, drive: Drive) -> None:
        release = await drive.current()
        sha = release.merge_sha or release.rc_head
        await drive.mark(StepStatus.RUNNING)
        env = {
            **deploy_environment(release.slug, drive.run.version, sha),
            "CONDUCTOR_REDEPLOY": "1",
        }
        outcome = await deploy_command(drive, env=env, what="redeploy", alert=True)
        summary = f"deployed `{release.slug}`{version(release)} again" + (
            f" (`{sha[:10]}`)" if sha else ""
        )
        await drive.mark(StepStatus.DONE, {**outcome, "sha": sha, "summary": summary})

    async def _health(self, drive: Drive) -> None:
        await health(drive, failing="the redeploy went out but production is not healthy")

    async def _seal(self, drive: Drive) -> None:
        if not self.parts.sealer.configured:
            await drive.mark(StepStatus.SKIPPED, {"summary": "no [app]"})
            return
        drive.seal = await seal_once(drive, await drive.current(), trigger=REDEPLOY)
        await drive.mark(StepStatus.DONE, {"summary": drive.seal.line})
        self.parts.publisher.changed(drive.run.guild_id)

    async def _notes(self, drive: Drive) -> None:
        run, release = drive.run, await drive.current()
        head = (
            f"🔁 **Redeployed `{release.slug}`{version(release)}** ({run.tag}) by {run.started_by}"
        )
        lines = [head, f"Why: {clip(run.reason or DEFAULT_REASON, 400)}"]
        lines += [f"{icon} {run.step(name).outcome.get('summary')}" for name, icon in _ICONS
                  if run.step(name).status is StepStatus.DONE]  # fmt: skip
        seal = drive.seal or await stored_seal(drive, release, trigger=REDEPLOY)
        lines.append(seal.line if seal is not None else seal_line(None, None))
        after = f"after the redeploy of `{release.slug}`{version(release)} ({run.tag})"
        await post_outcome(
            drive, release, clip("\n".join(lines), 2000), marker=head, seal=seal, after=after
        )

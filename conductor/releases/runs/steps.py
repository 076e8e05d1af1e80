"""The steps more than one kind of run shares: the deploy command, the health gate, a seal
of production recorded once, and an outcome posted in the thread once with its alert."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from conductor.releases.deploy import health_gate, log_path
from conductor.releases.git import GitFailed, GitRepository
from conductor.releases.runs.driver import Drive, StepFailed
from conductor.releases.runs.sink import PostedNotes
from conductor.releases.sandbox import Sandbox, SandboxError
from conductor.seals.sealer import SealOutcome
from conductor.states import SealTrigger, StepStatus
from conductor.views import ReleaseView
from smoke import SmokeConfigError, SmokeResult

log = logging.getLogger(__name__)


async def deploy_command(
    drive: Drive, *, env: dict[str, str], what: str, alert: bool = False
) -> dict[str, Any]:
    """Run the ``[deploy]`` command under its timeout with ``env``, its output kept in a log
    named after the release, the version and ``what``; the step is marked running first.
    Returns what it found (its last lines, the log, how long); a failure ends the run."""
    parts, run = drive.parts, drive.run
    command, config, sandbox = parts.deploy.command, parts.deploy, parts.sandbox
    if command is None:  # the kinds skip the step without one
        raise StepFailed("no deploy command is configured")
    sha = env.get("CONDUCTOR_SHA") or None
    try:
        async with _checkout(parts.repo, sha, sandbox) as tree:
            ran = await sandbox.run(
                command, tree=tree, limit_s=config.timeout, env=env,
                log_path=log_path(config, run.release_slug, run.version, what=what),
                grant=config.grant, limits=config.limits,
            )  # fmt: skip
    except (GitFailed, SandboxError) as error:
        raise StepFailed(f"the deploy command could not run: {error}", alert=alert) from None
    outcome: dict[str, Any] = {"tail": ran.tail, "log": ran.log, "duration_ms": ran.duration_ms}
    if not ran.passed:
        why = (
            f"the deploy command was killed after {parts.deploy.timeout:g} s"
            if ran.timed_out
            else f"the deploy command failed (exit {ran.returncode})"
        )
        raise StepFailed(why, outcome, alert=alert)
    return outcome


@contextlib.asynccontextmanager
async def _checkout(
    repo: GitRepository | None, sha: str | None, sandbox: Sandbox
) -> AsyncIterator[Path]:
    """Where the deploy runs: a clean checkout of exactly the commit it deploys (its
    ``bin/deploy`` is that commit's); without ``[git]`` or a commit, an empty directory."""
    if repo is not None and sha is not None:
        async with repo.exported(sha, sandbox) as tree:
            yield tree
        return
    where = Path(tempfile.mkdtemp(prefix="conductor-deploy-"))
    try:
        sandbox.own(where)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


async def health(drive: Drive, *, failing: str) -> None:
    """The health gate: skipped when nothing was deployed (the seal then checks production)
    or there is no ``[app]`` to ask; else production's health URL is polled until healthy or
    the gate's time is up. Unhealthy ends the run with a ping: ``failing`` says what went out
    (``the deploy went out but production is not healthy``)."""
    if drive.run.step("deploy").status is not StepStatus.DONE:
        await drive.mark(
            StepStatus.SKIPPED, {"summary": "nothing was deployed; the seal checks production"}
        )
        return
    sealer, deploy = drive.parts.sealer, drive.parts.deploy
    try:
        app = sealer.app() if sealer.configured else None
    except SmokeConfigError:
        app = None
    if app is None:
        await drive.mark(StepStatus.SKIPPED, {"summary": "no [app]: no health URL"})
        return
    await drive.mark(StepStatus.RUNNING)
    result = await health_gate(
        app.health_url,
        limit_s=deploy.health_timeout,
        interval=deploy.health_interval,
        offsite=app.offsite,
    )
    if not result.healthy:
        raise StepFailed(f"{failing}: {result.summary}", {"attempts": result.attempts}, alert=True)
    await drive.mark(StepStatus.DONE, {"summary": result.summary, "attempts": result.attempts})


async def seal_once(
    drive: Drive, target: ReleaseView, *, trigger: SealTrigger, verdict: bool = True
) -> SealOutcome:
    """A seal of production recorded on ``target`` by this run: the one recorded before a
    crash (since the run started), else one run now. Whatever fails, an outcome."""
    run, sealer = drive.run, drive.parts.sealer
    found = await sealer.records.since(
        run.guild_id, target.slug, trigger=trigger, at=run.started_at
    )
    if found is not None:  # recorded before a crash: reused
        return sealer.outcome_of(target, found)
    await drive.mark(StepStatus.RUNNING)
    try:
        seal = await sealer.seal(
            run.guild_id, target, trigger=trigger, actor=drive.actor, verdict=verdict
        )
    except Exception as error:
        log.exception("the seal of %s after a %s failed", target.slug, run.kind)
        result = SmokeResult.failure(f"the seal step failed: {error}"[:300])
        seal = SealOutcome(result, target, None, recorded=False)
    drive.at("seal:recorded")  # recorded, not yet marked
    return seal


async def stored_seal(
    drive: Drive, target: ReleaseView, *, trigger: SealTrigger
) -> SealOutcome | None:
    """The seal this run recorded before a crash (its notes are posted after one)."""
    run, sealer = drive.run, drive.parts.sealer
    if run.step("seal").status is not StepStatus.DONE:
        return None
    found = await sealer.records.since(
        run.guild_id, target.slug, trigger=trigger, at=run.started_at
    )
    return sealer.outcome_of(target, found) if found is not None else None


async def post_outcome(
    drive: Drive,
    release: ReleaseView,
    text: str,
    *,
    marker: str,
    seal: SealOutcome | None,
    after: str,
) -> None:
    """The notes step of a rollback or a redeploy: ``text`` posted in the thread once (after
    a crash it is looked for by ``marker`` first), then on a red or error ``seal`` its alert
    once (looked for by ``after``, which its first line carries)."""
    run, notes = drive.run, drive.parts.notes
    if notes is None:
        await drive.mark(StepStatus.SKIPPED, {"summary": "nowhere to post"})
        return
    retried = run.step("notes").status is StepStatus.RUNNING
    posted: PostedNotes | None = (
        await notes.find(run.guild_id, release, marker) if retried else None
    )
    await drive.mark(StepStatus.RUNNING)
    if posted is None:
        posted = await notes.post(run.guild_id, release, [text], reply_to=drive.reply_to)
        if posted is not None:
            drive.at("notes:sent")
    if posted is not None and seal is not None and seal.alarming:
        pinged = await notes.find(run.guild_id, release, after) if retried else None
        if pinged is None:
            await drive.parts.publisher.alert(
                run.guild_id,
                seal.release,
                seal,
                operator_id=drive.actor.id,
                posted=posted,
                after=after,
            )
            drive.at("alert:sent")
    drive.notes = posted
    outcome = (
        {"summary": "posted", "link": posted.link, "message_id": posted.message_id}
        if posted is not None
        else {"summary": "not posted: Discord refused it (the log says why)"}
    )
    await drive.mark(StepStatus.DONE, outcome)

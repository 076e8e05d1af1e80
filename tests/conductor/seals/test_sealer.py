"""The seal in the domain: the ship pipeline, the record and its history, and a seal step
whose failures of any kind never undo a ship."""

from __future__ import annotations

import asyncio

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.errors import InvalidMove, NotFound, SealRunning
from conductor.releases.runs.store import RunView
from conductor.seals.records import SealRecords
from conductor.states import RESEAL, ReleaseState, SealStatus, StepStatus
from smoke import SmokeResult
from store.db import Database
from tests.helpers import GUILD, OPERATOR, TEST_APP, FakeRunner, MakeReviewed, assembled, ship


@pytest.fixture
def domain(db: Database, runner: FakeRunner) -> Conductor:
    """The domain sealing against the tests' ``[app]`` with the fake runner."""
    return bootstrap(database=db, app=TEST_APP, runner=runner)


async def test_ship_then_seal_records_the_verdict_on_the_shipped_release(
    domain: Conductor, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    slug = await assembled(domain, make_reviewed)
    steps: list[str] = []

    async def progress(run: RunView) -> None:
        for step in run.steps:
            seen = f"{step.name}:{step.status.value}"
            if step.status is not StepStatus.PENDING and seen not in steps:
                steps.append(seen)

    runner.then({"/signin": "selector form input[type=password] not found"})
    outcome = await ship(domain, progress=progress)
    # nothing to deploy here (no git, no deploy command): the flip, then the seal, then notes
    assert steps == [
        "deploy:skipped",
        "health:skipped",
        "ship:running",
        "ship:done",
        "seal:running",
        "seal:done",
        "notes:running",
        "notes:done",
    ]
    assert outcome.release.state is ReleaseState.SHIPPED
    assert outcome.seal is not None and outcome.seal.recorded and outcome.seal.alarming
    assert outcome.seal.rollback == f"git revert -m 1 <merge_sha> && bin/deploy {slug} v1"
    stored = await domain.releases.get(GUILD, slug)
    assert stored.state is ReleaseState.SHIPPED  # the flip survives the seal
    assert stored.seal_status is SealStatus.RED
    assert stored.seal_summary == (
        "1 of 6 failed: /signin (selector form input[type=password] not found)"
    )
    assert stored.seal_results[2] == {
        "path": "/signin",
        "ok": False,
        "kind": "page",
        "status": None,
        "reason": "selector form input[type=password] not found",
        "duration_ms": 0,
        "blocked": [],
    }
    assert outcome.release == stored


async def test_a_failing_progress_report_or_runner_never_undoes_the_ship(
    domain: Conductor, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    slug = await assembled(domain, make_reviewed)

    async def broken(run: RunView) -> None:
        raise RuntimeError("discord is down")

    runner.then(OSError("no such browser"))
    outcome = await ship(domain, progress=broken)
    assert outcome.seal is not None and outcome.seal.status is SealStatus.ERROR
    assert "the runner crashed: OSError('no such browser')" in outcome.seal.result.summary
    stored = await domain.releases.get(GUILD, slug)
    assert stored.state is ReleaseState.SHIPPED and stored.seal_status is SealStatus.ERROR


async def test_a_seal_that_cannot_be_recorded_is_still_reported(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slug = await assembled(domain, make_reviewed)

    async def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(domain.seals, "record", refuse)
    outcome = await ship(domain)
    assert outcome.seal is not None and not outcome.seal.recorded
    assert outcome.seal.line == "🟢 Smoke seal: green — 6/6 checks passed"
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.SHIPPED


async def test_no_app_means_no_seal(domain: Conductor, make_reviewed: MakeReviewed) -> None:
    runner = FakeRunner()
    unsealed = bootstrap(database=domain.db, runner=runner)
    slug = await assembled(domain, make_reviewed)
    outcome = await ship(unsealed)
    assert outcome.seal is None and runner.calls == []
    assert (await domain.releases.get(GUILD, slug)).seal_status is None


async def test_a_reseal_replaces_the_verdict_and_keeps_the_history(
    domain: Conductor, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    slug = await assembled(domain, make_reviewed)
    runner.then({"/up": "status 503"})
    await ship(domain)
    target = await domain.seals.target(GUILD, None)
    assert target.slug == slug
    outcome = await domain.sealer.seal(GUILD, target, trigger=RESEAL, actor=OPERATOR)
    assert outcome.status is SealStatus.GREEN
    assert (await domain.releases.get(GUILD, slug)).seal_status is SealStatus.GREEN
    history = await domain.seals.history(GUILD, slug)
    assert [(h.status, h.trigger, h.summary) for h in history] == [
        (SealStatus.RED, "ship", "1 of 6 failed: /up (status 503)"),
        (SealStatus.GREEN, "reseal", "6/6 checks passed"),
    ]


async def test_only_shipped_releases_are_sealed(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    records = SealRecords(domain.db)
    with pytest.raises(NotFound, match="Nothing has shipped yet"):
        await records.target(GUILD, None)
    slug = await assembled(domain, make_reviewed)
    with pytest.raises(InvalidMove, match="is assembled; only a shipped release"):
        await records.target(GUILD, slug)
    with pytest.raises(InvalidMove):
        await records.record(GUILD, slug, SmokeResult.failure("x"), trigger=RESEAL)
    with pytest.raises(NotFound, match="No release `nope`"):
        await records.target(GUILD, "nope")


async def test_one_seal_per_release_at_a_time(
    domain: Conductor, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    await assembled(domain, make_reviewed)
    await ship(domain)
    target = await domain.seals.target(GUILD, None)
    runner.gate = asyncio.Event()
    runner.started.clear()
    first = asyncio.create_task(domain.sealer.seal(GUILD, target, trigger=RESEAL))
    await asyncio.wait_for(runner.started.wait(), 60)
    assert domain.sealer.running(GUILD, target.slug)
    with pytest.raises(SealRunning, match="already running"):
        await domain.sealer.seal(GUILD, target, trigger=RESEAL)
    runner.gate.set()
    assert (await first).status is SealStatus.GREEN
    assert not domain.sealer.running(GUILD, target.slug)


async def test_notes_owed_until_posted(domain: Conductor, make_reviewed: MakeReviewed) -> None:
    slug = await assembled(domain, make_reviewed)
    await ship(domain)
    assert [r.slug for r in await domain.seals.notes_owed(GUILD)] == [slug]
    await domain.seals.notes_posted(GUILD, slug, 12345)
    assert await domain.seals.notes_owed(GUILD) == ()
    stored = await domain.releases.get(GUILD, slug)
    assert stored.notes_message_id == 12345 and stored.notes_posted_at is not None
    # the stored seal reads back as the same outcome for late notes
    again = domain.sealer.stored(stored)
    assert again is not None and again.line == "🟢 Smoke seal: green — 6/6 checks passed"
    assert again.result.checks[0].kind == "health"

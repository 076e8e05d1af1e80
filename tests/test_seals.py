"""The seal in the domain: the ship pipeline, the record and its history, and a seal step
whose failures of any kind never undo a ship."""

from __future__ import annotations

import asyncio

import pytest

from conductor.errors import InvalidMove, NotFound
from conductor.pipeline import ShipPipeline
from conductor.seals import RESEAL, Sealer, SealRecords, SealRunning
from conductor.service import ReleaseService
from conductor.states import ReleaseState
from smoke import SmokeResult
from store.models import SealStatus
from tests.conftest import GUILD, OPERATOR, MakeReviewed
from tests.fakes import TEST_APP, FakeRunner


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def pipeline(service: ReleaseService, runner: FakeRunner) -> ShipPipeline:
    return ShipPipeline(service, Sealer(service.seals, runner, TEST_APP))


async def _assembled(service: ReleaseService, make_reviewed: MakeReviewed, name: str = "t") -> str:
    await make_reviewed(f"{name}-core")
    view = await service.open_release(GUILD, name, OPERATOR)
    await service.add_task(GUILD, f"{name}-core", OPERATOR)
    await service.assemble(GUILD, OPERATOR)
    return view.slug


async def test_ship_then_seal_records_the_verdict_on_the_shipped_release(
    service: ReleaseService, pipeline: ShipPipeline, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    slug = await _assembled(service, make_reviewed)
    steps: list[str] = []

    async def progress(step: str, view: object) -> None:
        steps.append(step)

    runner.then({"/signin": "selector form input[type=password] not found"})
    outcome = await pipeline.ship(GUILD, OPERATOR, progress=progress)
    assert steps == ["seal"]
    assert outcome.release.state is ReleaseState.SHIPPED
    assert outcome.seal is not None and outcome.seal.recorded and outcome.seal.alarming
    assert outcome.seal.rollback == f"git revert -m 1 <merge_sha> && bin/deploy {slug} v1"
    stored = await service.release(GUILD, slug)
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
    assert outcome.shipped == stored


async def test_a_failing_progress_report_or_runner_never_undoes_the_ship(
    service: ReleaseService, pipeline: ShipPipeline, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    slug = await _assembled(service, make_reviewed)

    async def broken(step: str, view: object) -> None:
        raise RuntimeError("discord is down")

    runner.then(OSError("no such browser"))
    outcome = await pipeline.ship(GUILD, OPERATOR, progress=broken)
    assert outcome.seal is not None and outcome.seal.status is SealStatus.ERROR
    assert "the runner crashed: OSError('no such browser')" in outcome.seal.result.summary
    stored = await service.release(GUILD, slug)
    assert stored.state is ReleaseState.SHIPPED and stored.seal_status is SealStatus.ERROR


async def test_a_seal_that_cannot_be_recorded_is_still_reported(
    service: ReleaseService,
    pipeline: ShipPipeline,
    make_reviewed: MakeReviewed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slug = await _assembled(service, make_reviewed)

    async def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(service.seals, "record", refuse)
    outcome = await pipeline.ship(GUILD, OPERATOR)
    assert outcome.seal is not None and not outcome.seal.recorded
    assert outcome.seal.line == "🟢 Smoke seal: green — 6/6 checks passed"
    assert (await service.release(GUILD, slug)).state is ReleaseState.SHIPPED


async def test_no_app_means_no_seal(service: ReleaseService, make_reviewed: MakeReviewed) -> None:
    runner = FakeRunner()
    pipeline = ShipPipeline(service, Sealer(service.seals, runner, None))
    slug = await _assembled(service, make_reviewed)
    outcome = await pipeline.ship(GUILD, OPERATOR)
    assert outcome.seal is None and runner.calls == []
    assert (await service.release(GUILD, slug)).seal_status is None


async def test_a_reseal_replaces_the_verdict_and_keeps_the_history(
    service: ReleaseService, pipeline: ShipPipeline, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    slug = await _assembled(service, make_reviewed)
    runner.then({"/up": "status 503"})
    await pipeline.ship(GUILD, OPERATOR)
    target = await service.seals.target(GUILD, None)
    assert target.slug == slug
    outcome = await pipeline.sealer.seal(GUILD, target, trigger=RESEAL, actor=OPERATOR)
    assert outcome.status is SealStatus.GREEN
    assert (await service.release(GUILD, slug)).seal_status is SealStatus.GREEN
    history = await service.seals.history(GUILD, slug)
    assert [(h.status, h.trigger, h.summary) for h in history] == [
        (SealStatus.RED, "ship", "1 of 6 failed: /up (status 503)"),
        (SealStatus.GREEN, "reseal", "6/6 checks passed"),
    ]


async def test_only_shipped_releases_are_sealed(
    service: ReleaseService, make_reviewed: MakeReviewed
) -> None:
    records = SealRecords(service.db)
    with pytest.raises(NotFound, match="Nothing has shipped yet"):
        await records.target(GUILD, None)
    slug = await _assembled(service, make_reviewed)
    with pytest.raises(InvalidMove, match="is assembled; only a shipped release"):
        await records.target(GUILD, slug)
    with pytest.raises(InvalidMove):
        await records.record(GUILD, slug, SmokeResult.failure("x"), trigger=RESEAL)
    with pytest.raises(NotFound, match="No release `nope`"):
        await records.target(GUILD, "nope")


async def test_one_seal_per_release_at_a_time(
    service: ReleaseService, pipeline: ShipPipeline, make_reviewed: MakeReviewed, runner: FakeRunner
) -> None:
    await _assembled(service, make_reviewed)
    await pipeline.ship(GUILD, OPERATOR)
    target = await service.seals.target(GUILD, None)
    runner.gate = asyncio.Event()
    runner.started.clear()
    first = asyncio.create_task(pipeline.sealer.seal(GUILD, target, trigger=RESEAL))
    await asyncio.wait_for(runner.started.wait(), 5)
    assert pipeline.sealer.running(GUILD, target.slug)
    with pytest.raises(SealRunning, match="already running"):
        await pipeline.sealer.seal(GUILD, target, trigger=RESEAL)
    runner.gate.set()
    assert (await first).status is SealStatus.GREEN
    assert not pipeline.sealer.running(GUILD, target.slug)


async def test_notes_owed_until_posted(
    service: ReleaseService, pipeline: ShipPipeline, make_reviewed: MakeReviewed
) -> None:
    slug = await _assembled(service, make_reviewed)
    await pipeline.ship(GUILD, OPERATOR)
    assert [r.slug for r in await service.seals.without_notes(GUILD)] == [slug]
    await service.seals.notes_posted(GUILD, slug, 12345)
    assert await service.seals.without_notes(GUILD) == ()
    stored = await service.release(GUILD, slug)
    assert stored.notes_message_id == 12345 and stored.notes_posted_at is not None
    # the stored seal reads back as the same outcome for late notes
    again = pipeline.sealer.stored(stored)
    assert again is not None and again.line == "🟢 Smoke seal: green — 6/6 checks passed"
    assert again.result.checks[0].kind == "health"

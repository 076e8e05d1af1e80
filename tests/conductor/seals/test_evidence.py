"""The evidence of a red seal in the domain: each failed page's screenshot kept on disk beside
the seal record, attached to the alert within Discord's limits (the alert says where the
others are), read back for an alert posted late, and never costing the verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from conductor.bootstrap import Conductor, bootstrap, default_screenshots_dir
from conductor.notes import rollback_alert, screenshots_line
from conductor.seals.evidence import ALERT_BYTES, ALERT_FILES, Evidence
from conductor.states import ReleaseState, SealStatus
from conductor.views import ReleaseView
from store.db import Database
from store.models import Release
from tests.helpers import (
    GUILD,
    OPERATOR,
    TEST_APP,
    FakeNotes,
    FakeRunner,
    MakeReviewed,
    assembled,
    png_size,
    red_with_screenshots,
    ship,
)


@pytest.fixture
def notes() -> FakeNotes:
    return FakeNotes()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "evidence"


@pytest.fixture
def domain(db: Database, runner: FakeRunner, notes: FakeNotes, root: Path) -> Conductor:
    return bootstrap(database=db, app=TEST_APP, runner=runner, notes=notes, screenshots_dir=root)


def pngs_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*.png"))


async def test_a_red_seal_keeps_each_screenshot_with_its_record_and_attaches_them(
    domain: Conductor,
    notes: FakeNotes,
    runner: FakeRunner,
    make_reviewed: MakeReviewed,
    root: Path,
    tmp_path: Path,
) -> None:
    slug = await assembled(domain, make_reviewed, "red")
    result = red_with_screenshots(["/signin", "/../../../escaped"])
    runner.then(result)

    outcome = await ship(domain)

    assert outcome.seal is not None and outcome.seal.status is SealStatus.RED
    # on disk: <root>/<guild>/<release>/<checked at>-ship/<n>-<path>.png, and nowhere else
    [seal_dir] = (root / str(GUILD) / slug).iterdir()
    assert seal_dir.name == result.checked_at.strftime("%Y%m%dT%H%M%S%fZ") + "-ship"
    assert pngs_under(tmp_path) == [seal_dir / "01-signin.png", seal_dir / "02-escaped.png"]
    assert (seal_dir / "01-signin.png").read_bytes() == result.checks[1].screenshot
    assert (seal_dir / "02-escaped.png").read_bytes() == result.checks[2].screenshot
    # with the seal record: each failed check names its file, relative to the root
    relative = f"{GUILD}/{slug}/{seal_dir.name}"
    stored = await domain.releases.get(GUILD, slug)
    files = [check.get("screenshot_file") for check in stored.seal_results]
    assert files == [None, f"{relative}/01-signin.png", f"{relative}/02-escaped.png"]
    [history] = await domain.seals.history(GUILD, slug)
    assert [check.get("screenshot_file") for check in history.results] == files
    # the alert carries them, and says so
    [(_, text)] = notes.pings
    [attached] = notes.attached
    assert [(a.filename, a.data) for a in attached] == [
        ("01-signin.png", result.checks[1].screenshot),
        ("02-escaped.png", result.checks[2].screenshot),
    ]
    assert text.endswith("\n📸 2 screenshots of the failed pages attached.")


@pytest.mark.backends("sqlite")  # where the SQLite file is
async def test_without_a_setting_they_go_beside_the_sqlite_file(
    db: Database, runner: FakeRunner, make_reviewed: MakeReviewed, tmp_path: Path
) -> None:
    assert default_screenshots_dir(db) == tmp_path / "screenshots"  # conductor.db is there
    assert default_screenshots_dir(Database("sqlite+aiosqlite://")) == Path.cwd() / "screenshots"
    domain = bootstrap(database=db, app=TEST_APP, runner=runner)
    slug = await assembled(domain, make_reviewed, "plain")
    runner.then(red_with_screenshots(["/signin"]))
    await ship(domain)
    [kept] = pngs_under(tmp_path)
    assert kept.parent.parent == tmp_path / "screenshots" / str(GUILD) / slug


async def test_more_than_ten_failed_pages_attach_ten_and_say_where_the_rest_are(
    domain: Conductor,
    notes: FakeNotes,
    runner: FakeRunner,
    make_reviewed: MakeReviewed,
    root: Path,
) -> None:
    slug = await assembled(domain, make_reviewed, "many")
    runner.then(red_with_screenshots([f"/page-{n}" for n in range(1, 14)]))

    await ship(domain)

    [attached] = notes.attached
    assert len(attached) == ALERT_FILES == 10
    assert [a.filename for a in attached] == [f"{n:02d}-page-{n}.png" for n in range(1, 11)]
    [seal_dir] = (root / str(GUILD) / slug).iterdir()
    assert len(pngs_under(seal_dir)) == 13  # all of them kept
    [(_, text)] = notes.pings
    assert text.endswith(
        "\n📸 10 of 13 screenshots of the failed pages attached; 3 more are on disk with the "
        f"seal record: `{seal_dir}` (one message takes 10 files, 8 MiB)."
    )
    assert len(text) <= 2000


async def test_the_attachments_stay_under_eight_mib_in_all(root: Path) -> None:
    """Greedy in the order of the checks: a screenshot that would cross the limit is left on
    disk and a smaller one after it still goes."""
    three_mib = 3 * 2**20
    result = red_with_screenshots(["/a", "/b", "/c"], pad=three_mib)
    small = red_with_screenshots(["/d"]).checks[1]
    result = type(result).from_checks((*result.checks, small), 1)
    evidence = Evidence(root)
    kept = await evidence.keep(GUILD, "big", result, trigger="ship")

    alert = await evidence.for_alert(kept)

    assert [a.filename for a in alert.attached] == ["01-a.png", "02-b.png", "04-d.png"]
    assert sum(len(a.data) for a in alert.attached) <= ALERT_BYTES
    assert (alert.on_disk, alert.lost) == (1, 0)
    [seal_dir] = (root / str(GUILD) / "big").iterdir()
    assert alert.directory == seal_dir


async def test_a_disk_that_refuses_them_costs_the_files_not_the_verdict_or_the_alert(
    db: Database,
    runner: FakeRunner,
    notes: FakeNotes,
    make_reviewed: MakeReviewed,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the screenshots directory should be")
    domain = bootstrap(
        database=db, app=TEST_APP, runner=runner, notes=notes, screenshots_dir=blocker / "shots"
    )
    slug = await assembled(domain, make_reviewed, "full")
    runner.then(red_with_screenshots([f"/page-{n}" for n in range(1, 13)]))

    outcome = await ship(domain)

    assert outcome.seal is not None and outcome.seal.recorded  # the verdict is recorded
    stored = await domain.releases.get(GUILD, slug)
    assert stored.seal_status is SealStatus.RED
    assert all("screenshot_file" not in check for check in stored.seal_results)
    assert f"a screenshot of the seal of {slug} was not kept: cannot create" in caplog.text
    [attached] = notes.attached  # from memory: the alert still shows the pages
    assert len(attached) == 10
    [(_, text)] = notes.pings
    assert text.endswith(
        "\n📸 10 of 12 screenshots of the failed pages attached; 2 are neither attached nor "
        "on disk (one message takes 10 files, 8 MiB)."
    )


async def test_an_alert_posted_late_reads_them_back_from_disk(
    domain: Conductor, notes: FakeNotes, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    notes.down = True
    await assembled(domain, make_reviewed, "late")
    result = red_with_screenshots(["/signin", "/tasks"])
    runner.then(result)
    await ship(domain)
    assert notes.pings == []  # nothing reached Discord: the notes are owed

    notes.down = False
    assert await domain.publisher.post_owed_notes(GUILD) == 1

    assert len(runner.calls) == 1  # the stored seal, not a new run: the files are from disk
    [attached] = notes.attached
    assert [(a.filename, a.data) for a in attached] == [
        ("01-signin.png", result.checks[1].screenshot),
        ("02-tasks.png", result.checks[2].screenshot),
    ]
    assert png_size(attached[0].data) == (8, 6)


async def test_a_record_naming_a_file_outside_the_directory_is_never_read(
    domain: Conductor,
    notes: FakeNotes,
    runner: FakeRunner,
    make_reviewed: MakeReviewed,
    root: Path,
    tmp_path: Path,
) -> None:
    """A tampered record cannot make the alert carry a file from elsewhere, PNG or not."""
    notes.down = True
    slug = await assembled(domain, make_reviewed, "tampered")
    runner.then(red_with_screenshots(["/a", "/b", "/c", "/d"]))
    await ship(domain)
    outside = tmp_path / "outside.png"
    outside.write_bytes(red_with_screenshots(["/x"]).checks[1].screenshot or b"")
    link = root / "link.png"
    link.symlink_to(outside)
    stored = await domain.releases.get(GUILD, slug)
    results = [dict(check) for check in stored.seal_results]
    results[1]["screenshot_file"] = "../outside.png"
    results[2]["screenshot_file"] = str(outside)
    results[3]["screenshot_file"] = "link.png"
    async with domain.db.write() as session:
        await session.execute(update(Release).values(seal_results=results))

    notes.down = False
    await domain.publisher.post_owed_notes(GUILD)

    [attached] = notes.attached
    assert [a.filename for a in attached] == ["04-d.png"]  # the one honest record
    [(_, text)] = notes.pings
    assert "📸 1 of 4 screenshots of the failed pages attached; 3 are neither attached" in text


async def test_a_red_reseal_attaches_its_screenshots_too(
    domain: Conductor,
    notes: FakeNotes,
    runner: FakeRunner,
    make_reviewed: MakeReviewed,
    root: Path,
) -> None:
    slug = await assembled(domain, make_reviewed, "again")
    await ship(domain)  # green
    assert notes.pings == []
    release = await domain.releases.get(GUILD, slug)
    result = red_with_screenshots(["/tasks"])
    runner.then(result)

    await domain.publisher.reseal(GUILD, release, OPERATOR)

    [attached] = notes.attached
    assert [(a.filename, a.data) for a in attached] == [
        ("01-tasks.png", result.checks[1].screenshot)
    ]
    [kept] = pngs_under(root)
    assert kept.parent.name.endswith("-reseal") and kept.read_bytes() == attached[0].data


@pytest.mark.parametrize("summary_length", [10, 1_900, 5_000])
async def test_the_alert_with_its_screenshots_line_stays_one_message(
    root: Path, summary_length: int
) -> None:
    """The summary gives way; the rollback command and the screenshots line stay whole."""
    result = red_with_screenshots([f"/page-{n}" for n in range(1, 14)])
    evidence = Evidence(root)
    alert = await evidence.for_alert(await evidence.keep(GUILD, "long", result, trigger="ship"))
    line = screenshots_line(alert)
    assert line is not None and "3 more are on disk" in line
    release = ReleaseView(
        slug="2026-11-21-long", name="long", state=ReleaseState.SHIPPED, opened_by="olga",
        opened_by_id=1, opened_at=datetime(2026, 11, 21, 9, tzinfo=UTC), version=1,
    )  # fmt: skip
    text = rollback_alert(
        release,
        status=SealStatus.RED,
        summary="x" * summary_length,
        mentions=["<@1>", "<@&2>"],
        rollback="bin/rollback v1",
        evidence=line,
    )
    assert len(text) <= 2000
    assert text.endswith("```\nbin/rollback v1\n```\n" + line)

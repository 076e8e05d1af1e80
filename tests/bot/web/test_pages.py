"""The history and release pages over real HTTP on 127.0.0.1: the history of 200 releases paged
through its Older links with no duplicate and no gap, its filters, a cursor or a filter it
cannot read (400, saying what it expected); a release's page with its members' notes, seals,
runs and steps, its thread and its commit; an unknown release (404); a ship in progress on the
board and on its release page; and an unchanged board's ETag holding as time passes."""

from __future__ import annotations

import asyncio
import re
from html import unescape

from conductor.bootstrap import Conductor
from conductor.states import RcTestsStatus, ReleaseState, RunKind
from store.db import Database
from store.models import Release
from tests.bot.web.conftest import Served, Ship
from tests.bot.web.test_routes import board_json, get
from tests.helpers import (
    GUILD,
    OPERATOR,
    REVIEWERS,
    FakeRunner,
    MakeReviewed,
    assembled,
    handoff,
    next_message_id,
    red_with_screenshots,
)
from tests.release_history import OTHER, seed_releases, slug_of

ROW = re.compile(r'<tr class="release" data-id="(\d+)" data-slug="([^"]+)" data-state="([^"]+)"')
OLDER = re.compile(r'<a href="([^"]+)" id="older"')


async def page_of(served: Served, path: str) -> tuple[list[tuple[int, str, str]], str | None]:
    response, body = await get(served, path)
    assert response.status == 200, body
    html = body.decode()
    rows = [(int(i), slug, state) for i, slug, state in ROW.findall(html)]
    older = OLDER.search(html)
    return rows, unescape(older.group(1)) if older else None


async def walk(served: Served, path: str) -> tuple[list[tuple[int, str, str]], int]:
    """Every row from ``path`` on through the Older links, and how many pages it took."""
    rows: list[tuple[int, str, str]] = []
    pages = 0
    next_path: str | None = path
    while next_path is not None:
        found, next_path = await page_of(served, next_path)
        pages += 1
        assert found or pages == 1
        rows += found
        assert pages < 50
    return rows, pages


async def test_the_history_pages_through_every_release_once_newest_first(
    served: Served, db: Database
) -> None:
    seeded = await seed_releases(db, 200, GUILD)
    rows, pages = await walk(served, "/deployments/history")
    expected = [(i, slug, state.value) for i, slug, state in seeded.newest_first()]
    assert rows == expected  # no duplicate, no gap, newest first, none of the other guild's
    assert pages == 8  # 25 a page
    first, older = await page_of(served, "/deployments/history")
    assert len(first) == 25 and older is not None and older.endswith("&before=176")

    abandoned, _ = await walk(served, "/deployments/history?state=abandoned")
    assert abandoned == [r for r in expected if r[2] == "abandoned"] and len(abandoned) == 49
    two, _ = await walk(served, "/deployments/history?state=rolled_back,shipped")
    assert two == [r for r in expected if r[2] in ("rolled_back", "shipped")]
    red, _ = await walk(served, "/deployments/history?seal=red&state=shipped")
    assert [r[0] for r in red] == [i for i in range(200, 0, -1) if i % 8 == 2]

    _, body = await get(served, "/deployments/history?before=3")
    html = body.decode()
    assert [r[0] for r in ROW.findall(html)] == ["2", "1"]
    assert 'id="older"' not in html and 'id="newest"' in html
    # a row: its name, state, when (absolute and the spot for the relative), seal, members
    row = html[html.index('data-id="2"') : html.index("</tr>", html.index('data-id="2"'))]
    assert 'href="/deployments/releases/2026-r0002?guild=1001"' in row
    assert "train 2" in row and "🔴 red" in row and "1 of 3 failed: /signin" in row
    assert '<time datetime="2026-01-01T23:00:00+00:00">2026-01-01 23:00 UTC</time>' in row
    assert '<span class="ago" data-since="2026-01-01T23:00:00+00:00">' in row
    assert '<td class="members">2</td>' in row

    other, _ = await walk(served, f"/deployments/history?guild={OTHER}")
    assert [r[1] for r in other] == [slug_of(j) for j in range(10, 0, -1)]


async def test_a_cursor_or_a_filter_it_cannot_read_is_a_400_that_says_why(
    served: Served, db: Database
) -> None:
    await seed_releases(db, 3, GUILD)
    for query, said in (
        ("before=abc", "before: expected the release id an Older link carries"),
        ("before=0", "&#39;0&#39; is not one"),
        ("before=-5", "&#39;-5&#39; is not one"),
        ("before=" + "9" * 40, "is not one. Start again from the newest"),
        ("state=shipd", "state: expected one of assembling, assembled, shipped, abandoned"),
        ("seal=pink", "seal: expected one of green, red, error; &#39;pink&#39; is not one."),
        ("before=<script>", "&#39;&lt;script&gt;&#39; is not one"),
    ):
        response, body = await get(served, "/deployments/history?" + query)
        assert response.status == 400, query
        assert said in body.decode(), (query, body.decode())
        assert "<script>" not in body.decode()
    # a cursor past the oldest is an empty last page, not an error
    response, body = await get(served, "/deployments/history?before=1")
    assert response.status == 200 and "No older releases." in body.decode()


async def test_a_release_page_shows_members_notes_seals_runs_and_links(
    served: Served, domain: Conductor, ship: Ship, runner: FakeRunner
) -> None:
    # a member whose handoff carried a note (with a script in it, shown as text)
    text = (
        "handoff notes-core → submitted\ntitle: Notes core\nbranch: feat/notes-core\n\n"
        "All green: 12 tests. <script>alert(1)</script>"
    )
    result = await domain.handoffs.apply(handoff(text))
    assert result.review is not None
    message_id = next_message_id()
    await domain.reviews.attach_message(result.review.request_id, 77, message_id)
    for reviewer in REVIEWERS[:2]:
        await domain.reviews.record_approval(GUILD, message_id, reviewer)
    opened = await domain.releases.open(GUILD, "notes", OPERATOR)
    await domain.releases.add_task(GUILD, "notes-core", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    await domain.releases.set_notes_thread(GUILD, opened.slug, 4242)
    runner.then(red_with_screenshots(["/signin"]))
    await domain.runs.start(RunKind.SHIP, GUILD, OPERATOR)

    response, body = await get(served, f"/deployments/releases/{opened.slug}")
    assert response.status == 200
    html = body.decode()
    assert "Notes core" in html
    assert "All green: 12 tests. &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert 'href="https://discord.com/channels/1001/4242"' in html
    # the seal with every check, the failed one's screenshot
    seals = html[html.index('id="seals"') : html.index('id="runs"')]
    assert "🔴 red" in seals and "<code>/up</code>" in seals and "<code>/signin</code>" in seals
    assert re.search(
        r'<img src="/deployments/screenshots/[^"]+\.png" alt="Screenshot of /signin', seals
    )
    # the ship run and its steps, each with its duration
    runs = html[html.index('id="runs"') :]
    assert 'data-kind="ship" data-status="done"' in runs
    for step in ("deploy", "health gate", "ship", "seal", "notes"):
        assert f'<span class="step-name">{step}</span>' in runs, step
    assert len(re.findall(r"(done|skipped) in \d+\.\d s", runs)) == 5
    # the same page by the release's id, and its live body alone (with an ETag)
    by_id, again = await get(served, "/deployments/releases/1")
    assert by_id.status == 200 and "Notes core" in again.decode()
    live, fragment = await get(served, f"/deployments/releases/{opened.slug}/live")
    assert live.status == 200 and live.headers["ETag"]
    assert fragment.decode().lstrip().startswith('<section class="card summary-card"')
    unchanged, _ = await get(
        served,
        f"/deployments/releases/{opened.slug}/live",
        headers={"If-None-Match": live.headers["ETag"]},
    )
    assert unchanged.status == 304

    for missing in ("2099-01-01-nothing", "999", "x" * 300):
        response, body = await get(served, f"/deployments/releases/{missing}")
        assert response.status == 404, missing
        assert "the history lists every release" in body.decode()
    response, _ = await get(served, "/deployments/releases/nothing/live")
    assert response.status == 404


async def test_a_release_s_commit_and_rc_tests(served: Served, db: Database) -> None:
    await seed_releases(db, 6, GUILD)
    async with db.write() as session:
        release = await session.get(Release, 3)
        assert release is not None
        release.rc_tests_status = RcTestsStatus.PASSED
        release.rc_tests_at = release.opened_at
        release.rc_tests_duration_ms = 81_500
        release.rc_tests_tail = "795 passed in 81.2s\n<b>ok</b>"
    _, body = await get(served, "/deployments/releases/2026-r0003")
    html = body.decode()
    tests = html[html.index('id="rc-tests"') : html.index('id="seals"')]
    assert '<strong class="rc-status">passed</strong> in 81.5 s' in tests
    assert "795 passed in 81.2s\n&lt;b&gt;ok&lt;/b&gt;</pre>" in tests
    sha = f"{3:040x}"
    assert f'<a id="commit" href="https://git.example.com/studio/commit/{sha}">' in html
    assert "checkout broke" in html  # the rollback's reason
    assert 'data-kind="rollback"' in html and 'data-kind="ship"' in html
    _, abandoned = await get(served, "/deployments/releases/2026-r0004")
    assert 'id="commit"' not in abandoned.decode()
    assert "superseded" in abandoned.decode()


async def test_a_ship_in_progress_shows_on_the_board_and_its_page(
    served: Served, domain: Conductor, ship: Ship, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    first = await ship("first")
    second = await assembled(domain, make_reviewed, "second")
    runner.gate = asyncio.Event()
    runner.started.clear()
    task = asyncio.create_task(domain.runs.start(RunKind.SHIP, GUILD, OPERATOR))
    try:
        await asyncio.wait_for(runner.started.wait(), 60)
        data = await board_json(served)
        running = data["running"]
        assert running is not None
        assert (running["kind"], running["release"], running["status"]) == (
            "ship",
            second,
            "running",
        )
        assert running["current"]["name"] == "seal" and running["position"] == 4
        _, body = await get(served, "/deployments/board")
        html = body.decode()
        assert 'id="running"' in html and '<strong class="current-step">seal</strong>' in html
        assert f'data-watch="run:{running["id"]}"' in html
        _, page = await get(served, f"/deployments/releases/{second}")
        assert '<strong class="current-step">seal</strong> (step 4 of 5)' in page.decode()
        assert '<span class="elapsed" data-since=' in page.decode()
    finally:
        runner.gate.set()
        await task
    assert (await board_json(served))["running"] is None
    assert first.state is ReleaseState.SHIPPED


async def test_an_unchanged_board_keeps_its_etag_as_time_passes(served: Served, ship: Ship) -> None:
    await ship("steady")
    first, _ = await get(served, "/deployments/board")
    await asyncio.sleep(1.1)  # what would change: a relative time, had the server written one
    again, _ = await get(
        served, "/deployments/board", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304


async def test_a_rolled_back_release_still_shows_what_it_carried(
    served: Served, domain: Conductor, ship: Ship
) -> None:
    shipped = await ship("undone")
    await domain.releases.roll_back(GUILD, shipped.slug, OPERATOR, reason="checkout broke")
    _, body = await get(served, f"/deployments/releases/{shipped.slug}")
    html = body.decode()
    members = html[html.index('id="members"') : html.index('id="rc-tests"')]
    assert "Members (0)" in members
    assert "Rode it, then left (1): the rollback sent them back" in members
    assert '<li class="member" data-slug="undone-core" data-state="reviewed">' in members
    rows, _ = await page_of(served, "/deployments/history")
    assert rows == [(1, shipped.slug, "rolled_back")]
    _, history = await get(served, "/deployments/history")
    assert '<td class="members">1</td>' in history.decode()

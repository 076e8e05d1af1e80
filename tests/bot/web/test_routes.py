"""The board over real HTTP on 127.0.0.1, reading a real SQLite file through the domain:
what ``/deployments.json`` and the page show, ``/healthz``, read-only methods, the security
headers, the screenshots served only from the evidence root, user text escaped, and the
guild a request means."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from bot.web.app import CSP, _inline_code
from conductor.bootstrap import Conductor, bootstrap
from conductor.states import RunKind, RunStatus, StepStatus
from conductor.views import Actor
from store.db import Database
from tests.bot.web.conftest import GUILD_NAME, Served, Ship, serve
from tests.helpers import (
    GUILD,
    OPERATOR,
    REVIEWERS,
    TEST_APP,
    DatabaseFault,
    FakeRunner,
    HealthServer,
    MakeReviewed,
    Origin,
    bring_to_reviewed,
    git,
    handoff,
    next_message_id,
    open_run,
    png,
    png_size,
    red_with_screenshots,
    roll_back_by_machine,
    ship,
)

HOSTILE = "<script>alert(1)</script>"
BAD_GUILD = "guild: expected a Discord guild id (digits only)."


async def get(
    served: Served, path: str, *, method: str = "GET", **kwargs: Any
) -> tuple[aiohttp.ClientResponse, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, served.base + path, allow_redirects=False, **kwargs) as response,
    ):
        return response, await response.read()


async def board_json(served: Served, query: str = "") -> dict[str, Any]:
    response, body = await get(served, "/deployments.json" + query)
    assert response.status == 200, body
    assert response.content_type == "application/json"
    data: dict[str, Any] = json.loads(body)
    return data


async def test_the_json_shows_production_the_lock_the_active_release_and_the_latest(
    served: Served, domain: Conductor, ship: Ship, make_reviewed: MakeReviewed
) -> None:
    empty = await board_json(served)
    assert empty["guild"] == {"id": str(GUILD), "name": GUILD_NAME}
    assert (empty["production"], empty["active"], empty["lock"], empty["releases"]) == (
        None, None, None, [],
    )  # fmt: skip

    first = await ship("first")
    second = await ship("second", red_with_screenshots(["/signin", "/tasks"]))
    await make_reviewed("base")
    await make_reviewed("top", depends_on="base")
    await domain.releases.open(GUILD, "third", OPERATOR, over_held=second.slug)
    await domain.releases.add_task(GUILD, "base", OPERATOR)
    await domain.releases.add_task(GUILD, "top", OPERATOR)
    await domain.locks.lock(GUILD, "db migration", OPERATOR)

    data = await board_json(served)
    production = data["production"]
    assert (production["slug"], production["version"], production["state"]) == (
        second.slug, 2, "shipped",
    )  # fmt: skip
    assert production["shipped_by"] == OPERATOR.name and production["shipped_at"]
    assert production["merge_sha"] == second.merge_sha
    assert production["in_production"] is True and data["held"] is True
    seal = production["seal"]
    assert (seal["status"], seal["badge"]) == ("red", "🔴")
    assert seal["summary"] == second.seal_summary and seal["checked_at"]
    assert [c["path"] for c in seal["failed"]] == ["/signin", "/tasks"]
    assert all(c["screenshot"].startswith("/deployments/screenshots/") for c in seal["failed"])
    assert [c["ok"] for c in seal["checks"]] == [True, False, False]

    assert data["lock"]["holder"] == OPERATOR.name
    assert data["lock"]["reason"] == "db migration" and data["lock"]["since"]
    active = data["active"]
    assert (active["state"], active["icon"]) == ("assembling", "🧩")
    assert [(m["slug"], m["state"]) for m in active["members"]] == [
        ("base", "assembled"), ("top", "assembled"),
    ]  # fmt: skip
    assert active["members"][1]["needs"] == [{"slug": "base", "state": "assembled"}]
    assert data["blockers"] == [
        "still assembling: `/release assemble` when the members are all aboard"
    ]
    latest = data["releases"]
    assert [(r["slug"], r["seal"]["status"], r["in_production"]) for r in latest] == [
        (second.slug, "red", True), (first.slug, "green", False),
    ]  # fmt: skip
    assert latest[1]["seal"]["badge"] == "🟢" and latest[1]["seal"]["failed"] == []

    # the page shows the same
    response, body = await get(served, "/deployments")
    assert response.status == 200 and response.content_type == "text/html"
    page = body.decode()
    for text in (second.slug, first.slug, "🔴 red", "🟢 green", "db migration", "top"):
        assert text in page, text
    assert seal["failed"][0]["screenshot"] in page


async def test_production_names_the_merge_sha_it_runs(
    db: Database, runner: FakeRunner, shots: Path, origin: Origin, clone: Path
) -> None:
    origin.commit("feat/sha-core", {"core.txt": "core\n"})
    async with HealthServer() as health:  # the push deploys: production's /up answers 200
        domain = bootstrap(
            database=db,
            app={**TEST_APP, "production_url": health.url},
            runner=runner,
            screenshots_dir=shots,
            git={"path": str(clone), "main": "main", "remote": "origin"},
        )
        await bring_to_reviewed(domain, "sha-core")
        slug = (await domain.releases.open(GUILD, "sha", OPERATOR)).slug
        await domain.releases.add_task(GUILD, "sha-core", OPERATOR)
        await domain.assembly.assemble(GUILD, OPERATOR)  # the RC branch, merged
        outcome = await ship(domain)
    assert outcome.seal is not None, outcome
    main = git(origin.bare, "rev-parse", "main")
    async with serve(domain, shots) as served:
        production = (await board_json(served))["production"]
        assert (production["slug"], production["merge_sha"]) == (slug, main)
        assert production["short_sha"] == main[:10]
        _, body = await get(served, "/deployments")
        assert f'<code class="sha" title="{main}">{main[:10]}</code>' in body.decode()


async def test_a_rollback_shows_the_release_rolled_back_and_production_before_it(
    served: Served, domain: Conductor, ship: Ship
) -> None:
    first = await ship("first")
    second = await ship("second", {"/signin": "selector not found"})
    await roll_back_by_machine(domain.db, second.slug, Actor("rita", 77), reason="signin broke")
    data = await board_json(served)
    assert data["production"]["slug"] == first.slug and data["held"] is False
    rolled = data["releases"][0]
    assert (rolled["slug"], rolled["state"], rolled["in_production"]) == (
        second.slug, "rolled_back", False,
    )  # fmt: skip
    assert (rolled["rolled_back_by"], rolled["rollback_reason"]) == ("rita", "signin broke")
    assert rolled["rolled_back_at"] and rolled["seal"]["status"] == "red"
    _, body = await get(served, "/deployments")
    assert "⏪ Rolled back by rita" in body.decode() and "signin broke" in body.decode()


async def test_a_rollback_stopped_half_way_says_main_and_production_disagree(
    served: Served, domain: Conductor, ship: Ship
) -> None:
    """A rollback whose revert reached main and whose deploy failed (the run as the driver
    records it): production is still v2, and the board says main and production disagree
    until a rollback of it ends done."""
    await ship("first")
    second = await ship("second")
    run = await open_run(domain, RunKind.ROLLBACK, second.slug, restores_version=1)
    revert = "1a2b3c4d5e" + "0" * 30
    done = {"summary": "reverted", "sha": revert, "created": True, "revert": revert}
    await domain.runs.runs.mark(run.id, "revert", StepStatus.DONE, done)
    failed = "the deploy command failed (exit 7)"
    await domain.runs.runs.mark(
        run.id, "deploy", StepStatus.FAILED, {"summary": failed}, end=RunStatus.FAILED,
        error=failed,
    )  # fmt: skip
    said = (
        f"`main` and production disagree: `main` was reverted (`1a2b3c4d5e`) but production "
        f"still runs `{second.slug}` v2: the rollback's deploy failed (run 3: {failed})."
    )
    data = await board_json(served)
    assert data["production"]["slug"] == second.slug and data["held"] is False
    assert data["half_rollback"] == said
    _, body = await get(served, "/deployments")
    assert (
        '<p class="problem half-rollback">⚠️ Held: <code>main</code> and production disagree: '
        "<code>main</code> was reverted (<code>1a2b3c4d5e</code>) but production still runs "
        f"<code>{second.slug}</code> v2: the rollback&#39;s deploy failed"
    ) in body.decode()

    await roll_back_by_machine(domain.db, second.slug)  # a rollback that ended done
    assert (await board_json(served))["half_rollback"] is None


async def test_an_unsealed_and_an_error_seal_keep_their_own_badges(
    served: Served, domain: Conductor, ship: Ship, make_reviewed: MakeReviewed
) -> None:
    await make_reviewed("flip-core")
    await domain.releases.open(GUILD, "flip", OPERATOR)
    await domain.releases.add_task(GUILD, "flip-core", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    await domain.releases.ship(GUILD, OPERATOR)  # flipped, never sealed
    broken = await ship("broken", RuntimeError("no browser"))
    data = await board_json(served)
    error, unsealed = data["releases"]
    assert (error["badge"], error["seal"]["status"]) == ("⚠️ error", "error")
    assert "the runner crashed" in error["seal"]["error"]
    assert (unsealed["badge"], unsealed["seal"]) == ("⚪ not sealed", None)
    _, body = await get(served, "/deployments")
    page = body.decode()
    assert '<span class="badge seal-error" data-seal="error">⚠️ error</span>' in page
    assert '<span class="badge seal-none" data-seal="none">⚪ not sealed</span>' in page
    assert "The seal could not run: the runner crashed" in page
    assert data["production"]["slug"] == broken.slug


@pytest.mark.backends("sqlite")  # the database's fault here is its file deleted
async def test_healthz_is_200_when_all_is_well_and_503_naming_what_is_wrong(
    served: Served, domain: Conductor
) -> None:
    response, body = await get(served, "/healthz")
    assert response.status == 200
    assert json.loads(body) == {
        "status": "ok",
        "checks": {
            "gateway": {"ok": True, "detail": "connected"},
            "database": {"ok": True, "detail": "reachable"},
        },
    }

    served.gateway.problem = "disconnected; discord.py is reconnecting"
    response, body = await get(served, "/healthz")
    assert response.status == 503
    assert json.loads(body)["problems"] == ["gateway: disconnected; discord.py is reconnecting"]

    served.gateway.problem = None
    fault = DatabaseFault(domain.db)
    fault.start("deleted")
    try:
        response, body = await get(served, "/healthz")
        assert response.status == 503
        answer = json.loads(body)
        assert answer["status"] == "unhealthy"
        [problem] = answer["problems"]
        assert problem.startswith("database: Conductor's database file was deleted"), problem
        assert answer["checks"]["gateway"]["ok"] is True
        # the board says so too, without a traceback
        response, body = await get(served, "/deployments.json")
        assert response.status == 503 and b"database file was deleted" in body
    finally:
        fault.stop()
    response, _ = await get(served, "/healthz")
    assert response.status == 200


async def test_the_board_answers_only_get_and_head(served: Served) -> None:
    for path in ("/deployments", "/deployments.json", "/healthz", "/deployments/board", "/x"):
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            response, body = await get(served, path, method=method, data=b"x=1")
            assert response.status == 405, (method, path)
            assert response.headers["Allow"] == "GET,HEAD"
            assert b"read-only" in body
            assert response.headers["Content-Security-Policy"] == CSP


async def test_head_answers_without_a_body(served: Served) -> None:
    response, body = await get(served, "/deployments", method="HEAD")
    assert response.status == 200 and body == b""


async def test_every_answer_carries_the_security_headers(served: Served, ship: Ship) -> None:
    await ship("one")
    for path in (
        "/deployments",
        "/deployments.json",
        "/deployments/board",
        "/healthz",
        "/deployments/static/board.js",
        "/deployments/static/board.css",
        "/deployments/static/nothing.js",
        "/nowhere",
    ):
        response, _ = await get(served, path)
        headers = response.headers
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
    assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert "unsafe-inline" not in CSP
    _, body = await get(served, "/deployments")
    page = body.decode()
    # no inline script or style: each script is a file, and no element carries a style or
    # an event handler
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/deployments/static/board.js" defer>'
    ]
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)
    response, body = await get(served, "/deployments/static/board.js")
    assert response.content_type == "text/javascript" and b"location.reload" not in body


async def test_the_fragment_is_304_when_unchanged_and_new_after_a_change(
    served: Served, ship: Ship
) -> None:
    response, body = await get(served, "/deployments/board")
    assert response.status == 200 and b"Nothing has shipped yet." in body
    tag = response.headers["ETag"]
    again, _ = await get(served, "/deployments/board", headers={"If-None-Match": tag})
    assert again.status == 304
    await ship("one")
    changed, body = await get(served, "/deployments/board", headers={"If-None-Match": tag})
    assert changed.status == 200 and changed.headers["ETag"] != tag
    assert b"\xf0\x9f\x9f\xa2 green" in body  # 🟢 green


async def test_a_screenshot_is_served_from_the_evidence_root(served: Served, ship: Ship) -> None:
    await ship("red", red_with_screenshots(["/signin"]))
    [check] = (await board_json(served))["production"]["seal"]["failed"]
    response, body = await get(served, check["screenshot"])
    assert response.status == 200 and response.content_type == "image/png"
    assert png_size(body) == (8, 6)
    stored = check["screenshot"].removeprefix("/deployments/screenshots/")
    assert (served.shots / stored).read_bytes() == body


async def test_no_path_leaves_the_evidence_root(served: Served, ship: Ship, tmp_path: Path) -> None:
    await ship("red", red_with_screenshots(["/signin"]))
    secret = png(5, 5, pad=64).replace(b"pad\x00", b"SECRET\x00")
    (tmp_path / "secret.png").write_bytes(secret)
    (tmp_path / "conductor.db.png").write_bytes(secret)
    served.shots.mkdir(exist_ok=True)
    (served.shots / "link.png").symlink_to(tmp_path / "secret.png")
    (served.shots / "dir").mkdir()
    (served.shots / "dir" / "link.png").symlink_to(tmp_path / "secret.png")
    (served.shots / "notes.txt").write_text("not a png")
    prefix = "/deployments/screenshots/"
    attempts = [
        "../secret.png",
        "../../secret.png",
        "%2e%2e/secret.png",
        "%2E%2E%2Fsecret.png",
        "..%2fsecret.png",
        "dir/../../secret.png",
        "dir/%2e%2e/%2e%2e/secret.png",
        "%2F" + str(tmp_path / "secret.png").lstrip("/").replace("/", "%2F"),
        "/" + str(tmp_path / "secret.png").lstrip("/"),
        "..%5csecret.png",
        "link.png",
        "dir/link.png",
        "notes.txt",
        "../conductor.db",
        "..%2fconductor.db.png",
        "secret.png%00.png",
        "dir",
    ]
    for attempt in attempts:
        url = URL(served.base + prefix + attempt, encoded=True)
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as response,
        ):
            body = await response.read()
        assert response.status in (400, 404), (attempt, response.status)
        assert b"SECRET" not in body and b"SQLite" not in body, attempt


async def test_user_text_is_escaped_everywhere(
    served: Served, domain: Conductor, ship: Ship
) -> None:
    text = f"handoff xss → submitted\ntitle: {HOSTILE}\nbranch: feat/<b>x</b>\nkind: <i>bug</i>"
    result = await domain.handoffs.apply(handoff(text, author='"><img src=x onerror=alert(2)>'))
    assert result.review is not None, result
    message_id = next_message_id()
    await domain.reviews.attach_message(result.review.request_id, 77, message_id)
    for reviewer in REVIEWERS[:2]:
        await domain.reviews.record_approval(GUILD, message_id, reviewer)
    hostile_actor = Actor("<svg onload=alert(3)>", 9)
    await domain.releases.open(GUILD, "xss", hostile_actor)
    await domain.releases.add_task(GUILD, "xss", OPERATOR)
    await domain.locks.lock(GUILD, "<iframe src=//evil>", hostile_actor)

    for path in ("/deployments", "/deployments/board"):
        _, body = await get(served, path)
        page = body.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert "&lt;svg onload=alert(3)&gt;" in page and "&lt;iframe src=//evil&gt;" in page
        assert "feat/&lt;b&gt;x&lt;/b&gt;" in page and "&lt;i&gt;bug&lt;/i&gt;" in page
        for raw in (HOSTILE, "<svg", "<iframe", "<b>x", "<i>bug"):
            assert raw not in page, (path, raw)
    data = await board_json(served)
    assert data["active"]["members"][0]["title"] == HOSTILE  # the data itself is kept whole


async def test_the_configured_guild_by_default_another_by_query(
    served: Served, domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    other = GUILD + 1
    await make_reviewed("elsewhere", guild_id=other)
    await domain.releases.open(other, "theirs", OPERATOR)
    default = await board_json(served)
    assert default["guild"]["id"] == str(GUILD) and default["active"] is None
    assert [g["id"] for g in default["guilds"]] == [str(GUILD), str(other)]
    chosen = await board_json(served, f"?guild={other}")
    assert chosen["guild"] == {"id": str(other), "name": f"guild {other}"}
    assert chosen["active"]["slug"].endswith("-theirs")
    _, body = await get(served, f"/deployments?guild={other}")
    assert f'href="/deployments?guild={GUILD}"' in body.decode()  # the way back
    assert f'data-src="/deployments/board?guild={other}"' in body.decode()

    for query, status, words in (
        ("?guild=abc", 400, BAD_GUILD),
        ("?guild=-1", 400, BAD_GUILD),
        ("?guild=%EF%BC%91", 400, BAD_GUILD),  # a full-width 1
        ("?guild=999", 404, f"No board for guild 999: the guilds here are {GUILD}, {other}."),
    ):
        response, body = await get(served, "/deployments.json" + query)
        assert (response.status, json.loads(body)) == (status, {"error": words}), query
        response, body = await get(served, "/deployments" + query)
        assert response.status == status and words in body.decode()
        response, _ = await get(served, "/deployments/board" + query)
        assert response.status == status


async def test_without_a_configured_guild_the_first_with_data(
    domain: Conductor, shots: Path, make_reviewed: MakeReviewed
) -> None:
    async with serve(domain, shots, default_guild=None) as served:
        response, body = await get(served, "/deployments.json")
        assert response.status == 404
        assert json.loads(body) == {
            "error": "Nothing to show yet: no guild has releases or tasks here."
        }
        await make_reviewed("later", guild_id=GUILD + 7)
        await make_reviewed("first", guild_id=GUILD + 3)
        assert (await board_json(served))["guild"]["id"] == str(GUILD + 3)


async def test_the_root_leads_to_the_board(served: Served) -> None:
    response, _ = await get(served, "/")
    assert response.status == 302 and response.headers["Location"] == "/deployments"


def test_the_domain_s_backticks_become_code_after_escaping() -> None:
    shown = _inline_code("run `/release assemble` <b>now</b>, not `<i>x</i>`")
    assert shown == (
        "run <code>/release assemble</code> &lt;b&gt;now&lt;/b&gt;, not "
        "<code>&lt;i&gt;x&lt;/i&gt;</code>"
    )


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1", 200),
        ("localhost", 200),
        ("LOCALHOST:8080", 200),
        ("127.3.4.5:99", 200),
        ("[::1]:8080", 200),
        ("attacker.example", 421),
        ("attacker.example:8080", 421),
        ("127.0.0.1.attacker.example", 421),
        ("192.168.1.10:8080", 421),
        ("[::ffff:8.8.8.8]", 421),
    ],
)
async def test_on_loopback_only_requests_naming_this_machine_are_answered(
    served: Served, host: str, status: int
) -> None:
    """DNS rebinding: an attacker's page whose name now points at 127.0.0.1 reaches the
    port but sends its own name as Host; the board, bound to loopback, refuses it."""
    for path in ("/deployments", "/deployments.json", "/healthz"):
        response, body = await get(served, path, headers={"Host": host})
        assert response.status == status, (path, host, body[:200])
        if status == 421:
            assert b"this machine" in body and b"production" not in body

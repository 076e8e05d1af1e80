"""The release train end to end: the real bot in a process of its own, over discord.py's own
HTTP, rate-limit and gateway code, against the stand-in; real git, a real deploy command, the
sample production sealed in real Chromium. The tests run in order on one bot and one guild:
each takes up the train where the one before left it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import struct
import subprocess
from collections.abc import Callable
from typing import Any

import httpx

from e2e.conftest import BRANCHES, World
from e2e.driver import WAIT_S
from e2e.standin import Json
from tests.helpers import png_size

GREEN = "🟢 Smoke seal: green — 6/6 checks passed"
RED = "🔴 Smoke seal: red —"
#: a size written next to a role, or an actual: what a leaked sealed bid would look like
LEAK = re.compile(r"\b(PM|PO|Dev|actual)\s+(S|M|L|XL)\b|≠ forecast|= forecast|📏")


def handoff(slug: str, state: str, *headers: str, note: str = "") -> str:
    text = "\n".join([f"handoff {slug} → {state}", *headers])
    return f"{text}\n\n{note}" if note else text


def query(w: World, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(w.db_path) as conn:
        return conn.execute(sql, args).fetchall()


def task_state(w: World, slug: str) -> str | None:
    rows = query(w, "SELECT state FROM tasks WHERE slug = ?", slug)
    return rows[0][0] if rows else None


def release_row(w: World, slug: str) -> dict[str, Any]:
    with sqlite3.connect(w.db_path) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM releases WHERE slug = ?", (slug,)).fetchone()
    return dict(row) if row is not None else {}


def wait_state(w: World, slug: str, state: str) -> None:
    w.d.wait_for(lambda: task_state(w, slug) == state, f"task {slug} {state}")


def acked(w: World, message: Json) -> None:
    """The bot took the handoff: its ✅ on the message."""
    bot = w.standin.bot_id
    w.d.wait_for(
        lambda: bot in w.d.reactions(int(message["id"]), "✅"),
        f"the bot's ✅ on {message['content'][:40]!r}",
    )


def review_of(w: World, slug: str) -> Json:
    def find() -> Json | None:
        for m in w.d.messages(w.channels["reviews"]):
            if f"`{slug}`" in m["content"]:
                return m
        return None

    return w.d.wait_for(find, f"the review request of {slug}")


def submit(
    w: World,
    slug: str,
    *,
    by: str = "machoke",
    size: str | None = None,
    while_building: Callable[[], None] | None = None,
) -> None:
    """An agent walks ``slug`` to submitted (as a bot user, or through the webhook); with
    ``size``, its sealed bid in the building handoff's ``size:`` header; ``while_building``
    runs once the task is building, before it is submitted."""
    branch = BRANCHES[slug][0]
    sized = [f"size: {size}"] if size is not None else []
    texts = [
        handoff(slug, "designed", f"title: Task {slug}", "kind: feature"),
        handoff(slug, "building", f"branch: {branch}", *sized),
        handoff(slug, "submitted", "tokens: 1,200", note=f"{slug} is in."),
    ]
    for text in texts:
        if text.startswith(f"handoff {slug} → submitted") and while_building is not None:
            wait_state(w, slug, "building")
            while_building()
        if by == "hook":
            posted = w.d.post_webhook(w.hook, text, username="claude")
        else:
            posted = w.d.post(w.channels["handoffs"], w.people[by], text)
        acked(w, posted)
    wait_state(w, slug, "submitted")


def bid(w: World, who: str, slug: str, size: str) -> str:
    """``who``'s sealed bid with ``/task size``: the ephemeral select it answers, the size
    chosen in it; what the answer says then (edited in place)."""
    asked = w.d.slash(w.people[who], w.channels["general"], "task size", slug=slug)
    [ballot] = w.d.wait_answer(asked)
    assert ballot["flags"] & 64, ballot["content"]  # the bidder alone sees it
    assert "sealed" in ballot["content"], ballot["content"]
    chosen = w.d.select(w.people[who], ballot, [size])

    def taken() -> str | None:
        content = str(w.d.message(int(ballot["id"]))["content"])
        return content if content.startswith("🔒") else None

    said = w.d.wait_for(taken, f"{who}'s bid on {slug} taken")
    assert w.d.interaction(chosen).response_type == 7  # the ballot itself, edited
    assert w.d.message(int(ballot["id"]))["components"] == []  # chosen once: the select is gone
    return said


def assert_sealed(text: str, where: str) -> None:
    leaked = LEAK.search(text)
    assert leaked is None, f"{where} shows a bid: {leaked.group(0)!r} in {text[:2000]}"


def approve(w: World, slug: str) -> None:
    request = review_of(w, slug)
    w.d.react(w.people["carl"], request, "✅")
    w.d.react(w.people["alex"], request, "✅")
    wait_state(w, slug, "reviewed")


def slash(w: World, command: str, /, **options: Any) -> list[Json]:
    """Olga's ``/command``; her answers once the first is in."""
    iid = w.d.slash(w.people["olga"], w.channels["general"], command, **options)
    return w.d.wait_answer(iid)


def active_slug(w: World) -> str:
    rows = query(
        w, "SELECT slug FROM releases WHERE state IN ('assembling', 'assembled') ORDER BY id DESC"
    )
    assert rows, "no active release"
    return str(rows[0][0])


def thread_of(w: World, slug: str) -> int:
    return w.d.wait_for(
        lambda: w.d.threads(w.channels["release-notes"]).get(slug), f"the thread of {slug}"
    )


def thread_texts(w: World, slug: str) -> list[str]:
    return [m["content"] for m in w.d.messages(thread_of(w, slug))]


def board(w: World) -> Json:
    [message] = w.d.messages(w.channels["deployments"])
    return message


def board_text(message: Json) -> str:
    parts = [message["content"]]
    for embed in message["embeds"]:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


def open_add_assemble(w: World, name: str, *tasks: str) -> str:
    slash(w, "release open", name=name)
    slug = active_slug(w)
    thread_of(w, slug)
    for task in tasks:
        slash(w, "release add", task=task)
        wait_state(w, task, "assembled")
    slash(w, "release assemble")
    w.d.wait_for(lambda: release_row(w, slug).get("state") == "assembled", f"{slug} assembled")
    return slug


def test_the_bot_logs_in_syncs_its_commands_and_pins_its_board(world: World) -> None:
    names = {c["name"] for c in world.standin.commands}
    assert {"release", "seal", "task", "conductor"} <= names
    world.d.wait_for(lambda: board(world)["pinned"], "the board, pinned")
    # the first connection went to the gateway the setting pointed at
    assert world.standin.identified == 1


def test_the_bot_process_is_closed_to_its_children(world: World) -> None:
    """``conductor run`` is not dumpable: a process of its user without privileges cannot
    read its environment, where the token came in. As root, the commands it runs are
    ``nobody``'s: such a reader is refused, and reads a process of its own."""
    assert world.bot.proc is not None
    pid = world.bot.proc.pid
    root = os.geteuid() == 0
    # A reader the way a command is one: as root, nobody; otherwise the bot's own user with
    # no capabilities (a dumpable process of that user would be open to it).
    as_command = ["runuser", "-u", "nobody", "--"] if root else []
    read = subprocess.run(  # noqa: S603
        [*as_command, "cat", f"/proc/{pid}/environ"], capture_output=True, check=False
    )
    assert read.returncode != 0 and b"Permission denied" in read.stderr
    assert world.token.encode() not in read.stdout
    # the control: the same reader reads a dumpable process of the user it runs as
    uid = 65534 if root else None  # nobody, in nogroup alone (as runuser makes it)
    other = subprocess.Popen(
        ["sleep", "60"], env={"MARK": "readable"},  # noqa: S607
        user=uid, group=uid, extra_groups=[] if root else None,
    )  # fmt: skip
    try:
        control = subprocess.run(  # noqa: S603
            [*as_command, "cat", f"/proc/{other.pid}/environ"], capture_output=True, check=False
        )
    finally:
        other.kill()
        other.wait()
    assert control.returncode == 0 and b"MARK=readable" in control.stdout


def card_and_stats_after_the_ship(w: World, show_asked: int, stats_asked: int) -> None:
    """The answers to ``/task show core`` and ``/release stats`` asked once the train
    shipped green."""
    # the card: the sizing revealed, the reviewer's reply in its conversation
    [shown] = w.d.wait_answer(show_asked)
    fields = {f["name"]: f["value"] for f in shown["embeds"][0]["fields"]}
    assert fields["Sizing"].startswith("PM M · PO XL · Dev L → actual S ≠ forecast")
    assert "**carl**" in fields["Conversation"]
    assert "The states read well." in fields["Conversation"]
    # /release stats: deferred, then the answer edited with its chart (a multipart edit)
    [stats] = w.d.wait_answer(stats_asked)
    assert w.d.interaction(stats_asked).response_type == 5
    assert "Deploy frequency: **1** ship ·" in stats["content"]
    [chart] = stats["attachments"]
    assert chart["filename"] == "release-stats.png" and chart["content_type"] == "image/png"
    assert chart["description"] == "Delivery chart"
    assert (chart["width"], chart["height"]) == (900, 450)
    assert png_size(httpx.get(chart["url"], timeout=WAIT_S).content) == (900, 450)


def sized_submitted_and_reviewed(w: World) -> None:
    """core and ui handed off, answered and approved; core sized by its three roles."""

    def bids() -> None:
        """The PM and the PO bid on core while it is built (sealed: each sees only who bid)."""
        said = bid(w, "pia", "core", "M")
        assert said.startswith("🔒 Your PM bid on `core` is **M**: sealed until the task ships")
        said = bid(w, "otto", "core", "XL")
        assert said.startswith("🔒 Your PO bid on `core` is **XL**")
        assert "sized by PM, PO, Dev so far" in said

    # agents hand off: one as a bot user (its size: header is the developer's bid), one
    # through the channel's webhook
    submit(w, "core", size="L", while_building=bids)
    submit(w, "ui", by="hook")
    # a reviewer answers core's review request: kept as the task's conversation
    request = review_of(w, "core")
    w.d.post(w.channels["reviews"], w.people["carl"], "The states read well.", reply_to=request)
    approve(w, "core")
    approve(w, "ui")
    request = w.d.message(int(request["id"]))
    assert "approved by" in request["content"]
    assert_sealed(board_text(request), "the review request")


def test_the_whole_train_ships_green(world: World) -> None:
    w = world
    sized_submitted_and_reviewed(w)

    before = board(w)
    slug = open_add_assemble(w, "train", "core", "ui")
    assembled = board(w)
    assert "`core`" in board_text(assembled)  # the member is on the pinned board…
    assert_sealed(board_text(assembled), "the pinned board")  # …its bids are not
    rc = release_row(w, slug)
    assert rc["rc_branch"] == f"release/{slug}"
    rc_head = rc["rc_head"]
    assert rc_head

    answers = slash(w, "release ship")
    assert answers[0]["flags"] & 64 == 0  # the progress is for everyone
    w.d.wait_for(lambda: any(GREEN in t for t in thread_texts(w, slug)), "the green notes")
    # asked now, read at the end (the bot draws the chart while the rest is checked): the
    # card of core, and the delivery stats
    olga, general = w.people["olga"], w.channels["general"]
    show_asked = w.d.slash(olga, general, "task show", slug="core")
    stats_asked = w.d.slash(olga, general, "release stats")
    shipped = release_row(w, slug)
    assert shipped["state"] == "shipped"
    assert shipped["seal_status"] == "green"
    # git: main on the origin fast-forwarded to the RC head, deployed once as v1
    assert w.main_sha() == shipped["merge_sha"] == rc_head
    assert w.deploys() == [f"{slug} v1 {rc_head}"]
    assert (w.app.running() or "").startswith("v1 ")
    # the notes in the thread name the members
    notes = "\n".join(thread_texts(w, slug))
    assert "`core`" in notes and "`ui`" in notes
    # …and core's line reveals the three bids beside the actual (measured on its time
    # building: no handoff reported a cost)
    assert "— “core is in.”\n  📏 PM M · PO XL · Dev L → actual S ≠ forecast" in notes
    # the ship's one progress message, edited through the steps into its end
    progress = w.d.wait_for(
        lambda: [
            m for m in w.d.answers(answers[0]["interaction_metadata"]["id"]) if "v1" in m["content"]
        ],
        "the ship's progress showing v1",
    )
    assert len(w.d.answers(int(answers[0]["interaction_metadata"]["id"]))) == 1
    assert progress[0]["_edits"] >= 1

    # the board: edited in place, showing the shipped release with its green badge
    def green_board() -> Json | None:
        b = board(w)
        return b if slug in board_text(b) and "🟢" in board_text(b) else None

    now = w.d.wait_for(green_board, "the board showing the green release")
    assert now["id"] == before["id"]
    assert now["_edits"] > before.get("_edits", 0)
    # the web board of the same process says the same: production is this release, green
    page = w.bot.board_url()
    data = httpx.get(f"{page}.json", timeout=WAIT_S).json()
    assert data["production"]["slug"] == slug
    assert data["production"]["merge_sha"] == rc_head
    assert data["production"]["badge"] == "🟢 green"
    assert data["active"] is None
    health = httpx.get(page.removesuffix("/deployments") + "/healthz", timeout=WAIT_S)
    assert health.status_code == 200, health.text
    card_and_stats_after_the_ship(w, show_asked, stats_asked)
    # nothing pinged anyone along the way
    for channel in w.channels.values():
        for message in w.d.messages(channel):
            assert message["_pinged_users"] == [] and message["_pinged_roles"] == []
    # discord.py met 429s on the way and retried them: every request got through
    assert w.standin.rate_limited > 0
    assert w.bot.errors() == []


def board_shows_red(w: World, slug: str, *, failed: list[str]) -> None:
    """The web board of the bot's process: ``slug`` in production, red, the screenshot of
    each failed check served as a PNG."""
    page = w.bot.board_url()
    production = httpx.get(f"{page}.json", timeout=WAIT_S).json()["production"]
    assert production["slug"] == slug and production["badge"] == "🔴 red"
    checks = [c for c in production["seal"]["checks"] if not c["ok"]]
    assert sorted(c["path"] for c in checks) == failed
    for check in checks:
        png = httpx.get(page.removesuffix("/deployments") + check["screenshot"], timeout=WAIT_S)
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_red_seal_pings_the_operator_with_screenshots_and_rolls_back(world: World) -> None:
    w = world
    submit(w, "search")
    approve(w, "search")
    slug = open_add_assemble(w, "hotfix", "search")
    before_main = w.main_sha()
    w.app.break_signin()
    w.app.set_status("/tasks", 500)
    slash(w, "release ship")
    thread = thread_of(w, slug)
    w.d.wait_for(lambda: any(RED in t for t in thread_texts(w, slug)), "the red notes")

    def alert() -> Json | None:
        for m in w.d.messages(thread):
            if m["_pinged_users"]:
                return m
        return None

    ping = w.d.wait_for(alert, "the rollback alert")
    olga, operators = w.people["olga"], w.operators
    # exactly the operator who shipped and the operator role, asked for and pinged
    assert ping["_allowed_mentions"]["users"] in ([str(olga)], [olga])
    assert [int(r) for r in ping["_allowed_mentions"]["roles"]] == [operators]
    assert ping["_allowed_mentions"].get("parse") in (None, [])
    assert ping["_pinged_users"] == [olga]
    assert ping["_pinged_roles"] == [operators]
    assert "git revert -m 1" in ping["content"]
    # the failed pages' screenshots, attached, served back as PNGs
    shots = ping["attachments"]
    assert len(shots) == 2, [a["filename"] for a in shots]
    for shot in shots:
        body = httpx.get(shot["url"], timeout=WAIT_S).content
        assert body[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", body[16:24])
        assert (width, height) == (1280, 720)
    # every other message in the thread pinged nobody
    others = [m for m in w.d.messages(thread) if m["id"] != ping["id"]]
    assert all(m["_pinged_users"] == [] and m["_pinged_roles"] == [] for m in others)
    board_shows_red(w, slug, failed=["/signin", "/tasks"])

    # the operator stays the gate: production fixed, then the Roll back button, the reason,
    # the confirmation
    w.app.heal()
    pressed = w.d.click(olga, ping, "Roll back")
    w.d.wait_for(lambda: w.d.interaction(pressed).modal, "the reason modal")
    submitted = w.d.submit_modal(olga, pressed, {"reason": "signin is broken"})
    [confirm] = w.d.wait_answer(submitted)
    assert slug in confirm["content"]
    # public on purpose (the team sees it asked for); only the asker can press it
    assert confirm["flags"] & 64 == 0
    [refused] = w.d.wait_answer(w.d.click(w.people["carl"], confirm, "Roll back"))
    assert refused["flags"] & 64 and "Only the operator who asked" in refused["content"]
    go = w.d.click(olga, confirm, "Roll back")
    w.d.wait_for(
        lambda: release_row(w, slug).get("state") == "rolled_back",
        f"{slug} rolled back",
    )
    assert w.d.interaction(go).responded
    # the rollback's own run to its end: the seal of the production it restored, its notes
    w.d.wait_for(
        lambda: query(w, "SELECT status FROM ship_runs WHERE kind = 'rollback'") == [("done",)],
        "the rollback run done",
    )
    row = release_row(w, slug)
    assert row["rollback_reason"] == "signin is broken"
    assert w.main_sha() != before_main  # the revert, pushed
    assert task_state(w, "search") == "reviewed"
    # the deploy ran for the ship, then once more for the rollback (the previous version)
    assert len([line for line in w.deploys() if line.startswith(slug)]) == 1
    assert len(w.deploys()) == 3
    assert w.bot.errors() == []


def restart(w: World) -> None:
    w.bot.start()
    w.bot.wait_ready()


def events_to(w: World, slug: str, state: str) -> int:
    rows = query(
        w,
        "SELECT count(*) FROM stage_events e JOIN tasks t ON e.task_id = t.id "
        "WHERE t.slug = ? AND e.to_state = ?",
        slug,
        state,
    )
    return int(rows[0][0])


def bot_reacted(w: World, message: Json) -> int:
    """How many times the bot put a reaction on ``message`` (429s not counted)."""
    return sum(
        1
        for c in w.standin.call(lambda: list(w.standin.calls))
        if c.method == "PUT"
        and f"/messages/{message['id']}/reactions/" in c.path
        and c.status == 204
    )


def test_killed_in_the_middle_of_reviews_nothing_is_lost_or_counted_twice(world: World) -> None:
    w = world
    submit(w, "docs")
    request = review_of(w, "docs")
    w.d.react(w.people["carl"], request, "✅")
    w.d.wait_for(
        lambda: "1/2 approvals" in w.d.message(int(request["id"]))["content"], "docs at 1/2"
    )
    w.bot.kill()
    # while the bot is gone: the second approval, and an agent's handoffs through the webhook
    w.d.react(w.people["alex"], request, "✅")
    offline = [
        w.d.post_webhook(w.hook, text, username="claude")
        for text in (
            handoff("hooks", "designed", "title: Task hooks", "kind: chore"),
            handoff("hooks", "building", f"branch: {BRANCHES['hooks'][0]}"),
            handoff("hooks", "submitted", note="hooks are in."),
        )
    ]
    restart(w)
    wait_state(w, "docs", "reviewed")
    assert "approved by" in w.d.wait_for(
        lambda: (c := w.d.message(int(request["id"]))["content"]) and "approved by" in c and c,
        "the docs review closed",
    )
    for message in offline:
        acked(w, message)
    wait_state(w, "hooks", "submitted")
    review_of(w, "hooks")
    # each counted once: one move to reviewed, one review request, one ✅ per handoff
    assert events_to(w, "docs", "reviewed") == 1
    assert events_to(w, "hooks", "submitted") == 1
    assert [m["content"].count("`hooks`") > 0 for m in w.d.messages(w.channels["reviews"])].count(
        True
    ) == 1
    assert all(bot_reacted(w, m) == 1 for m in offline)
    assert w.bot.errors() == []


def test_killed_in_the_middle_of_a_ship_it_resumes_and_deploys_once(world: World) -> None:
    w = world
    approve(w, "hooks")
    slug = open_add_assemble(w, "third", "docs", "hooks")
    rc_head = release_row(w, slug)["rc_head"]
    w.app.set_status("/up", 503)  # production comes up slowly: the health gate waits
    slash(w, "release ship")

    def in_health() -> bool:
        rows = query(
            w,
            "SELECT s.status FROM ship_steps s JOIN ship_runs r ON s.run_id = r.id "
            "JOIN releases rel ON r.release_id = rel.id WHERE rel.slug = ? AND s.name = 'health'",
            slug,
        )
        return bool(rows) and rows[0][0] == "running"

    w.d.wait_for(in_health, "the ship in its health gate")
    w.bot.kill()
    deployed = [line for line in w.deploys() if line.startswith(slug)]
    assert deployed == [f"{slug} v3 {rc_head}"]
    w.app.heal()
    # no waiting out the dead process's 30 s lease: the restarted bot sees its owner is gone
    restart(w)
    w.d.wait_for(lambda: any(GREEN in t for t in thread_texts(w, slug)), "the green notes")
    texts = thread_texts(w, slug)
    assert sum("took it up again" in t for t in texts) == 1
    assert any("from the health step" in t for t in texts)
    assert sum(GREEN in t for t in texts) == 1
    assert release_row(w, slug)["state"] == "shipped"
    # the deploy ran once, before the kill; nothing after it was repeated
    assert [line for line in w.deploys() if line.startswith(slug)] == deployed
    assert w.main_sha() == rc_head
    assert w.bot.errors() == []


def test_a_dropped_gateway_resumes_and_replays_what_it_missed_once(world: World) -> None:
    w = world
    identified, resumed = w.standin.identified, w.standin.resumed
    replayed = len(w.standin.replayed)
    w.d.drop_gateway(hold=True)
    missed = [
        w.d.post(w.channels["handoffs"], w.people["machoke"], text)
        for text in (
            handoff("late", "designed", "title: Late task", "kind: chore"),
            handoff("late", "building", "branch: feat/late"),
        )
    ]
    w.d.release_gateway()
    w.d.wait_for(lambda: w.standin.resumed == resumed + 1, "the RESUME")
    for message in missed:
        acked(w, message)
    wait_state(w, "late", "building")
    assert w.standin.identified == identified  # resumed, not a new session
    # the two messages reached the bot as the RESUME's replay
    assert w.standin.replayed[replayed:].count("MESSAGE_CREATE") >= 2
    assert events_to(w, "late", "building") == 1
    assert all(bot_reacted(w, m) == 1 for m in missed)
    assert w.bot.errors() == []


def test_a_bot_started_again_at_once_waits_for_discord_s_identify_window(world: World) -> None:
    """Killed right after its IDENTIFY and started again at once (a supervisor's quick
    restart): the new process waits for the identify slot the last one took in the database,
    so Discord never sees two IDENTIFYs within its 5 s (the stand-in records one as a failure,
    which fails the test), and the bot answers after it."""
    w = world
    w.bot.kill()
    restart(w)  # this IDENTIFY is the one the next process must wait for
    w.bot.kill()
    started = len(w.standin.call(lambda: list(w.standin.identifies)))
    restart(w)
    identifies = w.standin.call(lambda: list(w.standin.identifies))
    assert len(identifies) == started + 1
    (before, _), (after, _) = identifies[-2:]
    assert after - before >= 5.0, after - before
    assert "waiting" in w.bot.log.read_text() and "identify slot" in w.bot.log.read_text()
    posted = w.d.post(
        w.channels["handoffs"],
        w.people["machoke"],
        handoff("restarted", "designed", "title: After the restart", "kind: chore"),
    )
    acked(w, posted)
    assert w.bot.errors() == []

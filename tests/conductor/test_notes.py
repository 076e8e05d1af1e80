"""The words of a ship: the seal line, the notes, the rollback alert, all within Discord's
2,000 characters whatever the input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from conductor.costs import SpendUnit, release_cost
from conductor.notes import (
    MESSAGE_LIMIT,
    NOT_SEALED,
    release_notes,
    reseal_note,
    rollback_alert,
    rollback_note,
    seal_line,
)
from conductor.states import ReleaseState, SealStatus, TaskState
from conductor.views import ReleaseView, TaskView
from smoke import CheckResult, SmokeResult


def task(
    slug: str, *, title: str = "", branch: str | None = None, kind: str = "feature"
) -> TaskView:
    return TaskView(
        slug=slug,
        title=title or slug.title(),
        kind=kind,
        branch=branch if branch is not None else f"feat/{slug}",
        state=TaskState.SHIPPED,
        release_slug="2026-11-21-train",
        author_name="machoke",
        author_id=None,
    )


def shipped(members: tuple[TaskView, ...] = (), **seal: object) -> ReleaseView:
    return ReleaseView(
        slug="2026-11-21-train",
        name="train",
        state=ReleaseState.SHIPPED,
        opened_by="olga",
        opened_by_id=1,
        opened_at=datetime(2026, 11, 21, 9, tzinfo=UTC),
        version=3,
        shipped_at=datetime(2026, 11, 21, 10, tzinfo=UTC),
        shipped_by="olga",
        members=members,
        **seal,  # type: ignore[arg-type]
    )


def test_the_seal_lines_of_the_spec() -> None:
    assert seal_line(SealStatus.GREEN, "6/6 checks passed") == (
        "🟢 Smoke seal: green — 6/6 checks passed"
    )
    checks = (
        CheckResult("/up", False, kind="health", status=503, reason="status 503"),
        CheckResult("/", True, status=200),
        CheckResult(
            "/signin", False, status=200, reason="selector form input[type=password] not found"
        ),
        CheckResult("/tasks", True, status=200),
        CheckResult("/tasks", True, status=200),
        CheckResult("/devops", True, status=404),
    )
    red = SmokeResult.from_checks(checks, 900)
    assert seal_line(SealStatus.RED, red.summary) == (
        "🔴 Smoke seal: red — 2 of 6 failed: /up (status 503), "
        "/signin (selector form input[type=password] not found)"
    )
    assert seal_line(SealStatus.ERROR, "the smoke runner could not run: no browser") == (
        "⚠️ Smoke seal: error — the smoke runner could not run: no browser"
    )
    assert seal_line(None, None) == NOT_SEALED


def test_a_long_summary_is_cut_and_says_so() -> None:
    summary = "40 of 40 failed: " + ", ".join(f"/page/{i} (status 500)" for i in range(40))
    line = seal_line(SealStatus.RED, summary)
    assert len(line) <= 900 and line.endswith("…")
    assert line.startswith("🔴 Smoke seal: red — 40 of 40 failed: /page/0 (status 500)")


def test_notes_lead_with_the_seal_line_then_each_member() -> None:
    members = (task("core"), task("ui", title="The UI", kind="bug"), task("docs", branch=""))
    [notes] = release_notes(
        shipped(members, seal_status=SealStatus.GREEN, seal_summary="6/6 checks passed")
    )
    assert notes.splitlines() == [
        "📦 **Release notes — `2026-11-21-train` v3** shipped by olga <t:1795255200:f>",
        "🟢 Smoke seal: green — 6/6 checks passed",
        "",
        "**3 members** (by kind, in merge order):",
        "**✨ Features** (2)",
        "• `core` — Core · `feat/core`",
        "• `docs` — Docs",
        "**🐛 Bugs** (1)",
        "• `ui` — The UI · `feat/ui`",
    ]


def test_many_members_split_into_messages_under_the_limit() -> None:
    members = tuple(task(f"task-{i:03}", title="x" * 150) for i in range(120))
    summary = "9 of 9 failed: " + ", ".join(["/x (selector " + "y" * 300 + " not found)"] * 9)
    messages = release_notes(shipped(members, seal_status=SealStatus.RED, seal_summary=summary))
    assert len(messages) > 5
    assert all(len(m) <= MESSAGE_LIMIT for m in messages)
    assert messages[0].splitlines()[1].startswith("🔴 Smoke seal: red — 9 of 9 failed")
    assert all(m.startswith("(continued)\n") for m in messages[1:])
    every_line = "\n".join(messages)
    assert all(f"`task-{i:03}`" in every_line for i in range(120))  # nobody dropped


def test_the_alert_mentions_and_fences_the_rollback_command() -> None:
    alert = rollback_alert(
        shipped(),
        status=SealStatus.RED,
        summary="1 of 6 failed: /up (status 503)",
        mentions=["<@1>", "<@&2>"],
        rollback="git revert -m 1 abc123 && bin/deploy",
    )
    assert alert == (
        "🚨 <@1> <@&2> the smoke seal of `2026-11-21-train` v3 is **red**: "
        "1 of 6 failed: /up (status 503)\n"
        "Nothing was rolled back: production runs this release until you decide. To roll back:\n"
        "```\ngit revert -m 1 abc123 && bin/deploy\n```"
    )


def test_the_alert_without_a_command_says_so() -> None:
    alert = rollback_alert(
        shipped(), status=SealStatus.ERROR, summary="no browser", mentions=[], rollback=None
    )
    assert "is **error**: no browser" in alert
    assert "no rollback command is configured" in alert and "```" not in alert


@given(
    summary=st.text(min_size=0, max_size=5000),
    command=st.text(min_size=1, max_size=3000),
)
def test_the_alert_always_fits_and_keeps_the_code_block_closed(summary: str, command: str) -> None:
    alert = rollback_alert(
        shipped(),
        status=SealStatus.RED,
        summary=summary,
        mentions=["<@123456789012345678>", "<@&123456789012345678>"],
        rollback=command,
    )
    assert len(alert) <= MESSAGE_LIMIT
    if len(command) < 1500:
        # the command is whole, and a ``` inside it can't end the block early
        assert alert.count("```") == 2
        assert alert.endswith("\n```")


def test_reseal_note_names_what_it_replaced() -> None:
    view = shipped(seal_status=SealStatus.GREEN, seal_summary="6/6 checks passed")
    note = reseal_note(
        view, seal="🟢 Smoke seal: green — 6/6 checks passed", by="olga", previous=SealStatus.RED
    )
    assert note == (
        "🔁 Re-sealed `2026-11-21-train` v3 by olga (was 🔴 red):\n"
        "🟢 Smoke seal: green — 6/6 checks passed"
    )
    first = reseal_note(view, seal="x", by="olga", previous=None)
    assert "(first seal)" in first


def test_the_alert_with_the_button_says_what_it_does_and_after_a_rollback_says_so() -> None:
    alert = rollback_alert(
        shipped(),
        status=SealStatus.RED,
        summary="1 of 6 failed: / (text Studio not found)",
        mentions=["<@1>"],
        rollback="git revert -m 1 abc123",
        after="after the rollback of `2026-11-22-next` v4",
        button=True,
    )
    assert alert == (
        "🚨 <@1> the smoke seal of `2026-11-21-train` v3 (after the rollback of "
        "`2026-11-22-next` v4) is **red**: 1 of 6 failed: / (text Studio not found)\n"
        "Nothing more was rolled back: production runs this release until you decide. "
        "**Roll back** below runs it as a recorded rollback, after a confirmation; by hand:\n"
        "```\ngit revert -m 1 abc123\n```"
    )
    bare = rollback_alert(
        shipped(), status=SealStatus.ERROR, summary="x", mentions=[], rollback=None, button=True
    )
    assert bare.endswith("**Roll back** below runs a recorded rollback, after a confirmation.")


def test_the_rollback_note_names_who_why_production_each_step_the_seal_and_the_members() -> None:
    rolled = replace(
        shipped(),
        state=ReleaseState.ROLLED_BACK,
        rolled_back_by="olga",
        rolled_back_at=datetime(2026, 11, 22, 9, 30, tzinfo=UTC),
        rollback_reason="checkout\nis   broken",
    )
    previous = replace(shipped(), slug="2026-11-20-base", version=2)
    note = rollback_note(
        rolled,
        previous=previous,
        steps=["↩️ `main` reverted by `abc`", "⏭️ the deploy: no deploy command"],
        seal="🟢 Smoke seal: green — 6/6 checks passed",
        members=["core", "ui"],
    )
    assert note.splitlines() == [
        "⏪ **Rolled back `2026-11-21-train` v3** by olga <t:1795339800:f>",
        "Why: checkout is broken",
        "Production is `2026-11-20-base` v2 again.",
        "↩️ `main` reverted by `abc`",
        "⏭️ the deploy: no deploy command",
        "🟢 Smoke seal: green — 6/6 checks passed",
        "👀 Back to reviewed, ready for another train: `core`, `ui`",
    ]
    first = rollback_note(rolled, previous=None, steps=[], seal=None, members=[])
    assert "Production is back to what ran before it (no release shipped before it)." in first
    assert NOT_SEALED in first


@given(reason=st.text(max_size=3000), members=st.lists(st.text(max_size=80), max_size=300))
def test_the_rollback_note_always_fits(reason: str, members: list[str]) -> None:
    rolled = replace(shipped(), state=ReleaseState.ROLLED_BACK, rollback_reason=reason)
    note = rollback_note(
        rolled, previous=None, steps=["x" * 900] * 3, seal="s" * 3000, members=members
    )
    assert len(note) <= MESSAGE_LIMIT
    assert note.startswith("⏪ **Rolled back `2026-11-21-train` v3**")


def test_notes_of_a_release_opened_over_a_held_train_say_who_confirmed() -> None:
    view = replace(
        shipped((task("core"),), seal_status=SealStatus.GREEN, seal_summary="6/6 checks passed"),
        held_over_slug="2026-11-20-red",
        held_over_seal=SealStatus.RED,
        held_confirmed_by="carl",
        held_confirmed_by_id=502,
        held_confirmed_at=datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
    )
    [notes] = release_notes(view)
    assert notes.splitlines()[:3] == [
        "📦 **Release notes — `2026-11-21-train` v3** shipped by olga <t:1795255200:f>",
        "🟢 Smoke seal: green — 6/6 checks passed",
        "⚠️ Opened over 🔴 red `2026-11-20-red` — confirmed by carl <t:1795253400:f>",
    ]


@given(
    name=st.text(min_size=1, max_size=100),
    summary=st.text(max_size=5000),
    branch=st.text(min_size=1, max_size=255),
)
def test_the_first_notes_message_fits_with_every_header_line_at_its_longest(
    name: str, summary: str, branch: str
) -> None:
    view = replace(
        shipped((task("core"),), seal_status=SealStatus.RED, seal_summary=summary),
        slug="s" * 100,
        shipped_by=name,
        rc_branch=branch,
        rc_head="f" * 40,
        rc_merges={"core": "e" * 40},
        held_over_slug="h" * 100,
        held_over_seal=SealStatus.ERROR,
        held_confirmed_by=name,
        held_confirmed_at=datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
    )
    messages = release_notes(view)
    assert all(len(m) <= MESSAGE_LIMIT for m in messages)
    assert "⚠️ Opened over ⚠️ error `" + "h" * 100 + "`" in messages[0]


# -- the members in their agents' own words ------------------------------------------------


def said(slug: str, note: str | None, *, kind: str = "feature", title: str = "") -> TaskView:
    return replace(task(slug, kind=kind, title=title), last_note=note)


def test_members_grouped_by_kind_each_with_its_last_notes_summary() -> None:
    members = (
        said("core", "Release model foundation (singleton + task links). 795/0/0 green.",
             kind="feature"),
        said("typo", "Fixes the footer's typo.\nAlso the header.", kind="fix"),
        said("deps", "## Summary\n\n- Bumps the lockfile, e.g. sqlalchemy 2.0.40. Nothing else.",
             kind="chore"),
        said("ui", "The board's new layout", kind="Feature"),
        said("misc", None, kind=""),
        said("perf", "Faster ship runs.", kind="refactor"),
    )  # fmt: skip
    [notes] = release_notes(shipped(members))
    assert notes.splitlines()[3:] == [
        "**6 members** (by kind, in merge order):",
        "**✨ Features** (2)",
        "• `core` — Core · `feat/core` — “Release model foundation (singleton + task links).”",
        "• `ui` — Ui · `feat/ui` — “The board's new layout”",
        "**🔧 Fixes** (1)",
        "• `typo` — Typo · `feat/typo` — “Fixes the footer's typo.”",
        "**🧹 Chores** (1)",
        "• `deps` — Deps · `feat/deps` — “Bumps the lockfile, e.g. sqlalchemy 2.0.40.”",
        "**🔹 refactor** (1)",
        "• `perf` — Perf · `feat/perf` — “Faster ship runs.”",
        "**📎 Other** (1)",
        "• `misc` — Misc · `feat/misc`",
    ]


def test_a_long_first_line_is_cut_and_agent_text_is_inert() -> None:
    long = "Reworks " + "the whole pipeline " * 20 + "end to end"
    hostile = "@everyone look: <@123> and <@&456> **shipped** `now` [here](https://x.y) ||!||"
    [notes] = release_notes(shipped((said("long", long), said("loud", hostile))))
    long_line, loud_line = notes.splitlines()[5:7]
    summary = long_line.split(" — “", 1)[1]
    assert summary.endswith("…”") and len(summary) == 160 + 1
    assert "@everyone" not in notes and "<@123>" not in notes and "<@&456>" not in notes
    assert "@\u200beveryone" in loud_line and "<@\u200b123>" in loud_line
    assert "<@\u200b&456>" in loud_line
    assert "\\*\\*shipped\\*\\*" in loud_line and "\\`now\\`" in loud_line
    assert "\\[here\\](https://x.y)" in loud_line and "\\|\\|!\\|\\|" in loud_line


def test_a_summary_two_members_share_is_said_once() -> None:
    members = (
        said("api", "Adds the endpoint."),
        said("web", "adds  the endpoint."),
        said("cli", "Adds the command."),
    )
    [notes] = release_notes(shipped(members))
    assert notes.count("Adds the endpoint.") == 1 and "adds  the endpoint" not in notes
    assert "• `web` — Web · `feat/web` — (same note as `api`)" in notes.splitlines()
    assert notes.count("`web`") == 1  # each member once


def test_the_cost_line_leads_the_notes_and_says_what_went_unreported() -> None:
    units = [
        SpendUnit("core", TaskState.BUILDING, TaskState.SUBMITTED, "opus", 1_000_000,
                  Decimal("12.5")),
        SpendUnit("ui", TaskState.BUILDING, TaskState.SUBMITTED, None, None, None),
    ]  # fmt: skip
    release = replace(shipped((task("core"), task("ui"))), cost=release_cost(units, ["core", "ui"]))
    [notes] = release_notes(release)
    assert notes.splitlines()[2:4] == [
        "💸 $12.50 · 1.0 M tokens · 2 members · 1 of 2 handoffs reported nothing "
        "(unknown, not counted as $0)",
        "by model: opus $12.50 · 1 more",
    ]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["feature", "fix", "chore", "", "spike"]),
            st.one_of(st.none(), st.text(max_size=400)),
        ),
        max_size=150,
    )
)
def test_many_members_with_notes_stay_under_the_limit_each_once(
    drawn: list[tuple[str, str | None]],
) -> None:
    members = tuple(
        said(f"task-{i:03}", note, kind=kind, title="t" * 200)
        for i, (kind, note) in enumerate(drawn)
    )
    messages = release_notes(shipped(members))
    assert all(len(m) <= MESSAGE_LIMIT for m in messages)
    every_line = "\n".join(messages)
    assert all(every_line.count(f"`task-{i:03}` —") == 1 for i in range(len(members)))

"""The words of a ship: the seal line, the release notes, the rollback alert.

Plain text in Discord's markdown, every message under Discord's 2,000-character limit. Mentions
come in as ready strings (``<@id>``, ``<@&id>``) so this module needs no Discord.
"""

from __future__ import annotations

from collections.abc import Sequence

from conductor.costs import breakdown_line, cost_line
from conductor.seals.evidence import ALERT_BYTES, ALERT_FILES, AlertEvidence
from conductor.sizing import notes_suffix
from conductor.states import SealStatus
from conductor.text import (
    SEAL_BADGE,
    clip,
    fenced,
    flat,
    held_over_line,
    inert,
    member_line,
    note_summary,
    rc_line,
    rc_tests_line,
    short_sha,
    version,
)
from conductor.views import ReleaseView, TaskView

#: Discord's limit on one message's content
MESSAGE_LIMIT = 2000
#: the seal line's share of the first notes message; a longer summary is cut with …
SEAL_LINE_LIMIT = 900

NOT_SEALED = "⚪ Smoke seal: not run — no `[app]` with smoke checks is configured"


def seal_line(
    status: SealStatus | None, summary: str | None, *, limit: int = SEAL_LINE_LIMIT
) -> str:
    """``🟢 Smoke seal: green — 6/6 checks passed``; ``🔴 Smoke seal: red — 2 of 6 failed: …``."""
    if status is None:
        return NOT_SEALED
    head = f"{SEAL_BADGE[status]} Smoke seal: {status.value} — "
    return head + clip(" ".join((summary or "no summary").split()), max(limit - len(head), 20))


def release_seal_line(release: ReleaseView) -> str:
    return seal_line(release.seal_status, release.seal_summary)


def _chunks(first: str, lines: Sequence[str], limit: int) -> list[str]:
    """``first`` then ``lines`` packed into messages of at most ``limit`` characters; a line
    never splits across messages."""
    messages, current = [], first
    for raw in lines:
        line = clip(raw, limit - len("(continued)\n"))
        if len(current) + 1 + len(line) <= limit:
            current += "\n" + line
        else:
            messages.append(current)
            current = "(continued)\n" + line
    messages.append(current)
    return messages


def release_notes(
    release: ReleaseView, *, seal: str | None = None, limit: int = MESSAGE_LIMIT
) -> list[str]:
    """The notes for a shipped release: a header with the version and the seal line first
    (then the RC, its tests, and whether it was opened over a held train), then each member.
    Several messages when the members don't fit in one."""
    shipped = f" by {release.shipped_by}" if release.shipped_by else ""
    when = f" <t:{int(release.shipped_at.timestamp())}:f>" if release.shipped_at else ""
    header = f"📦 **Release notes — `{release.slug}`{version(release)}** shipped{shipped}{when}"
    line = seal if seal is not None else release_seal_line(release)
    held = held_over_line(release)
    extras = (rc_line(release), rc_tests_line(release), clip(held, 300) if held else None)
    built = "".join(f"\n{extra}" for extra in extras if extra)
    if release.cost is not None:
        spent = (cost_line(release.cost), breakdown_line(release.cost))
        built += "".join(f"\n{clip(part, 400)}" for part in spent if part)
    count = len(release.members)
    first = (
        f"{clip(header, 400)}\n{line}{built}\n\n"
        f"**{count} member{'s' if count != 1 else ''}** (by kind, in merge order):"
    )
    return _chunks(first, member_lines(release.members) or ["_no members_"], limit)


#: the kinds whose members the notes list first, in this order (then any other kind by name,
#: then the members of no kind); a kind is read in lower case, its plural or short form
#: taken for it
KINDS: dict[str, str] = {
    "feature": "✨ Features",
    "fix": "🔧 Fixes",
    "bug": "🐛 Bugs",
    "chore": "🧹 Chores",
}
KIND_ALIASES = {"features": "feature", "feat": "feature", "fixes": "fix", "bugfix": "fix",
                "bugs": "bug", "chores": "chore"}  # fmt: skip
OTHER_KIND = "📎 Other"


def kind_of(task: TaskView) -> str:
    """The group a member's notes line goes in: its kind, in lower case (``""``: none)."""
    kind = " ".join(task.kind.split()).lower()
    return KIND_ALIASES.get(kind, kind)


def kind_groups(members: Sequence[TaskView]) -> list[tuple[str, list[TaskView]]]:
    """The members by kind (:data:`KINDS` first, then other kinds by name, then none), in
    merge order within each."""
    groups: dict[str, list[TaskView]] = {}
    for task in members:
        groups.setdefault(kind_of(task), []).append(task)
    known = list(KINDS)
    return sorted(
        groups.items(),
        key=lambda item: (
            (0, known.index(item[0]), "") if item[0] in KINDS else (1 if item[0] else 2, 0, item[0])
        ),
    )


def kind_heading(kind: str, count: int) -> str:
    """``**✨ Features** (2)``."""
    name = KINDS.get(kind) or (f"🔹 {inert(flat(kind, 40))}" if kind else OTHER_KIND)
    return f"**{name}** ({count})"


def member_lines(members: Sequence[TaskView]) -> list[str]:
    """The notes' lines of the members: by kind (a heading kept with its first member), each
    member once, with the summary of its last handoff's note (:func:`note_summary`); a
    summary another member's line already gave is not said again: the line names that
    member instead."""
    lines: list[str] = []
    said_by: dict[str, str] = {}
    seen: set[str] = set()
    for kind, tasks in kind_groups(members):
        group = [kind_heading(kind, len(tasks))]
        for task in tasks:
            if task.slug in seen:
                continue
            seen.add(task.slug)
            summary = note_summary(task.last_note)
            said = None
            if summary is not None:
                same = " ".join(summary.casefold().split())
                if same in said_by:
                    said = f"(same note as `{said_by[same]}`)"
                else:
                    said_by[same] = task.slug
                    said = f"“{summary}”"
            group.append(
                member_line(task, needs=False, kind=False, said=said) + notes_suffix(task.sizing)
            )
        lines.append(f"{group[0]}\n{group[1]}" if len(group) > 1 else group[0])
        lines.extend(group[2:])
    return lines


def rollback_alert(
    release: ReleaseView,
    *,
    status: SealStatus,
    summary: str,
    mentions: Sequence[str],
    rollback: str | None,
    evidence: str | None = None,
    after: str | None = None,
    button: bool = False,
    limit: int = MESSAGE_LIMIT,
) -> str:
    """The ping on a red or error seal: who, what failed, and the exact rollback command, then
    ``evidence`` (the screenshots line) when there is one. Nothing is rolled back
    automatically: the operator stays the gate. ``after``: what the seal followed (``after
    the rollback of `x` v3``), said in the first line; ``button``: the alert carries the Roll
    back button, and says what it does."""
    who = " ".join(mentions)
    rolled = "Nothing was rolled back" if after is None else "Nothing more was rolled back"
    press = (
        " **Roll back** below runs it as a recorded rollback, after a confirmation; by hand"
        if button
        else " To roll back"
    )
    if rollback:
        how = (
            f"{rolled}: production runs this release until you decide.{press}:\n{fenced(rollback)}"
        )
        if "<merge_sha>" in rollback:
            how += "\nFill in `<merge_sha>`: no merge commit is recorded for this release."
    else:
        how = (
            f"{rolled}, and no rollback command is configured "
            "(`rollback_command` in `[app]`): roll back by hand if you decide to."
        )
        if button:
            how += " **Roll back** below runs a recorded rollback, after a confirmation."
    if evidence:
        how += "\n" + clip(evidence, 600)
    since = f" ({after})" if after else ""
    head = f"🚨 {who} the smoke seal of `{release.slug}`{version(release)}{since} is **{status.value}**: "
    room = limit - len(head) - len(how) - 2
    if room < 40:  # a pathological command: keep the message whole by cutting the command
        how = clip(how, limit - len(head) - 60)
        room = limit - len(head) - len(how) - 2
    # a ``` in the summary (page text) would open a code block of its own
    said = " ".join(summary.split()).replace("```", "`\u200b``")
    return f"{head}{clip(said, room)}\n{how}"


def screenshots_line(evidence: AlertEvidence) -> str | None:
    """What the alert says of its screenshots: how many are attached, and where the others
    are (Discord takes :data:`ALERT_FILES` files and, here, :data:`ALERT_BYTES` on one
    message). None when the seal has none."""
    total = evidence.total
    if total == 0:
        return None
    attached = len(evidence.attached)
    if attached == total:
        plural = "s" if total != 1 else ""
        return f"📸 {total} screenshot{plural} of the failed page{plural} attached."
    said = [f"📸 {attached} of {total} screenshots of the failed pages attached"]
    if evidence.on_disk:
        where = str(evidence.directory).replace("`", "'") if evidence.directory else "?"
        are = "is" if evidence.on_disk == 1 else "are"
        said.append(
            f"{evidence.on_disk} more {are} on disk with the seal record: `{clip(where, 300)}`"
        )
    if evidence.lost:
        are = "is" if evidence.lost == 1 else "are"
        said.append(f"{evidence.lost} {are} neither attached nor on disk")
    limits = f"one message takes {ALERT_FILES} files, {ALERT_BYTES // 2**20} MiB"
    return "; ".join(said) + f" ({limits})."


def reseal_note(release: ReleaseView, *, seal: str, by: str, previous: SealStatus | None) -> str:
    """What ``/seal`` posts in the thread: the new seal line, and what it replaced."""
    was = (
        f" (was {SEAL_BADGE[previous]} {previous.value})"
        if previous is not None
        else " (first seal)"
    )
    head = f"🔁 Re-sealed `{release.slug}`{version(release)} by {by}{was}:\n"
    return head + seal_line(
        release.seal_status, release.seal_summary, limit=MESSAGE_LIMIT - len(head)
    )


def production_line(previous: ReleaseView | None) -> str:
    """What production runs after a rollback: ``Production is `x` v2 again``."""
    if previous is None:
        return "Production is back to what ran before it (no release shipped before it)"
    return f"Production is `{previous.slug}`{version(previous)} again"


#: the commits pushed onto main since a release that a rollback's words name (the rest counted)
KEPT_SHOWN = 3


def kept_commits(kept: Sequence[Sequence[str]], count: int) -> str:
    """```1a2b3c4d5e` hotfix: the checkout, `…` … and 2 more``: commits that stay on main."""
    shown = [
        f"`{short_sha(sha)}` {flat(subject, 100).replace('`', chr(39)) or '(no subject)'}"
        for sha, subject in kept[:KEPT_SHOWN]
    ]
    more = count - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def since_shipped(release: ReleaseView, previous: ReleaseView | None, count: int) -> str:
    """```x` v1's code plus 2 commits pushed since `y` v2 shipped``."""
    code = f"`{previous.slug}`{version(previous)}'s code" if previous else "the code before it"
    commits = f"{count} commit{'s' if count != 1 else ''}"
    return f"{code} plus {commits} pushed since `{release.slug}`{version(release)} shipped"


def after_revert(
    release: ReleaseView,
    previous: ReleaseView | None,
    *,
    kept: Sequence[Sequence[str]],
    count: int,
    main: str,
    at: str | None = None,
    stale: str | None = None,
) -> str | None:
    """What production runs after the revert of ``release`` on ``main``, by commit, when
    that is not simply ``previous`` again: commits pushed onto main since the release shipped
    (``kept``, ``count`` in all) stay. ``at``: main after the revert (known once it is made);
    ``stale``: why main is as the clone last fetched it. None: nothing was pushed since, as
    far as a fresh fetch tells (``previous`` again)."""
    where = f"`{main}` at `{short_sha(at)}`" if at else f"`{main}`"
    head = f"{where} with `{release.slug}`{version(release)} reverted"
    seen = f" (as Conductor's clone last fetched `{main}`: {stale})" if stale else ""
    if count:
        stays = "which stays" if count == 1 else "which stay"
        return (
            f"{head}: {since_shipped(release, previous, count)}, {stays}: "
            f"{kept_commits(kept, count)}{seen}"
        )
    if stale:
        was = f"`{previous.slug}`{version(previous)}" if previous else "what ran before it"
        return (
            f"{head}: {was} again as far as Conductor can tell{seen}; anything pushed onto "
            f"`{main}` since `{release.slug}`{version(release)} shipped stays too"
        )
    return None


def after_revert_unknown(release: ReleaseView, *, main: str, why: str) -> str:
    """What production runs after the revert when main could not be read: not said to be
    the previous release again."""
    return (
        f"`{main}` with `{release.slug}`{version(release)} reverted, and whatever else it holds: "
        f"Conductor could not read `{main}` ({flat(why, 200)}), so it cannot say whether "
        f"commits were pushed onto it since `{release.slug}`{version(release)} shipped"
    )


def rollback_note(
    release: ReleaseView,
    *,
    previous: ReleaseView | None,
    steps: Sequence[str],
    seal: str | None,
    members: Sequence[str],
    after: str | None = None,
    limit: int = MESSAGE_LIMIT,
) -> str:
    """The outcome of a rollback in the release's thread: who, why, what production runs now
    (``after``: by commit, when it is not ``previous`` again), what each step did, the seal
    of the production it left, and the members back to reviewed. ``steps``: one line per
    step that did something (or said why not)."""
    who = f" by {release.rolled_back_by}" if release.rolled_back_by else ""
    when = (
        f" <t:{int(release.rolled_back_at.timestamp())}:f>"
        if release.rolled_back_at is not None
        else ""
    )
    head = f"⏪ **Rolled back `{release.slug}`{version(release)}**{who}{when}"
    why = f"Why: {clip(' '.join((release.rollback_reason or 'no reason given').split()), 400)}"
    now = f"Production runs {clip(after, 600)}." if after else f"{production_line(previous)}."
    lines = [clip(head, 300), why, now]
    lines += [clip(step, 300) for step in steps]
    lines.append(clip(seal, SEAL_LINE_LIMIT) if seal else NOT_SEALED)
    if members:
        back = ", ".join(f"`{slug}`" for slug in members)
        lines.append(clip(f"👀 Back to reviewed, ready for another train: {back}", 600))
    return clip("\n".join(lines), limit)

"""The domain's words as text, each in one place: the icons and seal badges, one line per
release and per task, and the cutting of text to a limit."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from conductor.states import ReleaseState, SealStatus, TaskState

if TYPE_CHECKING:  # annotations only: the CLI loads this module without the views (~16 ms)
    from conductor.views import HalfRollback, Hold, LockView, ReleaseView, TaskView

SEAL_BADGE = {SealStatus.GREEN: "🟢", SealStatus.RED: "🔴", SealStatus.ERROR: "⚠️"}
STATE_ICON = {
    ReleaseState.ASSEMBLING: "🧩",
    ReleaseState.ASSEMBLED: "📦",
    ReleaseState.SHIPPED: "🚀",
    ReleaseState.ABANDONED: "🗑️",
    ReleaseState.ROLLED_BACK: "⏪",
}
TASK_ICON = {
    TaskState.CREATED: "🌱",
    TaskState.DESIGNED: "📐",
    TaskState.BUILDING: "🔨",
    TaskState.SUBMITTED: "📨",
    TaskState.REVIEWED: "👀",
    TaskState.ASSEMBLED: "📦",
    TaskState.SHIPPED: "🚀",
}
#: the longest title or branch a member line shows
MEMBER_FIELD_LIMIT = 200


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(error: BaseException, limit: int | None = None) -> str:
    """An error's text on one line (its type's name when it has none), cut to ``limit``."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if limit is None else clip(text, limit)


def version(release: ReleaseView) -> str:
    """`` v3``, or nothing before the release has shipped."""
    return f" v{release.version}" if release.version is not None else ""


def member_line(
    task: TaskView, *, needs: bool = True, kind: bool = True, said: str | None = None
) -> str:
    """``• `slug` — Title · kind · `branch```, then ``said`` (the notes: what its agent said,
    ready to show) after a dash, then (with ``needs``) the dependencies on a line of their
    own. ``kind=False``: without the kind (the notes group the members by it)."""
    parts = [f"• `{task.slug}` — {clip(task.title, MEMBER_FIELD_LIMIT)}"]
    if task.kind and kind:
        parts.append(task.kind)
    if task.branch:
        parts.append(f"`{clip(task.branch, MEMBER_FIELD_LIMIT)}`")
    line = " · ".join(parts)
    if said:
        line += f" — {said}"
    if needs and task.dependencies:
        line += "\n  needs " + ", ".join(f"`{d.slug}` ({d.state_label})" for d in task.dependencies)
    return line


def release_line(release: ReleaseView) -> str:
    """``🚀 `2026-06-20-deploy-foundation` v3 — shipped 🟢``."""
    badge = SEAL_BADGE[release.seal_status] if release.seal_status else ""
    return f"{STATE_ICON[release.state]} `{release.slug}`{version(release)} — {release.state.value} {badge}".rstrip()


def short_sha(sha: str | None) -> str:
    return sha[:10] if sha else "?"


def seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def rc_line(release: ReleaseView) -> str | None:
    """``🌿 RC `release/…` at `1a2b3c4d5e` (3 merges)``, or None before git built one."""
    if release.rc_head is None:
        return None
    count = len(release.rc_merges)
    merges = f"{count} merge{'s' if count != 1 else ''}"
    return f"🌿 RC `{release.rc_branch}` at `{short_sha(release.rc_head)}` ({merges})"


def rc_tests_line(release: ReleaseView) -> str | None:
    """``🧪 Tests passed on the RC head in 12.3 s``, or None when none ran."""
    tests = release.rc_tests
    if tests is None:
        return None
    if tests.passed:
        return f"🧪 Tests passed on the RC head in {seconds(tests.duration_ms)}"
    return f"🧪 Tests failed on the RC head after {seconds(tests.duration_ms)}"


def fenced(text: str) -> str:
    """``text`` in a code block that its own backticks cannot close early."""
    return "```\n" + text.replace("```", "`\u200b``") + "\n```"


_USERINFO = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/@:\s]*):(?P<secret>[^/@\s]+)@", re.I
)


def mask_credentials(text: str) -> str:
    """``https://ops:hunter2@host`` → ``https://ops:***@host``, wherever a URL stands in
    ``text``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def storable(text: str) -> str:
    """``text`` as UTF-8 can hold it: a lone surrogate (which Discord can deliver and no
    database can store) is kept visible as its escape, ``\\ud800``; anything else as it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


# -- times, the lock, production, the held train ---------------------------------------------


def utc(at: datetime) -> str:
    """``2026-12-01 14:20 UTC``: a time in the domain's plain answers."""
    return at.strftime("%Y-%m-%d %H:%M UTC")


def stamp(at: datetime, style: str = "f") -> str:
    """``<t:1764598800:f>``: a time Discord shows in each reader's zone (``R``: "2 hours
    ago"). Plain text: the same time renders the same text, so an unchanged board is not
    edited."""
    return f"<t:{int(at.timestamp())}:{style}>"


def ago(at: datetime, now: datetime) -> str:
    """``3 min``, ``2 h 5 min``, ``4 d 1 h``: how long since ``at``."""
    minutes = max(0, int((now - at).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


#: the longest lock reason a line shows (the whole reason is kept)
LOCK_REASON_LIMIT = 300
#: the longest name a line shows
NAME_LIMIT = 60


def flat(text: str, limit: int) -> str:
    """User text on one line (no line breaks to forge lines with), cut to ``limit``."""
    return clip(" ".join(text.split()), limit)


_MARKDOWN = re.compile(r"([\\*_~|`\[\]])")
_MENTION = re.compile(r"@(everyone|here|[!&]?[0-9]+)")


def inert(text: str) -> str:
    """Text from an agent shown as written: its markdown escaped (no bold, code, spoilers,
    quotes or masked links of its own) and its mentions broken with a zero-width space, so
    ``@everyone`` or ``<@123>`` could never ping even where mentions were allowed."""
    return _MENTION.sub("@\u200b\\1", _MARKDOWN.sub(r"\\\1", text))


#: the longest summary of a note the release notes show
SUMMARY_LIMIT = 160
_LEAD = re.compile(r"^(?:#{1,6}\s+|[-*+•]\s+|>\s*|\d+[.)]\s+)+")
#: a sentence's end: not ``e.g. this`` (a lowercase word follows)
_SENTENCE_END = re.compile(r"[.!?…](?=\s+[^a-z\s]|\s*$)")


def note_summary(note: str | None, limit: int = SUMMARY_LIMIT) -> str | None:
    """What a handoff's note says first: its first line or its first sentence, whichever is
    shorter (a heading passed over when words follow it; a bullet's mark left out), cut to
    ``limit`` with …, then :func:`inert`. None for a note with no words."""
    lines = [line.strip() for line in (note or "").splitlines() if line.strip()]
    prose = [line for line in lines if not line.startswith("#")] or lines
    for raw in prose:
        line = _LEAD.sub("", raw).strip()
        if line:
            end = _SENTENCE_END.search(line)
            return inert(flat(line[: end.end()] if end else line, limit))
    return None


def locked_refusal(lock: LockView, doing: str, *, yours: bool, now: datetime) -> str:
    """Why ``doing`` is refused while the train is locked: who holds the lock, why, since
    when, and what to do."""
    holder = "you" if yours else clip(lock.holder, NAME_LIMIT)
    then = (
        "It is your lock: `/release unlock` first."
        if yours
        else "Ask them to `/release unlock`, or take the lock over with `/release lock` "
        "(it asks you to confirm)."
    )
    return (
        f"🔒 Can't {doing}: the release train is locked by {holder} since {utc(lock.since)} "
        f"({ago(lock.since, now)} ago) — {flat(lock.reason, LOCK_REASON_LIMIT)}. {then}"
    )


def lock_line(lock: LockView) -> str:
    """``🔒 Locked by olga since <t:…:f> (<t:…:R>) — db migration``: the board and
    ``/release status``."""
    return (
        f"🔒 **Locked** by {clip(lock.holder, NAME_LIMIT)} since {stamp(lock.since)} "
        f"({stamp(lock.since, 'R')}) — {flat(lock.reason, LOCK_REASON_LIMIT)}"
    )


def seal_badge(release: ReleaseView) -> str:
    """``🟢 green``, ``🔴 red``, ``⚠️ error`` or ``⚪ not sealed``."""
    status = release.seal_status
    return f"{SEAL_BADGE[status]} {status.value}" if status is not None else "⚪ not sealed"


def production_line(release: ReleaseView) -> str:
    """``🚀 `slug` v3 · merge `1a2b3c4d5e` · 🟢 green · shipped by olga <t:…:f>``: what
    production runs."""
    parts = [f"{STATE_ICON[release.state]} `{release.slug}`{version(release)}"]
    if release.merge_sha:
        parts.append(f"merge `{short_sha(release.merge_sha)}`")
    parts.append(seal_badge(release))
    if release.shipped_by or release.shipped_at:
        by = f" by {clip(release.shipped_by, NAME_LIMIT)}" if release.shipped_by else ""
        at = f" {stamp(release.shipped_at)}" if release.shipped_at else ""
        parts.append(f"shipped{by}{at}")
    return " · ".join(parts)


def failing_checks(release: ReleaseView, *, limit: int = 8) -> list[str]:
    """The checks the release's seal failed, one line each (``• `/up` — status 503``), at most
    ``limit`` and a line saying how many more; an error seal's reason instead."""
    if release.seal_status is SealStatus.ERROR:
        why = release.seal_error or release.seal_summary or "no reason recorded"
        return [f"• the seal could not run: {flat(why, 300)}"]
    failed = [r for r in release.seal_results if not r.get("ok", False)]
    lines = []
    for result in failed[:limit]:
        path = flat(str(result.get("path", "?")), 100).replace("`", "'")
        reason = flat(str(result.get("reason") or "failed"), 200)
        lines.append(f"• `{path}` — {reason}")
    if len(failed) > limit:
        lines.append(f"• … and {len(failed) - limit} more")
    if not lines:  # a red verdict without its checks (an old record): its summary says it
        lines.append(f"• {flat(release.seal_summary or 'no checks recorded', 300)}")
    return lines


def held_train_text(held: ReleaseView) -> str:
    """What holds the train: production's release, its verdict and its failing checks."""
    checked = f" on {utc(held.seal_checked_at)}" if held.seal_checked_at else ""
    head = (
        f"⚠️ The train is held: production runs `{held.slug}`{version(held)}, sealed "
        f"{seal_badge(held)}{checked}, neither re-sealed green nor rolled back."
    )
    return "\n".join([head, "Failing checks:", *failing_checks(held)])


def half_rollback_text(half: HalfRollback) -> str:
    """What a rollback stopped half way left, by where it stopped: ```main` and production
    disagree: `main` was reverted (`1a2b3c4d5e`) but production still runs `x` v2: the
    rollback's deploy failed (run 3: …).``"""
    what = f"`{half.release_slug}`{f' v{half.version}' if half.version is not None else ''}"
    sha = f"`{short_sha(half.revert)}`"
    run = f"{half.run}: {flat(half.why, 200)}"
    if half.step == "deploy" and half.interrupted:
        return (
            f"`main` and production may disagree: `main` was reverted ({sha}) but production "
            f"may still run {what}: the rollback's deploy was interrupted ({half.run})."
        )
    if half.step == "deploy":
        return (
            f"`main` and production disagree: `main` was reverted ({sha}) but production still "
            f"runs {what}: the rollback's deploy failed ({run})."
        )
    if half.step == "health":
        return (
            f"`main` was reverted ({sha}) and deployed, but production is not healthy and "
            f"{what} still reads shipped: the rollback stopped at its health gate ({run})."
        )
    return (
        f"`main` was reverted ({sha}) and deployed, but {what} still reads shipped: the "
        f"rollback stopped at its {half.step} step ({run})."
    )


def hold_text(hold: Hold) -> str:
    """What holds the train, in full: the red or error seal (:func:`held_train_text`), the
    rollback stopped half way, or both."""
    lines = [held_train_text(hold.release)] if hold.sealed else []
    half = hold.half
    if half is not None:
        what = f"`{hold.slug}`{version(hold.release)}"
        head = (
            f"⚠️ The train is held: the rollback of {what} stopped half way."
            if not hold.sealed
            else f"And the rollback of {what} stopped half way."
        )
        lines += [
            f"{head} {half_rollback_text(half)}",
            f"A release opened now is assembled on the reverted `main`: it would ship without "
            f"{what}'s changes, while {what} still reads shipped.",
        ]
    return "\n".join(lines)


def held_over_line(release: ReleaseView) -> str | None:
    """``⚠️ Opened over 🔴 red `slug` — confirmed by olga <t:…:f>`` (and, over a rollback
    stopped half way, the revert main had), or None for a release not opened over a held
    train."""
    if release.held_over_slug is None:
        return None
    seal = (
        f"{SEAL_BADGE[release.held_over_seal]} {release.held_over_seal.value} "
        if release.held_over_seal is not None
        else ""
    )
    half = (
        f" half rolled back (`main` had its revert `{short_sha(release.held_over_revert)}`; "
        "the rollback never finished)"
        if release.held_over_revert
        else ""
    )
    by = clip(release.held_confirmed_by or "?", NAME_LIMIT)
    at = f" {stamp(release.held_confirmed_at)}" if release.held_confirmed_at else ""
    return f"⚠️ Opened over {seal}`{release.held_over_slug}`{half} — confirmed by {by}{at}"

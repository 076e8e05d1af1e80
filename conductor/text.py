"""The domain's words as text, each in one place: the icons and seal badges, one line per
release and per task, and the cutting of text to a limit."""

from __future__ import annotations

import re

from conductor.states import ReleaseState, SealStatus, TaskState
from conductor.views import ReleaseView, TaskView

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


def member_line(task: TaskView, *, needs: bool = True) -> str:
    """``• `slug` — Title · kind · `branch```, then (with ``needs``) the dependencies on a
    line of their own."""
    parts = [f"• `{task.slug}` — {clip(task.title, MEMBER_FIELD_LIMIT)}"]
    if task.kind:
        parts.append(task.kind)
    if task.branch:
        parts.append(f"`{clip(task.branch, MEMBER_FIELD_LIMIT)}`")
    line = " · ".join(parts)
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
